"""Every figure of the README's Performance table, measured side by side in one run, each against
its baseline.

    .venv/bin/python -m bench all [-n 5] [--with-run] [--with-repeat [--repeat 10]]
        [--json bench.json] [--kernel BZIMAGE]
    .venv/bin/python -m bench arches [-n 5] [--json bench-arches.json]

``arches``: the floor boot and boot to SSH-ready of the flagship kernel on every architecture
and page size (x86_64, arm64 4k, arm64 64k), each as a ratio to that architecture's own floor
(an emulated arm64 is slower than an emulated x86_64 on this host: only the ratios compare).

Boot figures are sampled round-robin (floor, SSH-ready, ``harness boot``, floor, ...) so
that the machine's load, which on a shared 2-core host swings by 3x within minutes, hits
each figure alike; the ratio of medians is what counts, the absolute seconds are only as
good as the load average printed next to them. Build figures follow (a pair per sample,
under the lineage lock), then the optional warm ``harness run`` (minutes per sample).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.boot_time import harness_boot_process, ready_once
from bench.build_bench import rebuild_pair
from bench.floor import floor_boot
from bench.run_bench import repeat_run_process, warm_run_process


@dataclass
class Figure:
    """One measured quantity: samples (s) and the 1-minute load average at each."""

    name: str
    what: str
    baseline: str | None = None
    goal: str = ""
    goal_ratio: float | None = None
    goal_s: float | None = None
    samples: list[float] = field(default_factory=list)
    loads: list[float] = field(default_factory=list)
    notes: list[Any] = field(default_factory=list)

    def add(self, fn: Callable[[], float]) -> float:
        return self.record(fn())

    def record(self, value: float) -> float:
        self.samples.append(value)
        self.loads.append(os.getloadavg()[0])
        return value

    @property
    def median(self) -> float | None:
        return statistics.median(self.samples) if self.samples else None


def ratio(fig: Figure, figs: dict[str, Figure]) -> float | None:
    """Median over the baseline's median, both measured in this run."""
    if fig.baseline is None or fig.median is None:
        return None
    base = figs[fig.baseline].median
    return fig.median / base if base else None


