"""N-section: a bisect that tests several points per round, for K workers.

With K workers a round tests K-1 points spread evenly over the open interval
(good, bad), so each round cuts it into K pieces instead of 2: about
log_K(n) rounds instead of log_2(n). K = 2 is plain bisection (one point, the
middle), so one function serves both.

Pure: the caller supplies ``run_round(points) -> {point: verdict}`` (which may
run them in parallel, on a pool or a cluster) and gets the same
:class:`~harness.bisect.series.SearchResult` the binary search returns. Skips
are handled as ``git bisect`` does: a skipped point is set aside and a nearby
untested one is tried instead; when only skipped points are left, the first
bad one is among them or ``bad`` itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from harness.bisect.verdict import Verdict
from harness.errors import UsageError


@dataclass
class NSectionResult:
    """``first_bad`` (or ``candidates`` when skips hide it), and how the search went."""

    first_bad: int | None
    candidates: list[int] = field(default_factory=list)
    good: int = 0
    bad: int = 0
    rounds: list[list[int]] = field(default_factory=list)  # the points tested, per round


def pick_points(lo: int, hi: int, skipped: set[int], n: int) -> list[int]:
    """Up to ``n`` untested points in (lo, hi), as close as possible to an even spread."""
    cands = [k for k in range(lo + 1, hi) if k not in skipped]
    if len(cands) <= n:
        return cands
    chosen: list[int] = []
    for i in range(1, n + 1):
        ideal = lo + (hi - lo) * i / (n + 1)
        best = min((c for c in cands if c not in chosen), key=lambda c: (abs(c - ideal), c))
        chosen.append(best)
    return sorted(chosen)


def nsection(good: int, bad: int, workers: int,
             run_round: Callable[[list[int]], Mapping[int, Verdict]]) -> NSectionResult:
    """Find the smallest bad point in (good, bad], testing ``workers - 1`` points per round.

    The interval shrinks to (the highest good below the lowest bad, the lowest
    bad). A good point above a bad one (a non-monotone history, a flake) cannot
    move ``lo`` past ``hi``: the lowest bad wins, as it would in a bisect.
    """
    if not 0 <= good < bad:
        raise UsageError(f"--good {good} --bad {bad}", "need 0 <= good < bad")
    if workers < 2:
        raise UsageError(f"--workers {workers}", "n-section needs at least 2 workers")
    lo, hi = good, bad
    skipped: set[int] = set()
    rounds: list[list[int]] = []
    while True:
        pts = pick_points(lo, hi, skipped, workers - 1)
        if not pts:
            break
        verdicts = run_round(pts)
        rounds.append(pts)
        bads = [k for k in pts if verdicts[k] == Verdict.BAD]
        if bads:
            hi = min(bads)
        goods = [k for k in pts if verdicts[k] == Verdict.GOOD and k < hi]
        if goods:
            lo = max(lo, max(goods))
        skipped |= {k for k in pts if verdicts[k] == Verdict.SKIP}
    left = [k for k in range(lo + 1, hi) if k in skipped]
    if left:
        return NSectionResult(None, left + [hi], lo, hi, rounds)
    return NSectionResult(hi, [], lo, hi, rounds)


def endpoint_error(good_verdict: Verdict, bad_verdict: Verdict, good: str,
                   bad: str) -> tuple[str, str] | None:
    """(culprit option, message) when an endpoint contradicts what the user said, else None.

    A "good" that fails or a "bad" that passes means the search would answer a
    question nobody asked: bad input, named (exit 2).
    """
    if good_verdict == Verdict.BAD:
        return f"--good {good}", "the good endpoint fails the checks: it is not good"
    if bad_verdict == Verdict.GOOD:
        return f"--bad {bad}", "the bad endpoint passes the checks: it is not bad"
    return None


def endpoint_untested(good_verdict: Verdict, bad_verdict: Verdict, good: str,
                      bad: str) -> tuple[str, str] | None:
    """(culprit, message) when an endpoint could not be tested (build or rig failure)."""
    for opt, rev, v in (("--good", good, good_verdict), ("--bad", bad, bad_verdict)):
        if v == Verdict.SKIP:
            return f"{opt} {rev}", ("could not be tested (it did not build, or the rig "
                                    "failed): nothing to search from")
    return None


def check_endpoints(good_verdict: Verdict, bad_verdict: Verdict, good: str, bad: str) -> None:
    """Raise unless good is good and bad is bad: UsageError (exit 2) for a contradiction,
    InfraError (exit 3) for an endpoint that could not be tested."""
    from harness.errors import InfraError

    wrong = endpoint_error(good_verdict, bad_verdict, good, bad)
    if wrong:
        raise UsageError(*wrong)
    untested = endpoint_untested(good_verdict, bad_verdict, good, bad)
    if untested:
        raise InfraError(*untested)
