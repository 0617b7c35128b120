"""Benchmark the kernel build path (issue: kernel builds). Not a test: prints numbers.

Measures, with medians of --reps runs on this machine:
  * warm no-op: `build_kernel()` of an already-built request (cache hit, no make);
  * one changed .c: a variant series that adds one comment line to a .c file, built through
    the harness (resolve inputs + sync + configure-or-skip + make + store), a new variant
    each run so each run changes it;
  * raw make of the same kind of change, side by side: write another one-line variant of the
    same file into the harness's tree and run the same `make bzImage` command directly. Both
    are ccache misses of the same file (a mere touch would be a ccache hit and flatter the raw
    side); the overhead ratio is harness / raw.
Each pair holds the lineage lock, so no other build of the same source can change the tree or
the build directory between (or during) its parts, and starts with an untimed warm-up build of
another variant: the build directory is shared by every build of the lineage (other series,
other fragments), and without the warm-up a pair after someone else's build would time their
reconfigure and recompile, not a one-line change.

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

from harness.kernel import build as kbuild
from harness.kernel.build import BuildRequest, KernelBuilder, build_kernel, resolve_inputs
from harness.kernel.source import resolve_source
from harness.kernel.tree import _atomic_write

TARGET = "mm/vmpressure.c"


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


def rebuild_pair(tmp: Path, n: int) -> dict[str, object]:
    """One harness one-file rebuild and one raw make of a one-line change, side by side."""
    base = BuildRequest()
    warm = BuildRequest(series=(*base.series, _variant_series(tmp, -n)))
    req = BuildRequest(series=(*base.series, _variant_series(tmp, n)))
    lineage = resolve_inputs(base).source.lineage
    with kbuild._lineage_lock(lineage):
        t = time.monotonic()
        KernelBuilder(resolve_inputs(warm), warm.jobs).run()  # builds even on a cache hit
        warmup_s = time.monotonic() - t
        kbuild.toolchain_id.cache_clear()  # a real `harness build` process asks gcc/ld again
        t = time.monotonic()
        inputs = resolve_inputs(req)
        assert kbuild.cached_artifact(inputs.cache_key()) is None
        art = KernelBuilder(inputs, req.jobs).run()
        harness_s = time.monotonic() - t
        kb = KernelBuilder(inputs)
        target = kb.tree.root / TARGET
        text = target.read_text()
        _atomic_write(target, text.replace(f"/* bench variant {n} */",
                                           f"/* bench variant {n} raw */", 1).encode())
        arch = inputs.arch
        cmd = ["make", "-C", str(kb.tree.root), f"O={kb.build_dir}", f"ARCH={arch.make_arch}",
               f"-j{os.cpu_count()}", "CC=ccache gcc", "HOSTCC=ccache gcc", arch.make_target]
        t = time.monotonic()
        subprocess.run(cmd, env=kb.env, check=True, stdout=subprocess.DEVNULL)
        raw_s = time.monotonic() - t
    return {"harness_s": harness_s, "raw_make_s": raw_s, "warmup_s": warmup_s,
            "configure": art.metadata.get("configure"),
            "objects_compiled": art.metadata.get("objects_compiled"),
            "durations_s": art.metadata.get("durations_s")}


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
    harness_t: list[float] = []
    raw_t: list[float] = []
    with tempfile.TemporaryDirectory() as tmpd:
        tmp = Path(tmpd)
        for i in range(args.reps):
            pair = rebuild_pair(tmp, int(time.time() * 1000) + i)
            harness_t.append(float(pair["harness_s"]))  # type: ignore[arg-type]
            raw_t.append(float(pair["raw_make_s"]))  # type: ignore[arg-type]
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
