"""Shared CLI options for commands that boot a guest (``boot``, ``shell``, ...).

One place defines ``--kernel/--ram/--swap/--smp/--accel`` so every command
spells and validates them the same way.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from harness.errors import UsageError
from harness.image import build_image
from harness.vm.config import ACCELS, VMConfig

log = logging.getLogger(__name__)


def add_vm_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kernel", type=Path, metavar="BZIMAGE",
                        help="kernel to boot (default: build the default kernel)")
    parser.add_argument("--ram", type=int, default=256, metavar="MiB", help="guest RAM")
    parser.add_argument("--swap", type=int, default=256, metavar="MiB",
                        help="swap disk size, 0 for none")
    parser.add_argument("--smp", type=int, default=1, metavar="N", help="virtual CPUs")
    parser.add_argument("--accel", choices=ACCELS, default="auto",
                        help="auto uses KVM only if a guest is known to boot under it here")
    parser.add_argument("--boot-timeout", type=float, default=120.0, metavar="S")
    parser.add_argument("--run-dir", type=Path, metavar="DIR",
                        help="where to keep console.log etc. (default: a new dir under runs/)")


def resolve_kernel(kernel: Path | None) -> Path:
    """The given bzImage, or the default kernel (built or taken from the cache)."""
    if kernel is not None:
        if not kernel.is_file():
            raise UsageError(str(kernel), "kernel image not found")
        return kernel
    from harness.kernel.build import BuildRequest, build_kernel  # lazy: heavy, optional

    log.info("no --kernel given: building (or reusing) the default kernel")
    return Path(build_kernel(BuildRequest()).bzimage)


def config_from_args(args: argparse.Namespace) -> VMConfig:
    kernel = resolve_kernel(args.kernel)
    img = build_image()
    cfg = VMConfig(kernel=kernel, initramfs=img.initramfs, ram_mib=args.ram,
                   swap_mib=args.swap, smp=args.smp, accel=args.accel,
                   boot_timeout=args.boot_timeout)
    cfg.validate()
    return cfg
