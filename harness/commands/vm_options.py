"""Shared CLI options for commands that boot a guest (``boot``, ``shell``, ...).

One place defines ``--kernel/--ram/--swap/--smp/--accel`` so every command
spells and validates them the same way.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from harness.arch import get_arch
from harness.core.spec import VMSettings
from harness.errors import UsageError
from harness.image import build_image
from harness.vm.config import ACCELS, VMConfig
from harness.vm.preflight import check_kernel_file, check_ram_on_host

log = logging.getLogger(__name__)
_VM = VMSettings()


def vm_settings_from_args(args: argparse.Namespace, base: VMSettings | None = None,
                          command: str | None = None) -> VMSettings:
    """``base`` (a scenario's [vm], else the defaults) with the options the user gave;
    ``command`` names the one asking (a host rootfs is exec's only)."""
    packages = tuple(getattr(args, "package", None) or ()) or None
    vm = (base or VMSettings()).override(
        ram_mib=args.ram, swap_mib=args.swap, smp=args.smp, boot_timeout_s=args.boot_timeout,
        rootfs=getattr(args, "rootfs", None), packages=packages)
    from harness.image import rootfs

    rootfs.check_kind(vm.rootfs, "--rootfs", command)
    if packages:
        rootfs.check_packages(packages, "--package")
        if vm.rootfs != "debian":
            raise UsageError("--package", f"only a debian rootfs has packages (--rootfs is "
                             f"{vm.rootfs!r})")
    return vm


def add_rootfs_options(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """--rootfs/--package: which root filesystem the guest boots (harness.image.rootfs)."""
    from harness.image.rootfs import DEFAULT_PACKAGES, HOST_FRAGMENT, HOST_ROOT, KINDS

    parser.add_argument("--rootfs", choices=KINDS,
                        help="the guest's root filesystem: initramfs (busybox, fastest), "
                        "debian (Debian 12 built by mmdebstrap, cached) or, for exec only, "
                        f"host (this machine's /, read-only over 9p with a tmpfs overlay, the "
                        f"command chrooted at {HOST_ROOT}; the build adds the {HOST_FRAGMENT} "
                        "config fragment); default: the scenario's, else initramfs")
    parser.add_argument("--package", action="append", metavar="NAME",
                        help="a Debian package for --rootfs debian; repeatable (default: the "
                        f"scenario's [vm] packages, else {' '.join(DEFAULT_PACKAGES)})")


def rootfs_image(vm: VMSettings, arch: str | None = None) -> Path | None:
    """The root image ``vm`` boots (built or cached; None: the initramfs)."""
    from harness.image import rootfs

    return rootfs.resolve(vm.rootfs, vm.packages, "--rootfs", arch)


def add_guest_shape(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """--ram/--swap/--smp/--accel: what every command that boots guests takes, bisect too."""
    # No defaults here: None means "the scenario's [vm], else harness.core.spec.VMSettings",
    # the one place guest defaults live.
    parser.add_argument("--ram", type=int, metavar="MiB",
                        help=f"guest RAM (default: the scenario's, else {_VM.ram_mib})")
    parser.add_argument("--swap", type=int, metavar="MiB",
                        help=f"swap disk size, 0 for none (default: the scenario's, "
                        f"else {_VM.swap_mib})")
    parser.add_argument("--smp", type=int, metavar="N",
                        help=f"virtual CPUs (default: the scenario's, else {_VM.smp})")
    parser.add_argument("--accel", choices=ACCELS, default="auto",
                        help="auto uses KVM only if a guest is known to boot under it here")


def add_vm_arguments(parser: argparse.ArgumentParser) -> None:
    """The guest shape plus what a single boot takes: --kernel, --boot-timeout, --run-dir."""
    parser.add_argument("--kernel", type=Path, metavar="BZIMAGE",
                        help="kernel to boot (default: build the default kernel)")
    add_guest_shape(parser)
    add_rootfs_options(parser)
    parser.add_argument("--boot-timeout", type=float, metavar="S",
                        help=f"seconds to SSH-ready (default {_VM.boot_timeout_s:.0f})")
    parser.add_argument("--run-dir", type=Path, metavar="DIR",
                        help="where to keep console.log etc. (default: a new dir under runs/)")


def resolve_kernel(kernel: Path | None, arch: str | None = None,
                   page_size: str | None = None) -> Path:
    """The given kernel image (checked as ``arch``'s), or the default kernel of ``arch``
    (built or taken from the cache)."""
    rec = get_arch(arch)
    if kernel is not None:
        if not kernel.is_file():
            raise UsageError(f"--kernel {kernel}", "kernel image not found")
        check_kernel_file(kernel, rec, page_size)
        return kernel
    from harness.kernel.build import BuildRequest, build_kernel  # lazy: heavy, optional

    log.info("no --kernel given: building (or reusing) the default %s kernel", rec.name)
    return Path(build_kernel(BuildRequest(arch=rec.name, page_size=page_size)).bzimage)


def config_from_args(args: argparse.Namespace) -> VMConfig:
    """A validated VMConfig; the cheap checks run before any kernel is built."""
    from harness.commands.build import arch_from_args

    vm = vm_settings_from_args(args)
    arch, page = arch_from_args(args)
    check_ram_on_host(vm.ram_mib)
    kernel = resolve_kernel(args.kernel, arch, page)
    img = build_image(arch=get_arch(arch))
    cfg = VMConfig(kernel=kernel, initramfs=img.initramfs, ram_mib=vm.ram_mib,
                   swap_mib=vm.swap_mib, smp=vm.smp, accel=args.accel,
                   boot_timeout=vm.boot_timeout_s, arch=arch, rootfs_image=rootfs_image(vm, arch))
    cfg.validate()
    return cfg
