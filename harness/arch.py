"""Architectures as data: one frozen record per guest architecture, read everywhere.

Like the KUnit tool's ``qemu_configs/*.py``: the build (``ARCH``, ``CROSS_COMPILE``, the make
target and where the image lands), the guest image (where the architecture's busybox, dropbear
and sftp-server live on the host, and its multiarch library directories), the workloads and
kselftests (the cross compiler), the QEMU command line (binary, machine, CPU, firmware,
console device), KVM (only on a host of the same architecture), bench, KCIDB and the matrix
all take their facts from :data:`ARCHES`. Nothing else in the harness names an architecture.

This module sits at the bottom layer (``scripts/check-layers``): it imports nothing of the
harness but :mod:`harness.errors`.
"""

from __future__ import annotations

import platform
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import UsageError

DEFAULT_ARCH = "x86_64"
DEFAULT_PAGE_SIZE = "4k"
PAGE_SIZES = {"4k": 4096, "16k": 16384, "64k": 65536}


@dataclass(frozen=True)
class Arch:
    """Everything the harness needs to know to build, image and boot one architecture."""

    name: str  # what --arch takes, metadata.json's "arch", KCIDB's "architecture"
    make_arch: str  # the kernel's ARCH=
    cross_compile: str  # CROSS_COMPILE= ("" on the host's own architecture)
    make_target: str  # the boot image's make target
    image_path: str  # where make leaves it, relative to the build dir
    image_name: str  # its file name in the artifact cache
    fragments: tuple[str, ...]  # kernel-config/ fragments every kernel of this arch gets
    page_fragments: Mapping[str, str | None]  # --page-size -> fragment (None: nothing to add)
    qemu: str
    qemu_package: str  # the Debian package that provides ``qemu``
    machine: str
    cpu: str | None  # -cpu under TCG (None: QEMU's default for the machine)
    kvm_cpu: str | None  # -cpu under KVM
    bios: Path | None  # -bios, when that file exists (qboot: 0.45 s faster than SeaBIOS)
    console: str  # the serial console device the kernel writes to
    cmdline: tuple[str, ...]  # arch-specific kernel parameters
    poweroff: str  # how the guest makes QEMU exit: with -no-reboot, a reboot ends QEMU
    host_machine: str  # platform.machine() of a host that runs it natively (KVM)
    elf_machine: int  # e_machine of its ELF programs
    multiarch: str  # the Debian multiarch tuple of its userland libraries
    userland_root: Path  # where its busybox/dropbear/sftp-server are on the host ("/": the host's)
    uapi_dir: str  # its UAPI headers in the kernel tree (kselftests read them)
    kvm_probe_machine: str = ""  # the machine type the KVM probe boots
    extra_lib_dirs: tuple[str, ...] = field(default=())

    @property
    def cc(self) -> str:
        """The C compiler of its programs (workloads, kselftests)."""
        return f"{self.cross_compile}gcc"

    @property
    def native(self) -> bool:
        """Programs of this architecture run on this host (KVM may, ldd does)."""
        return platform.machine() == self.host_machine

    @property
    def lib_dirs(self) -> tuple[str, ...]:
        """Where its dynamic loader looks for libraries on a Debian system, in order."""
        m = self.multiarch
        return (f"/lib/{m}", f"/usr/lib/{m}", *self.extra_lib_dirs, "/lib", "/usr/lib")

    def cpu_for(self, accel: str) -> str | None:
        return self.kvm_cpu if accel == "kvm" else self.cpu

    def userland(self, path: str | Path) -> Path:
        """A guest program's host file: ``/usr/sbin/dropbear`` under :attr:`userland_root`."""
        return self.userland_root / str(path).lstrip("/")

    def page_fragment(self, page_size: str | None) -> tuple[str, ...]:
        """The fragment that selects ``page_size`` (none for the default on x86_64); an
        unsupported size is exit 2 naming ``--page-size``."""
        size = page_size or DEFAULT_PAGE_SIZE
        if size not in self.page_fragments:
            raise UsageError(f"--page-size {size}",
                             f"{self.name} supports {', '.join(self.page_fragments)} pages")
        frag = self.page_fragments[size]
        return (frag,) if frag else ()


X86_64 = Arch(
    name="x86_64", make_arch="x86_64", cross_compile="", make_target="bzImage",
    image_path="arch/x86/boot/bzImage", image_name="bzImage",
    fragments=(),  # guest.config grew up on x86_64 and holds what it needs (8250 serial)
    page_fragments={"4k": None},
    qemu="qemu-system-x86_64", qemu_package="qemu-system-x86", machine="q35",
    cpu=None, kvm_cpu=None,
    bios=Path("/usr/share/qemu/qboot.rom"), console="ttyS0",
    # no_timer_check: under TCG on a loaded host the IO-APIC timer check can fail spuriously
    # and panic the boot ("IO-APIC + timer doesn't work!"); seen with -M pc at load 8.
    cmdline=("no_timer_check",),
    poweroff="reboot -f", host_machine="x86_64", elf_machine=62,  # EM_X86_64
    multiarch="x86_64-linux-gnu", userland_root=Path("/"), uapi_dir="arch/x86/include/uapi",
    kvm_probe_machine="q35", extra_lib_dirs=("/lib64",),
)

#: Debian's arm64 busybox-static, dropbear-bin and openssh-sftp-server are not Multi-Arch:
#: same (installing them would replace the host's), so scripts/bootstrap unpacks them here;
#: their libraries (libc6:arm64 and the rest) are installed through dpkg's multiarch.
ARM64_USERLAND = Path("/opt/kpharness/userland/arm64")

ARM64 = Arch(
    name="arm64", make_arch="arm64", cross_compile="aarch64-linux-gnu-", make_target="Image",
    image_path="arch/arm64/boot/Image", image_name="Image",
    fragments=("arch-arm64",),
    page_fragments={"4k": "arch-arm64-4k", "16k": "arch-arm64-16k", "64k": "arch-arm64-64k"},
    qemu="qemu-system-aarch64", qemu_package="qemu-system-arm", machine="virt",
    # Neoverse N1 (ARMv8.2: 4, 16 and 64 KiB granules, no SVE or pointer authentication to
    # emulate): measured 1.12 s to SSH-ready (median of 6, 64k kernel) against 1.31 s for
    # "max,pauth-impdef=on" and 1.36 s for "max", the selftest alike (10.8-11.1 s).
    cpu="neoverse-n1", kvm_cpu="host",
    bios=None,  # -kernel on -M virt boots the Image directly
    console="ttyAMA0", cmdline=(),
    poweroff="reboot -f",  # PSCI SYSTEM_RESET; -no-reboot turns it into QEMU's exit
    host_machine="aarch64", elf_machine=183,  # EM_AARCH64
    multiarch="aarch64-linux-gnu", userland_root=ARM64_USERLAND,
    uapi_dir="arch/arm64/include/uapi", kvm_probe_machine="virt",
)

ARCHES: dict[str, Arch] = {a.name: a for a in (X86_64, ARM64)}


def get_arch(name: str | None, option: str = "--arch") -> Arch:
    """The record of ``name`` (None: the default); an unknown one is exit 2 naming ``option``."""
    key = name or DEFAULT_ARCH
    if key not in ARCHES:
        raise UsageError(f"{option} {key}", f"unknown architecture (known: {', '.join(ARCHES)})")
    return ARCHES[key]


def page_bytes(page_size: str | None) -> int:
    """``"64k"`` -> 65536."""
    return PAGE_SIZES[page_size or DEFAULT_PAGE_SIZE]
