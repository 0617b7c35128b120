"""A matrix plan: kernels x scenarios x VM sizes, read from TOML and expanded into jobs.

Pure functions only: reading the file is the one I/O step (:func:`load_plan`);
expansion and sharding are deterministic, so every shard of a CI matrix computes
the same job list and takes its own contiguous slice of it.

Plan format (``plans/*.toml``)::

    name = "smoke"

    [[kernel]]                      # one or more; each is one kernel, or one per rev
    name = "flagship"
    source = "/path/to/linux.git"   # optional: tarball, directory or git repo
    revs = ["v6.12", "v6.12.1"]     # optional, git sources: one kernel per revision
    series = ["../patches/mempressure-shrinker"]   # [] = no series
    fragments = ["guest", "mempressure", "mempressure-shrinker"]
    base = "tinyconfig"
    arch = "arm64"                  # optional (default x86_64): harness.arch.ARCHES
    page_size = "64k"               # optional: the architecture's page sizes (default 4k)

    [[scenario]]                    # or: scenario = ["mempressure", "clamping.toml"]
    name = "clamping"
    path = "clamping-only.toml"     # a name in scenarios/ or a .toml path
    duration = 20                   # optional: --duration for the stress phase
    checks = ["clamping"]           # optional: only these checks (--check)

    [[vm]]                          # optional; default: the scenario's own size
    name = "256m"
    ram_mib = 256
    swap_mib = 256

Relative paths (series, fragment and scenario files, a source) are relative to
the plan file's directory, so a plan means the same thing from any working
directory. A key the format does not know is an error, not a silent no-op.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.arch import DEFAULT_ARCH, Arch, get_arch
from harness.core.spec import check_keys
from harness.errors import UsageError
from harness.kernel.build import BASE_TARGETS

_KERNEL_KEYS = {"name", "source", "rev", "revs", "series", "fragments", "base", "arch",
                "page_size"}
_SCENARIO_KEYS = {"name", "path", "duration", "checks"}
_VM_KEYS = {"name", "ram_mib", "swap_mib", "smp"}
_TOP_KEYS = {"name", "description", "kernel", "scenario", "vm"}
_SLUG = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class KernelSpec:
    """One kernel of a plan. ``series``/``fragments`` None: the scenario's (its [kernel], else
    the harness defaults), as for ``harness run`` without ``--patches``/``--config``."""

    name: str
    source: str | None = None
    rev: str | None = None
    series: tuple[str, ...] | None = None
    fragments: tuple[str, ...] | None = None
    base: str = "tinyconfig"
    arch: str = DEFAULT_ARCH
    page_size: str | None = None


@dataclass(frozen=True)
class ScenarioSpec:
    name: str
    path: str  # what `harness run --scenario` takes
    duration: int | None = None
    checks: tuple[str, ...] = ()  # `harness run --check`: a subset of the scenario's; () = all


@dataclass(frozen=True)
class VMSize:
    name: str
    ram_mib: int | None = None  # None: the scenario's
    swap_mib: int | None = None
    smp: int | None = None


@dataclass(frozen=True)
class Job:
    """One ``harness run``: a kernel, a scenario, a VM size."""

    kernel: KernelSpec
    scenario: ScenarioSpec
    vm: VMSize

    @property
    def id(self) -> str:
        return f"{self.kernel.name}/{self.scenario.name}/{self.vm.name}"

    @property
    def slug(self) -> str:
        """The job's run-dir name: unique within a plan, safe as a file name."""
        return "--".join(_SLUG.sub("_", p) for p in
                         (self.kernel.name, self.scenario.name, self.vm.name))


@dataclass(frozen=True)
class Plan:
    name: str
    path: Path
    jobs: tuple[Job, ...]
    description: str = ""
    kernels: tuple[KernelSpec, ...] = field(default=())


def _where(path: Path, what: str) -> str:
    return f"{path}: {what}"


def _check_keys(path: Path, what: str, table: Mapping[str, Any], allowed: set[str]) -> None:
    check_keys(table, allowed, _where(path, what))


def _rel(base: Path, value: str) -> str:
    """A path relative to the plan's directory; a bare name (no '/', no suffix) stays a name."""
    p = Path(value).expanduser()
    if p.is_absolute():
        return str(p)
    if "/" not in value and not p.suffix and value not in ("", "."):
        return value  # a name: a fragment in kernel-config/, a scenario in scenarios/
    return str((base / p).resolve())


