"""kselftest config merge: =m mapping, supplements, tolerated and fatal drops, cache keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.core.spec import spec_from_text
from harness.errors import BuildError, UsageError
from harness.kernel import kconfig
from harness.kernel import kselftest_config as ksc

MM_CONFIG = "CONFIG_USERFAULTFD=y\nCONFIG_TEST_VMALLOC=m\nCONFIG_TEST_HMM=m\nCONFIG_ODD=m\n"


def test_m_maps_to_y_for_tristates_only() -> None:
    types = {"TEST_VMALLOC": "tristate", "TEST_HMM": "tristate", "ODD": "bool"}
    tc = ksc.target_config("mm", MM_CONFIG, types)
    assert [(o.symbol, o.value) for o in tc.options] == [
        ("CONFIG_USERFAULTFD", "y"), ("CONFIG_TEST_VMALLOC", "y"), ("CONFIG_TEST_HMM", "y"),
        ("CONFIG_ODD", "m")]
    assert tc.m_to_y == ("CONFIG_TEST_VMALLOC", "CONFIG_TEST_HMM")
    assert tc.options[1].origin == "tools/testing/selftests/mm/config:2"
    assert tc.as_dict()["m_to_y"] == ["CONFIG_TEST_VMALLOC", "CONFIG_TEST_HMM"]


def test_a_target_without_config_file_requests_nothing() -> None:
    tc = ksc.target_config("size", None, {})
    assert tc.options == () and tc.file == "" and tc.origins() == ()


def test_read_configs_from_tree_with_supplement(tmp_path: Path) -> None:
    (tmp_path / "tools/testing/selftests/mm").mkdir(parents=True)
    (tmp_path / "tools/testing/selftests/mm/config").write_text(MM_CONFIG)
    (tmp_path / "tools/testing/selftests/size").mkdir(parents=True)
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib/Kconfig.debug").write_text(
        "menuconfig RUNTIME_TESTING_MENU\n\tbool \"x\"\nif RUNTIME_TESTING_MENU\n"
        "config TEST_VMALLOC\n\ttristate \"t\"\n\tdepends on MMU\n\tdepends on m\n"
        "config TEST_HMM\n\ttristate \"h\"\nendif\nconfig ODD\n\tbool \"o\"\n")
    cfg = tmp_path / "kernel-config"
    (cfg / "kselftest").mkdir(parents=True)
    (cfg / "kselftest/mm.config").write_text("CONFIG_RUNTIME_TESTING_MENU=y\n")
    sups = ksc.supplements(["mm", "size"], cfg)
    assert [p.name for p, _ in sups] == ["mm.config"]
    merge = ksc.read_merge(tmp_path, ["mm", "size"], sups, ["CONFIG_TEST_VMALLOC"])
    mm, size = merge.configs
    assert mm.m_to_y == ("CONFIG_TEST_VMALLOC", "CONFIG_TEST_HMM") and size.options == ()
    assert [o.symbol for frag in merge.fragments() for o in frag] == [
        "CONFIG_USERFAULTFD", "CONFIG_TEST_VMALLOC", "CONFIG_TEST_HMM", "CONFIG_ODD",
        "CONFIG_RUNTIME_TESTING_MENU"]
    assert len(merge.digests()) == 2
    with pytest.raises(UsageError) as ei:
        ksc.read_configs(tmp_path, ["nosuch"], [])
    assert "nosuch" in ei.value.culprit


def test_supplement_syntax_error_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "kselftest").mkdir()
    (tmp_path / "kselftest/mm.config").write_text("CONFIG_A=y\nbogus\n")
    with pytest.raises(UsageError) as ei:
        ksc.supplements(["mm"], tmp_path)
    assert ei.value.culprit.endswith("kselftest/mm.config:2")


def test_bad_target_name_is_usage_error() -> None:
    with pytest.raises(UsageError):
        ksc.check_targets(["../etc"], "kselftest config")
    ksc.check_targets(["mm", "cgroup", "net/forwarding"], "x")


def _mismatches() -> list[kconfig.Mismatch]:
    req = [*kconfig.parse_config("CONFIG_TEST_VMALLOC=y\nCONFIG_GUP_TEST=y\n",
                                 "tools/testing/selftests/mm/config"),
           *kconfig.parse_config("CONFIG_MINE=y\n", "kernel-config/guest.config")]
    deps = {"TEST_VMALLOC": ("MMU", "m"), "GUP_TEST": ("DEBUG_FS",), "MINE": ()}
    return kconfig.verify(req, {"CONFIG_MMU": "y"}, deps)


def test_tolerated_only_when_listed_and_from_a_kselftest_file() -> None:
    bad = _mismatches()
    assert bad[0].reason().startswith("module-only")
    assert bad[1].reason() == "depends on DEBUG_FS (DEBUG_FS not set)"
    merge = ksc.Merge((ksc.target_config("mm", "", {}),), ("CONFIG_TEST_VMALLOC", "MINE"))
    fatal, ok = merge.split(bad)
    assert [m.option.symbol for m in ok] == ["CONFIG_TEST_VMALLOC"]
    # MINE is listed but came from the user's fragment: never excused
    assert [m.option.symbol for m in fatal] == ["CONFIG_GUP_TEST", "CONFIG_MINE"]
    meta = merge.metadata(ok)
    assert meta is not None and meta["missing"][0]["symbol"] == "CONFIG_TEST_VMALLOC"
    assert "module-only" in meta["missing"][0]["reason"]
    assert ksc.Merge().metadata([]) is None and ksc.Merge().split(bad) == (bad, [])


def test_cached_kernel_with_tolerated_drops_needs_the_same_allowance() -> None:
    merge = ksc.Merge((ksc.target_config("mm", "", {}),), ("CONFIG_TEST_VMALLOC",))
    meta = merge.metadata(merge.split(_mismatches())[1])
    ksc.check_missing_allowed(meta, ["CONFIG_TEST_VMALLOC"], "x")
    ksc.check_missing_allowed(None, [], "x")
    with pytest.raises(BuildError) as ei:
        ksc.check_missing_allowed(meta, [], "/cache/a")
    assert "CONFIG_TEST_VMALLOC" in ei.value.culprit and "config_missing_ok" in str(ei.value)


def test_spec_names_the_targets_to_merge(tmp_path: Path) -> None:
    text = ('type = "usertest"\n[kselftest]\ntargets = ["cgroup"]\n'
            'programs = ["mm/madv_populate", "mm/cow", "cgroup/test_kmem"]\n'
            'config_missing_ok = ["CONFIG_TEST_VMALLOC"]\n'
            '[[step]]\nname = "a"\nrun = "true"\n')
    spec = spec_from_text(text, tmp_path / "t.toml")
    assert spec.kselftest_configs == ("cgroup", "mm")
    assert spec.config_missing_ok == ("CONFIG_TEST_VMALLOC",)
    off = spec_from_text(text.replace("[kselftest]\n", "[kselftest]\nmerge_config = false\n"),
                         tmp_path / "t.toml")
    assert off.kselftest_configs == ()
    from harness.core.request import kernel_request

    assert kernel_request(spec).kselftest_configs == ("cgroup", "mm")
    assert kernel_request(off).kselftest_configs == ()


def test_usertest_schema_checks_the_new_keys(tmp_path: Path) -> None:
    from harness.scenarios.usertest.schema import parse_usertest

    base = 'type = "usertest"\n[kselftest]\nprograms = ["mm/cow"]\n%s\n[[step]]\nname = "a"\n' \
           'run = "true"\n'
    for bad, key in (("merge_config = 1", "merge_config"),
                     ('config_missing_ok = ["TEST_VMALLOC"]', "config_missing_ok")):
        with pytest.raises(UsageError) as ei:
            parse_usertest(spec_from_text(base % bad, tmp_path / "t.toml"))
        assert ei.value.culprit.endswith(key)
    parse_usertest(spec_from_text(base % "merge_config = false", tmp_path / "t.toml"))


def test_cache_key_unchanged_without_kselftest_configs_and_changed_with() -> None:
    from dataclasses import replace

    from harness.kernel import build

    inputs = build.resolve_inputs(build.BuildRequest())
    with_mm = replace(inputs, kselftest=("mm",))
    assert inputs._kselftest_key() == {}
    assert with_mm.cache_key() != inputs.cache_key()
    assert build.config_id(with_mm) != build.config_id(inputs)
    sup = replace(with_mm, kselftest_supplements=((Path("mm.config"), b"CONFIG_A=y\n"),))
    assert sup.cache_key() != with_mm.cache_key()
