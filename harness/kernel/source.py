"""Kernel sources: Debian's tarball, a local directory, or a git repository at a revision.

A :class:`Source` knows its *identity* (a content hash that goes into cache
keys), its *lineage* (which persistent work tree and build directory it
shares, so that switching revisions or series rebuilds incrementally), and how
to read a file of its base content. The user's tree is only ever read.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from harness.errors import UsageError
from harness.paths import cache_root

log = logging.getLogger(__name__)

DEFAULT_TARBALL = Path("/usr/src/linux-source-6.12.tar.xz")


def _short(h: str) -> str:
    return h[:16]


@dataclass(frozen=True)
class Source:
    """A resolved kernel source. ``kind`` is 'tarball', 'dir' or 'git'."""

    kind: str
    location: Path  # tarball, directory or repository
    identity: str  # content identity for cache keys
    lineage: str  # names the persistent work tree / build dir
    rev: str | None = None  # git commit
    base_dir: Path | None = None  # extracted pristine tree (tarball) or the user's dir

    @property
    def version(self) -> str:
        """The kernel version its top Makefile declares (``6.12.117``), "" if unreadable."""
        return makefile_version(self.read_base("Makefile") or b"")

    @property
    def package(self) -> str:
        """The Debian package version that installed the default tarball ("" otherwise)."""
        return debian_package_version(self.location) if self.kind == "tarball" else ""

    def describe(self) -> str:
        if self.kind == "git":
            return f"git {self.location} @ {self.rev}"
        return f"{self.kind} {self.location}"

    def read_base(self, relpath: str) -> bytes | None:
        """The base (unpatched) content of a file, or None if it does not exist."""
        if self.kind == "git":
            r = subprocess.run(["git", "-C", str(self.location), "cat-file", "blob",
                                f"{self.rev}:{relpath}"], capture_output=True)
            return r.stdout if r.returncode == 0 else None
        assert self.base_dir is not None
        p = self.base_dir / relpath
        return p.read_bytes() if p.is_file() else None


def makefile_version(text: bytes) -> str:
    """``VERSION.PATCHLEVEL.SUBLEVEL[EXTRAVERSION]`` from a kernel's top Makefile (pure)."""
    vals: dict[str, str] = {}
    for line in text.decode(errors="replace").splitlines()[:12]:
        key, sep, val = line.partition("=")
        if sep and key.strip() in ("VERSION", "PATCHLEVEL", "SUBLEVEL", "EXTRAVERSION"):
            vals[key.strip()] = val.strip()
    if "VERSION" not in vals:
        return ""
    out = f"{vals['VERSION']}.{vals.get('PATCHLEVEL', '0')}"
    if vals.get("SUBLEVEL", "0") not in ("", "0"):
        out += f".{vals['SUBLEVEL']}"
    return out + vals.get("EXTRAVERSION", "")


@cache
def debian_package_version(tarball: Path) -> str:
    """Which Debian package (and version) owns ``tarball``: ``linux-source-6.12 6.12.117-1``."""
    r = subprocess.run(["dpkg-query", "-S", str(tarball)], capture_output=True, text=True)
    if r.returncode != 0 or ":" not in r.stdout:
        return ""
    pkg = r.stdout.split(":", 1)[0].strip()
    v = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", pkg], capture_output=True,
                       text=True)
    return f"{pkg} {v.stdout.strip()}" if v.returncode == 0 else pkg


def split_pin(source: str | Path | None) -> tuple[str | Path | None, str | None]:
    """``--source`` may pin what it must be: ``PATH@PIN``, or a bare ``PIN`` for the default
    tarball, where PIN is ``sha256:<hex>`` (the tarball's hash) or a kernel version
    (``6.12.117``). Pure."""
    if source is None or isinstance(source, Path):
        return source, None
    text = str(source)
    if text.startswith("sha256:") or (text[:1].isdigit() and "/" not in text
                                       and not Path(text).exists()):
        return None, text
    if "@" in text and not Path(text).exists():
        path, _, pin = text.rpartition("@")
        return path, pin
    return source, None


