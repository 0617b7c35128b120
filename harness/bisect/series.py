"""Bisect a patch series without git history: a binary search over "the first k patches".

k = 0 is the base tree alone, k = n the whole series; the first bad patch is
the k-th where k-1 patches pass and k fail. Each k is built from a truncated
copy of the series written into a temp directory, so build_kernel sees an
ordinary series and the artifact cache (keyed on patch content, not names)
turns repeated k's -- the verification runs, a resume -- into boots only.
"""

from __future__ import annotations

import logging
import re
import signal
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.bisect.nsection import NSectionResult, check_endpoints, nsection
from harness.bisect.parallel import BatchRunner, Target
from harness.bisect.step import BisectConfig, StepRunner, read_steps
from harness.bisect.verdict import StepRecord, Verdict, verification
from harness.errors import UsageError, raise_terminated
from harness.kernel.series import Patch, load_series

log = logging.getLogger(__name__)


@dataclass
class SearchResult:
    """``first_bad`` is a k (1-based patch number) or None; ``candidates`` when skips hide it."""

    first_bad: int | None
    candidates: list[int] = field(default_factory=list)
    good: int = 0
    bad: int = 0


def search(good: int, bad: int, step: Callable[[int], Verdict]) -> SearchResult:
    """Binary search for the smallest bad k in (good, bad], ``step(k)`` giving the verdict.

    A skipped k is set aside and the nearest untested k to the middle is tried
    instead (what ``git bisect`` does); when only skipped ones are left, the
    first bad patch is one of them or ``bad`` itself, and all are returned.
    """
    if not 0 <= good < bad:
        raise UsageError(f"--good {good} --bad {bad}", "need 0 <= good < bad")
    lo, hi = good, bad
    skipped: set[int] = set()
    while True:
        cands = [k for k in range(lo + 1, hi) if k not in skipped]
        if not cands:
            break
        mid = (lo + hi) // 2
        k = min(cands, key=lambda c: (abs(c - mid), c))
        v = step(k)
        if v == Verdict.GOOD:
            lo = k
        elif v == Verdict.BAD:
            hi = k
        else:
            skipped.add(k)
    left = [k for k in range(lo + 1, hi) if k in skipped]
    if left:
        return SearchResult(None, left + [hi], lo, hi)
    return SearchResult(hi, [], lo, hi)


def write_truncated(patches: list[Patch], k: int, root: Path) -> Path:
    """A series directory holding the first ``k`` patches (names made file-safe)."""
    d = root / f"first-{k}"
    if d.is_dir():
        return d
    d.mkdir(parents=True)
    lines = []
    for i, p in enumerate(patches[:k], start=1):
        name = f"{i:04d}-" + re.sub(r"[^A-Za-z0-9._-]+", "-", p.name).strip("-")[:60]
        if not name.endswith(".patch"):
            name += ".patch"
        (d / name).write_bytes(p.data)
        lines.append(f"{name} -p{p.strip}")
    (d / "series").write_text("\n".join(lines) + "\n")
    return d


def series_endpoints(cfg: BisectConfig) -> tuple[list[Patch], int, int]:
    """The series' patches and ``(good, bad)``, checked (0 <= good <
    bad <= n, bad defaulting to n) and saved in the config: both series bisects start so."""
    patches: list[Patch] = []
    for s in cfg.series:
        patches += load_series(Path(s))
    n = len(patches)
    good = int(cfg.good or 0)
    bad = int(cfg.bad) if cfg.bad else n
    if not 0 <= good < bad <= n:
        raise UsageError(f"--good {good} --bad {bad}",
                         f"need 0 <= good < bad <= {n} (the series has {n} patches)")
    cfg.good, cfg.bad = str(good), str(bad)
    cfg.save()
    return patches, good, bad


def run_series_bisect(cfg: BisectConfig, resume: bool = False) -> dict[str, Any]:
    """Search, verify (k-1 good, k bad), return the results doc."""
    t0 = time.monotonic()
    run_dir = Path(cfg.run_dir)
    patches, good, bad = series_endpoints(cfg)
    runner = StepRunner(cfg)
    batch = BatchRunner(cfg) if cfg.workers > 1 else None
    # A resume reuses the verdicts already recorded for this run directory.
    known = {(r.phase, r.target): r.verdict for r in read_steps(run_dir)
             if r.phase in ("endpoint", "bisect")} if resume else {}
    rounds = 0
    old = {sig: signal.signal(sig, raise_terminated) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        with tempfile.TemporaryDirectory(prefix="harness-bisect-series-") as tmpd:
            tmp = Path(tmpd)

            def target(k: int) -> Target:
                series = (write_truncated(patches, k, tmp),) if k else ()
                label = patches[k - 1].name if k else "(base, no patch)"
                return Target(f"k={k}", label,
                              runner.request(series=series, source=cfg.source, rev=cfg.rev))

            def run_many(ks: list[int], phase: str) -> list[StepRecord]:
                ts = [target(k) for k in ks]
                if batch is not None:
                    return batch.run_targets(ts, phase)
                return [runner.run_target(t.target, t.label, t.req, phase=phase) for t in ts]

            def verdicts(ks: list[int], phase: str) -> dict[int, Verdict]:
                nonlocal rounds
                out = {k: known[(phase, f"k={k}")] for k in ks if (phase, f"k={k}") in known}
                for k, v in out.items():
                    log.info("k=%d: %s (recorded earlier)", k, v.value)
                todo = [k for k in ks if k not in out]
                if todo:
                    if phase == "bisect":
                        rounds += 1
                    out.update({k: r.verdict for k, r in zip(todo, run_many(todo, phase),
                                                             strict=True)})
                return out

            ends = verdicts(sorted({good, bad}), "endpoint")  # before searching: never trusted
            check_endpoints(ends[good], ends[bad], str(good), str(bad))
            result: SearchResult | NSectionResult
            if batch is not None:
                result = nsection(good, bad, cfg.workers, lambda ks: verdicts(ks, "bisect"))
            else:
                result = search(good, bad, lambda k: verdicts([k], "bisect")[k])
            verify: list[StepRecord] = []
            if result.first_bad is not None:
                verify = run_many([result.first_bad - 1, result.first_bad], "verify")
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)
    ver = verification(verify)
    fb = None
    if result.first_bad is not None:
        p = patches[result.first_bad - 1]
        fb = {"index": result.first_bad, "patch": p.name, "origin": p.origin}
    status = ("found" if fb and ver["ok"] else "unverified" if fb else "ambiguous")
    return {"mode": "series", "source": cfg.source, "series": cfg.series, "good": good,
            "bad": bad, "patches": [p.name for p in patches], "scenario": cfg.scenario,
            "checks": cfg.checks, "retries": cfg.retries, "status": status, "first_bad": fb,
            "candidates": [patches[k - 1].name for k in result.candidates],
            "verification": ver, "workers": cfg.workers, "rounds": rounds,
            "steps": [s.to_json() for s in read_steps(run_dir)],
            "wall_s": round(time.monotonic() - t0, 1), "run_dir": cfg.run_dir}
