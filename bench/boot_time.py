"""Boot-to-SSH-ready time under TCG: N repeated runs, median (goal <= 4 s).

Measures what a test pays per VM: from launching QEMU to an authenticated SSH
session, with the default image, 256 MiB RAM and 256 MiB swap. Optionally the
same for virtme-ng (``--vng``) if ``vng`` is installed, as the peer to beat.

    HARNESS_TEST_KERNEL=bzImage python bench/boot_time.py -n 5
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness.arch import X86_64, Arch
from harness.commands.vm_options import resolve_kernel
from harness.image import build_image
from harness.vm import Machine, VMConfig


def ready_once(kernel: Path, accel: str = "tcg", machine: str = VMConfig.machine,
               swap: int = 256, arch: Arch = X86_64, rootfs: Path | None = None) -> float:
    """Seconds from Machine.start() (keys, initrd, QEMU launch) to an authenticated SSH session;
    ``rootfs``: a root image (harness.image.rootfs) booted through its overlay instead."""
    img = build_image(arch=arch)
    cfg = VMConfig(kernel=kernel, initramfs=img.initramfs, ram_mib=256, swap_mib=swap,
                   accel=accel, boot_timeout=120, machine=machine, arch=arch.name,
                   rootfs_image=rootfs)
    with tempfile.TemporaryDirectory(prefix="bench-") as d:
        t0 = time.monotonic()
        with Machine(cfg, run_dir=Path(d) / "run") as vm:
            ready = time.monotonic() - t0
            vm.run("true", timeout=30)
    return ready


def harness_boot_process(kernel: Path, accel: str = "tcg") -> float:
    """Wall seconds of a whole ``harness boot`` process, from exec to exit status."""
    with tempfile.TemporaryDirectory(prefix="bench-boot-") as d:
        cmd = [sys.executable, "-m", "harness", "boot", "--kernel", str(kernel),
               "--accel", accel, "--run-dir", str(Path(d) / "run")]
        t0 = time.monotonic()
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
        wall = time.monotonic() - t0
    if r.returncode != 0:
        raise RuntimeError(f"harness boot exited {r.returncode}: {r.stderr.strip()[-500:]}")
    return wall


def bench_harness(kernel: Path, n: int, accel: str, machine: str, swap: int) -> list[float]:
    times = []
    for i in range(n):
        times.append(ready_once(kernel, accel, machine, swap))
        print(f"  run {i + 1}: {times[-1]:.2f} s", file=sys.stderr)
    return times


def bench_vng(kernel: Path, n: int) -> list[float] | None:
    vng = shutil.which("vng")
    if vng is None:
        return None
    times = []
    for _ in range(n):
        t0 = time.monotonic()
        subprocess.run([vng, "--run", str(kernel), "--disable-kvm", "--force-9p", "--", "true"],
                       capture_output=True, check=False, timeout=300)
        times.append(time.monotonic() - t0)
    return times


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=5)
    ap.add_argument("--kernel", type=Path, default=os.environ.get("HARNESS_TEST_KERNEL"))
    ap.add_argument("--accel", default="tcg")
    ap.add_argument("--machine", default=VMConfig.machine)
    ap.add_argument("--swap", type=int, default=256)
    ap.add_argument("--vng", action="store_true", help="also time virtme-ng if installed")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    kernel = resolve_kernel(Path(args.kernel) if args.kernel else None)
    load = os.getloadavg()[0]
    times = bench_harness(kernel, args.n, args.accel, args.machine, args.swap)
    result: dict[str, object] = {
        "what": "launch -> SSH-ready", "accel": args.accel, "machine": args.machine,
        "runs": [round(t, 3) for t in times], "median_s": round(statistics.median(times), 3),
        "goal_s": 4.0, "loadavg_at_start": round(load, 2), "cpus": os.cpu_count(),
    }
    vng = bench_vng(kernel, args.n) if args.vng else None
    if vng is not None:
        result["vng_median_s"] = round(statistics.median(vng), 3)
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print(f"boot to SSH-ready ({args.accel}, -M {args.machine or 'default'}): median "
              f"{result['median_s']} s of {args.n} (goal <= 4 s; load {load:.1f} on "
              f"{os.cpu_count()} CPUs)")
        if vng is not None:
            print(f"virtme-ng (TCG): median {result['vng_median_s']} s")
        elif args.vng:
            print("virtme-ng: not installed (pip install virtme-ng)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
