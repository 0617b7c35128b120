"""Adaptive repeats for a bisect step: how many runs a revision needs, and what they say.

Pure functions, no I/O. Two kinds of evidence share one machinery. Every run of a
revision is either a *bad-side* event or not:

- a check bisect (``--check`` with ``--max-runs``): a run is bad-side when a named check
  failed (syzkaller's bisection rule);
- a metric bisect (``--metric NAME --threshold X``): when the measurement lies beyond the
  threshold, on the bad endpoint's side.

The bisect assumes two populations of revisions: those with the change (a run is bad-side
with probability ``r``, estimated at the bad endpoint -- for a check, how often the failure
reproduces) and those without (bad-side with probability ``e``, estimated at the good
endpoint -- a flake rate, 0 for a check that never failed there). A revision's call and its
confidence follow from its counts:

- *bad* needs at least :func:`min_bad` bad-side runs: ``max(2, ceil(n/6))`` for a check
  (syzkaller), a majority for a metric. Its confidence is the chance that a revision without
  the change would have shown fewer bad-side runs: ``P(X < k | n, e)``.
- otherwise *good*, with the chance that a revision with the change would have shown more:
  ``1 - P(X <= k | n, r)`` (for k = 0 syzkaller's ``1 - (1 - r)^n``).
- a bad call of a check whose failure ratio is under 0.5 is **flaky**: the change is there
  (the search treats it as bad), but the failure shows in only some runs.

Runs are added (up to ``max_runs``) while the call's confidence is under the per-step target;
the result's confidence is the product over its steps (syzkaller's), and the per-step target
is the overall one spread over the steps a bisect of that length takes (:func:`step_target`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from harness.errors import UsageError

Kind = Literal["check", "metric"]
FLAKY_RATIO = 0.5  # a bad call of a check below this failure ratio is flaky (syzkaller)
DEFAULT_MIN_RUNS = 3
DEFAULT_MAX_RUNS = 10
DEFAULT_CONFIDENCE = 0.95


class Call(StrEnum):
    GOOD = "good"
    BAD = "bad"
    FLAKY = "flaky"  # bad, but the failure shows in under half of the runs
    SKIP = "skip"  # too few runs could be judged (build or rig failures)
    MORE = "more"  # undecided: run it again


@dataclass(frozen=True)
class Rule:
    kind: Kind
    min_runs: int = DEFAULT_MIN_RUNS
    max_runs: int = DEFAULT_MAX_RUNS
    step_confidence: float = 0.99


@dataclass(frozen=True)
class Rates:
    """``bad``: P(bad-side run | revision with the change); ``good``: P(bad-side | without)."""

    bad: float
    good: float


@dataclass(frozen=True)
class Counts:
    """A revision's runs so far: bad-side, judged (bad-side or not), attempted (incl. skips)."""

    bad: int
    judged: int
    attempts: int

    @property
    def ratio(self) -> float:
        return self.bad / self.judged if self.judged else 0.0


@dataclass(frozen=True)
class Decision:
    call: Call
    confidence: float
    counts: Counts
    more: int = 0  # runs to add (MORE only)
    reason: str = ""


def binom_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p)."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    if p <= 0.0:
        return 1.0
    if p >= 1.0:
        return 0.0
    return min(1.0, sum(math.comb(n, i) * p ** i * (1 - p) ** (n - i) for i in range(k + 1)))


def smoothed(k: int, n: int) -> float:
    """A rate estimated from k of n with half a pseudo-count each way (never exactly 0 or 1)."""
    return (k + 0.5) / (n + 1)


def min_bad(kind: Kind, judged: int) -> int:
    """Bad-side runs a bad call needs: max(2, ceil(n/6)) for a check (syzkaller), a majority
    for a metric."""
    if kind == "check":
        return max(2, math.ceil(judged / 6))
    return judged // 2 + 1


def _confidence(call_bad: bool, bad: int, judged: int, rates: Rates) -> float:
    if call_bad:
        return binom_cdf(bad - 1, judged, rates.good)
    return 1.0 - binom_cdf(bad, judged, rates.bad)


def _runs_to_reach(call_bad: bool, c: Counts, rates: Rates, rule: Rule) -> int:
    """The fewest extra runs that reach the step target if they all agree with the call
    (at least 1, at most what the budget leaves)."""
    left = rule.max_runs - c.attempts
    for m in range(1, left + 1):
        bad = c.bad + (m if call_bad else 0)
        if _confidence(call_bad, bad, c.judged + m, rates) >= rule.step_confidence:
            return m
    return max(1, left)


def decide(c: Counts, rates: Rates, rule: Rule) -> Decision:
    """The call on one revision from its counts so far, or MORE with how many runs to add."""
    if c.judged < rule.min_runs:
        if c.attempts >= rule.max_runs:
            return Decision(Call.SKIP, 0.0, c, reason=(
                f"only {c.judged} of {c.attempts} runs could be judged "
                f"(at least {rule.min_runs} needed)"))
        return Decision(Call.MORE, 0.0, c,
                        more=min(rule.min_runs - c.judged, rule.max_runs - c.attempts))
    need = min_bad(rule.kind, c.judged)
    call_bad = c.bad >= need
    conf = _confidence(call_bad, c.bad, c.judged, rates)
    what = "failed" if rule.kind == "check" else "beyond the threshold"
    if conf >= rule.step_confidence or c.attempts >= rule.max_runs:
        if call_bad:
            flaky = rule.kind == "check" and c.ratio < FLAKY_RATIO
            call = Call.FLAKY if flaky else Call.BAD
            reason = f"{c.bad} of {c.judged} runs {what}" + (
                f" (under {FLAKY_RATIO:.0%}: flaky)" if flaky else "")
        else:
            call = Call.GOOD
            reason = f"{c.bad} of {c.judged} runs {what} (bad needs {need})"
        if conf < rule.step_confidence:
            reason += f"; confidence {conf:.3f} under the step's {rule.step_confidence:.3f} " \
                      f"after the most runs allowed ({rule.max_runs})"
        return Decision(call, conf, c, reason=reason)
    return Decision(Call.MORE, conf, c, more=_runs_to_reach(call_bad, c, rates, rule))


