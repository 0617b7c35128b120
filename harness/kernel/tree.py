"""The harness's own work tree: base source + patch series, synced with minimal writes.

Why this exists: an out-of-tree build (``O=``) decides what to recompile by
mtime. If every build started from a fresh copy, everything would rebuild; if
patches were applied in place and reverted, reverted files could carry old
mtimes and be silently skipped. So the work tree persists per *lineage*, and a
sync writes exactly the files whose content must change -- each with a new
mtime -- and nothing else. The series is first applied in a staging directory
holding only the files it touches, so a patch that does not apply is reported
before the work tree is touched at all.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from harness.errors import UsageError
from harness.kernel.series import Patch
from harness.kernel.source import Source

log = logging.getLogger(__name__)

_PATCH_FAILED = re.compile(r"error: patch failed: (\S+):(\d+)")
_NO_FILE = re.compile(r"error: (\S+): (No such file or directory|does not exist in index"
                      r"|already exists in working directory)")


@dataclass(frozen=True)
class ApplyFailure:
    """Where a patch failed: file, hunk number (1-based, 0 if unknown), line in the base."""

    file: str
    hunk: int
    line: int
    reason: str


def hunk_number(patch_text: str, file: str, old_line: int) -> int:
    """The 1-based index of the hunk of ``file`` whose old range starts at ``old_line``."""
    in_file = False
    n = 0
    for line in patch_text.splitlines():
        if line.startswith("diff --git ") or line.startswith("--- "):
            if line.startswith("diff --git "):
                in_file = line.endswith(f" b/{file}") or f" a/{file} " in line
                n = 0
            continue
        if in_file and line.startswith("@@ "):
            n += 1
            m = re.match(r"@@ -(\d+)", line)
            if m and int(m.group(1)) == old_line:
                return n
    return 0


def parse_apply_error(stderr: str, patch_text: str) -> ApplyFailure:
    """Turn ``git apply`` stderr into the file and hunk at fault."""
    m = _PATCH_FAILED.search(stderr)
    if m:
        file, line = m.group(1), int(m.group(2))
        return ApplyFailure(file, hunk_number(patch_text, file, line), line,
                            "hunk does not apply")
    m = _NO_FILE.search(stderr)
    if m:
        return ApplyFailure(m.group(1), 0, 0, m.group(2))
    first = next((ln for ln in stderr.splitlines() if ln.startswith("error:")), stderr.strip())
    return ApplyFailure("?", 0, 0, first[:200])


def _atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".harness-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)  # a new inode: never writes through a hard link to the pristine tree
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def apply_series(source: Source, patches: list[Patch], staging: Path) -> dict[str, bytes | None]:
    """Apply ``patches`` in order to the base files they touch; return path -> new content.

    ``None`` content means the series deletes the file. Raises UsageError naming
    the patch, file and hunk on the first patch that does not apply.
    """
    touched: dict[str, None] = {}
    for p in patches:
        for f in p.touched_files():
            touched.setdefault(f, None)
    base_modes: dict[str, int] = {}
    for rel in touched:
        data = source.read_base(rel)
        if data is not None:
            target = staging / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            if source.base_dir is not None:
                base_modes[rel] = (source.base_dir / rel).stat().st_mode & 0o777
                os.chmod(target, base_modes[rel])
    env = dict(os.environ, GIT_CEILING_DIRECTORIES=str(staging.parent))
    for i, p in enumerate(patches, start=1):
        pfile = staging.parent / f"patch-{i}.diff"
        pfile.write_bytes(p.data)
        r = subprocess.run(["git", "apply", f"-p{p.strip}", "--whitespace=nowarn", str(pfile)],
                           cwd=staging, capture_output=True, text=True, env=env)
        if r.returncode != 0:
            fail = parse_apply_error(r.stderr, p.data.decode("utf-8", "replace"))
            where = "" if fail.file == "?" else f"{fail.file}" + (
                f", hunk #{fail.hunk}" if fail.hunk else "") + (
                f" (line {fail.line})" if fail.line else "") + ": "
            raise UsageError(f"patch {p.name}", f"does not apply: {where}{fail.reason}",
                             f"named by {p.origin}\n{r.stderr.strip()}")
    result: dict[str, bytes | None] = {}
    for rel in touched:
        out = staging / rel
        result[rel] = out.read_bytes() if out.is_file() else None
    return result


class WorkTree:
    """A persistent tree owned by the harness for one source lineage."""

    def __init__(self, root: Path, source: Source) -> None:
        self.root = root
        self.source = source
        self.state_file = root.parent / f"{root.name}.state.json"
        # After sync(): path -> sha256 of the patched content (None = deleted by the series).
        self.overlay: dict[str, str | None] = {}

    def _load_state(self) -> dict[str, object]:
        try:
            state: dict[str, object] = json.loads(self.state_file.read_text())
            return state
        except (OSError, ValueError):
            return {}

    def _save_state(self, state: dict[str, object]) -> None:
        _atomic_write(self.state_file, json.dumps(state, indent=1).encode())

    def _create(self) -> None:
        """First use of a lineage: a full tree, built in a temp dir then renamed."""
        self.root.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{self.root.name}-", dir=self.root.parent))
        try:
            src = self.source
            if src.kind == "tarball":
                assert src.base_dir is not None
                # Hard links: no copy of 1.7 GB. Safe because every later write is a rename.
                subprocess.run(["cp", "-al", f"{src.base_dir}/.", str(tmp)], check=True)
            elif src.kind == "dir":
                subprocess.run(["cp", "-a", f"{src.location}/.", str(tmp)], check=True)
                shutil.rmtree(tmp / ".git", ignore_errors=True)
            else:
                self._git_checkout(tmp)
            tmp.rename(self.root)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        self._save_state({"identity": self.source.identity, "overlay": {}})

    def _git_index(self) -> Path:
        return self.root.parent / f"{self.root.name}.index"

    def _git_checkout(self, worktree: Path) -> None:
        env = dict(os.environ, GIT_INDEX_FILE=str(self._git_index()))
        r = subprocess.run(["git", f"--git-dir={self.source.location}/.git",
                            f"--work-tree={worktree}", "read-tree", "--reset", "-u",
                            str(self.source.rev)], capture_output=True, text=True, env=env)
        if r.returncode != 0:
            raise UsageError(str(self.source.location), f"cannot check out {self.source.rev}",
                             r.stderr)

    def _sync_base(self, state: dict[str, object]) -> None:
        """Bring the tree's base to the source's current content (dir and git sources)."""
        if state.get("identity") == self.source.identity:
            return
        if self.source.kind == "git":
            log.info("checking out %s in the harness's tree", str(self.source.rev)[:12])
            self._git_checkout(self.root)
        elif self.source.kind == "dir":
            log.info("syncing %s into the harness's tree", self.source.location)
            self._sync_dir()
        state["identity"] = self.source.identity

    def _sync_dir(self) -> None:
        base = self.source.location
        seen: set[str] = set()
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = [d for d in dirnames if d != ".git"]
            for name in filenames:
                src = Path(dirpath) / name
                rel = str(src.relative_to(base))
                seen.add(rel)
                dst = self.root / rel
                try:
                    s, d = src.lstat(), dst.lstat()
                    if s.st_size == d.st_size and s.st_mtime_ns == d.st_mtime_ns:
                        continue
                except FileNotFoundError:
                    pass
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dst)
        for dirpath, _dirnames, filenames in os.walk(self.root):
            for name in filenames:
                rel = str((Path(dirpath) / name).relative_to(self.root))
                if rel not in seen:
                    os.unlink(Path(dirpath) / name)

    def sync(self, patches: list[Patch]) -> list[str]:
        """Make the tree equal base + series; return the paths whose content changed."""
        with tempfile.TemporaryDirectory(prefix="harness-apply-") as tmpd:
            staging = Path(tmpd) / "tree"
            staging.mkdir()
            overlay = apply_series(self.source, patches, staging) if patches else {}
        if not self.root.is_dir():
            self._create()
        state = self._load_state()
        old_overlay = state.get("overlay", {})
        assert isinstance(old_overlay, dict)
        kept: dict[str, tuple[bytes | None, int]] = {}
        switching = state.get("identity") != self.source.identity and self.source.kind == "git"
        if switching:
            # A patched file is rewritten twice below (base for read-tree, then patched
            # again). Remember what it held so that, when the patched content comes out
            # the same, its old mtime comes back: otherwise a series touching a header
            # would rebuild half the kernel on every revision switch (a bisect step).
            for rel in old_overlay:
                path = self.root / rel
                kept[rel] = ((path.read_bytes(), path.stat().st_mtime_ns) if path.is_file()
                             else (None, 0))
            for rel in old_overlay:  # restore before read-tree so it sees a clean tree
                self._write_if_changed(rel, self.source.read_base(rel))
        self._sync_base(state)
        changed = []
        for rel in sorted(set(old_overlay) | set(overlay)):
            want = overlay[rel] if rel in overlay else self.source.read_base(rel)
            wrote = self._write_if_changed(rel, want)
            if rel in kept:
                was, mtime = kept[rel]
                if want is not None and want == was:
                    os.utime(self.root / rel, ns=(mtime, mtime))
                else:
                    changed.append(rel)
            elif wrote:
                changed.append(rel)
        self.overlay = {
            rel: (hashlib.sha256(data).hexdigest() if data is not None else None)
            for rel, data in overlay.items()
        }
        state["overlay"] = dict(self.overlay)
        self._save_state(state)
        if changed:
            log.info("work tree: %d file(s) changed: %s", len(changed), ", ".join(changed[:8]))
        return changed

    def _write_if_changed(self, rel: str, want: bytes | None) -> bool:
        path = self.root / rel
        have = path.read_bytes() if path.is_file() else None
        if have == want:
            return False
        if want is None:
            path.unlink()
        else:
            mode = 0o755 if (path.is_file() and os.access(path, os.X_OK)) else 0o644
            _atomic_write(path, want, mode)
        return True
