"""The one rule every scenario type applies to console findings.

A finding fails a scenario's console expectation unless it is an OOM kill (each scenario
judges those on its own terms: forbidden, expected, allowed) or a kind the scenario tolerates;
a fatal finding (a panic) fails whatever is tolerated.
"""

from __future__ import annotations

from collections.abc import Iterable

from harness.console import Finding, Severity

OOM_KINDS = frozenset({"oom_kill", "memcg_oom_kill"})


def trouble(findings: Iterable[Finding], tolerate: Iterable[str] = ()) -> list[Finding]:
    """The findings that fail a console expectation, in order."""
    ok = OOM_KINDS | frozenset(tolerate)
    return [f for f in findings if f.severity == Severity.FATAL or f.kind not in ok]


def ooms(findings: Iterable[Finding]) -> list[Finding]:
    return [f for f in findings if f.kind in OOM_KINDS]
