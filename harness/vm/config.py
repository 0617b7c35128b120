"""VMConfig: everything that defines one guest, as plain data.

Kept free of behaviour so that the argv builder stays a pure function of it
and a test can construct one without touching the machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.arch import DEFAULT_ARCH, Arch, get_arch
from harness.errors import UsageError

ACCELS = ("auto", "kvm", "tcg")
MIN_RAM_MIB = 32  # below this our tinyconfig kernel cannot unpack its initramfs
MAX_SMP = 64

# The guest shape every command starts from: a scenario's [vm] (core.spec.VMSettings) and
# the CLI override these, and a VMConfig made by hand gets the same.
DEFAULT_RAM_MIB = 256
DEFAULT_SWAP_MIB = 256
DEFAULT_SMP = 1
DEFAULT_BOOT_TIMEOUT_S = 120.0
DEFAULT_COMMAND_TIMEOUT_S = 300.0  # one SSH command, unless the caller says otherwise


@dataclass(frozen=True)
class VMConfig:
    """One guest's shape. ``swap_mib=0`` attaches no swap disk.

    ``boot_timeout`` bounds launch to SSH-ready; ``command_timeout`` is the
    default for :meth:`Machine.run`; ``run_timeout`` (None = unbounded) is a
    watchdog on the whole VM lifetime after which QEMU is killed and every
    further operation raises InfraError.
    """

    kernel: Path
    initramfs: Path
    ram_mib: int = DEFAULT_RAM_MIB
    swap_mib: int = DEFAULT_SWAP_MIB
    smp: int = DEFAULT_SMP
    accel: str = "auto"
    boot_timeout: float = DEFAULT_BOOT_TIMEOUT_S
    cmdline_extra: str = ""
    command_timeout: float = DEFAULT_COMMAND_TIMEOUT_S
    run_timeout: float | None = None
    machine: str = ""  # -M; "" = the architecture's (q35, virt)
    arch: str = DEFAULT_ARCH  # a name in harness.arch.ARCHES: QEMU binary, console, CPU
    # A root filesystem image (raw; harness.image.rootfs) the guest switches to after the
    # initramfs, through a throwaway overlay in the run dir; None: the initramfs is the root.
    rootfs_image: Path | None = None
    # The host's / over virtio-9p at harness.image.rootfs.HOST_ROOT (a host rootfs: exec's);
    # the kernel needs the rootfs-host fragment. Exclusive with rootfs_image.
    host_root: bool = False

    @property
    def arch_record(self) -> Arch:
        return get_arch(self.arch)

    @property
    def qemu_machine(self) -> str:
        return self.machine or self.arch_record.machine

    def validate(self) -> None:
        """Raise UsageError for options no QEMU run could satisfy."""
        get_arch(self.arch)
        if self.accel not in ACCELS:
            raise UsageError("--accel", f"must be one of {', '.join(ACCELS)}, not {self.accel!r}")
        if self.ram_mib < MIN_RAM_MIB:
            raise UsageError("--ram", f"{self.ram_mib} MiB is too small to boot "
                             f"(min {MIN_RAM_MIB})")
        if self.swap_mib < 0:
            raise UsageError("--swap", "must be >= 0")
        if not 1 <= self.smp <= MAX_SMP:
            raise UsageError("--smp", f"must be 1..{MAX_SMP}, not {self.smp}")
        if self.boot_timeout <= 0:
            raise UsageError("boot_timeout", "must be > 0")
        if not Path(self.kernel).is_file():
            raise UsageError(str(self.kernel), "kernel image not found")
        if not Path(self.initramfs).is_file():
            raise UsageError(str(self.initramfs), "initramfs not found")
        if self.rootfs_image is not None and not Path(self.rootfs_image).is_file():
            raise UsageError(str(self.rootfs_image), "root filesystem image not found")
        if self.host_root and self.rootfs_image is not None:
            raise UsageError("--rootfs", "one root filesystem at a time: host or an image")