def estimate_rates(kind: Kind, good: Counts, bads: Sequence[Counts]) -> Rates:
    """The two populations' bad-side rates from the good endpoint and the revisions called
    bad so far (``bads[0]``: the bad endpoint).

    ``r`` is the bad endpoint's smoothed rate, lowered (never raised, as syzkaller does) to
    the pooled rate of every bad call. ``e``: a check that never failed at the good endpoint
    is taken to fail only with the change (0, syzkaller); a metric's is smoothed.
    """
    judged = [b for b in bads if b.judged]
    if judged:
        r = min(smoothed(judged[0].bad, judged[0].judged),
                smoothed(sum(b.bad for b in judged), sum(b.judged for b in judged)))
    else:
        r = 0.5
    if kind == "check":
        e = good.bad / good.judged if good.judged else 0.0
    else:
        e = smoothed(good.bad, good.judged)
    return Rates(bad=r, good=e)


def expected_steps(commits: int, workers: int) -> int:
    """Steps a bisect of ``commits`` candidates takes: 2 endpoints + the points tested
    (log_K(n) rounds of K-1 points)."""
    k = max(2, workers)
    rounds = math.ceil(math.log(commits) / math.log(k) - 1e-9) if commits > 1 else 0
    return 2 + rounds * (k - 1)


def step_target(confidence: float, steps: int) -> float:
    """The per-step confidence whose product over ``steps`` is ``confidence``."""
    return float(math.pow(confidence, 1.0 / max(1, steps)))


def overall_confidence(confidences: Iterable[float]) -> float:
    out = 1.0
    for c in confidences:
        out *= c
    return out


def confident_range(calls: Mapping[int, tuple[Call, float]], good: int, bad: int,
                    target: float) -> tuple[int, int]:
    """(lo, hi): the first bad point lies in (lo, hi] by the calls at least ``target`` sure.

    The endpoints bound it when nothing inside is sure enough; a call below the target
    (a step that ran out of runs) does not narrow it.
    """
    hi = min([k for k, (c, conf) in calls.items() if c in (Call.BAD, Call.FLAKY)
              and conf >= target and good < k <= bad] + [bad])
    lo = max([k for k, (c, conf) in calls.items() if c == Call.GOOD and conf >= target
              and good <= k < hi] + [good])
    return lo, hi


# --- metric threshold ---------------------------------------------------------------------

_REL = re.compile(r"^([0-9]*\.?[0-9]+)x$")


@dataclass(frozen=True)
class Threshold:
    """``--threshold``: an absolute value, or a factor of the good endpoint's median."""

    value: float
    relative: bool

    def text(self) -> str:
        return f"{self.value:g}x" if self.relative else f"{self.value:g}"


def parse_threshold(text: str) -> Threshold:
    s = text.strip()
    m = _REL.match(s)
    if m:
        f = float(m.group(1))
        if f <= 0 or f == 1.0:
            raise UsageError(f"--threshold {text}", "a factor must be > 0 and not 1 "
                             "(e.g. 0.75x: bad below 3/4 of the good endpoint's median)")
        return Threshold(f, True)
    try:
        return Threshold(float(s), False)
    except ValueError:
        raise UsageError(f"--threshold {text}", "expected a number (absolute) or a factor "
                         "of the good endpoint's median such as 0.75x or 1.5x") from None


@dataclass(frozen=True)
class Cut:
    """The resolved threshold: a run is bad-side when its value is above (``bad_above``) or
    below the value."""

    value: float
    bad_above: bool

    def bad_side(self, v: float) -> bool:
        return v > self.value if self.bad_above else v < self.value

    def text(self) -> str:
        return f"{'>' if self.bad_above else '<'} {self.value:.6g}"


def resolve_cut(th: Threshold, good_median: float, bad_median: float) -> Cut:
    """The cut from the endpoints' first samples; the bad side is the bad endpoint's.

    Raises UsageError (exit 2) when the endpoints are not on either side of it.
    """
    if th.relative:
        value = th.value * good_median
        bad_above = th.value > 1
    else:
        value = th.value
        bad_above = bad_median > value
    cut = Cut(value, bad_above)
    if not cut.bad_side(bad_median) or cut.bad_side(good_median):
        raise UsageError(f"--threshold {th.text()}", (
            f"the endpoints are not on either side of {value:.6g}: the good endpoint's "
            f"median is {good_median:.6g}, the bad endpoint's {bad_median:.6g}"))
    return cut


def metric_value(measurements: Iterable[tuple[str, str, float]], name: str) -> float | None:
    """The value of ``name`` (``check.name`` or a bare name) among (check, name, value) rows."""
    rows = [(c, n, v) for c, n, v in measurements if f"{c}.{n}" == name or n == name]
    if not rows:
        return None
    return rows[0][2]


def ambiguous_metric(measurements: Iterable[tuple[str, str, float]], name: str) -> list[str]:
    """The ``check.name`` keys a bare ``name`` matches (more than one: ambiguous)."""
    return sorted({f"{c}.{n}" for c, n, _ in measurements if n == name and "." not in name})
