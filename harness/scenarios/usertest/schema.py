"""The user test's own TOML sections, validated into typed values (pure).

A user test is data only: files to ship, optional kselftest targets, steps (command, timeout,
expected exit status, output format, numbers to extract) and a console policy. Every error
names the file and the key (``scenarios/x.toml [[step]] 2 (memcontrol) timeout_s``), so a
user never has to read this module to fix a typo. README "Write your own test" is the user's
view of the same schema.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.core.spec import ScenarioSpec, check_keys
from harness.errors import UsageError

OUTPUTS = ("none", "ktap", "tap")
OOM_POLICIES = ("forbidden", "expected", "allowed")
CONSOLE_CHECK = "console"
_NAME_RE = re.compile(r"^[a-z0-9_-]+$")
_CONFIG_RE = re.compile(r"^CONFIG_[A-Za-z0-9_]+$")
_TOP_KEYS = {"name", "type", "description", "checks", "kernel", "vm", "ship", "kselftest",
             "step", "console"}
_STEP_KEYS = {"name", "run", "timeout_s", "expect_exit", "output", "cases_must_pass", "tty",
              "control", "extract"}
_EXTRACT_KEYS = {"name", "regex", "min", "max"}


@dataclass(frozen=True)
class Extract:
    """A number taken from a step's stdout (group 1 of the regex's last match)."""

    name: str
    regex: re.Pattern[str]
    min: float | None = None
    max: float | None = None


@dataclass(frozen=True)
class Step:
    name: str
    run: str
    timeout_s: float = 300.0
    expect_exit: tuple[int, ...] = (0,)
    output: str = "none"
    cases_must_pass: bool = True
    extracts: tuple[Extract, ...] = ()
    tty: bool = False  # run on a pseudo-terminal: line-buffered stdio, stderr into stdout
    control: str = ""  # the negative control that makes this step fail (`harness checks`)


@dataclass(frozen=True)
class Ship:
    src: Path  # absolute, resolved against the TOML file's directory
    dest: str  # absolute guest path


@dataclass(frozen=True)
class UserTest:
    description: str
    ships: tuple[Ship, ...]
    kselftest_targets: tuple[str, ...]  # whole targets: make install
    kselftest_programs: tuple[str, ...]  # "target/program": single programs of a target
    steps: tuple[Step, ...]
    tolerate: frozenset[str]
    oom: str


def _table(data: Any, where: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise UsageError(where, "must be a table")
    return data


def _tables(data: Any, where: str) -> list[dict[str, Any]]:
    if data is None:
        return []
    if not isinstance(data, list) or not all(isinstance(x, dict) for x in data):
        raise UsageError(where, "must be an array of tables ([[...]])")
    return data


def _unknown(d: dict[str, Any], known: set[str], where: str) -> None:
    check_keys(d, known, where)


def _get(d: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str,
         default: Any = None, required: bool = False) -> Any:
    if key not in d:
        if required:
            raise UsageError(f"{where} {key}", "missing")
        return default
    v = d[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(v, bool) and bool not in kinds:
        raise UsageError(f"{where} {key}", f"expected {kinds[0].__name__}, got {v!r}")
    if not isinstance(v, kinds):
        raise UsageError(f"{where} {key}", f"expected {kinds[0].__name__}, got {v!r}")
    return v


def _name(d: dict[str, Any], where: str) -> str:
    name: str = _get(d, "name", str, where, required=True)
    if not _NAME_RE.match(name):
        raise UsageError(f"{where} name", f"{name!r} must match [a-z0-9_-]+")
    return name


def _extract(d: dict[str, Any], where: str) -> Extract:
    _unknown(d, _EXTRACT_KEYS, where)
    name = _name(d, where)
    pattern: str = _get(d, "regex", str, where, required=True)
    try:
        rx = re.compile(pattern, re.MULTILINE)
    except re.error as exc:
        raise UsageError(f"{where} regex", f"not a valid regular expression: {exc}") from exc
    if rx.groups < 1:
        raise UsageError(f"{where} regex", "needs a capturing group around the number")
    lo = _get(d, "min", (int, float), where)
    hi = _get(d, "max", (int, float), where)
    if lo is not None and hi is not None and lo > hi:
        raise UsageError(f"{where} min", f"min {lo} > max {hi}")
    return Extract(name, rx, None if lo is None else float(lo), None if hi is None else float(hi))


def _step(d: dict[str, Any], where: str) -> Step:
    _unknown(d, _STEP_KEYS, where)
    name = _name(d, where)
    where = f"{where} ({name})"
    run: str = _get(d, "run", str, where, required=True)
    if not run.strip():
        raise UsageError(f"{where} run", "is empty")
    timeout = float(_get(d, "timeout_s", (int, float), where, 300.0))
    if timeout <= 0:
        raise UsageError(f"{where} timeout_s", "must be > 0")
    raw_exit = _get(d, "expect_exit", (int, list), where, 0)
    exits = tuple(raw_exit) if isinstance(raw_exit, list) else (raw_exit,)
    if not exits or not all(isinstance(x, int) and not isinstance(x, bool) and 0 <= x <= 255
                            for x in exits):
        raise UsageError(f"{where} expect_exit", "must be an exit status 0..255 or a list of them")
    output: str = _get(d, "output", str, where, "none")
    if output not in OUTPUTS:
        raise UsageError(f"{where} output", f"must be one of {', '.join(OUTPUTS)}, not {output!r}")
    must_pass: bool = _get(d, "cases_must_pass", bool, where, True)
    # A test program that forks with a full stdio buffer (kselftests do) prints it once per
    # process on a pipe; a terminal line-buffers. Default on where output is parsed.
    tty: bool = _get(d, "tty", bool, where, output != "none")
    extracts = [_extract(x, f"{where} [[step.extract]] {i + 1}")
                for i, x in enumerate(_tables(d.get("extract"), f"{where} extract"))]
    names = [x.name for x in extracts]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup:
        raise UsageError(f"{where} extract", f"name {dup!r} used twice")
    control: str = _get(d, "control", str, where, "")
    return Step(name, run, timeout, exits, output, must_pass, tuple(extracts), tty, control)


def _ship(d: dict[str, Any], where: str, base: Path, check_files: bool) -> Ship:
    _unknown(d, {"src", "dest"}, where)
    src: str = _get(d, "src", str, where, required=True)
    dest: str = _get(d, "dest", str, where, required=True)
    if not dest.startswith("/"):
        raise UsageError(f"{where} dest", f"{dest!r} must be an absolute guest path")
    path = (base / src).resolve()
    if check_files and not path.exists():
        raise UsageError(f"{where} src", f"{path} does not exist")
    return Ship(path, dest.rstrip("/") or "/")


def _is_run_dir_copy(path: Path) -> bool:
    """The copy of a scenario a run dir keeps for ``harness judge``: its ``[[ship]]`` sources
    lived beside the original and are not needed to judge."""
    from harness import rundir

    return path.name == rundir.SPEC_COPY and (path.parent / rundir.RUN_META).is_file()


def parse_usertest(spec: ScenarioSpec) -> UserTest:
    """The user-test sections of ``spec``; UsageError names the file and key at fault."""
    f = str(spec.path)
    data = spec.data
    check_files = not _is_run_dir_copy(spec.path)
    _unknown(data, _TOP_KEYS, f)
    description = _get(data, "description", str, f, "")
    ships = tuple(_ship(x, f"{f} [[ship]] {i + 1}", spec.path.parent, check_files)
                  for i, x in enumerate(_tables(data.get("ship"), f"{f} ship")))
    ks = _table(data.get("kselftest", {}), f"{f} [kselftest]")
    _unknown(ks, {"targets", "programs", "merge_config", "config_missing_ok"}, f"{f} [kselftest]")
    _get(ks, "merge_config", bool, f"{f} [kselftest]", True)
    missing_ok = _get(ks, "config_missing_ok", list, f"{f} [kselftest]", [])
    if not all(isinstance(x, str) and _CONFIG_RE.match(x) for x in missing_ok):
        raise UsageError(f"{f} [kselftest] config_missing_ok",
                         'must be a list of option names ("CONFIG_TEST_VMALLOC")')
    targets = _get(ks, "targets", list, f"{f} [kselftest]", [])
    if not all(isinstance(t, str) and t for t in targets):
        raise UsageError(f"{f} [kselftest] targets", "must be a list of target names")
    programs = _get(ks, "programs", list, f"{f} [kselftest]", [])
    if not all(isinstance(p, str) and "/" in p.strip("/") for p in programs):
        raise UsageError(f"{f} [kselftest] programs", 'must be a list of "target/program"')
    steps = tuple(_step(x, f"{f} [[step]] {i + 1}")
                  for i, x in enumerate(_tables(data.get("step"), f"{f} step")))
    if not steps:
        raise UsageError(f"{f} step", "a user test needs at least one [[step]]")
    names = [s.name for s in steps]
    for n in names:
        if names.count(n) > 1 or n == CONSOLE_CHECK:
            why = "is reserved for the console check" if n == CONSOLE_CHECK else "is used twice"
            raise UsageError(f"{f} [[step]] name", f"{n!r} {why}")
    con = _table(data.get("console", {}), f"{f} [console]")
    _unknown(con, {"tolerate", "oom"}, f"{f} [console]")
    tolerate = _get(con, "tolerate", list, f"{f} [console]", [])
    from harness.console import KINDS

    for k in tolerate:
        if k not in KINDS:
            raise UsageError(f"{f} [console] tolerate",
                             f"unknown finding kind {k!r} (known: {', '.join(KINDS)})")
    oom: str = _get(con, "oom", str, f"{f} [console]", "forbidden")
    if oom not in OOM_POLICIES:
        raise UsageError(f"{f} [console] oom",
                         f"must be one of {', '.join(OOM_POLICIES)}, not {oom!r}")
    return UserTest(description, ships, tuple(targets), tuple(programs), steps,
                    frozenset(tolerate), oom)
