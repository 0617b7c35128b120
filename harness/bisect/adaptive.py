"""Bisect with adaptive repeats: ``--metric NAME --threshold X``, or ``--max-runs N`` for checks.

Each revision the search visits is run several times on the parallel pool (the matrix's
local engine, :meth:`~harness.bisect.parallel.BatchRunner.run_attempts`): ``--min-runs``
first, then more while :func:`harness.bisect.sampling.decide` finds the call too uncertain,
up to ``--max-runs``. The calls (good / bad / flaky / skip), their confidences and the
overall confidence are the pure rules of :mod:`harness.bisect.sampling`; this module only
runs revisions and records them. The search is :func:`~harness.bisect.nsection.nsection`
(K = ``--workers``, 2 = plain bisection) over the first-parent commits good..bad (git mode,
no ``git bisect`` state) or over the first k patches of a series.

The result is ``found`` ("culprit X, confidence p") when the product of the step
confidences reaches ``--confidence``; ``inconclusive`` otherwise, naming the range the
confident calls leave ("the first bad commit could be any of A..B"); ``ambiguous`` when
skipped revisions hide it; ``flaky`` when the check already fails at the good endpoint in
some runs (there is no change to find). The parent and the culprit are sampled steps of
the search, so there is no separate verification re-run.

``--resume`` takes the runs already recorded in the run directory (steps.jsonl, one record
per decided revision with all its runs) as the evidence they are: a revision the search
visits again starts from its recorded runs, is decided by the same rules (the endpoints
first, as before, so with the same rates) and runs only what its call still needs --
nothing, when the interrupted search had decided it. Runs in flight at the interruption
are run again.
"""

from __future__ import annotations

import logging
import signal
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.bisect import sampling
from harness.bisect.nsection import check_endpoints, nsection
from harness.bisect.parallel import BatchRunner, Target, measurements_of
from harness.bisect.sampling import Call, Counts, Cut, Decision, Rule
from harness.bisect.step import BisectConfig, StepRunner, append_step, git_out, read_steps
from harness.bisect.verdict import Attempt, StepRecord, Verdict
from harness.core.stats import median
from harness.errors import InfraError, UsageError, raise_terminated

log = logging.getLogger(__name__)

_VERDICT = {Call.GOOD: Verdict.GOOD, Call.BAD: Verdict.BAD, Call.FLAKY: Verdict.FLAKY,
            Call.SKIP: Verdict.SKIP}


@dataclass
class Point:
    """One revision (index into the search's list) and its runs so far."""

    index: int
    target: Target
    step: int  # its number in steps.jsonl / steps/ (run dirs: <step>-<target>-<n>)
    attempts: list[Attempt] = field(default_factory=list)
    decision: Decision | None = None
    recorded: int = 0  # attempts taken from an earlier record (--resume)