def _str_list(path: Path, what: str, value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UsageError(_where(path, what), "must be a list of strings")
    return list(value)


def _int_or_none(path: Path, what: str, value: Any, minimum: int) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise UsageError(_where(path, what), f"must be an integer >= {minimum}")
    return value


def _kernels(path: Path, items: Any) -> list[KernelSpec]:
    if not isinstance(items, list) or not items:
        raise UsageError(_where(path, "[[kernel]]"), "a plan needs at least one [[kernel]] table")
    base_dir = path.parent
    out: list[KernelSpec] = []
    for i, t in enumerate(items, start=1):
        what = f"[[kernel]] #{i}"
        if not isinstance(t, dict):
            raise UsageError(_where(path, what), "must be a table")
        _check_keys(path, what, t, _KERNEL_KEYS)
        name = str(t.get("name") or f"kernel{i}")
        what = f"[[kernel]] {name}"
        if "rev" in t and "revs" in t:
            raise UsageError(_where(path, what), "give rev or revs, not both")
        revs: list[str | None] = (
            list(_str_list(path, f"{what} revs", t["revs"])) if "revs" in t
            else [str(t["rev"])] if "rev" in t else [None])
        source = _rel(base_dir, str(t["source"])) if "source" in t else None
        series = (tuple(_rel(base_dir, s) for s in _str_list(path, f"{what} series", t["series"]))
                  if "series" in t else None)
        frags = (tuple(_rel(base_dir, f) for f in _str_list(path, f"{what} fragments",
                                                            t["fragments"]))
                 if "fragments" in t else None)
        base = str(t.get("base", "tinyconfig"))
        if base not in BASE_TARGETS:
            base = str((base_dir / Path(base).expanduser()).resolve())  # a .config file
        arch = _arch(path, what, t)
        page = str(t["page_size"]) if "page_size" in t else None
        if page is not None:
            try:
                arch.page_fragment(page)
            except UsageError as exc:
                raise UsageError(_where(path, f"{what} page_size"), exc.message) from None
        for rev in revs:
            kname = f"{name}@{rev}" if "revs" in t else name
            out.append(KernelSpec(kname, source, rev, series, frags, base, arch.name, page))
    return out


def _arch(path: Path, what: str, t: Mapping[str, Any]) -> Arch:
    """The plan kernel's architecture record; an unknown one names the file and key."""
    try:
        return get_arch(str(t["arch"]) if "arch" in t else None)
    except UsageError as exc:
        raise UsageError(_where(path, f"{what} arch"), exc.message) from None


def _scenarios(path: Path, items: Any) -> list[ScenarioSpec]:
    if not isinstance(items, list) or not items:
        raise UsageError(_where(path, "scenario"), "a plan needs at least one scenario")
    out: list[ScenarioSpec] = []
    for i, t in enumerate(items, start=1):
        if isinstance(t, str):
            t = {"path": t}
        if not isinstance(t, dict):
            raise UsageError(_where(path, f"scenario #{i}"), "a name, a path or a table")
        _check_keys(path, f"[[scenario]] #{i}", t, _SCENARIO_KEYS)
        if "path" not in t and "name" not in t:
            raise UsageError(_where(path, f"[[scenario]] #{i}"), "needs a name or a path")
        spath = _rel(path.parent, str(t.get("path", t.get("name"))))
        name = str(t.get("name") or Path(spath).stem)
        checks = tuple(_str_list(path, f"[[scenario]] {name} checks", t.get("checks", [])))
        out.append(ScenarioSpec(name, spath, _int_or_none(path, f"[[scenario]] {name} duration",
                                                          t.get("duration"), 1), checks))
    return out


def _vms(path: Path, items: Any) -> list[VMSize]:
    if items is None:
        return [VMSize("default")]
    if not isinstance(items, list) or not items:
        raise UsageError(_where(path, "[[vm]]"), "must be a non-empty array of tables")
    out: list[VMSize] = []
    for i, t in enumerate(items, start=1):
        if not isinstance(t, dict):
            raise UsageError(_where(path, f"[[vm]] #{i}"), "must be a table")
        _check_keys(path, f"[[vm]] #{i}", t, _VM_KEYS)
        ram = _int_or_none(path, f"[[vm]] #{i} ram_mib", t.get("ram_mib"), 64)
        swap = _int_or_none(path, f"[[vm]] #{i} swap_mib", t.get("swap_mib"), 0)
        smp = _int_or_none(path, f"[[vm]] #{i} smp", t.get("smp"), 1)
        name = str(t.get("name") or (f"{ram}m" if ram else f"vm{i}"))
        out.append(VMSize(name, ram, swap, smp))
    return out


def parse_plan(data: Mapping[str, Any], path: Path) -> Plan:
    """Validate a plan's TOML data and expand it into jobs (kernel-major order)."""
    _check_keys(path, "top level", data, _TOP_KEYS)
    kernels = _kernels(path, data.get("kernel"))
    scenarios = _scenarios(path, data.get("scenario"))
    vms = _vms(path, data.get("vm"))
    for what, names in (("kernel", [k.name for k in kernels]),
                        ("scenario", [s.name for s in scenarios]), ("vm", [v.name for v in vms])):
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise UsageError(_where(path, what), f"duplicate name(s) {', '.join(dup)}")
    jobs = tuple(Job(k, s, v) for k in kernels for s in scenarios for v in vms)
    return Plan(str(data.get("name") or path.stem), path, jobs,
                str(data.get("description", "")), tuple(kernels))


def load_plan(path: Path) -> Plan:
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise UsageError(str(path), f"cannot read the plan: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(str(path), f"not valid TOML: {exc}") from exc
    return parse_plan(data, path.resolve())


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` (1-based) -> (I, N); the CI matrix passes one per machine."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not m or not 1 <= int(m.group(1)) <= int(m.group(2)):
        raise UsageError(f"--shard {text}", "must be I/N with 1 <= I <= N, e.g. 2/4")
    return int(m.group(1)), int(m.group(2))


def shard(jobs: Sequence[Job], index: int, count: int) -> list[Job]:
    """Shard ``index`` (1-based) of ``count``: a contiguous, balanced slice of the job list.

    Contiguous rather than round-robin because jobs come kernel-major: a kernel's
    jobs then land on one shard (two at a boundary), so each CI machine builds as
    few kernels as possible. Sizes differ by at most one; the shards partition the
    list exactly.
    """
    if not 1 <= index <= count:
        raise UsageError(f"--shard {index}/{count}", "need 1 <= I <= N")
    n = len(jobs)
    start = (index - 1) * n // count
    end = index * n // count
    return list(jobs[start:end])
