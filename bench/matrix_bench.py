"""Matrix wall time: the local pool in parallel against the same plan run serially.

    python bench/matrix_bench.py [--plan plans/bench4.toml] [--repeats 3]

Each repeat runs the plan twice, side by side in alternating order --
``--max-parallel 1`` (serial) and the default (as many jobs as cores and RAM
admit) -- so both see the same machine load; the kernel is built (or fetched
from the cache) once before timing starts. Prints every wall time, the medians
and the serial/parallel ratio. Every job must pass in every run, or the
numbers compare failures and the bench says so (exit 1).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_plan(plan: Path, out: Path, max_parallel: int | None) -> tuple[float, dict[str, object]]:
    argv = [sys.executable, "-m", "harness", "matrix", str(plan), "--run-dir", str(out),
            "--accel", "tcg"]
    if max_parallel:
        argv += ["--max-parallel", str(max_parallel)]
    t0 = time.monotonic()
    subprocess.run(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.monotonic() - t0
    doc: dict[str, object] = json.loads((out / "results.json").read_text())
    return wall, doc


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--plan", type=Path, default=ROOT / "plans" / "bench4.toml")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    subprocess.run([sys.executable, "-m", "harness", "build"], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    tmp = Path(tempfile.mkdtemp(prefix="matrix-bench-"))
    walls: dict[str, list[float]] = {"serial": [], "parallel": []}
    ok = True
    try:
        for i in range(args.repeats):
            order = ["serial", "parallel"] if i % 2 == 0 else ["parallel", "serial"]
            for mode in order:
                wall, doc = run_plan(args.plan, tmp / f"{mode}-{i}",
                                     1 if mode == "serial" else None)
                walls[mode].append(wall)
                counts = doc["counts"]
                assert isinstance(counts, dict)
                print(f"repeat {i + 1} {mode:8}: {wall:6.1f}s  verdict {doc['verdict']} "
                      f"({counts['pass']} pass, {counts['fail']} fail, "
                      f"{counts['error']} error)  engine {doc['engine']}", flush=True)
                ok = ok and doc["verdict"] == "pass"
    finally:
        if ok:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"kept for inspection (a job did not pass): {tmp}")
    ms, mp = statistics.median(walls["serial"]), statistics.median(walls["parallel"])
    print(f"median serial {ms:.1f}s, parallel {mp:.1f}s: parallel/serial = {mp / ms:.2f} "
          f"(speed-up {ms / mp:.2f}x) on {os.cpu_count()} cores, {args.repeats} repeats")
    if not ok:
        print("WARNING: not every job passed; the times compare failing runs")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
