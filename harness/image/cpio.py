"""A minimal, reproducible writer for the kernel's initramfs format (newc cpio).

Written in Python rather than shelling out to ``cpio -o`` so that every header
field is under our control: owners are root, mtimes are fixed, inode numbers
are assigned in entry order and entries are sorted. That is what makes the
image byte-for-byte reproducible and therefore cacheable by content hash, and
it lets us add device nodes (``/dev/console``) without being root on the host.
"""

from __future__ import annotations

import stat
from collections.abc import Iterable
from dataclasses import dataclass
from typing import BinaryIO

MAGIC = b"070701"
TRAILER = "TRAILER!!!"


@dataclass(frozen=True)
class Entry:
    """One archive member. ``mode`` includes the file type bits (S_IFREG etc.)."""

    path: str  # absolute guest path, e.g. "/bin/busybox"
    mode: int
    data: bytes = b""  # file contents, or the target for a symlink
    rdev_major: int = 0
    rdev_minor: int = 0

    @staticmethod
    def dir(path: str, perm: int = 0o755) -> Entry:
        return Entry(path, stat.S_IFDIR | perm)

    @staticmethod
    def file(path: str, data: bytes, perm: int = 0o644) -> Entry:
        return Entry(path, stat.S_IFREG | perm, data)

    @staticmethod
    def symlink(path: str, target: str) -> Entry:
        return Entry(path, stat.S_IFLNK | 0o777, target.encode())

    @staticmethod
    def chardev(path: str, major: int, minor: int, perm: int = 0o600) -> Entry:
        return Entry(path, stat.S_IFCHR | perm, b"", major, minor)


def _pad4(n: int) -> bytes:
    return b"\0" * ((4 - n % 4) % 4)


def _header(ino: int, e: Entry, name: bytes, mtime: int) -> bytes:
    fields = (
        ino,
        e.mode,
        0,  # uid
        0,  # gid
        2 if stat.S_ISDIR(e.mode) else 1,  # nlink
        mtime,
        len(e.data),
        0,  # devmajor
        0,  # devminor
        e.rdev_major,
        e.rdev_minor,
        len(name) + 1,
        0,  # check
    )
    return MAGIC + b"".join(b"%08X" % f for f in fields)


def with_parents(entries: Iterable[Entry]) -> list[Entry]:
    """Add a directory entry for every missing parent, then sort by path.

    The kernel's unpacker does not create parents itself, so an entry whose
    directory is missing would be silently dropped; sorting also puts every
    directory before its contents.
    """
    by_path = {e.path: e for e in entries}
    for path in list(by_path):
        parent = path.rsplit("/", 1)[0]
        while parent and parent not in by_path:
            by_path[parent] = Entry.dir(parent)
            parent = parent.rsplit("/", 1)[0]
    return [by_path[p] for p in sorted(by_path)]


def write_newc(out: BinaryIO, entries: Iterable[Entry], mtime: int = 0) -> None:
    """Write ``entries`` (with parents added, sorted) as a newc archive to ``out``."""
    pos = 0
    for ino, e in enumerate(with_parents(entries), start=1):
        name = e.path.lstrip("/").encode()
        hdr = _header(ino, e, name, mtime) + name + b"\0"
        chunk = hdr + _pad4(len(hdr)) + e.data + _pad4(len(e.data))
        out.write(chunk)
        pos += len(chunk)
    trailer_e = Entry(TRAILER, 0)
    name = TRAILER.encode()
    hdr = _header(0, trailer_e, name, 0) + name + b"\0"
    hdr += _pad4(len(hdr))
    out.write(hdr)
    pos += len(hdr)
    # Pad the archive to 512 bytes like cpio(1) does, so concatenation is safe.
    out.write(b"\0" * ((512 - pos % 512) % 512))
