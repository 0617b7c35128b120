"""Scenario files: one TOML per scenario, its common sections resolved in one place.

Every scenario file has a ``type`` (default ``mempressure``, the flagship) naming the package
in :mod:`harness.scenarios` that runs it, and the sections the core reads for every type:
``[kernel]`` (series, fragments) and ``[vm]`` (RAM, swap, CPUs, boot timeout, cgroup
hierarchy). Their defaults live here and only here; a type's own sections are validated by
its package. Errors name the file and the key.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from harness.errors import UsageError
from harness.image import rootfs
from harness.paths import PROJECT_ROOT
from harness.vm import config as vmc

SCENARIO_DIR = PROJECT_ROOT / "scenarios"
DEFAULT_TYPE = "mempressure"
CGROUP_MODES = ("v1", "v2")
_MISSING: Any = object()


@dataclass(frozen=True)
class VMSettings:
    """The guest shape a scenario asks for; CLI options override field by field."""

    ram_mib: int = vmc.DEFAULT_RAM_MIB
    swap_mib: int = vmc.DEFAULT_SWAP_MIB
    smp: int = vmc.DEFAULT_SMP
    boot_timeout_s: float = vmc.DEFAULT_BOOT_TIMEOUT_S
    cgroup: str = "v1"  # which hierarchy holds the memory controller in the guest
    rootfs: str = "initramfs"  # harness.image.rootfs.KINDS: the busybox initramfs, or debian
    packages: tuple[str, ...] = ()  # what a debian rootfs holds (empty: its default set)

    def override(self, **kw: Any) -> VMSettings:
        """A copy with every non-None keyword applied (``--ram`` etc.)."""
        vals = {f.name: getattr(self, f.name) for f in fields(self)}
        vals.update({k: v for k, v in kw.items() if v is not None})
        return VMSettings(**vals)


@dataclass(frozen=True)
class ScenarioSpec:
    name: str
    path: Path
    type_name: str  # the scenario package that runs it (``type = ...``)
    data: dict[str, Any]
    text: str = ""  # the file as read: saved into every run dir for ``harness judge``
    vm: VMSettings = field(default_factory=VMSettings)

    def get(self, section: str, key: str, kind: type = int, default: Any = _MISSING) -> Any:
        """A parameter of ``[section]``; a missing or mistyped one names the file and key."""
        sect = self.data.get(section, {}) if section else self.data
        if not isinstance(sect, dict):
            raise UsageError(f"{self.path} [{section}]", "must be a table")
        if key not in sect:
            if default is not _MISSING:
                return default
            raise UsageError(f"{self.path} [{section}] {key}", "missing parameter")
        return _typed(sect[key], kind, f"{self.path} [{section}] {key}")

    @property
    def series(self) -> tuple[Path, ...]:
        """Patch series the scenario's kernel needs (paths relative to the project)."""
        return tuple(PROJECT_ROOT / str(s) for s in self.data.get("kernel", {}).get("series", []))

    @property
    def fragments(self) -> tuple[str, ...]:
        return tuple(str(f) for f in self.data.get("kernel", {}).get("fragments", []))

    @property
    def kselftest_configs(self) -> tuple[str, ...]:
        """kselftest targets whose ``config`` file the kernel merges (harness/kernel/
        kselftest_config.py): ``[kselftest] targets`` and the targets of its ``programs``,
        unless ``merge_config = false`` (the section is validated by its scenario type)."""
        ks = self.data.get("kselftest", {})
        if not isinstance(ks, dict) or ks.get("merge_config", True) is False:
            return ()
        names = [str(t) for t in ks.get("targets", [])]
        names += [str(p).strip("/").rpartition("/")[0] for p in ks.get("programs", [])]
        return tuple(dict.fromkeys(n for n in names if n))

    @property
    def config_missing_ok(self) -> tuple[str, ...]:
        """``[kselftest] config_missing_ok``: options of those files that may not survive."""
        ks = self.data.get("kselftest", {})
        return tuple(str(x) for x in ks.get("config_missing_ok", [])) if isinstance(ks, dict) \
            else ()

    @property
    def setup(self) -> tuple[str, ...]:
        """``[guest] setup``: shell commands run in the guest after boot, before the scenario
        (e.g. ``echo y > /sys/kernel/mm/lru_gen/enabled``); validated on load."""
        return tuple(self.data.get("guest", {}).get("setup", []))


def _typed(value: Any, kind: type, where: str) -> Any:
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind in (int, float) and isinstance(value, bool)):
        raise UsageError(where, f"expected {kind.__name__}, got {value!r}")
    return value


def check_keys(table: Mapping[str, Any], known: Iterable[str], where: str) -> None:
    """The one TOML validation rule of the project: a key nobody reads is an error naming
    ``<file> [section] <key>`` and the keys that are known (scenarios, plans, user tests)."""
    known = set(known)
    extra = sorted(set(table) - known)
    if extra:
        raise UsageError(f"{where} {extra[0]}", f"unknown key (known: {', '.join(sorted(known))})")


