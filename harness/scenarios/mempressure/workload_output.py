"""Parsers for what the guest programs print (formats in workloads/mempressure/README.md).

Pure functions with typed results: the checks never look at raw text.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

_EV = re.compile(r"^EV (\d+(?:\.\d+)?) (\w+)((?: \w+=\S*)*)\s*$")
_OP = re.compile(r"^OP (\S+) (ok|err)(?: (.*))?$")
_KV = re.compile(r"(\w+)=(\S*)")


@dataclass(frozen=True)
class Event:
    """One ``EV`` line of mpstress: guest CLOCK_BOOTTIME seconds, kind, key=value fields."""

    t: float
    kind: str
    fields: dict[str, str]

    def int(self, key: str, default: int = 0) -> int:
        try:
            return int(self.fields.get(key, default))
        except ValueError:
            return default


@dataclass
class StressLog:
    """Everything mpstress said: events in order, and its final summary if it printed one."""

    events: list[Event] = field(default_factory=list)
    summary: dict[str, Any] | None = None
    other: list[str] = field(default_factory=list)

    def of(self, kind: str) -> list[Event]:
        return [e for e in self.events if e.kind == kind]

    @property
    def registered(self) -> bool:
        return bool(self.of("registered"))


def parse_stress(text: str) -> StressLog:
    """Parse mpstress stdout. Unknown lines are kept in ``other`` (never silently lost)."""
    out = StressLog()
    for line in text.splitlines():
        m = _EV.match(line)
        if m:
            fields = dict(_KV.findall(m.group(3)))
            out.events.append(Event(float(m.group(1)), m.group(2), fields))
            continue
        if line.startswith("SUMMARY "):
            try:
                out.summary = json.loads(line[len("SUMMARY "):])
            except ValueError:
                out.other.append(line)
            continue
        if line.strip():
            out.other.append(line)
    return out


@dataclass(frozen=True)
class OpResult:
    """One ``OP`` line of mpctl."""

    op: str
    ok: bool
    fields: dict[str, str]
    errno: str | None = None
    raw: str = ""

    def int(self, key: str, default: int = -1) -> int:
        try:
            return int(self.fields.get(key, default))
        except ValueError:
            return default


def parse_ops(text: str) -> list[OpResult]:
    """Parse mpctl stdout into one result per op, in order."""
    ops = []
    for line in text.splitlines():
        m = _OP.match(line.strip())
        if not m:
            continue
        rest = m.group(3) or ""
        if m.group(2) == "ok":
            ops.append(OpResult(m.group(1), True, dict(_KV.findall(rest)), None, line))
        else:
            errno = rest.split()[0] if rest.split() else "?"
            ops.append(OpResult(m.group(1), False, {}, errno, line))
    return ops


@dataclass(frozen=True)
class MemSample:
    """One guest-side memory sample (/proc/uptime, /proc/meminfo in KiB, /proc/vmstat).

    ``vmstat`` holds the sampler's reclaim counters (``VMSTAT_FIELDS`` of the guest scripts)
    when the line carries them; runs saved before they were sampled have none.
    """

    t: float
    mem_available: int
    swap_total: int
    swap_free: int
    vmstat: tuple[int, ...] = ()


def parse_mem_series(text: str) -> list[MemSample]:
    """Parse the guest sampler's lines: uptime, MemAvailable, SwapTotal, SwapFree[, vmstat...]."""
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 4:
            continue
        try:
            out.append(MemSample(float(parts[0]), int(parts[1]), int(parts[2]), int(parts[3]),
                                 tuple(int(p) for p in parts[4:])))
        except ValueError:
            continue
    return out


def parse_vmstat(text: str) -> dict[str, int]:
    """``/proc/vmstat`` as a dict."""
    out = {}
    for line in text.splitlines():
        k, _, v = line.partition(" ")
        if v.strip().lstrip("-").isdigit():
            out[k] = int(v)
    return out


#: The auxiliary vector's entry for the page size (elf.h AT_PAGESZ).
AT_PAGESZ = 6


def parse_auxv_page_size(text: str) -> int | None:
    """The page size of the running kernel from ``od -An -tu8 /proc/self/auxv`` (pairs of
    type and value, in any line layout); None when there is no AT_PAGESZ entry."""
    words = [int(w) for w in text.split() if w.isdigit()]
    for kind, value in zip(words[::2], words[1::2], strict=False):
        if kind == AT_PAGESZ:
            return value
    return None
