"""The boot floor: the same kernel and the same QEMU command line, with an init that reboots.

The initramfs holds only a static busybox and an ``/init`` that runs ``reboot -f``;
with ``-no-reboot`` QEMU exits as soon as the guest reaches user space. Everything the
harness adds on top (its image, dropbear, SSH, QMP, Python) is what a boot measured
against this floor costs beyond the kernel itself. The QEMU argv comes from
:func:`harness.vm.argv.build_argv`, so the floor follows any device the harness adds.

    .venv/bin/python -m bench.floor --kernel BZIMAGE [-n 5]
"""

from __future__ import annotations

import argparse
import io
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from harness.arch import X86_64, Arch
from harness.image.cpio import Entry, write_newc
from harness.vm.argv import RunPaths, build_argv, firmware
from harness.vm.config import VMConfig
from harness.vm.ports import free_port
from harness.vm.swap import make_swap_image


def init_script(arch: Arch) -> bytes:
    """The floor's /init: power off at once, the architecture's way."""
    return f"#!/bin/busybox sh\n/bin/busybox {arch.poweroff}\n".encode()


def floor_initrd(out: Path, arch: Arch = X86_64) -> Path:
    """Write the reboot-at-once initramfs to ``out`` (the architecture's static busybox)."""
    entries = [
        Entry.dir("/bin"), Entry.dir("/dev"),
        Entry.file("/bin/busybox", arch.userland("/bin/busybox").read_bytes(), 0o755),
        Entry.chardev("/dev/console", 5, 1),
        Entry.file("/init", init_script(arch), 0o755),
    ]
    buf = io.BytesIO()
    write_newc(buf, entries)
    out.write_bytes(buf.getvalue())
    return out


def floor_boot(kernel: Path, ram_mib: int = 256, swap_mib: int = 256,
               timeout: float = 120.0, arch: Arch = X86_64) -> float:
    """Wall seconds of one QEMU process from exec to exit (guest rebooted at /init)."""
    with tempfile.TemporaryDirectory(prefix="bench-floor-") as d:
        run = Path(d)
        paths = RunPaths.in_dir(run, swap_mib > 0)
        floor_initrd(paths.initrd, arch)
        if paths.swap_image is not None:
            make_swap_image(paths.swap_image, swap_mib)
        cfg = VMConfig(kernel=kernel, initramfs=paths.initrd, ram_mib=ram_mib,
                       swap_mib=swap_mib, accel="tcg", arch=arch.name)
        argv = build_argv(cfg, paths, accel="tcg", ssh_port=free_port(), nonce="floor",
                          bios=firmware(arch))
        t0 = time.monotonic()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, cwd=run)
        try:
            _, err = proc.communicate(timeout=timeout)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        wall = time.monotonic() - t0
        console = paths.console_log.read_text(errors="replace")
        if "Run /init" not in console and "reboot: Restarting" not in console:
            raise RuntimeError(f"floor boot did not reach /init (status {proc.returncode}): "
                               f"{err.decode(errors='replace')[-500:]}")
        return wall


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kernel", type=Path, required=True)
    ap.add_argument("-n", type=int, default=5)
    args = ap.parse_args()
    if shutil.which(X86_64.qemu) is None:
        raise SystemExit(f"{X86_64.qemu} not found")
    times = [floor_boot(args.kernel) for _ in range(args.n)]
    print(f"floor boot: median {statistics.median(times):.3f} s of {args.n}: "
          + " ".join(f"{t:.2f}" for t in times))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
