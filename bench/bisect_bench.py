"""Bisect cost: wall time and per-step cost (build vs boot+scenario) of a ``harness bisect`` run.

Either runs a bisect (the same options as ``harness bisect``) and then reports,
or reports on an existing run directory:

    python bench/bisect_bench.py --repo R --good G --bad B --check clamping --run-dir /tmp/b
    python bench/bisect_bench.py --report /tmp/b

The e2e numbers for the issue come from ``pytest -m vm tests/vm/test_bisect.py -s``,
which prints the same summary.
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


def main(argv: list[str]) -> int:
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
