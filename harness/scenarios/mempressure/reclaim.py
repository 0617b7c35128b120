"""What reclaim failed to find, beside what the shrinker was asked (pure functions).

The guest sampler records /proc/vmstat's reclaim counters with every memory sample. Between
two samples, ``pgscan - pgsteal`` (kswapd and direct reclaim) is the kernel's own count of
pages it looked at for eviction and could not take: the same quantity a vmpressure window's
deficit is made of. Setting the bytes the shrinker was asked in the same interval against it
says whether the series answers a deficit in proportion (the .rst's promise), under either
LRU -- and where the two LRUs differ, by how much.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness.scenarios.mempressure.guest_scripts import VMSTAT_FIELDS
from harness.scenarios.mempressure.workload_output import MemSample, StressLog

PAGE_SIZE = 4096  # x86_64's; a run observes its guest's (observations.json "page_size")

#: Below this share of free swap, reclaim can no longer count on evicting anonymous pages:
#: direct reclaim drops to the critical priority and vmpressure_prio() asks for full windows
#: that no /proc/vmstat scan counter sees (measured under MGLRU: 39 and 122 MiB asked in the
#: two intervals after swap ran out, against 6 and 0 MiB missed).
SWAP_EXHAUSTED_FRACTION = 1 / 8

_IDX = {name: i for i, name in enumerate(VMSTAT_FIELDS)}


@dataclass(frozen=True)
class Interval:
    """One sampling interval (guest uptime ``t0``..``t1``), counts in pages and bytes."""

    t0: float
    t1: float
    scanned_kswapd: int
    scanned_direct: int
    reclaimed_kswapd: int
    reclaimed_direct: int
    refill: int
    deficit_bytes: int
    asked_bytes: int
    requests: int
    held_bytes: int
    #: Free and total swap at the interval's end (bytes); -1: not sampled.
    swap_free_bytes: int = -1
    swap_total_bytes: int = 0
    #: A request in it asked for everything the shrinker had advertised (:func:`emptying_requests`).
    emptied: bool = False

    @property
    def swap_exhausted(self) -> bool:
        """Less than :data:`SWAP_EXHAUSTED_FRACTION` of swap left at the interval's end."""
        return (self.swap_total_bytes > 0 and 0 <= self.swap_free_bytes
                < self.swap_total_bytes * SWAP_EXHAUSTED_FRACTION)


def emptying_requests(stress: StressLog) -> list[float]:
    """Times of the requests that asked for everything the shrinker had advertised.

    When a window's deficit is at least what the candidates advertise, the .rst's step 3
    asks each for all it holds: such a request is bounded by the count, not by the deficit,
    and says nothing about how the kernel measured what reclaim missed. The count the kernel
    saw is advertised minus asked so far, give or take the last batch: the workload prints
    ``added`` after its write, so a request computed before that write can follow the print.
    """
    out: list[float] = []
    advertised = asked = last_batch = 0
    for e in stress.events:
        if e.kind == "added" and "advertised" in e.fields:
            advertised, last_batch = e.int("advertised"), e.int("n")
        elif e.kind == "asked" and "asked_total" in e.fields:
            if e.int("n") + last_batch >= advertised - asked:
                out.append(e.t)
            asked = e.int("asked_total")
    return out


def _counter(s: MemSample, name: str) -> int:
    i = _IDX[name]
    return s.vmstat[i] if i < len(s.vmstat) else 0


def intervals(mem: Sequence[MemSample], stress: StressLog | None,
              chunk_size: int, mglru: bool = False,
              page_size: int = PAGE_SIZE) -> list[Interval]:
    """Per sampling interval: reclaim's counters, its deficit and what the shrinker was asked.

    The deficit is what the series' vmpressure windows count (patch 0006): pages scanned for
    eviction and not reclaimed. /proc/vmstat's pgscan counts what eviction isolated under
    either LRU; under MGLRU the pages found in use count as scanned too -- the folios
    eviction sorted into a younger generation and the pages the aging's page-table walk found
    young -- and patch 0006 counts both in pgrefill (the classic LRU's pgrefill is its
    active-list scan, which vmpressure does not see; its pages found in use are in pgscan).

    Only samples that carry the vmstat counters count. A request is placed in the interval
    whose end it precedes; chunks held is the workload's last report before the interval's end.
    """
    samples = [s for s in mem if len(s.vmstat) >= len(VMSTAT_FIELDS)]
    asked = [(e.t, e.int("n")) for e in stress.of("asked")] if stress else []
    held = ([(e.t, e.int("held")) for e in stress.events
             if e.kind in ("added", "freed") and "held" in e.fields] if stress else [])
    emptying = emptying_requests(stress) if stress else []
    out: list[Interval] = []
    for a, b in zip(samples, samples[1:], strict=False):
        def d(name: str, a: MemSample = a, b: MemSample = b) -> int:
            return max(0, _counter(b, name) - _counter(a, name))

        sk, sd = d("pgscan_kswapd"), d("pgscan_direct")
        rk, rd = d("pgsteal_kswapd"), d("pgsteal_direct")
        in_iv = [n for t, n in asked if a.t < t <= b.t]
        last_held = [h for t, h in held if t <= b.t]
        refill = d("pgrefill")
        out.append(Interval(a.t, b.t, sk, sd, rk, rd, refill,
                            max(0, sk + sd + (refill if mglru else 0) - rk - rd) * page_size,
                            sum(in_iv) * chunk_size, len(in_iv),
                            (last_held[-1] if last_held else 0) * chunk_size,
                            b.swap_free * 1024, b.swap_total * 1024,
                            any(a.t < t <= b.t for t in emptying)))
    return out


