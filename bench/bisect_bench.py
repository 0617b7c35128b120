"""Bisect cost: wall time and per-step cost (build vs boot+scenario) of a ``harness bisect`` run.

Either runs a bisect (the same options as ``harness bisect``) and then reports,
or reports on an existing run directory:

    python bench/bisect_bench.py --repo R --good G --bad B --check clamping --run-dir /tmp/b
    python bench/bisect_bench.py --report /tmp/b

The e2e numbers for the issue come from ``pytest -m vm tests/vm/test_bisect.py -s``,
which prints the same summary.

``--synthetic`` compares plain bisection with n-section on K workers
(``harness bisect --workers K``) on the same synthetic history, with the real
search code (:func:`harness.bisect.series.search`, :func:`harness.bisect.nsection.nsection`)
and a step that is a real CPU-bound subprocess (like a TCG guest, it holds one
core flat out for ``--step-s``), so the machine's cores really limit a round:

    python bench/bisect_bench.py --synthetic 64 --step-s 1.0 --workers 2,3,4 --repeats 3
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any


def report(run_dir: Path) -> str:
    doc: dict[str, Any] = json.loads((run_dir / "results.json").read_text())
    steps = doc["steps"]
    lines = [f"{run_dir}: status {doc['status']}, wall {doc['wall_s']:.0f}s, {len(steps)} steps"]
    lines.append(f"{'phase':6} {'target':12} {'verdict':7} {'total':>6} {'build':>6} "
                 f"{'boot+run':>8}")
    builds, runs = [], []
    for s in steps:
        b = sum(a["build_s"] for a in s["attempts"])
        r = sum(a["run_s"] for a in s["attempts"])
        builds.append(b)
        runs.append(r)
        lines.append(f"{s['phase']:6} {s['target'][:12]:12} {s['verdict']:7} "
                     f"{s['seconds']:>5.0f}s {b:>5.0f}s {r:>7.0f}s")
    if steps:
        lines.append(f"median per step: build {statistics.median(builds):.0f}s, boot+run "
                     f"{statistics.median(runs):.0f}s, total "
                     f"{statistics.median(s['seconds'] for s in steps):.0f}s")
    return "\n".join(lines)


# CPU time, not wall time: a step that has to share a core takes longer, as a TCG guest does.
BURN = ("import time,sys\nt=time.process_time()+float(sys.argv[1])\n"
        "while time.process_time()<t: pass")


def _burn(seconds: float) -> None:
    import subprocess

    subprocess.run([sys.executable, "-c", BURN, str(seconds)], check=True)


def synthetic(n: int, step_s: float, workers: list[int], repeats: int) -> str:
    """Rounds and wall time of plain bisection vs n-section, culprits spread over the history."""
    import os
    from concurrent.futures import ThreadPoolExecutor

    from harness.bisect.nsection import nsection
    from harness.bisect.series import search
    from harness.bisect.verdict import Verdict

    culprits = [max(1, round(n * f)) for f in (0.13, 0.5, 0.77, 1.0)]

    def verdict(k: int, fb: int) -> Verdict:
        return Verdict.BAD if k >= fb else Verdict.GOOD

    rows: dict[str, tuple[list[int], list[float]]] = {}
    for _rep in range(repeats):
        for fb in culprits:
            calls = [0]

            def step(k: int, fb: int = fb, calls: list[int] = calls) -> Verdict:
                calls[0] += 1
                _burn(step_s)
                return verdict(k, fb)

            t0 = time.monotonic()
            assert search(0, n, step).first_bad == fb
            r, w = rows.setdefault("plain", ([], []))
            r.append(calls[0])
            w.append(time.monotonic() - t0)
            for k in workers:
                with ThreadPoolExecutor(max_workers=k - 1) as pool:
                    def run_round(ks: list[int], fb: int = fb,
                                  pool: ThreadPoolExecutor = pool) -> dict[int, Verdict]:
                        list(pool.map(lambda _k: _burn(step_s), ks))
                        return {x: verdict(x, fb) for x in ks}

                    t0 = time.monotonic()
                    res = nsection(0, n, k, run_round)
                    assert res.first_bad == fb
                r, w = rows.setdefault(f"K={k}", ([], []))
                r.append(len(res.rounds))
                w.append(time.monotonic() - t0)
    base = statistics.median(rows["plain"][1])
    lines = [f"synthetic history of {n} targets, culprits at {culprits}, step {step_s}s of "
             f"one core, {repeats} repeat(s), {os.cpu_count()} cores",
             f"{'mode':8} {'rounds (median)':>16} {'wall s (median)':>16} {'vs plain':>9}"]
    for mode, (r, w) in rows.items():
        lines.append(f"{mode:8} {statistics.median(r):>16.1f} {statistics.median(w):>16.1f} "
                     f"{statistics.median(w) / base:>9.2f}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--synthetic":
        import argparse

        ap = argparse.ArgumentParser()
        ap.add_argument("--synthetic", type=int, default=64)
        ap.add_argument("--step-s", type=float, default=1.0)
        ap.add_argument("--workers", default="2,3,4")
        ap.add_argument("--repeats", type=int, default=3)
        a = ap.parse_args(argv)
        print(synthetic(a.synthetic, a.step_s, [int(x) for x in a.workers.split(",")],
                        a.repeats))
        return 0
    if len(argv) == 2 and argv[0] == "--report":
        print(report(Path(argv[1])))
        return 0
    from harness.cli import main as harness_main

    if "--run-dir" not in argv:
        argv = [*argv, "--run-dir", f"/tmp/bisect-bench-{time.strftime('%Y%m%d-%H%M%S')}"]
    run_dir = Path(argv[argv.index("--run-dir") + 1])
    t0 = time.monotonic()
    rc = harness_main(["bisect", *argv])
    print(f"harness bisect exit {rc} after {time.monotonic() - t0:.0f}s")
    if (run_dir / "results.json").is_file():
        print(report(run_dir))
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