def _vm_settings(data: dict[str, Any], path: Path) -> VMSettings:
    sect = data.get("vm", {})
    if not isinstance(sect, dict):
        raise UsageError(f"{path} [vm]", "must be a table")
    base = VMSettings()
    vals: dict[str, Any] = {}
    for f in fields(VMSettings):
        if f.name in sect and f.name == "packages":
            pk = sect[f.name]
            if not isinstance(pk, list) or not all(isinstance(x, str) for x in pk):
                raise UsageError(f"{path} [vm] packages", "must be a list of Debian package names")
            vals[f.name] = rootfs.check_packages(pk, f"{path} [vm] packages")
        elif f.name in sect:
            kind = type(getattr(base, f.name))
            vals[f.name] = _typed(sect[f.name], kind, f"{path} [vm] {f.name}")
    check_keys(sect, (f.name for f in fields(VMSettings)), f"{path} [vm]")
    vm = base.override(**vals)
    rootfs.check_kind(vm.rootfs, f"{path} [vm] rootfs")
    if vm.packages and vm.rootfs != "debian":
        raise UsageError(f"{path} [vm] packages", f"only a debian rootfs has packages "
                         f"(rootfs is {vm.rootfs!r})")
    if vm.cgroup not in CGROUP_MODES:
        raise UsageError(f"{path} [vm] cgroup", f"must be one of {CGROUP_MODES}, not {vm.cgroup!r}")
    for name in ("ram_mib", "smp"):
        if getattr(vm, name) < 1:
            raise UsageError(f"{path} [vm] {name}", "must be >= 1")
    if vm.swap_mib < 0:
        raise UsageError(f"{path} [vm] swap_mib", "must be >= 0")
    return vm


def resolve_path(name_or_path: str) -> Path:
    """``scenarios/<name>.toml`` for a bare name, else the path as given."""
    p = Path(name_or_path)
    return p if p.suffix == ".toml" or p.parent != Path(".") else SCENARIO_DIR / f"{p}.toml"


def known_names() -> list[str]:
    return sorted(x.stem for x in SCENARIO_DIR.glob("*.toml"))


def load_spec(name_or_path: str | Path) -> ScenarioSpec:
    """Load and validate the common part of a scenario file; errors name the file."""
    path = resolve_path(str(name_or_path))
    if not path.is_file():
        raise UsageError(str(path), f"scenario not found (known: {', '.join(known_names())})")
    return spec_from_text(path.read_text(), path)


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` on top of ``base``: tables merge key by key, anything else is replaced."""
    out = dict(base)
    for k, v in over.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _extended(data: dict[str, Any], path: Path, depth: int = 0) -> dict[str, Any]:
    """A variant (``extends = "mempressure"``) merged over the scenario it names."""
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str) or depth > 8:
        raise UsageError(f"{path} extends", f"must name one scenario, not {parent!r}")
    # A bare name is a scenario in scenarios/; a path is relative to the variant's own file.
    ppath = (path.parent / parent if "/" in parent or parent.endswith(".toml")
             else SCENARIO_DIR / f"{parent}.toml")
    if not ppath.is_file():
        raise UsageError(f"{path} extends", f"scenario {parent!r} not found")
    try:
        base = tomllib.loads(ppath.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(str(ppath), f"not valid TOML: {exc}") from exc
    base.pop("name", None)
    return merge(_extended(base, ppath, depth + 1), data)


def spec_from_text(text: str, path: Path) -> ScenarioSpec:
    """Parse a scenario's text (a file, or the copy a run dir keeps); resolve ``extends``."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(str(path), f"not valid TOML: {exc}") from exc
    if "extends" in data:
        from harness.core import tomlout

        data = _extended(data, path)
        text = f"# {path.name}, merged over the scenario it extends\n" + tomlout.dumps(data)
    kind = data.get("type", DEFAULT_TYPE)
    if not isinstance(kind, str):
        raise UsageError(f"{path} type", f"expected a string, got {kind!r}")
    kernel = data.get("kernel", {})
    if not isinstance(kernel, dict):
        raise UsageError(f"{path} [kernel]", "must be a table")
    check_keys(kernel, ("series", "fragments"), f"{path} [kernel]")
    for key in ("series", "fragments"):
        val = kernel.get(key, [])
        if not isinstance(val, list) or not all(isinstance(v, str) for v in val):
            raise UsageError(f"{path} [kernel] {key}", "must be a list of strings")
    guest = data.get("guest", {})
    setup = guest.get("setup", []) if isinstance(guest, dict) else None
    if not isinstance(setup, list) or not all(isinstance(v, str) for v in setup):
        raise UsageError(f"{path} [guest] setup", "must be a list of shell commands")
    check_keys(guest, ("setup",), f"{path} [guest]")
    return ScenarioSpec(name=str(data.get("name", path.stem)), path=path, type_name=kind, data=data,
                        text=text, vm=_vm_settings(data, path))
