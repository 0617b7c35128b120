"""Configure is skipped only when nothing it reads changed and .config is what it wrote.

Two layers: the pure decision (:func:`configure_reason`) over each input, and the
builder's use of it with a real work tree, real patches and a fake ``make`` (which
records the targets it was asked for and writes a predictable config).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from harness.kernel import build, configstamp
from harness.kernel.build import BuildRequest, KernelBuilder, resolve_inputs
from harness.kernel.configstamp import ConfigureInputs, configure_reason, configure_relevant
from harness.kernel.progress import ProgressTracker
from harness.kernel.series import Patch

CONFIG = "CONFIG_BASE=y\nCONFIG_A=y\n"

INPUTS = ConfigureInputs(recipe="1/1", arch="x86_64", source="tar:abc", base="tinyconfig",
                         fragments=("f1", "f2"),
                         kconfig_overlay=(("init/Kconfig", "k1"),),
                         toolchain="gcc 12 | ld 2.40", cc="ccache gcc")


def _stamp(inputs: ConfigureInputs = INPUTS, config: str = CONFIG) -> configstamp.Stamp:
    return configstamp.stamp_for(inputs, config)


def test_nothing_changed_skips() -> None:
    assert configure_reason(_stamp(), INPUTS, CONFIG) is None


@pytest.mark.parametrize("field,value", [
    ("base", "defconfig"),
    ("base", "sha256:0123"),
    ("fragments", ("f1", "f2-edited")),
    ("fragments", ("f1",)),
    ("kconfig_overlay", (("init/Kconfig", "k2"),)),
    ("kconfig_overlay", ()),
    ("kconfig_overlay", (("init/Kconfig", "k1"), ("mm/Kconfig", None))),
    ("recipe", "2/1"),
    ("recipe", "1/2"),
    ("source", "tar:def"),
    ("toolchain", "gcc 13 | ld 2.41"),
    ("cc", "gcc"),
])
def test_each_changed_input_runs_configure(field: str, value: Any) -> None:
    changed = dataclasses.replace(INPUTS, **{field: value})
    reason = configure_reason(_stamp(), changed, CONFIG)
    assert reason is not None and field in reason


def test_config_edited_by_hand_or_missing_runs_configure() -> None:
    assert configure_reason(_stamp(), INPUTS, CONFIG + "CONFIG_X=y\n") == (
        ".config changed since the last configure")
    assert configure_reason(_stamp(), INPUTS, None) is not None
    assert configure_reason(None, INPUTS, CONFIG) == "no record of a previous configure"


def test_stamp_round_trips_and_garbage_reads_as_none(tmp_path: Path) -> None:
    assert configstamp.read_stamp(tmp_path) is None
    configstamp.write_stamp(tmp_path, _stamp())
    assert configstamp.read_stamp(tmp_path) == _stamp()
    (tmp_path / configstamp.STAMP_NAME).write_text('{"inputs": ')
    assert configstamp.read_stamp(tmp_path) is None
    configstamp.clear_stamp(tmp_path)
    configstamp.clear_stamp(tmp_path)  # idempotent
    assert not (tmp_path / configstamp.STAMP_NAME).exists()


@pytest.mark.parametrize("path,relevant", [
    ("init/Kconfig", True), ("arch/x86/Kconfig.cpu", True), ("mm/Kconfig.debug", True),
    ("kernel/configs/tiny.config", True), ("Makefile", True), ("mm/Makefile", True),
    ("scripts/kconfig/confdata.c", True), ("scripts/Kconfig.include", True),
    ("mm/vmpressure.c", False), ("include/linux/eventfd.h", False),
    ("Documentation/admin-guide/cgroup-v1/memory.rst", False), ("arch/x86/entry/entry_64.S", False),
])
def test_which_series_files_matter_to_configure(path: str, relevant: bool) -> None:
    assert configure_relevant(path) is relevant


# -- the builder, with a real tree and a fake make ---------------------------------------


def _patch(path: str, old: str, new: str) -> Patch:
    text = (f"diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n"
            f"@@ -1 +1 @@\n-{old}\n+{new}\n")
    return Patch(name=f"p-{new}", origin="series", data=text.encode())


class FakeMake:
    """Stands in for KernelBuilder._make: base targets write a base, olddefconfig keeps it."""

    def __init__(self) -> None:
        self.targets: list[str] = []

    def __call__(self, kb: KernelBuilder, *targets: str, kconfig_file: str | None = None,
                 **_: Any) -> str:
        self.targets += targets
        if targets[0] in build.BASE_TARGETS:
            assert kconfig_file
            (kb.build_dir / kconfig_file).write_text("CONFIG_BASE=y\n")
        return ""


@pytest.fixture()
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    src = tmp_path / "linux"
    (src / "init").mkdir(parents=True)
    (src / "mm").mkdir()
    (src / "Makefile").write_text("all:\n")
    (src / "Kconfig").write_text("source \"init/Kconfig\"\n")
    (src / "init" / "Kconfig").write_text("config A\n")
    (src / "mm" / "a.c").write_text("int a;\n")
    frag = tmp_path / "f.config"
    frag.write_text("CONFIG_A=y\n")
    fake = FakeMake()

    def make(kb: KernelBuilder, *targets: str, **kw: Any) -> str:
        return fake(kb, *targets, **kw)

    monkeypatch.setattr(KernelBuilder, "_make", make)
    return {"src": src, "frag": frag, "make": fake, "tmp": tmp_path}


def _build(env: dict[str, Any], patches: list[Patch] = (),  # type: ignore[assignment]
           base: str = "tinyconfig") -> str | None:
    """Sync + configure_if_needed, as KernelBuilder.run does; returns why configure ran."""
    req = BuildRequest(source=env["src"], series=(), fragments=(str(env["frag"]),), base=base)
    kb = KernelBuilder(resolve_inputs(req))
    kb.tree.sync(list(patches))
    kb.build_dir.mkdir(parents=True, exist_ok=True)
    env["make"].targets.clear()
    _, reason = kb.configure_if_needed(ProgressTracker(None, 1))
    ran = "olddefconfig" in env["make"].targets
    assert ran == (reason is not None)
    env["build_dir"] = kb.build_dir
    return reason


def test_builder_skips_second_configure_and_reruns_on_each_change(env: dict[str, Any]) -> None:
    c_patch = _patch("mm/a.c", "int a;", "int a = 1;")
    assert _build(env) == "no .config in the build directory"
    assert _build(env) is None  # nothing changed
    # A series touching only a .c file: configure still skipped.
    assert _build(env, [c_patch]) is None
    # A series touching a Kconfig file: configure again, then skipped again.
    k_patch = _patch("init/Kconfig", "config A", "config A_RENAMED")
    assert "kconfig_overlay" in (_build(env, [c_patch, k_patch]) or "")
    assert _build(env, [c_patch, k_patch]) is None
    assert "kconfig_overlay" in (_build(env, [c_patch]) or "")  # dropping it counts too
    # .config edited by hand (or by another build's configure in the same build dir).
    cfg = env["build_dir"] / ".config"
    cfg.write_text(cfg.read_text() + "CONFIG_HAND=y\n")
    assert _build(env, [c_patch]) == ".config changed since the last configure"
    assert _build(env, [c_patch]) is None
    # A fragment edited, a different base, a base file: each is a configuration of its own,
    # with its own build dir (harness.kernel.build.lineage_dirs), configured on first use.
    env["frag"].write_text("CONFIG_A=y\n# CONFIG_B is not set\n")
    assert _build(env, [c_patch]) is not None
    assert _build(env, [c_patch]) is None
    assert _build(env, [c_patch], base="defconfig") is not None
    base_file = env["tmp"] / "base.config"
    base_file.write_text("CONFIG_BASE=y\n")
    assert _build(env, [c_patch], base=str(base_file)) is not None
    assert _build(env, [c_patch], base=str(base_file)) is None
    base_file.write_text("CONFIG_BASE=y\nCONFIG_C=y\n")
    assert _build(env, [c_patch], base=str(base_file)) is not None
    assert _build(env, [c_patch], base=str(base_file)) is None


def test_builder_reruns_on_recipe_change_and_after_interrupted_configure(
        env: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    _build(env)
    monkeypatch.setattr(configstamp, "CONFIGURE_RECIPE", "999")
    assert "recipe" in (_build(env) or "")
    assert _build(env) is None
    monkeypatch.setattr(build, "RECIPE_VERSION", "999")
    assert "recipe" in (_build(env) or "")

    def interrupted(kb: KernelBuilder, tracker: ProgressTracker) -> tuple[str, list[Any]]:
        raise KeyboardInterrupt

    real_configure = KernelBuilder.configure
    monkeypatch.setattr(KernelBuilder, "configure", interrupted)
    monkeypatch.setattr(configstamp, "CONFIGURE_RECIPE", "1000")
    with pytest.raises(KeyboardInterrupt):
        _build(env)
    monkeypatch.setattr(KernelBuilder, "configure", real_configure)
    # The stamp was cleared before configure started: no stale "all done" record survives.
    assert _build(env) == "no record of a previous configure"


def test_builder_reruns_when_a_requested_option_is_missing_from_config(
        env: dict[str, Any]) -> None:
    _build(env)
    cfg = env["build_dir"] / ".config"
    text = cfg.read_text().replace("CONFIG_A=y\n", "")
    cfg.write_text(text)
    configstamp.write_stamp(env["build_dir"], configstamp.Stamp(
        configstamp.read_stamp(env["build_dir"]).inputs,  # type: ignore[union-attr]
        configstamp.read_stamp(env["build_dir"]).digest,  # type: ignore[union-attr]
        configstamp.sha256_text(text)))
    assert _build(env) == "a requested option is not in .config"
