"""A cache entry that says what it holds, and is believed only when it still holds it.

Every content-addressed entry under ``cache_root()`` (a kernel artifact, a guest image, the
workload binaries, a kselftest build) is a directory written in a temp dir and renamed into
place. Renaming makes a *crash* safe, but not a disk that truncates or a hand that edits: a
truncated bzImage was booted as-is and gave a baffling "QEMU exited at start-up". So each
entry carries ``cache-manifest.json`` (size and sha256 of every file in it), written last,
and a reader verifies it: a mismatch is logged, the entry removed, and the caller rebuilds.

The lowest layer: imports nothing of the harness.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path

log = logging.getLogger(__name__)

MANIFEST = "cache-manifest.json"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _files(entry: Path) -> list[Path]:
    return sorted(p for p in entry.rglob("*")
                  if p.is_file() and not p.is_symlink() and p.name != MANIFEST)


def seal(entry: Path) -> None:
    """Write the manifest of ``entry`` (call it last, before the rename into place)."""
    files = {str(p.relative_to(entry)): {"size": p.stat().st_size, "sha256": _sha256(p)}
             for p in _files(entry)}
    (entry / MANIFEST).write_text(json.dumps(files, indent=1, sort_keys=True) + "\n")


def problems(entry: Path) -> list[str]:
    """What is wrong with a cache entry: [] when every file is there with its size and hash."""
    try:
        want = json.loads((entry / MANIFEST).read_text())
    except (OSError, ValueError):
        return [f"{entry / MANIFEST}: missing or unreadable"]
    out = []
    for rel, meta in sorted(want.items()):
        p = entry / rel
        try:
            size = p.stat().st_size
        except OSError:
            out.append(f"{rel}: missing")
            continue
        if size != meta.get("size"):
            out.append(f"{rel}: {size} bytes, {meta.get('size')} when stored")
        elif _sha256(p) != meta.get("sha256"):
            out.append(f"{rel}: content changed since it was stored")
    return out


def verified(entry: Path, what: str) -> bool:
    """True if ``entry`` exists, is sealed and intact.

    A sealed entry that no longer matches its manifest is removed (the caller rebuilds); an
    unsealed one (written before manifests existed, or still being written) is left alone.
    """
    if not (entry / MANIFEST).is_file():
        return False
    bad = problems(entry)
    if not bad:
        return True
    log.warning("cache: %s in %s is damaged (%s); discarding it and building again",
                what, entry, "; ".join(bad[:3]))
    shutil.rmtree(entry, ignore_errors=True)
    return False


def install(tmp: Path, final: Path, what: str) -> None:
    """Seal ``tmp`` and rename it to ``final``.

    If ``final`` is already there and intact, another process won the race and ``tmp`` is
    dropped; if it is there but not intact (unsealed, damaged), it is replaced.
    """
    seal(tmp)
    for _ in range(3):
        try:
            tmp.rename(final)
            return
        except OSError:
            if verified(final, what):
                shutil.rmtree(tmp, ignore_errors=True)
                return
            shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
