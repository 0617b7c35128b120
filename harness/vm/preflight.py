"""Checks made before QEMU is launched, so a user's mistake is named as one.

Without them QEMU starts, fails, and the only symptom is "QEMU exited before
its QMP socket came up" (exit 3, as if the rig were broken); and a file that
is not a kernel at all may even boot into nothing until the boot timeout.
Each check is a pure function of bytes or numbers raising a
:class:`~harness.errors.UsageError` that names the option; :func:`preflight`
is the thin shell that reads the host and the file.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

from harness.arch import ARM64, X86_64, Arch
from harness.errors import UsageError
from harness.vm.config import MIN_RAM_MIB, VMConfig

MEMINFO = Path("/proc/meminfo")

#: x86 boot protocol (Documentation/arch/x86/boot.rst): "HdrS" at 0x202, the
#: protocol version (major << 8 | minor) at 0x206, the boot flag 0xAA55 at 0x1FE.
HDR_MAGIC = b"HdrS"
HDR_MAGIC_OFFSET = 0x202
HDR_VERSION_OFFSET = 0x206
BOOT_FLAG_OFFSET = 0x1FE
BOOT_FLAG = 0xAA55
#: initrd_addr_max (2.03+): the highest address an initrd may end at; 0 means
#: QEMU refuses every initrd ("initrd is too large ... max: 0").
INITRD_ADDR_MAX_OFFSET = 0x22C
#: 2.06 added cmdline_size; every kernel since 2.6.22 has it, and QEMU needs
#: at least 2.00 to load an initrd at all.
MIN_BOOT_PROTOCOL = 0x0206
HEADER_BYTES = 0x230
#: arm64 boot protocol (Documentation/arch/arm64/booting.rst): the 64-byte image header has
#: "ARM\x64" at 56 and, in its flags at 24, the kernel's page size in bits 1-2.
ARM64_MAGIC = b"ARM\x64"
ARM64_MAGIC_OFFSET = 56
ARM64_FLAGS_OFFSET = 24
ARM64_HEADER_BYTES = 64
ARM64_PAGE_SIZES = {1: "4k", 2: "16k", 3: "64k"}


def memtotal_mib(meminfo: str) -> int | None:
    """MemTotal from /proc/meminfo text, in MiB; None if absent."""
    for line in meminfo.splitlines():
        if line.startswith("MemTotal:"):
            fields = line.split()
            if len(fields) >= 2 and fields[1].isdigit():
                return int(fields[1]) // 1024
    return None


def check_ram(ram_mib: int, host_mib: int | None) -> None:
    """A guest may not ask for more RAM than the host has: QEMU could not back it.

    (QEMU itself refuses well below that only sometimes; a test of constrained
    memory that relies on overcommit would measure the host, not the kernel.)
    The lower bound is :meth:`VMConfig.validate`'s, checked here too so that a
    command can refuse it before it spends minutes building a kernel.
    """
    if ram_mib < MIN_RAM_MIB:
        raise UsageError("--ram", f"{ram_mib} MiB is too small to boot (min {MIN_RAM_MIB})")
    if host_mib is not None and ram_mib > host_mib:
        raise UsageError("--ram", f"{ram_mib} MiB is more than this host's RAM "
                         f"({host_mib} MiB MemTotal)")


def check_bzimage(header: bytes, path: Path) -> None:
    """``header`` (the file's first bytes) must be an x86 bzImage QEMU can boot."""
    culprit = f"--kernel {path}"
    if header.startswith(b"\x7fELF"):
        raise UsageError(culprit, "is an ELF file (vmlinux?), not a bzImage: "
                         "pass arch/x86/boot/bzImage")
    if len(header) < HEADER_BYTES:
        raise UsageError(culprit, f"not a bzImage: {len(header)} bytes is too short for "
                         "an x86 boot header")
    magic = header[HDR_MAGIC_OFFSET:HDR_MAGIC_OFFSET + 4]
    if magic != HDR_MAGIC:
        if header[ARM64_MAGIC_OFFSET:ARM64_MAGIC_OFFSET + 4] == ARM64_MAGIC:
            raise UsageError(culprit, "is an arm64 Image, not a bzImage: boot it with "
                             "--arch arm64")
        raise UsageError(culprit, f"not a bzImage: no 'HdrS' boot header magic at 0x202 "
                         f"(found {magic!r})")
    (flag,) = struct.unpack_from("<H", header, BOOT_FLAG_OFFSET)
    if flag != BOOT_FLAG:
        raise UsageError(culprit, f"not a bzImage: boot flag at 0x1fe is {flag:#06x}, "
                         f"not {BOOT_FLAG:#06x}")
    (version,) = struct.unpack_from("<H", header, HDR_VERSION_OFFSET)
    if version < MIN_BOOT_PROTOCOL:
        raise UsageError(culprit, f"boot protocol {version >> 8}.{version & 0xFF:02d} is "
                         f"older than {MIN_BOOT_PROTOCOL >> 8}.{MIN_BOOT_PROTOCOL & 0xFF:02d}")
    (initrd_max,) = struct.unpack_from("<I", header, INITRD_ADDR_MAX_OFFSET)
    if initrd_max == 0:
        raise UsageError(culprit, "not a bootable bzImage: its header allows no initrd "
                         "(initrd_addr_max is 0)")


def arm64_page_size(header: bytes) -> str | None:
    """The page size an arm64 Image header declares ("4k", "16k", "64k"), None if unstated."""
    if len(header) < ARM64_HEADER_BYTES:
        return None
    (flags,) = struct.unpack_from("<Q", header, ARM64_FLAGS_OFFSET)
    return ARM64_PAGE_SIZES.get((flags >> 1) & 3)


def check_arm64_image(header: bytes, path: Path) -> None:
    """``header`` must be an uncompressed arm64 Image (what -kernel boots on -M virt)."""
    culprit = f"--kernel {path}"
    if header.startswith(b"\x7fELF"):
        raise UsageError(culprit, "is an ELF file (vmlinux?), not an arm64 Image: "
                         f"pass {ARM64.image_path}")
    if header.startswith(b"\x1f\x8b"):
        raise UsageError(culprit, "is gzip-compressed (Image.gz?): pass the uncompressed "
                         f"{ARM64.image_path}")
    if len(header) >= HDR_MAGIC_OFFSET + 4 and \
            header[HDR_MAGIC_OFFSET:HDR_MAGIC_OFFSET + 4] == HDR_MAGIC:
        raise UsageError(culprit, "is an x86 bzImage, not an arm64 Image: boot it with "
                         "--arch x86_64")
    if len(header) < ARM64_HEADER_BYTES:
        raise UsageError(culprit, f"not an arm64 Image: {len(header)} bytes is too short for "
                         "its 64-byte header")
    magic = header[ARM64_MAGIC_OFFSET:ARM64_MAGIC_OFFSET + 4]
    if magic != ARM64_MAGIC:
        raise UsageError(culprit, f"not an arm64 Image: no 'ARM\\x64' magic at 56 "
                         f"(found {magic!r})")


#: How each architecture's boot image is checked.
IMAGE_CHECKS: dict[str, Callable[[bytes, Path], None]] = {
    X86_64.name: check_bzimage, ARM64.name: check_arm64_image}


def check_ram_on_host(ram_mib: int) -> None:
    """:func:`check_ram` against this host's /proc/meminfo."""
    try:
        host = memtotal_mib(MEMINFO.read_text())
    except OSError:
        host = None
    check_ram(ram_mib, host)


def check_page_size(header: bytes, path: Path, arch: Arch, page_size: str | None) -> None:
    """A prebuilt arm64 Image declares its page size: a ``--page-size`` that is not it is
    exit 2 (x86_64 images declare none; their page size is always 4k)."""
    if arch is ARM64 and page_size is not None:
        declared = arm64_page_size(header)
        if declared is not None and declared != page_size:
            raise UsageError(f"--page-size {page_size}", f"--kernel {path} is built with "
                             f"{declared} pages")


def check_kernel_file(kernel: Path, arch: Arch = X86_64, page_size: str | None = None) -> None:
    """The architecture's image check (:data:`IMAGE_CHECKS`) on the first bytes of ``kernel``,
    and its declared page size against ``page_size`` (when given)."""
    try:
        with open(kernel, "rb") as f:
            header = f.read(HEADER_BYTES)
    except OSError as exc:
        raise UsageError(f"--kernel {kernel}", f"cannot read: {exc.strerror}") from exc
    IMAGE_CHECKS[arch.name](header, kernel)
    check_page_size(header, kernel, arch, page_size)


def preflight(cfg: VMConfig) -> None:
    """Run every check against this host and file; UsageError on the first failure."""
    check_ram_on_host(cfg.ram_mib)
    check_kernel_file(Path(cfg.kernel), cfg.arch_record)
