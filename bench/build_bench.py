"""Benchmark the kernel build path (issue: kernel builds). Not a test: prints numbers.

Measures, with medians of --reps runs on this machine:
  * warm no-op: `build_kernel()` of an already-built request (cache hit, no make);
  * one changed .c: a variant series that adds one comment line to a .c file, built through
    the harness (sync + config + make + store), alternating two variants so each run changes it;
  * raw make of the same change, side by side: touch the same file in the harness's tree and
    run the same `make bzImage` command directly -- the overhead ratio is harness / raw.

Usage: .venv/bin/python bench/build_bench.py [--reps 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from harness.kernel.build import BuildRequest, KernelBuilder, build_kernel, resolve_inputs
from harness.kernel.source import resolve_source


def _variant_patch(n: int) -> str:
    """Add one comment line at the top of mm/vmpressure.c (before its licence header)."""
    head = (resolve_source(None).read_base("mm/vmpressure.c") or b"").decode().splitlines()
    ctx = "".join(f" {ln}\n" for ln in head[0:3])
    return ("diff --git a/mm/vmpressure.c b/mm/vmpressure.c\n--- a/mm/vmpressure.c\n"
            "+++ b/mm/vmpressure.c\n@@ -1,3 +1,4 @@\n"
            f"+/* bench variant {n} */\n" + ctx)


def _variant_series(tmp: Path, n: int) -> Path:
    d = tmp / f"v{n}"
    d.mkdir(exist_ok=True)
    (d / "0001-bench.patch").write_text(_variant_patch(n))
    (d / "series").write_text("0001-bench.patch\n")
    return d


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    base = BuildRequest()
    build_kernel(base)  # warm
    noop = []
    for _ in range(args.reps):
        t = time.monotonic()
        build_kernel(base)
        noop.append(time.monotonic() - t)
    harness_t, raw_t = [], []
    with tempfile.TemporaryDirectory() as tmpd:
        tmp = Path(tmpd)
        for i in range(args.reps):
            series = (*base.series, _variant_series(tmp, int(time.time() * 1000) + i))
            req = BuildRequest(series=series)
            t = time.monotonic()
            build_kernel(req)
            harness_t.append(time.monotonic() - t)
            # Raw make of the same one-file change in the same tree and build dir.
            kb = KernelBuilder(resolve_inputs(req))
            target = kb.tree.root / "mm/vmpressure.c"
            os.utime(target)
            cmd = ["make", "-C", str(kb.tree.root), f"O={kb.build_dir}", "ARCH=x86_64",
                   f"-j{os.cpu_count()}", "CC=ccache gcc", "HOSTCC=ccache gcc", "bzImage"]
            t = time.monotonic()
            subprocess.run(cmd, env=kb.env, check=True, stdout=subprocess.DEVNULL)
            raw_t.append(time.monotonic() - t)
    res = {
        "reps": args.reps,
        "noop_median_s": round(statistics.median(noop), 3),
        "one_c_file_harness_median_s": round(statistics.median(harness_t), 2),
        "one_c_file_raw_make_median_s": round(statistics.median(raw_t), 2),
        "overhead_ratio": round(statistics.median(harness_t) / statistics.median(raw_t), 3),
        "samples": {"noop": noop, "harness": harness_t, "raw": raw_t},
    }
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