def oom_time(mem: Sequence[MemSample]) -> float | None:
    """Guest uptime of the first sample whose oom_kill count rose, if any."""
    samples = [s for s in mem if len(s.vmstat) >= len(VMSTAT_FIELDS)]
    for a, b in zip(samples, samples[1:], strict=False):
        if _counter(b, "oom_kill") > _counter(a, "oom_kill"):
            return b.t
    return None


def summary(ivs: Sequence[Interval], t_start: float | None = None,
            t_oom: float | None = None) -> dict[str, Any]:
    """Totals over the intervals (from ``t_start``): deficit, asked, their ratio, the split."""
    sel = [iv for iv in ivs if t_start is None or iv.t1 > t_start]
    deficit = sum(iv.deficit_bytes for iv in sel)
    asked = sum(iv.asked_bytes for iv in sel)
    return {
        "intervals": len(sel),
        "scanned_pages": sum(iv.scanned_kswapd + iv.scanned_direct for iv in sel),
        "reclaimed_pages": sum(iv.reclaimed_kswapd + iv.reclaimed_direct for iv in sel),
        "scanned_direct_pages": sum(iv.scanned_direct for iv in sel),
        "refill_pages": sum(iv.refill for iv in sel),
        "deficit_bytes": deficit,
        "asked_bytes": asked,
        "asked_per_deficit": round(asked / deficit, 3) if deficit else None,
        "requests": sum(iv.requests for iv in sel),
        "t_oom_s": (round(t_oom - t_start, 2) if t_oom is not None and t_start is not None
                    else None),
    }


def lru_gen_on(state: str | None) -> bool:
    """``/sys/kernel/mm/lru_gen/enabled`` as read in the guest ("0x0007"): is MGLRU on?"""
    try:
        return bool(int((state or "0").strip(), 16) & 1)
    except ValueError:
        return False


@dataclass(frozen=True)
class Pass:
    """One stress pass of a run: its label, its intervals from its start, how it ended."""

    label: str
    t_start: float
    mglru: bool
    intervals: list[Interval]
    t_oom: float | None
    summary: dict[str, Any]
    page_size: int = PAGE_SIZE  # the guest's: reclaim's counters are pages

    def judged(self, margin_s: float = 1.5) -> list[Interval]:
        """The intervals the band is judged over: those before swap first ran out and ending
        ``margin_s`` before the first OOM kill (all of them without either).

        Both cut off vmpressure_prio()'s synthetic windows, which ask without any scanning (a
        deficit /proc/vmstat does not see). The swap cut is a state, not a time: on a slow
        or loaded host the critical-priority phase before an OOM kill lasts longer than any
        fixed margin (a loaded CI run asked 134 MiB against 71 MiB missed more than 1.5 s
        before the kill).
        """
        out: list[Interval] = []
        for iv in self.intervals:
            if iv.swap_exhausted or (self.t_oom is not None and iv.t1 > self.t_oom - margin_s):
                break
            out.append(iv)
        return out


def stress_pass(label: str, mem: Sequence[MemSample], stress: StressLog, t_start: float,
                chunk_size: int, mglru: bool, page_size: int = PAGE_SIZE) -> Pass:
    """The samples from ``t_start`` to the workload's last event, as one :class:`Pass`."""
    t_end = max([e.t for e in stress.events] + [t_start]) + 1.0
    window = [m for m in mem if t_start - 0.6 <= m.t <= t_end]
    ivs = intervals(window, stress, chunk_size, mglru, page_size)
    t_oom = oom_time(window)
    return Pass(label, t_start, mglru, ivs, t_oom, summary(ivs, t_start, t_oom), page_size)
