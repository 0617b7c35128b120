"""Config merge and validation against captured Kconfig output."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import UsageError
from harness.kernel import kconfig

DATA = Path(__file__).parent.parent / "data" / "kconfig"


def test_parse_set_unset_and_comments() -> None:
    opts = kconfig.parse_config("# hi\nCONFIG_A=y\n# CONFIG_B is not set\nCONFIG_S=\"x\"\n", "f")
    assert [(o.symbol, o.value, o.origin) for o in opts] == [
        ("CONFIG_A", "y", "f:2"), ("CONFIG_B", "n", "f:3"), ("CONFIG_S", '"x"', "f:4")]


def test_parse_rejects_garbage_with_location() -> None:
    with pytest.raises(UsageError) as ei:
        kconfig.parse_config("CONFIG_A=y\nMEMCG=y\n", "kernel-config/x.config")
    assert ei.value.culprit == "kernel-config/x.config:2"


def test_merge_later_fragment_wins_and_replaces_base_line() -> None:
    base = "CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=y\n"
    f1 = kconfig.parse_config("CONFIG_B=y\nCONFIG_D=y\n", "f1")
    f2 = kconfig.parse_config("# CONFIG_D is not set\n", "f2")
    merged, req = kconfig.merge(base, [f1, f2])
    assert merged.splitlines() == ["CONFIG_A=y", "CONFIG_C=y", "CONFIG_B=y",
                                   "# CONFIG_D is not set"]
    assert {o.symbol: o.origin for o in req} == {"CONFIG_B": "f1:1", "CONFIG_D": "f2:1"}


def test_verify_reports_dropped_with_dependencies() -> None:
    final = kconfig.config_values((DATA / "olddefconfig-dropped.config").read_text())
    req = kconfig.parse_config("CONFIG_MEMCG=y\nCONFIG_MEMCG_V1=y\nCONFIG_NOPE_X=y\n", "frag")
    deps = {"MEMCG_V1": ("MEMCG",), "NOPE_X": None}
    bad = kconfig.verify(req, final, deps)
    assert [b.option.symbol for b in bad] == ["CONFIG_MEMCG", "CONFIG_MEMCG_V1", "CONFIG_NOPE_X"]
    assert bad[1].describe() == ("CONFIG_MEMCG_V1: requested y, got n [frag:2]; depends on MEMCG "
                                 "(MEMCG not set)")
    assert "unknown symbol" in bad[2].describe()


def test_verify_passes_when_all_survive() -> None:
    final = {"CONFIG_A": "y", "CONFIG_B": "n"}
    req = kconfig.parse_config("CONFIG_A=y\n# CONFIG_B is not set\n", "f")
    assert kconfig.verify(req, final) == []


def test_kconfig_dependencies_from_text() -> None:
    text = (DATA / "Kconfig.sample").read_text()
    assert kconfig.kconfig_dependencies(text, "MEMCG_V1") == ("MEMCG",)
    assert kconfig.kconfig_dependencies(text, "MEMCG") == ()
    assert kconfig.kconfig_dependencies(text, "ABSENT") is None


def test_find_symbol_in_tree(tmp_path: Path) -> None:
    (tmp_path / "init").mkdir()
    (tmp_path / "init" / "Kconfig").write_text((DATA / "Kconfig.sample").read_text())
    found = kconfig.find_kconfig_symbol(tmp_path, ["CONFIG_MEMCG_V1", "CONFIG_GHOST"])
    assert found == {"MEMCG_V1": ("MEMCG",), "GHOST": None}


def test_resolve_fragment(tmp_path: Path) -> None:
    (tmp_path / "guest.config").write_text("CONFIG_A=y\n")
    assert kconfig.resolve_fragment("guest", tmp_path) == tmp_path / "guest.config"
    with pytest.raises(UsageError) as ei:
        kconfig.resolve_fragment("nosuch", tmp_path)
    assert ei.value.culprit == "nosuch"


def test_dependencies_include_if_blocks_and_stop_at_comments() -> None:
    text = ("config GUP_TEST\n\tbool \"g\"\n\tdepends on DEBUG_FS\n"
            "comment \"GUP_TEST needs to have DEBUG_FS enabled\"\n"
            "\tdepends on !GUP_TEST && !DEBUG_FS\n"
            "if RUNTIME_TESTING_MENU # tests\nconfig TEST_HMM\n\ttristate \"h\"\n"
            "\tdepends on TRANSPARENT_HUGEPAGE\nendif\nconfig AFTER\n\tdef_bool y\n")
    assert kconfig.kconfig_dependencies(text, "GUP_TEST") == ("DEBUG_FS",)
    assert kconfig.kconfig_dependencies(text, "TEST_HMM") == ("RUNTIME_TESTING_MENU",
                                                              "TRANSPARENT_HUGEPAGE")
    assert kconfig.kconfig_dependencies(text, "AFTER") == ()
    assert kconfig.kconfig_type(text, "TEST_HMM") == "tristate"
    assert kconfig.kconfig_type(text, "AFTER") == "bool"
    assert kconfig.kconfig_type(text, "ABSENT") is None


def test_unset_dependencies_skip_negated_and_constants() -> None:
    final = {"CONFIG_MMU": "y", "CONFIG_X": "n"}
    assert kconfig.unset_dependencies(["MMU && m", "!FOO && (BAR || X)", "A=y"], final) == (
        "BAR", "X", "A")


def test_find_symbols_type_and_depends(tmp_path: Path) -> None:
    (tmp_path / "mm").mkdir()
    (tmp_path / "mm" / "Kconfig").write_text("config T\n\ttristate \"t\"\n\tdepends on m\n")
    assert kconfig.find_symbols(tmp_path, ["CONFIG_T", "NOPE"]) == {
        "NOPE": None, "T": kconfig.Symbol("tristate", ("m",))}


def test_help_text_is_not_read_as_an_if_block_or_a_dependency() -> None:
    """MEMCG's help text in init/Kconfig has a line "if a git-based tree is found": it was
    once taken for an ``if`` block around every later symbol of the file."""
    from harness.kernel.kconfig import kconfig_dependencies

    text = ("config A\n\tbool \"a\"\n\thelp\n\t  Say Y\n\t  if a git-based tree is found.\n"
            "\t  depends on nothing, this is prose\n\n\t  more prose\n\n"
            "config B\n\tbool \"b\"\n\tdepends on A\n\nif C\nconfig D\n\tbool\nendif\n")
    assert kconfig_dependencies(text, "B") == ("A",)
    assert kconfig_dependencies(text, "A") == ()
    assert kconfig_dependencies(text, "D") == ("C",)
