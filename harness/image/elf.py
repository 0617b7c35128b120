"""Just enough ELF to ship a program of another architecture with its libraries.

``ldd`` runs the program's own loader, so it only works for the host's architecture. For an
arm64 dropbear on an x86_64 host the harness reads the ELF itself: its machine, its
interpreter (``PT_INTERP``) and the libraries it needs (``DT_NEEDED``), then resolves those in
the architecture's Debian multiarch directories (``/usr/lib/aarch64-linux-gnu`` ...), the
same directories its loader searches in the guest. Pure functions of bytes, plus one thin
resolver that reads files.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.errors import SetupError

ELF_MAGIC = b"\x7fELF"
PT_INTERP = 3
PT_DYNAMIC = 2
PT_LOAD = 1
DT_NULL = 0
DT_NEEDED = 1
DT_STRTAB = 5
#: e_machine values the harness knows by name (elf.h).
MACHINES = {62: "x86_64", 183: "aarch64", 3: "i386", 40: "arm", 243: "riscv"}


@dataclass(frozen=True)
class ElfInfo:
    machine: int
    interpreter: str | None
    needed: tuple[str, ...]

    @property
    def machine_name(self) -> str:
        return MACHINES.get(self.machine, f"e_machine {self.machine}")


def is_elf(data: bytes) -> bool:
    return data[:4] == ELF_MAGIC


def elf_machine(data: bytes) -> int:
    """e_machine of an ELF header (0 when the header is too short)."""
    return struct.unpack_from("<H", data, 18)[0] if len(data) >= 20 else 0


def parse_elf(data: bytes, what: str = "ELF file") -> ElfInfo:
    """Machine, interpreter and DT_NEEDED of a 64-bit little-endian ELF (both arches the
    harness boots); anything else is a SetupError naming ``what``."""
    if not is_elf(data) or len(data) < 64:
        raise SetupError(what, "not an ELF file")
    if data[4] != 2 or data[5] != 1:
        raise SetupError(what, "not a 64-bit little-endian ELF file")
    e_machine = elf_machine(data)
    e_phoff, = struct.unpack_from("<Q", data, 32)
    e_phentsize, e_phnum = struct.unpack_from("<HH", data, 54)
    phdrs = []
    for i in range(e_phnum):
        off = e_phoff + i * e_phentsize
        if off + 56 > len(data):
            raise SetupError(what, "truncated program header table")
        p_type, _flags, p_offset, p_vaddr, _paddr, p_filesz = struct.unpack_from(
            "<IIQQQQ", data, off)
        phdrs.append((p_type, p_offset, p_vaddr, p_filesz))
    interp = None
    for p_type, p_offset, _v, p_filesz in phdrs:
        if p_type == PT_INTERP:
            interp = data[p_offset:p_offset + p_filesz].split(b"\0", 1)[0].decode()
    needed: list[str] = []
    dyn = [(o, sz) for t, o, _v, sz in phdrs if t == PT_DYNAMIC]
    if dyn:
        d_off, d_size = dyn[0]
        entries = [struct.unpack_from("<qQ", data, d_off + i)
                   for i in range(0, d_size - 15, 16)]
        strtab_vaddr = next((v for tag, v in entries if tag == DT_STRTAB), None)
        if strtab_vaddr is None:
            raise SetupError(what, "dynamic section without a string table")
        strtab = _vaddr_to_offset(strtab_vaddr, phdrs, what)
        for tag, val in entries:
            if tag == DT_NULL:
                break
            if tag == DT_NEEDED:
                start = strtab + val
                needed.append(data[start:data.index(b"\0", start)].decode())
    return ElfInfo(e_machine, interp, tuple(needed))


def _vaddr_to_offset(vaddr: int, phdrs: Sequence[tuple[int, int, int, int]], what: str) -> int:
    for p_type, p_offset, p_vaddr, p_filesz in phdrs:
        if p_type == PT_LOAD and p_vaddr <= vaddr < p_vaddr + p_filesz:
            return p_offset + vaddr - p_vaddr
    raise SetupError(what, f"address {vaddr:#x} is in no loaded segment")


def resolve_libs(binary: Path, lib_dirs: Sequence[str],
                 read: Callable[[Path], bytes] = Path.read_bytes,
                 exists: Callable[[Path], bool] = os.path.exists,
                 realpath: Callable[[str], str] = os.path.realpath) -> list[str]:
    """The interpreter and the transitive closure of DT_NEEDED of ``binary``, as the paths
    its loader finds them at in ``lib_dirs`` (first match wins, like ``ldd``). A library
    found nowhere is a SetupError naming the binary and the library."""
    info = parse_elf(read(binary), str(binary))
    out: set[str] = set()
    if info.interpreter:
        if not exists(Path(info.interpreter)):
            raise SetupError(str(binary), f"missing its loader {info.interpreter} "
                             "(install the architecture's libc6)")
        out.add(info.interpreter)
    todo = list(info.needed)
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        if info.interpreter and name == os.path.basename(info.interpreter):
            continue  # libc needs the loader by its soname: it is already loaded
        found = next((f"{d}/{name}" for d in lib_dirs if exists(Path(d) / name)), None)
        if found is None:
            raise SetupError(str(binary), f"missing shared library: {name} (not in "
                             f"{', '.join(lib_dirs)})")
        out.add(found)
        todo.extend(parse_elf(read(Path(realpath(found))), found).needed)
    return sorted(out)