def table(figs: dict[str, Figure]) -> str:
    rows = [("figure", "median", "range", "vs", "ratio", "goal", "load 1m")]
    for f in figs.values():
        if f.median is None:
            continue
        r = ratio(f, figs)
        rows.append((f.what, f"{f.median:.2f} s", f"{min(f.samples):.2f}-{max(f.samples):.2f}",
                     figs[f.baseline].what if f.baseline else "-",
                     f"{r:.2f}x" if r is not None else "-", f.goal or "-",
                     f"{min(f.loads):.1f}-{max(f.loads):.1f}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
                     for row in rows)


def to_json(figs: dict[str, Figure], args: argparse.Namespace, started: float,
            load_start: tuple[float, float, float]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "n": args.n, "cpus": os.cpu_count(), "accel": "tcg",
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "duration_s": round(time.time() - started, 1),
        "loadavg_start": [round(x, 2) for x in load_start],
        "loadavg_end": [round(x, 2) for x in os.getloadavg()],
        "figures": {},
    }
    for f in figs.values():
        if f.median is None:
            continue
        r = ratio(f, figs)
        out["figures"][f.name] = {
            "what": f.what, "median_s": round(f.median, 3),
            "samples_s": [round(s, 3) for s in f.samples],
            "loadavg_1m": [round(x, 2) for x in f.loads],
            "baseline": f.baseline, "ratio": round(r, 3) if r is not None else None,
            "goal": f.goal or None,
            "meets_goal": (r <= f.goal_ratio if f.goal_ratio and r is not None else
                           f.median <= f.goal_s if f.goal_s else None),
            "notes": f.notes,
        }
    return out


def run_all(args: argparse.Namespace) -> dict[str, Figure]:
    kernel = args.kernel
    if kernel is None:
        from harness.kernel.build import BuildRequest, build_kernel
        kernel = build_kernel(BuildRequest()).bzimage
    figs = {f.name: f for f in (
        Figure("floor_boot", "floor boot (busybox /init reboots)"),
        Figure("ssh_ready", "boot to SSH-ready", "floor_boot", "<= 1.6x", goal_ratio=1.6),
        Figure("harness_boot", "`harness boot` process", "floor_boot", "<= 2x", goal_ratio=2.0),
        Figure("ssh_ready_debian", "boot to SSH-ready, debian rootfs", "floor_boot"),
        Figure("raw_make", "raw make, one-line .c change"),
        Figure("harness_rebuild", "harness rebuild, one-line .c change", "raw_make",
               "<= 1.15x", goal_ratio=1.15),
        Figure("warm_run", "warm `harness run`", None, "<= 60 s median", goal_s=60.0),
        Figure("serial_runs", f"{args.repeat} serial warm runs ({args.repeat} x each warm run)"),
        Figure("repeat_run", f"`harness run --repeat {args.repeat}`", "serial_runs",
               "<= 150 s", goal_s=150.0),
    )}
    debian: Path | None = None
    if not args.no_boot:
        ready_once(kernel)  # warm: image cache, page cache, accel verdict
        from harness.image.rootfs import build_debian

        debian = build_debian().image  # the default package set; built once if not cached
        ready_once(kernel, rootfs=debian)
    for i in range(0 if args.no_boot else args.n):
        for name, fn in (("floor_boot", lambda: floor_boot(kernel)),
                         ("ssh_ready", lambda: ready_once(kernel)),
                         ("ssh_ready_debian", lambda: ready_once(kernel, rootfs=debian)),
                         ("harness_boot", lambda: harness_boot_process(kernel))):
            v = figs[name].add(fn)
            log(f"[{i + 1}/{args.n}] {name}: {v:.2f} s (load {os.getloadavg()[0]:.1f})")
    if not args.no_build:
        with tempfile.TemporaryDirectory(prefix="bench-build-") as d:
            for i in range(args.n):
                pair = rebuild_pair(Path(d), int(time.time() * 1000) + i)
                figs["harness_rebuild"].record(float(pair["harness_s"]))  # type: ignore[arg-type]
                figs["raw_make"].record(float(pair["raw_make_s"]))  # type: ignore[arg-type]
                figs["harness_rebuild"].notes.append(
                    {k: pair[k] for k in ("configure", "objects_compiled", "durations_s")})
                log(f"[{i + 1}/{args.n}] rebuild: harness {pair['harness_s']:.2f} s, raw make "
                    f"{pair['raw_make_s']:.2f} s ({pair['configure']})")
    if args.with_run:
        for i in range(args.n):
            wall, rc = warm_run_process()
            figs["warm_run"].record(wall)
            figs["warm_run"].notes.append({"exit_status": rc})
            log(f"[{i + 1}/{args.n}] warm run: {wall:.1f} s (exit {rc})")
            figs["serial_runs"].record(args.repeat * wall)
    if args.with_repeat:
        for i in range(args.n):
            wall, rc, res = repeat_run_process(args.repeat)
            figs["repeat_run"].record(wall)
            figs["repeat_run"].notes.append({"exit_status": rc, **res})
            log(f"[{i + 1}/{args.n}] run --repeat {args.repeat}: {wall:.1f} s (exit {rc}, "
                f"{res['checks']})")
    return figs


#: (figure prefix, architecture, page size) that ``bench arches`` measures.
ARCH_KERNELS = (("x86_64", "x86_64", None), ("arm64_4k", "arm64", "4k"),
                ("arm64_64k", "arm64", "64k"))


def run_arches(args: argparse.Namespace) -> dict[str, Figure]:
    """Floor and SSH-ready per architecture, round-robin over all of them each sample."""
    from harness.arch import get_arch
    from harness.kernel.build import BuildRequest, build_kernel

    kernels = {p: (build_kernel(BuildRequest(arch=a, page_size=ps)).bzimage, get_arch(a))
               for p, a, ps in ARCH_KERNELS}
    figs: dict[str, Figure] = {}
    for p, a, ps in ARCH_KERNELS:
        label = f"{a}{' ' + ps if ps else ''}"
        figs[f"{p}_floor"] = Figure(f"{p}_floor", f"{label}: floor boot")
        figs[f"{p}_ssh_ready"] = Figure(f"{p}_ssh_ready", f"{label}: boot to SSH-ready",
                                        f"{p}_floor", "<= 1.6x", goal_ratio=1.6)
    for k, arch in kernels.values():
        ready_once(k, arch=arch)  # warm: image cache, page cache
    for i in range(args.n):
        for p, (k, arch) in kernels.items():
            for name, fn in ((f"{p}_floor", lambda k=k, arch=arch: floor_boot(k, arch=arch)),
                             (f"{p}_ssh_ready", lambda k=k, arch=arch: ready_once(k, arch=arch))):
                v = figs[name].add(fn)
                log(f"[{i + 1}/{args.n}] {name}: {v:.2f} s (load {os.getloadavg()[0]:.1f})")
    return figs


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("all", help="every figure, side by side, medians of N")
    a.add_argument("-n", type=int, default=5, help="samples per figure (default 5)")
    a.add_argument("--kernel", type=Path, help="bzImage (default: the cached flagship kernel)")
    a.add_argument("--with-run", action="store_true", help="also N warm `harness run`s (long)")
    a.add_argument("--with-repeat", action="store_true",
                   help="also N `harness run --repeat R` (long); with --with-run, as a ratio "
                   "to R serial warm runs")
    a.add_argument("--repeat", type=int, default=10, metavar="R",
                   help="repeats of --with-repeat (default 10)")
    a.add_argument("--no-build", action="store_true", help="skip the rebuild figures")
    a.add_argument("--no-boot", action="store_true", help="skip the boot figures")
    a.add_argument("--json", type=Path, default=Path("bench.json"), help="default bench.json")
    x = sub.add_parser("arches", help="floor and SSH-ready per architecture, medians of N")
    x.add_argument("-n", type=int, default=5, help="samples per figure (default 5)")
    x.add_argument("--json", type=Path, default=Path("bench-arches.json"),
                   help="default bench-arches.json")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    started, load_start = time.time(), os.getloadavg()
    figs = run_arches(args) if args.cmd == "arches" else run_all(args)
    doc = to_json(figs, args, started, load_start)
    args.json.write_text(json.dumps(doc, indent=1) + "\n")
    print(table(figs))
    print(f"\n{os.cpu_count()} CPUs, TCG; load average at start "
          f"{' '.join(f'{x:.2f}' for x in load_start)}, at end "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; written to {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
