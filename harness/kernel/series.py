"""Patch series: parse a quilt ``series`` file or a git-format-patch mbox.

Pure functions over text plus a thin loader. A series is an ordered list of
:class:`Patch` objects carrying their bytes, so that later stages (hashing,
applying) never re-read the user's files and never see them change midway.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from harness.errors import UsageError

_MBOX_FROM = re.compile(rb"^From [0-9a-f]{40} ", re.MULTILINE)
_MBOX_FROM_GENERIC = re.compile(rb"^From \S+ +\w{3} \w{3} ", re.MULTILINE)
_SUBJECT = re.compile(rb"^Subject: (.*(?:\n[ \t].*)*)", re.MULTILINE)
_DIFF_GIT = re.compile(r"^diff --git a/(\S+) b/(\S+)$", re.MULTILINE)
_MINUS = re.compile(r"^--- (?:a/)?(\S+)", re.MULTILINE)
_PLUS = re.compile(r"^\+\+\+ (?:b/)?(\S+)", re.MULTILINE)


@dataclass(frozen=True)
class Patch:
    """One patch of a series: where it came from, its text, and its strip level."""

    name: str  # for messages: file name, or "<mbox>#N: <subject>"
    origin: str  # path (and line) that named it, for error messages
    data: bytes
    strip: int = 1

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def touched_files(self) -> list[str]:
        """Paths (relative to the tree root) this patch creates, modifies or deletes."""
        text = self.data.decode("utf-8", errors="replace")
        paths: list[str] = []
        for a, b in _DIFF_GIT.findall(text):
            paths += [a, b]
        if not paths:
            paths += [p for p in _MINUS.findall(text) if p != "/dev/null"]
            paths += [p for p in _PLUS.findall(text) if p != "/dev/null"]
        if self.strip != 1 and not _DIFF_GIT.search(text):
            paths = [p.split("/", self.strip - 1)[-1] for p in paths]
        seen: dict[str, None] = {}
        for p in paths:
            seen.setdefault(p, None)
        return list(seen)


@dataclass(frozen=True)
class SeriesEntry:
    """One non-comment line of a quilt series file."""

    lineno: int
    name: str
    strip: int


def parse_series_text(text: str, origin: str) -> list[SeriesEntry]:
    """Parse quilt ``series`` syntax: one patch per line, ``#`` comments, optional ``-pN``.

    Raises :class:`UsageError` naming ``origin:line`` on an option we don't support.
    """
    entries: list[SeriesEntry] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        strip = 1
        for opt in parts[1:]:
            m = re.fullmatch(r"-p(\d+)", opt)
            if not m:
                raise UsageError(f"{origin}:{lineno}", f"unsupported series option {opt!r}")
            strip = int(m.group(1))
        entries.append(SeriesEntry(lineno, parts[0], strip))
    return entries


def split_mbox(data: bytes, origin: str) -> list[Patch]:
    """Split an mbox (``git format-patch --stdout`` or b4 output) into patches."""
    starts = [m.start() for m in _MBOX_FROM.finditer(data)]
    if not starts:
        starts = [m.start() for m in _MBOX_FROM_GENERIC.finditer(data)]
    if not starts:
        return [Patch(name=Path(origin).name, origin=origin, data=data)]
    patches = []
    bounds = starts + [len(data)]
    for i, (s, e) in enumerate(zip(bounds, bounds[1:], strict=False), start=1):
        chunk = data[s:e]
        m = _SUBJECT.search(chunk)
        subject = (
            re.sub(rb"\s+", b" ", m.group(1)).decode("utf-8", "replace").strip() if m else ""
        )
        patches.append(Patch(name=f"#{i}: {subject}" if subject else f"#{i}", origin=origin,
                             data=chunk))
    return [p for p in patches if b"\ndiff " in p.data or b"\n--- " in p.data]


def load_series(path: Path) -> list[Patch]:
    """Load a series from a directory with a ``series`` file, an mbox, or a single patch."""
    if not path.exists():
        raise UsageError(str(path), "patch series not found")
    if path.is_dir():
        series_file = path / "series"
        if not series_file.is_file():
            raise UsageError(str(path), "no 'series' file in this patch directory")
        entries = parse_series_text(series_file.read_text(), str(series_file))
        if not entries:
            raise UsageError(str(series_file), "series is empty: it lists no patch")
        patches = []
        for e in entries:
            p = path / e.name
            if not p.is_file():
                raise UsageError(f"{series_file}:{e.lineno}", f"names missing patch {e.name!r}")
            patches.append(Patch(name=e.name, origin=f"{series_file}:{e.lineno}",
                                 data=p.read_bytes(), strip=e.strip))
        return patches
    data = path.read_bytes()
    patches = split_mbox(data, str(path))
    if not patches:
        raise UsageError(str(path), "contains no patch (no diff found)")
    return patches


def series_digest(patches: list[Patch]) -> str:
    """A hash of the series' content and order (names excluded: renaming a file is a no-op)."""
    h = hashlib.sha256()
    for p in patches:
        h.update(f"{p.strip}:{p.sha256}\n".encode())
    return h.hexdigest()
