"""The one rule every scenario type applies to console findings.

A finding fails a scenario's console expectation unless it is an OOM kill (each scenario
judges those on its own terms: forbidden, expected, allowed) or a kind the scenario tolerates;
a fatal finding (a panic) fails whatever is tolerated.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from harness.console import Finding, Severity
from harness.console.known import KnownIssue, match

OOM_KINDS = frozenset({"oom_kill", "memcg_oom_kill"})


def trouble(findings: Iterable[Finding], tolerate: Iterable[str] = (),
            known: Sequence[KnownIssue] = ()) -> list[Finding]:
    """The findings that fail a console expectation, in order. A finding that matches a known
    issue with policy ``warn`` is reported (results.json names the issue) but fails nothing;
    with policy ``fail`` it fails as before, under its name."""
    ok = OOM_KINDS | frozenset(tolerate)
    warned = {id(f) for f, k in match(list(findings), known) if k is not None
              and k.policy == "warn"}
    return [f for f in findings if id(f) not in warned
            and (f.severity == Severity.FATAL or f.kind not in ok)]


def ooms(findings: Iterable[Finding]) -> list[Finding]:
    return [f for f in findings if f.kind in OOM_KINDS]
