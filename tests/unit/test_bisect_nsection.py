"""Bisect on K workers without a VM: the n-section search, endpoint checks, the batch runner."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from harness.bisect import parallel
from harness.bisect.nsection import (
    check_endpoints,
    endpoint_error,
    nsection,
    pick_points,
)
from harness.bisect.series import run_series_bisect, search
from harness.bisect.step import BisectConfig, read_steps
from harness.bisect.verdict import Verdict
from harness.core.results import Status
from harness.errors import InfraError, UsageError
from harness.matrix.builds import KernelBuild
from harness.matrix.job import JobResult

G, B, S = Verdict.GOOD, Verdict.BAD, Verdict.SKIP


def _oracle(first_bad: int, skip: frozenset[int] = frozenset()) -> Any:
    def run_round(ks: list[int]) -> dict[int, Verdict]:
        return {k: S if k in skip else (B if k >= first_bad else G) for k in ks}
    return run_round


def test_pick_points_spread_evenly_and_avoid_skips() -> None:
    assert pick_points(0, 100, set(), 3) == [25, 50, 75]
    assert pick_points(0, 10, set(), 1) == [5]
    assert pick_points(0, 4, set(), 5) == [1, 2, 3]  # fewer candidates than workers
    assert pick_points(0, 100, {50}, 1) == [49]
    assert pick_points(3, 4, set(), 2) == []


@pytest.mark.parametrize("workers", [2, 3, 4, 8])
def test_nsection_finds_every_culprit_in_log_k_rounds(workers: int) -> None:
    n = 64
    for first_bad in range(1, n + 1):
        r = nsection(0, n, workers, _oracle(first_bad))
        assert r.first_bad == first_bad and not r.candidates
        assert len(r.rounds) <= math.ceil(math.log(n, workers)) + 1
        assert all(len(pts) <= workers - 1 for pts in r.rounds)


def test_two_workers_is_plain_bisection() -> None:
    n = 37
    for first_bad in range(1, n + 1):
        seen: list[int] = []

        def step(k: int, fb: int = first_bad, seen: list[int] = seen) -> Verdict:
            seen.append(k)
            return B if k >= fb else G
        plain = search(0, n, step)
        r = nsection(0, n, 2, _oracle(first_bad))
        assert r.first_bad == plain.first_bad
        assert [p[0] for p in r.rounds] == seen  # the very same points, in the same order


def test_more_workers_fewer_rounds() -> None:
    rounds = {k: max(len(nsection(0, 100, k, _oracle(fb)).rounds) for fb in range(1, 101))
              for k in (2, 3, 5)}
    assert rounds[2] > rounds[3] > rounds[5]


def test_skips_are_set_aside_and_can_hide_the_culprit() -> None:
    r = nsection(0, 16, 3, _oracle(9, frozenset({6, 11})))
    assert r.first_bad == 9
    r = nsection(0, 16, 3, _oracle(9, frozenset({8})))
    assert r.first_bad is None and r.candidates == [8, 9]  # 8 skipped: 8 or 9


def test_nsection_rejects_bad_input() -> None:
    with pytest.raises(UsageError):
        nsection(5, 5, 3, _oracle(1))
    with pytest.raises(UsageError, match="--workers"):
        nsection(0, 5, 1, _oracle(1))


def test_endpoints_must_hold() -> None:
    assert endpoint_error(G, B, "g", "b") is None
    check_endpoints(G, B, "g", "b")
    with pytest.raises(UsageError) as ei:
        check_endpoints(B, B, "g", "b")
    assert ei.value.culprit == "--good g"
    with pytest.raises(UsageError) as ei:
        check_endpoints(G, G, "g", "b")
    assert ei.value.culprit == "--bad b"
    with pytest.raises(InfraError) as ei2:
        check_endpoints(G, S, "g", "b")
    assert ei2.value.culprit == "--bad b"


# --- the batch runner and series mode on K workers ---------------------------------------------

def _series(tmp_path: Path, n: int) -> Path:
    d = tmp_path / "series"
    d.mkdir()
    names = []
    for i in range(1, n + 1):
        name = f"{i:04d}-p{i}.patch"
        (d / name).write_text(f"--- a/f{i}\n+++ b/f{i}\n@@ -0,0 +1 @@\n+x\n")
        names.append(name)
    (d / "series").write_text("\n".join(names) + "\n")
    return d


def test_series_bisect_on_k_workers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Endpoints first, then rounds of K-1 parallel points, then verification; all recorded."""
    first_bad, n = 6, 9
    batches: list[list[int]] = []

    def fake_run(self: parallel.BatchRunner, named: list[tuple[str, parallel.Target]],
                 parallel: int | None = None) -> tuple[list[JobResult], dict[str, KernelBuild]]:
        ks = [int(t.target.split("=")[1]) for _, t in named]
        batches.append(ks)
        res = [JobResult(f"{name}/bisect/vm", name, Status.PASS if k < first_bad else
                         Status.FAIL, 0 if k < first_bad else 1, str(tmp_path / name), 1.0,
                         checks=[{"name": "clamping",
                                  "status": "pass" if k < first_bad else "fail"}])
               for (name, _), k in zip(named, ks, strict=True)]
        return res, {name: KernelBuild(name, "key", "/bz") for name, _ in named}

    monkeypatch.setattr(parallel.BatchRunner, "_run", fake_run)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    cfg = BisectConfig(mode="series", run_dir=str(run_dir), scenario="mempressure",
                       checks=["clamping"], series=[str(_series(tmp_path, n))], workers=3)
    doc = run_series_bisect(cfg)
    assert doc["status"] == "found" and doc["first_bad"]["index"] == first_bad
    assert batches[0] == [0, n]  # the endpoints, verified before any search
    assert all(len(b) <= 2 for b in batches[1:-1])  # K-1 = 2 points per round
    assert batches[-1] == [first_bad - 1, first_bad]  # verification
    assert doc["rounds"] == len(batches) - 2 and doc["workers"] == 3
    phases = [s.phase for s in read_steps(run_dir)]
    assert phases[:2] == ["endpoint", "endpoint"] and phases[-2:] == ["verify", "verify"]
    json.dumps(doc)


