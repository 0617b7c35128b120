#!/usr/bin/env python3
"""Console classifier throughput on one core.

Feeds the golden corpus (tests/data/console/*.log), repeated to at least
``--mb`` MB, through one ConsoleClassifier in 64 KiB chunks (the size a VM
runtime reads from a pipe) and prints MB/s and lines/s: the median of
``--runs`` runs (``-n`` is the same option).
The goal is >= 100 MB/s per CPU second, so that classifying a console never
limits a test.

``--baseline REV`` also measures harness/console as of git revision REV on
the same corpus, alternating runs (new, old, new, old...) so that both see
the same machine load, and prints the ratio of the medians.  Each run is a
fresh process: the two versions are both ``harness.console``.

    .venv/bin/python bench/console_throughput.py [--mb 100] [--runs 5] [--chunk 65536]
    .venv/bin/python bench/console_throughput.py --baseline HEAD~3 --runs 7
    .venv/bin/python bench/console_throughput.py --logs '*clean*'   # a healthy run's console

The whole corpus is one report per ~10 KB, far denser than a real console,
so it measures the per-report work; ``--logs '*clean*'`` measures the common
case, where only the trigger-word scan runs.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "data" / "console"


def measure(mb: float, chunk: int, pattern: str = "*.log") -> dict[str, float]:
    """One run in this process: MB/s wall and per CPU second, findings."""
    from harness.console import ConsoleClassifier

    logs = sorted(CORPUS.glob(pattern))
    corpus = "".join(p.read_text() for p in logs)
    reps = int(mb * 1e6 / len(corpus.encode())) + 1
    text = corpus * reps
    size_mb = len(text.encode()) / 1e6
    lines = text.count("\n")
    chunks = [text[i : i + chunk] for i in range(0, len(text), chunk)]
    c = ConsoleClassifier()
    t0, c0 = time.perf_counter(), time.process_time()
    for piece in chunks:
        c.feed(piece)
    c.close()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {
        "mb": size_mb, "logs": len(logs), "reps": reps, "findings": len(c.findings),
        "wall": size_mb / wall, "cpu": size_mb / cpu, "lines": lines, "lines_cpu": lines / cpu,
    }


def run_worker(src: Path, mb: float, chunk: int, pattern: str) -> dict[str, float]:
    """One run in a fresh interpreter importing harness.console from ``src``."""
    code = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); sys.path.insert(1, sys.argv[2]);"
        "import console_throughput as b;"
        "print(json.dumps(b.measure(float(sys.argv[3]), int(sys.argv[4]), sys.argv[5])))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(src), str(ROOT / "bench"), str(mb), str(chunk),
         pattern],
        check=True, capture_output=True, text=True,
    ).stdout
    result: dict[str, float] = json.loads(out)
    return result


def export(rev: str, dest: Path) -> None:
    """harness/__init__.py and harness/console/ as of ``rev`` into ``dest``."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "harness/__init__.py", "harness/console"],
        check=True, capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=float, default=100.0)
    ap.add_argument("--runs", "-n", type=int, default=5)
    ap.add_argument("--chunk", type=int, default=65536)
    ap.add_argument("--baseline", metavar="REV", help="also measure harness/console at REV")
    ap.add_argument("--logs", default="*.log", help="glob of corpus logs (default: all)")
    args = ap.parse_args()
    variants = {"new": ROOT}
    tmp = Path(tempfile.mkdtemp(prefix="console-bench-"))
    try:
        if args.baseline:
            export(args.baseline, tmp)
            variants[args.baseline] = tmp
        results: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
        for _ in range(args.runs):
            for name, src in variants.items():
                results[name].append(run_worker(src, args.mb, args.chunk, args.logs))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    medians = {}
    for name, runs in results.items():
        first = runs[0]
        cpu = statistics.median(r["cpu"] for r in runs)
        wall = statistics.median(r["wall"] for r in runs)
        medians[name] = cpu
        lines = statistics.median(r["lines_cpu"] for r in runs)
        print(
            f"{name}: {first['logs']:.0f} logs x {first['reps']:.0f} = {first['mb']:.1f} MB "
            f"({first['lines'] / 1e6:.2f} M lines), "
            f"{first['findings']:.0f} findings; per CPU second: "
            f"{', '.join(format(r['cpu'], '.1f') for r in runs)} MB/s; "
            f"median {cpu:.1f} MB/s = {lines / 1e6:.2f} M lines/s per CPU second, "
            f"{wall:.1f} MB/s wall"
        )
    # On a shared machine wall time includes waiting for a core; CPU time
    # is what one uncontended core would take.
    if args.baseline:
        # Runs alternate, so run i of each saw about the same machine load:
        # the median of the per-pair ratios is steadier than the ratio of medians.
        runs = zip(results["new"], results[args.baseline], strict=True)
        pairs = [a["cpu"] / b["cpu"] for a, b in runs]
        print(f"ratio new/{args.baseline}: {medians['new'] / medians[args.baseline]:.2f} "
              f"(medians), {statistics.median(pairs):.2f} (median of {len(pairs)} pairs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
