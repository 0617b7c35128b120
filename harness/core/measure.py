"""Measurements as first-class results: a name, a value, a unit and which way is better.

The checks record numbers in ``CheckResult.measurements`` (a free-form dict); this module
says once what each known one means (:data:`UNITS`) and flattens a run's checks and phase
timings into :class:`Measurement` rows -- what results.json's ``measurements`` list holds
and what ``harness compare`` compares. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

Direction = Literal["lower", "higher"] | None

TIMINGS_CHECK = "run"  # the pseudo-check the phase timings are filed under
TIMING_PREFIX = "timings_s."


@dataclass(frozen=True)
class Measurement:
    name: str
    value: float
    unit: str | None = None
    direction: Direction = None  # which way is better; None: neither (a count, a setting)
    check: str = ""

    @property
    def key(self) -> str:
        """What compare matches on across runs: ``check.name``."""
        return f"{self.check}.{self.name}"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return {"check": d.pop("check"), **d}


#: name -> (unit, direction) of the measurements the scenarios record.
UNITS: dict[str, tuple[str | None, Direction]] = {
    # mempressure notifications / child_cgroup / oom_absence
    "requests": ("requests", None),
    "chunks_asked": ("chunks", None),
    "chunks_advertised": ("chunks", None),
    "squeeze_to_request_s": ("s", "lower"),
    "added_events": ("events", None),
    "oom_kill_delta": ("kills", "lower"),
    "failcnt": ("events", None),
    "limit_bytes": ("bytes", None),
    # usertest steps (an extract's own name is unknown here: no unit)
    "duration_s": ("s", "lower"),
}


def describe(name: str) -> tuple[str | None, Direction]:
    """The unit and direction of a measurement name; phase timings are seconds, lower."""
    if name.startswith(TIMING_PREFIX):
        return ("s", "lower")
    if name in UNITS:
        return UNITS[name]
    if name.endswith("_s"):
        return ("s", None)
    return (None, None)


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return float(v)


def of_check(check: str, values: Mapping[str, Any]) -> list[Measurement]:
    """The numeric measurements of one check (dicts, lists, None and strings are not)."""
    out = []
    for name, raw in values.items():
        v = _number(raw)
        if v is not None:
            unit, direction = describe(name)
            out.append(Measurement(name, v, unit, direction, check))
    return out


def of_timings(timings: Mapping[str, Any]) -> list[Measurement]:
    out = []
    for phase, raw in timings.items():
        v = _number(raw)
        if v is not None:
            name = TIMING_PREFIX + phase.replace(" ", "_")
            out.append(Measurement(name, v, "s", "lower", TIMINGS_CHECK))
    return out


def of_run(checks: Iterable[tuple[str, Mapping[str, Any]]],
           timings: Mapping[str, Any]) -> list[Measurement]:
    """Every measurement of a run: each check's, then the phase timings."""
    out: list[Measurement] = []
    for name, values in checks:
        out.extend(of_check(name, values))
    return out + of_timings(timings)


def of_results_doc(doc: Mapping[str, Any]) -> list[Measurement]:
    """A results.json's measurements: its list when it has one, else made from its checks
    (a run dir written before the list existed)."""
    rows = doc.get("measurements")
    if isinstance(rows, list):
        out = []
        for r in rows:
            v = _number(r.get("value"))
            if v is not None:
                out.append(Measurement(str(r["name"]), v, r.get("unit"), r.get("direction"),
                                       str(r.get("check", ""))))
        return out
    return of_run(((c["name"], c.get("measurements") or {}) for c in doc.get("checks", [])),
                  doc.get("timings_s") or {})


def worse(direction: Direction, ratio: float) -> bool:
    """Whether B/A = ``ratio`` moved in the worse direction."""
    return (direction == "lower" and ratio > 1) or (direction == "higher" and ratio < 1)