class Sampler:
    """Runs points until each has a call, with the rates learnt from the endpoints."""

    def __init__(self, cfg: BisectConfig, batch: BatchRunner, good: int, bad: int,
                 n_candidates: int, resume: bool = False) -> None:
        self.cfg = cfg
        self.batch = batch
        self.kind: sampling.Kind = "metric" if cfg.metric else "check"
        self.good, self.bad = good, bad
        self.steps = sampling.expected_steps(n_candidates, cfg.workers)
        self.rule = Rule(self.kind, cfg.min_runs, cfg.max_runs,
                         sampling.step_target(cfg.confidence, self.steps))
        self.threshold = sampling.parse_threshold(cfg.threshold) if cfg.threshold else None
        self.cut: Cut | None = None
        self.points: dict[int, Point] = {}
        steps = read_steps(Path(cfg.run_dir))
        self.next_step = len(steps) + 1
        # The last record of each target wins: it holds every run of the ones before it.
        self.recorded = {r.target: r for r in steps} if resume else {}

    # --- evidence -------------------------------------------------------------------------

    def bad_side(self, a: Attempt) -> bool | None:
        """Whether a run is bad-side; None when it cannot be judged (it did not run)."""
        if self.kind == "check":
            return None if a.verdict == Verdict.SKIP else a.verdict == Verdict.BAD
        if a.value is None or self.cut is None:
            return None
        return self.cut.bad_side(a.value)

    def counts(self, p: Point) -> Counts:
        sides = [self.bad_side(a) for a in p.attempts]
        return Counts(sum(s is True for s in sides), sum(s is not None for s in sides),
                      len(p.attempts))

    def rates(self) -> sampling.Rates:
        good = self.points.get(self.good)
        bad = self.points.get(self.bad)
        bads = [self.counts(bad)] if bad else []
        bads += [self.counts(p) for k, p in self.points.items()
                 if k not in (self.good, self.bad) and p.decision is not None
                 and p.decision.call in (Call.BAD, Call.FLAKY)]
        return sampling.estimate_rates(self.kind, self.counts(good) if good else
                                       Counts(0, 0, 0), bads)

    # --- running --------------------------------------------------------------------------

    def point(self, k: int, target: Target) -> Point:
        if k not in self.points:
            rec = self.recorded.get(target.target)
            p = self.points[k] = Point(k, target, self.next_step)
            self.next_step += 1
            if rec is not None:
                p.attempts = list(rec.attempts)
                p.recorded = len(rec.attempts)
                log.info("resume: %s starts from its %d recorded run(s)",
                         target.target[:12], p.recorded)
        return self.points[k]

    def _run(self, more: dict[int, int]) -> None:
        named: list[tuple[str, Target, int]] = []
        for k, m in more.items():
            p = self.points[k]
            short = p.target.target[:12].replace("=", "")
            for i in range(m):
                named.append((f"{p.step:02d}-{short}-{len(p.attempts) + i}", p.target, k))
        log.info("bisect round: %s", ", ".join(
            f"{self.points[k].target.target[:12]} x{m}" for k, m in more.items()))
        atts = self.batch.run_attempts([(n, t) for n, t, _ in named])
        for (_, _, k), a in zip(named, atts, strict=True):
            self.points[k].attempts.append(a)

    def _first_metric_round(self, ks: list[int]) -> None:
        """Metric mode: min_runs at both endpoints, then the cut from their medians."""
        assert self.threshold is not None and self.cfg.metric
        while True:
            values = {k: [a.value for a in self.points[k].attempts if a.value is not None]
                      for k in ks}
            more = {k: min(self.rule.min_runs - len(values[k]),
                           self.rule.max_runs - len(self.points[k].attempts))
                    for k in ks if len(values[k]) < self.rule.min_runs}
            more = {k: m for k, m in more.items() if m > 0}
            if not more:
                break
            self._run(more)
        for k in ks:
            if len(values[k]) < self.rule.min_runs:
                self._no_metric(self.points[k])
        self._resolve_cut()

    def _resolve_cut(self) -> None:
        """The cut from the endpoints' medians so far (re-resolved while the endpoints are
        sampled, so that their first few runs do not fix it alone; frozen after them)."""
        assert self.threshold is not None
        values = {k: [a.value for a in self.points[k].attempts if a.value is not None]
                  for k in (self.good, self.bad)}
        cut = sampling.resolve_cut(self.threshold, median(values[self.good]),
                                   median(values[self.bad]))
        if cut != self.cut:
            log.info("metric %s: bad when %s", self.cfg.metric, cut.text())
        self.cut = cut

    def _no_metric(self, p: Point) -> None:
        """Too few runs of an endpoint measured the metric: a wrong name (exit 2) or a rig
        that never got that far (exit 3)."""
        assert self.cfg.metric
        ran = [a for a in p.attempts if a.verdict != Verdict.SKIP]
        if ran:
            rows = measurements_of(Path(ran[0].run_dir))
            keys = sorted({f"{c}.{n}" for c, n, _ in rows})
            amb = sampling.ambiguous_metric(rows, self.cfg.metric)
            if len(amb) > 1:
                raise UsageError(f"--metric {self.cfg.metric}",
                                 f"names {len(amb)} measurements: {', '.join(amb)}; give one")
            raise UsageError(f"--metric {self.cfg.metric}",
                             f"not measured by scenario {Path(self.cfg.scenario).stem} "
                             f"(with --check {', '.join(self.cfg.checks)}); it measures: "
                             f"{', '.join(keys) or 'nothing'}")
        raise InfraError(f"{p.target.target[:12]}", "could not be run often enough to measure "
                         f"--metric {self.cfg.metric} ({len(p.attempts)} attempts): "
                         + "; ".join(a.detail for a in p.attempts[-2:]))

    def sample(self, targets: dict[int, Target], phase: str) -> dict[int, Decision]:
        """Every target's call, running each as often as its call needs; records the steps."""
        t0 = time.monotonic()
        for k, t in targets.items():
            self.point(k, t)
        ks = list(targets)
        if self.kind == "metric" and self.cut is None:
            self._first_metric_round(ks)
        while True:
            if self.kind == "metric" and phase == "endpoint":
                self._resolve_cut()
            rates = self.rates()
            decisions = {k: sampling.decide(self.counts(self.points[k]), rates, self.rule)
                         for k in ks}
            more = {k: d.more for k, d in decisions.items() if d.call == Call.MORE}
            if not more:
                break
            self._run(more)
        for k in ks:
            p = self.points[k]
            d = decisions[k]
            p.decision = d
            if p.recorded and len(p.attempts) == p.recorded:
                continue  # decided from its record alone: already in steps.jsonl
            rec = StepRecord(p.target.target, p.target.label, _VERDICT[d.call],
                             round(time.monotonic() - t0, 1), p.attempts,
                             self._note(p, d), phase, round(d.confidence, 6))
            append_step(Path(self.cfg.run_dir), rec)
            log.info("step %s %s -> %s, confidence %.4f (%s)", p.target.target[:12],
                     p.target.label, d.call.value, d.confidence, rec.note)
        return decisions

    def _note(self, p: Point, d: Decision) -> str:
        if self.kind == "metric":
            vals = [a.value for a in p.attempts if a.value is not None]
            if vals:
                return f"{d.reason}; median {median(vals):.6g} ({len(vals)} values)"
        return d.reason


