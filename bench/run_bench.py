"""Benchmark `harness run` with the kernel cached: start to verdict, and where the time goes.

Runs the default scenario --reps times (kernel, image and workloads from cache after the
first), prints per-phase medians from each run's timings and the wall-clock median.
Usage: .venv/bin/python bench/run_bench.py [--reps 3] [--scenario mempressure]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from harness.kernel.build import build_kernel
from harness.scenario.api import run_and_report, scenario_build_request
from harness.scenario.runner import RunOptions
from harness.scenario.spec import load_scenario


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--scenario", default="mempressure")
    args = ap.parse_args()
    sc = load_scenario(args.scenario)
    req = scenario_build_request(sc)
    build_kernel(req)  # make sure the kernel is cached: we measure the run, not the build
    walls: list[float] = []
    phases: dict[str, list[float]] = {}
    verdicts = []
    with tempfile.TemporaryDirectory() as tmpd:
        for i in range(args.reps):
            opts = RunOptions(scenario=sc, build=req, ram_mib=sc.get("vm", "ram_mib"),
                              swap_mib=sc.get("vm", "swap_mib"), smp=sc.get("vm", "smp"),
                              accel="auto", stress_s=sc.get("notifications", "stress_s"),
                              run_dir=Path(tmpd) / f"run{i}")
            t = time.monotonic()
            outcome, _ = run_and_report(opts)
            walls.append(time.monotonic() - t)
            verdicts.append(outcome.verdict.value)
            for k, v in outcome.timings.items():
                phases.setdefault(k, []).append(v)
    print(json.dumps({
        "reps": args.reps, "verdicts": verdicts,
        "wall_median_s": round(statistics.median(walls), 1), "walls_s": [round(w, 1)
                                                                         for w in walls],
        "phase_medians_s": {k: round(statistics.median(v), 2) for k, v in phases.items()},
    }, indent=2))


if __name__ == "__main__":
    main()
