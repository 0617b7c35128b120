"""Group findings by signature: one row per distinct bug in a report.

A matrix or bisect report that lists every soft lockup of a run (the
watchdog repeats itself every few seconds) buries the one line that
matters; grouping on :attr:`Finding.signature` turns them into "BUG: soft
lockup in foo (x12)".  Pure: no I/O, input order kept.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from harness.console.types import Finding

__all__ = ["FindingGroup", "group_by_signature"]


@dataclass(frozen=True, slots=True)
class FindingGroup:
    """Every finding of one signature: how many, and the first one seen."""

    signature: str
    title: str
    kind: str
    count: int
    first: Finding

    def to_dict(self) -> dict[str, object]:
        """JSON-ready summary (the example as its own ``to_dict()``)."""
        return {
            "signature": self.signature,
            "title": self.title,
            "kind": self.kind,
            "count": self.count,
            "first": self.first.to_dict(),
        }


def group_by_signature(findings: Iterable[Finding]) -> list[FindingGroup]:
    """One group per signature, in order of each signature's first finding."""
    firsts: dict[str, Finding] = {}
    counts: dict[str, int] = {}
    for f in findings:
        sig = f.signature
        if sig not in firsts:
            firsts[sig] = f
            counts[sig] = 0
        counts[sig] += 1
    return [
        FindingGroup(signature=s, title=f.title, kind=f.kind, count=counts[s], first=f)
        for s, f in firsts.items()
    ]