def _endpoint_verdicts(ends: dict[int, Decision], good: int, bad: int) -> tuple[Verdict,
                                                                                Verdict]:
    return _VERDICT[ends[good].call], _VERDICT[ends[bad].call]


@dataclass(frozen=True)
class Space:
    """What is searched: point 0..n (0 the good endpoint, n the bad one) and its names."""

    n: int
    target: Callable[[int], Target]
    describe: Callable[[int], dict[str, Any]]  # the doc's first_bad entry for a point
    name: Callable[[int], str]  # short, for messages


def search(cfg: BisectConfig, space: Space, good: int, bad: int,
           resume: bool = False) -> dict[str, Any]:
    """Endpoints, then the n-section, each point sampled adaptively; the results doc's
    verdict part (status, first_bad, confidence, range, flaky, steps)."""
    if not cfg.adaptive:
        raise UsageError("--max-runs", "adaptive repeats need --max-runs N >= 2")
    batch = BatchRunner(cfg)
    s = Sampler(cfg, batch, good, bad, bad - good, resume)
    ends = s.sample({good: space.target(good), bad: space.target(bad)}, "endpoint")
    gv, bv = _endpoint_verdicts(ends, good, bad)
    if gv == Verdict.FLAKY:
        d = ends[good]
        return {**_adaptive_info(s), "status": "flaky", "first_bad": None, "candidates": [],
                "confidence": None, "flaky": True,
                "message": (f"flaky: the check already fails at the good endpoint "
                            f"{space.name(good)} ({d.reason}); there is no change to find"),
                "range": None}
    if s.kind == "metric":
        for opt, k, v, want in (("--good", good, gv, Verdict.GOOD), ("--bad", bad, bv,
                                                                        Verdict.BAD)):
            if v.search not in (want, Verdict.SKIP):
                raise UsageError(f"{opt} {space.name(k)}", f"its runs are on the wrong side "
                                 f"of the threshold ({ends[k].reason})")
    check_endpoints(gv.search, bv.search, space.name(good), space.name(bad))
    result = nsection(good, bad, max(2, cfg.workers), lambda ks: {
        k: _VERDICT[d.call].search
        for k, d in s.sample({k: space.target(k) for k in ks}, "bisect").items()})
    calls = {k: (p.decision.call, p.decision.confidence) for k, p in s.points.items()
             if p.decision is not None}
    conf = sampling.overall_confidence(c for _, c in calls.values())
    flaky = any(c == Call.FLAKY for c, _ in calls.values())
    out: dict[str, Any] = {**_adaptive_info(s), "confidence": round(conf, 6), "flaky": flaky,
                           "rounds": len(result.rounds)}
    if result.first_bad is None:
        cands = result.candidates
        out.update(status="ambiguous", first_bad=None,
                   candidates=[space.name(k) for k in cands], range=None,
                   message="no single culprit: only skipped revisions left; the first bad "
                   "one is among: " + ", ".join(space.name(k) for k in cands))
        return out
    if conf >= cfg.confidence:
        fb = result.first_bad
        out.update(status="found", first_bad=space.describe(fb), candidates=[],
                   range=[space.name(fb), space.name(fb)],
                   message=f"culprit {space.name(fb)}, confidence {conf:.3f}"
                   + (" (flaky: the check fails in only some runs with the change)"
                      if flaky else ""))
        return out
    lo, hi = sampling.confident_range(calls, good, bad, s.rule.step_confidence)
    names = [space.name(k) for k in range(lo + 1, hi + 1)]
    out.update(status="inconclusive", first_bad=None, candidates=names,
               range=[names[0], names[-1]], search_first_bad=space.describe(result.first_bad),
               message=(f"inconclusive (confidence {conf:.3f} under {cfg.confidence:g}): the "
                        f"first bad {'commit' if cfg.mode == 'git' else 'patch'} could be any "
                        f"of {names[0]}..{names[-1]} ({len(names)}); the search ended at "
                        f"{space.name(result.first_bad)}"))
    return out


