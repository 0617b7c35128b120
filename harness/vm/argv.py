"""The QEMU command line, as a pure function of a VMConfig and the run's paths.

Pure so it is unit-testable without QEMU and so the exact command line can be
written to ``qemu-cmdline.txt`` for a human to re-run by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness import rundir
from harness.arch import Arch
from harness.image.build import NONCE_PARAM
from harness.image.rootfs import HOST_PARAM, HOST_TAG, OVERLAY_NAME, ROOT_PARAM, root_device
from harness.vm.config import VMConfig

#: virtio-serial port the guest writes its event stream to; the host reads the file QEMU
#: fills (``RunPaths.events_log``), so events reach the host without an SSH command per poll.
EVENTS_PORT = "harness.events"
# Explicit PCI slots for the root filesystem's device, after every other device's, one
# each so they can never collide. Under qboot only some slots get interrupts on our kernels
# (no ACPI, no MSI: INTx as qboot's MP table routes it). Measured: at the next free slot,
# 00:07.0, this disk, virtio-serial and a 9p share all hang (under SeaBIOS all work); with
# the 9p share, 0x10, 0x12, 0x14 and 0x18 work, 0x11, 0x13 and 0x15 hang its first lookups.
ROOT_DISK_SLOT = "0x10"  # the root disk (a debian rootfs): probed after the swap disk
HOST_SHARE_SLOT = "0x12"  # the host's / over virtio-9p (a host rootfs)


@dataclass(frozen=True)
class RunPaths:
    """Files one QEMU run uses; all live in the (0700) run directory."""

    console_log: Path
    qmp_socket: Path
    initrd: Path
    swap_image: Path | None  # None = no swap disk
    events_log: Path | None = None  # the guest's virtio-serial event stream, as QEMU wrote it
    root_overlay: Path | None = None  # the run's qcow2 over a root image (None: initramfs root)

    @staticmethod
    def in_dir(run_dir: Path, swap: bool, qmp_socket: Path | None = None,
               root: bool = False) -> RunPaths:
        return RunPaths(
            console_log=run_dir / rundir.CONSOLE,
            qmp_socket=qmp_socket or run_dir / "qmp.sock",
            initrd=run_dir / "initrd.cpio",
            swap_image=run_dir / "swap.img" if swap else None,
            events_log=run_dir / "guest-events.log",
            root_overlay=run_dir / OVERLAY_NAME if root else None,
        )


def kernel_cmdline(cfg: VMConfig, nonce: str) -> str:
    """The guest kernel's command line.

    ``panic=-1`` + ``-no-reboot``: a panicking guest makes QEMU exit, never hang. The
    console device and any parameter of the architecture's own (x86_64's ``no_timer_check``)
    come from its record in :mod:`harness.arch`.
    """
    arch = cfg.arch_record
    parts = [f"console={arch.console}", "panic=-1", *arch.cmdline, f"{NONCE_PARAM}={nonce}"]
    if cfg.rootfs_image is not None:  # the disk after the swap disk (build_argv's order)
        parts.append(f"{ROOT_PARAM}={root_device(cfg.swap_mib > 0)}")
    if cfg.host_root:
        parts.append(HOST_PARAM)
    if cfg.cmdline_extra.strip():
        parts.append(cfg.cmdline_extra.strip())
    return " ".join(parts)


def firmware(arch: Arch) -> Path | None:
    """The architecture's -bios file when it is installed (qboot for x86_64: measured 0.45 s
    faster per boot than SeaBIOS under TCG on this project's machines), else None."""
    return arch.bios if arch.bios is not None and arch.bios.exists() else None


def build_argv(
    cfg: VMConfig,
    paths: RunPaths,
    *,
    accel: str,
    ssh_port: int,
    nonce: str,
    bios: Path | None = None,
    qemu: str | None = None,
) -> list[str]:
    """Build QEMU's argv. ``accel`` is the resolved "kvm" or "tcg", never "auto".

    ``bios`` is normally :func:`firmware` of the architecture; ``qemu`` defaults to the
    architecture's binary.
    """
    if accel not in ("kvm", "tcg"):
        raise ValueError(f"accel must be resolved to kvm or tcg, not {accel!r}")
    arch = cfg.arch_record
    argv = [
        qemu or arch.qemu,
        "-M", cfg.qemu_machine,
        *(["-cpu", cpu] if (cpu := arch.cpu_for(accel)) else []),
        "-accel", accel,
        "-m", f"{cfg.ram_mib}M",
        "-smp", str(cfg.smp),
        "-nodefaults",
        "-no-user-config",
        "-display", "none",
        "-no-reboot",
    ]
    if bios is not None:
        argv += ["-bios", str(bios)]
    argv += [
        "-kernel", str(cfg.kernel),
        "-initrd", str(paths.initrd),
        "-append", kernel_cmdline(cfg, nonce),
        "-serial", f"file:{paths.console_log}",
        "-qmp", f"unix:{paths.qmp_socket},server=on,wait=off",
        "-device", "pvpanic-pci",
        "-device", "virtio-balloon-pci,id=balloon0",
        "-device", "virtio-rng-pci",
        "-netdev", f"user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:{ssh_port}-:22",
        "-device", "virtio-net-pci,netdev=n0",
    ]
    if paths.swap_image is not None:
        argv += ["-drive", f"file={paths.swap_image},if=virtio,format=raw,cache=unsafe"]
    if paths.root_overlay is not None:
        # At its explicit slot (ROOT_DISK_SLOT: which slots get interrupts under qboot).
        argv += ["-drive", f"file={paths.root_overlay},if=none,id=root,format=qcow2,cache=unsafe",
                 "-device", f"virtio-blk-pci,drive=root,addr={ROOT_DISK_SLOT}"]
    if cfg.host_root:
        # Read-only: the guest (a kernel under test) must never write the host's files; its
        # writes go to the tmpfs overlay the guest's /init puts on top.
        argv += ["-fsdev", f"local,id={HOST_TAG},path=/,security_model=none,readonly=on",
                 "-device", f"virtio-9p-pci,fsdev={HOST_TAG},mount_tag={HOST_TAG},"
                 f"addr={HOST_SHARE_SLOT}"]
    if paths.events_log is not None:
        argv += ["-device", "virtio-serial-pci,id=vser0",
                 "-chardev", f"file,id=hev,path={paths.events_log}",
                 "-device", f"virtserialport,bus=vser0.0,chardev=hev,name={EVENTS_PORT}"]
    return argv
