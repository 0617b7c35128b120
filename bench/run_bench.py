"""Benchmark `harness run` with the kernel cached: start to verdict, and where the time goes.

Runs the default scenario --reps times (kernel, image and workloads from cache after the
first), prints per-phase medians from each run's timings and the wall-clock median.
:func:`repeat_run_process` times ``harness run --repeat N`` (``python -m bench all
--with-repeat``).
Usage: .venv/bin/python bench/run_bench.py [--reps 3] [--scenario mempressure]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness.core.request import kernel_request
from harness.core.runner import RunOptions, run_scenario
from harness.core.spec import load_spec
from harness.kernel.build import build_kernel


def warm_run_process(scenario: str = "mempressure") -> tuple[float, int]:
    """(wall seconds, exit status) of a whole ``harness run`` process, kernel cached."""
    with tempfile.TemporaryDirectory(prefix="bench-run-") as d:
        cmd = [sys.executable, "-m", "harness", "run", "--scenario", scenario, "--accel", "tcg",
               "--run-dir", str(Path(d) / "run")]
        t0 = time.monotonic()
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, check=False)
        return time.monotonic() - t0, r.returncode


def repeat_run_process(repeats: int = 10, scenario: str = "mempressure") -> tuple[float, int,
                                                                               dict[str, Any]]:
    """(wall seconds, exit status, combined results) of ``harness run --repeat N``, kernel
    cached: the guests run side by side as cores and RAM admit (the matrix pool)."""
    with tempfile.TemporaryDirectory(prefix="bench-repeat-") as d:
        run_dir = Path(d) / "run"
        cmd = [sys.executable, "-m", "harness", "run", "--scenario", scenario, "--accel", "tcg",
               "--repeat", str(repeats), "--run-dir", str(run_dir)]
        t0 = time.monotonic()
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=3600, check=False)
        wall = time.monotonic() - t0
        try:
            doc: dict[str, Any] = json.loads((run_dir / "results.json").read_text())
        except (OSError, ValueError):
            doc = {}
        return wall, r.returncode, {"verdict": doc.get("verdict"), "checks": {
            c["name"]: f"{c['passes']}/{c['total']}" for c in doc.get("checks", [])}}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--scenario", default="mempressure")
    args = ap.parse_args()
    sc = load_spec(args.scenario)
    req = kernel_request(sc)
    build_kernel(req)  # make sure the kernel is cached: we measure the run, not the build
    walls: list[float] = []
    phases: dict[str, list[float]] = {}
    verdicts = []
    with tempfile.TemporaryDirectory() as tmpd:
        for i in range(args.reps):
            opts = RunOptions(spec=sc, build=req, vm=sc.vm, run_dir=Path(tmpd) / f"run{i}")
            t = time.monotonic()
            outcome = run_scenario(opts)
            walls.append(time.monotonic() - t)
            verdicts.append(outcome.verdict.value)
            for k, v in outcome.doc["timings_s"].items():
                phases.setdefault(k, []).append(v)
    print(json.dumps({
        "reps": args.reps, "verdicts": verdicts,
        "wall_median_s": round(statistics.median(walls), 1), "walls_s": [round(w, 1)
                                                                         for w in walls],
        "phase_medians_s": {k: round(statistics.median(v), 2) for k, v in phases.items()},
    }, indent=2))


if __name__ == "__main__":
    main()