def _adaptive_info(s: Sampler) -> dict[str, Any]:
    r = s.rates()
    return {"adaptive": {
        "kind": s.kind, "metric": s.cfg.metric, "threshold": s.cfg.threshold,
        "cut": None if s.cut is None else {"value": s.cut.value, "bad_above": s.cut.bad_above,
                                           "text": s.cut.text()},
        "min_runs": s.rule.min_runs, "max_runs": s.rule.max_runs,
        "confidence_target": s.cfg.confidence, "step_target": round(s.rule.step_confidence, 6),
        "expected_steps": s.steps,
        "rates": {"bad_side_with_change": round(r.bad, 4),
                  "bad_side_without": round(r.good, 4)},
        "runs": sum(len(p.attempts) for p in s.points.values())}}


def _with_signals(fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    old = {sig: signal.signal(sig, raise_terminated) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        return fn()
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)


def run_git_adaptive(cfg: BisectConfig, resume: bool = False) -> dict[str, Any]:
    """Git mode: the first-parent commits good..bad; the user's repository is only read."""
    from harness.bisect.gitbisect import first_parent_range

    assert cfg.repo is not None
    repo = cfg.repo
    t0 = time.monotonic()
    revs = [cfg.good, *first_parent_range(repo, cfg.good, cfg.bad)]
    runner = StepRunner(cfg)
    subjects: dict[int, str] = {}

    def subject(k: int) -> str:
        if k not in subjects:
            subjects[k] = git_out(repo, "log", "-1", "--format=%s", revs[k])
        return subjects[k]

    space = Space(len(revs) - 1,
                  lambda k: Target(revs[k], subject(k), runner.request(rev=revs[k],
                                                                       source=repo)),
                  lambda k: {"commit": revs[k], "subject": subject(k)},
                  lambda k: revs[k][:12])
    doc = _with_signals(lambda: search(cfg, space, 0, len(revs) - 1, resume))
    return {"mode": "git", "repo": repo, "good": cfg.good, "bad": cfg.bad,
            "scenario": cfg.scenario, "checks": cfg.checks, "retries": 0,
            "workers": cfg.workers, **doc,
            "verification": {"ok": doc["status"] == "found", "adaptive": True},
            "steps": [r.to_json() for r in read_steps(Path(cfg.run_dir))],
            "wall_s": round(time.monotonic() - t0, 1), "run_dir": cfg.run_dir}


def run_series_adaptive(cfg: BisectConfig, resume: bool = False) -> dict[str, Any]:
    """Series mode: k = 0 (base) .. n (the whole series), as the plain series bisect."""
    from harness.bisect.series import series_endpoints, write_truncated

    t0 = time.monotonic()
    patches, good, bad = series_endpoints(cfg)
    n = len(patches)
    runner = StepRunner(cfg)
    with tempfile.TemporaryDirectory(prefix="harness-bisect-series-") as tmpd:
        tmp = Path(tmpd)

        def target(k: int) -> Target:
            series = (write_truncated(patches, k, tmp),) if k else ()
            label = patches[k - 1].name if k else "(base, no patch)"
            return Target(f"k={k}", label,
                          runner.request(series=series, source=cfg.source, rev=cfg.rev))

        space = Space(n, target,
                      lambda k: {"index": k, "patch": patches[k - 1].name,
                                 "origin": patches[k - 1].origin},
                      lambda k: f"patch {k} ({patches[k - 1].name})" if k else "base")
        doc = _with_signals(lambda: search(cfg, space, good, bad, resume))
    return {"mode": "series", "source": cfg.source, "series": cfg.series, "good": good,
            "bad": bad, "patches": [p.name for p in patches], "scenario": cfg.scenario,
            "checks": cfg.checks, "retries": 0, "workers": cfg.workers, **doc,
            "verification": {"ok": doc["status"] == "found", "adaptive": True},
            "steps": [r.to_json() for r in read_steps(Path(cfg.run_dir))],
            "wall_s": round(time.monotonic() - t0, 1), "run_dir": cfg.run_dir}
