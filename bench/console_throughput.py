#!/usr/bin/env python3
"""Console classifier throughput on one core.

Feeds the golden corpus (tests/data/console/*.log), repeated to at least
``--mb`` MB, through one ConsoleClassifier in 64 KiB chunks (the size a VM
runtime reads from a pipe) and prints MB/s: the median of ``--runs`` runs.
The goal is >= 50 MB/s, so that classifying a console never limits a test.

    .venv/bin/python bench/console_throughput.py [--mb 100] [--runs 5] [--chunk 65536]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.console import ConsoleClassifier  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=float, default=100.0)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--chunk", type=int, default=65536)
    args = ap.parse_args()
    logs = sorted((ROOT / "tests" / "data" / "console").glob("*.log"))
    corpus = "".join(p.read_text() for p in logs)
    reps = int(args.mb * 1e6 / len(corpus.encode())) + 1
    text = corpus * reps
    size_mb = len(text.encode()) / 1e6
    chunks = [text[i : i + args.chunk] for i in range(0, len(text), args.chunk)]
    rates = []
    cpu_rates = []
    findings = 0
    for _ in range(args.runs):
        c = ConsoleClassifier()
        t0, c0 = time.perf_counter(), time.process_time()
        for chunk in chunks:
            c.feed(chunk)
        c.close()
        rates.append(size_mb / (time.perf_counter() - t0))
        cpu_rates.append(size_mb / (time.process_time() - c0))
        findings = len(c.findings)
    print(
        f"{len(logs)} logs x {reps} = {size_mb:.1f} MB, {findings} findings per run; "
        f"wall: {', '.join(f'{r:.1f}' for r in rates)} MB/s"
    )
    # On a shared machine wall time includes waiting for a core; CPU time
    # is what one uncontended core would take.
    print(f"median: {statistics.median(rates):.1f} MB/s wall, "
          f"{statistics.median(cpu_rates):.1f} MB/s per CPU second")
    return 0


if __name__ == "__main__":
    sys.exit(main())