def check_pin(src: Source, pin: str | None, what: str) -> None:
    """Exit 2 (naming ``--source``) unless ``src`` is what ``pin`` says it must be."""
    if not pin:
        return
    if pin.startswith("sha256:"):
        want = pin.removeprefix("sha256:").lower()
        have = src.identity.rsplit(":", 1)[-1]
        if src.kind != "tarball" or not have.startswith(want) or len(want) < 12:
            raise UsageError(f"--source {what}", f"pinned to sha256:{want[:16]}..., but "
                             f"{src.location} is {src.kind} {have[:16]}... "
                             f"({src.version or 'unknown version'})")
    elif src.version != pin:
        raise UsageError(f"--source {what}", f"pinned to version {pin}, but {src.location} is "
                         f"{src.version or 'of unknown version'}"
                         + (f" ({src.package})" if src.package else ""))


def _file_sha256(path: Path) -> str:
    """sha256 of a file, memoised by (path, size, mtime) so a warm run doesn't re-read 140 MB."""
    st = path.stat()
    memo_path = cache_root() / "hash-memo.json"
    try:
        memo = json.loads(memo_path.read_text())
    except (OSError, ValueError):
        memo = {}
    key = f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}"
    if key in memo:
        return str(memo[key])
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    memo[key] = h.hexdigest()
    tmp = memo_path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(memo))
    tmp.replace(memo_path)
    return h.hexdigest()


def _extract_tarball(tarball: Path, digest: str) -> Path:
    """Extract once into the cache (temp dir + rename: never a half tree under the final name)."""
    dest = cache_root() / "src" / f"tar-{_short(digest)}"
    if dest.is_dir():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=dest.parent))
    try:
        log.info("extracting %s (once; ~15 s)", tarball)
        r = subprocess.run(["tar", "-xf", str(tarball), "-C", str(tmp),
                            "--strip-components=1", "--no-same-owner"],
                           capture_output=True, text=True)
        if r.returncode != 0 or not (tmp / "Makefile").is_file():
            raise UsageError(str(tarball), "corrupt or unreadable kernel tarball",
                             r.stderr.strip()[-2000:] or "no top-level Makefile after extraction")
        tmp.rename(dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _dir_identity(root: Path) -> str:
    """Identity of a plain directory from paths, sizes and mtimes (hashing 1.7 GB is not cheap)."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != ".git")
        for name in sorted(filenames):
            p = os.path.join(dirpath, name)
            try:
                st = os.lstat(p)
            except OSError:
                continue
            h.update(f"{os.path.relpath(p, root)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def resolve_source(source: str | Path | None, rev: str | None = None) -> Source:
    """Turn the user's ``--source`` (and ``--rev``) into a :class:`Source` (checking its pin)."""
    where, pin = split_pin(source)
    src = _resolve(where, rev)
    check_pin(src, pin, str(source))
    return src


def _resolve(source: str | Path | None, rev: str | None) -> Source:
    path = Path(source) if source is not None else DEFAULT_TARBALL
    if not path.exists():
        hint = " (apt-get install linux-source-6.12)" if source is None else ""
        raise UsageError(str(path), f"kernel source not found{hint}")
    path = path.resolve()
    lineage_of = hashlib.sha256(str(path).encode()).hexdigest()
    if path.is_file():
        if rev:
            raise UsageError("--rev", "a revision only makes sense with a git repository source")
        digest = _file_sha256(path)
        base = _extract_tarball(path, digest)
        return Source("tarball", path, f"tar:{digest}", f"tar-{_short(digest)}", None, base)
    if (path / ".git").exists():
        want = rev or "HEAD"
        r = subprocess.run(["git", "-C", str(path), "rev-parse", "--verify", "-q",
                            f"{want}^{{commit}}"], capture_output=True, text=True)
        if r.returncode != 0:
            raise UsageError(f"--rev {want}", f"not a commit in {path}")
        commit = r.stdout.strip()
        tree = subprocess.run(["git", "-C", str(path), "rev-parse", f"{commit}^{{tree}}"],
                              capture_output=True, text=True, check=True).stdout.strip()
        if rev is None:
            dirty = subprocess.run(["git", "-C", str(path), "status", "--porcelain", "-uno"],
                                   capture_output=True, text=True).stdout.strip()
            if dirty:
                log.warning("%s has uncommitted changes; building HEAD (%s) without them",
                            path, commit[:12])
        return Source("git", path, f"git-tree:{tree}", f"git-{_short(lineage_of)}", commit, None)
    if not (path / "Makefile").is_file() or not (path / "Kconfig").is_file():
        raise UsageError(str(path), "not a kernel source tree (no Makefile/Kconfig at its top)")
    if rev:
        raise UsageError("--rev", f"{path} is not a git repository")
    return Source("dir", path, f"dir:{_dir_identity(path)}", f"dir-{_short(lineage_of)}", None,
                  path)