def test_series_bisect_good_endpoint_that_fails_is_usage_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def all_fail(self: parallel.BatchRunner, named: list[tuple[str, parallel.Target]],
                 parallel: int | None = None) -> tuple[list[JobResult], dict[str, KernelBuild]]:
        return ([JobResult(f"{nm}/b/v", nm, Status.FAIL, 1, "", 1.0,
                           checks=[{"name": "clamping", "status": "fail"}]) for nm, _ in named],
                {})

    monkeypatch.setattr(parallel.BatchRunner, "_run", all_fail)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    cfg = BisectConfig(mode="series", run_dir=str(run_dir), scenario="mempressure",
                       checks=["clamping"], series=[str(_series(tmp_path, 4))], workers=2)
    with pytest.raises(UsageError) as ei:
        run_series_bisect(cfg)
    assert ei.value.culprit == "--good 0"


def test_batch_verdicts_map_like_sequential_steps() -> None:
    def r(code: int | None, st: str) -> JobResult:
        return JobResult("k/s/v", "k", Status.ERROR, code, "", 0.0,
                         checks=[{"name": "clamping", "status": st}] if st else [])
    assert parallel.verdict_of(r(0, "pass"), ["clamping"]) == G
    assert parallel.verdict_of(r(1, "fail"), ["clamping"]) == B
    assert parallel.verdict_of(r(3, "error"), ["clamping"]) == S  # infra
    assert parallel.verdict_of(r(None, ""), ["clamping"]) == S  # no build / dead worker
    assert parallel.verdict_of(r(2, ""), ["clamping"]) == S  # usage: e.g. series does not apply
