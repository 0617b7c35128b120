"""The git-source path of the build: bisect depends on it switching revisions cheaply and safely.

A tiny fake "kernel" repository stands in for Linux: a revision switch must
rewrite only the files that differ (make decides by mtime), delete what the
new revision deleted, keep a series overlay stable, and never touch the
user's index, HEAD or work tree.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from harness.kernel.series import Patch
from harness.kernel.source import resolve_source
from harness.kernel.tree import WorkTree


def git(repo: Path, *args: str) -> str:
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@t")
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True, env=env).stdout.strip()


def _patch(path: str, old: str, new: str) -> Patch:
    text = (f"diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n"
            f"@@ -1 +1 @@\n-{old}\n+{new}\n")
    return Patch(name="0001-b.patch", origin="series:1", data=text.encode())


@pytest.fixture()
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    r = tmp_path / "linux"
    (r / "mm").mkdir(parents=True)
    (r / "Makefile").write_text("all:\n")
    (r / "Kconfig").write_text("")
    (r / "mm" / "a.c").write_text("int a;\n")
    (r / "mm" / "b.c").write_text("int b;\n")
    (r / "mm" / "c.c").write_text("int c;\n")
    git(r, "init", "-q", "-b", "main")
    git(r, "add", "-A")
    git(r, "commit", "-qm", "base")
    (r / "mm" / "a.c").write_text("int a = 2;\n")
    (r / "mm" / "c.c").unlink()
    (r / "mm" / "d.c").write_text("int d;\n")
    git(r, "add", "-A")
    git(r, "commit", "-qm", "second")
    return r


def _worktree(repo: Path, rev: str) -> WorkTree:
    src = resolve_source(repo, rev)
    return WorkTree(Path(os.environ["HARNESS_CACHE"]) / "lineages" / src.lineage / "src", src)


def _snapshot(repo: Path) -> dict[str, object]:
    files = {str(p.relative_to(repo)): p.read_bytes() for p in repo.rglob("*")
             if p.is_file() and ".git" not in p.relative_to(repo).parts}
    return {"head": git(repo, "rev-parse", "HEAD"), "sym": git(repo, "symbolic-ref", "HEAD"),
            "index": (repo / ".git" / "index").read_bytes(), "files": files,
            "status": git(repo, "status", "--porcelain")}


def test_revision_switch_rewrites_only_changed_files(repo: Path) -> None:
    (repo / "mm" / "b.c").write_text("int b; /* user's uncommitted edit */\n")
    before = _snapshot(repo)
    wt = _worktree(repo, "HEAD~1")
    wt.sync([])
    assert (wt.root / "mm/a.c").read_text() == "int a;\n"
    assert (wt.root / "mm/b.c").read_text() == "int b;\n"  # the commit, not the user's edit
    assert (wt.root / "mm/c.c").is_file() and not (wt.root / "mm/d.c").exists()
    mtimes = {p: (wt.root / p).stat().st_mtime_ns for p in ("mm/a.c", "mm/b.c", "Makefile")}
    time.sleep(0.02)
    wt2 = _worktree(repo, "HEAD")
    assert wt2.root == wt.root  # one lineage per repository: incremental builds
    wt2.sync([])
    assert (wt.root / "mm/a.c").read_text() == "int a = 2;\n"
    assert (wt.root / "mm/a.c").stat().st_mtime_ns != mtimes["mm/a.c"]
    assert (wt.root / "mm/b.c").stat().st_mtime_ns == mtimes["mm/b.c"]
    assert (wt.root / "Makefile").stat().st_mtime_ns == mtimes["Makefile"]
    assert not (wt.root / "mm/c.c").exists()
    assert (wt.root / "mm/d.c").read_text() == "int d;\n"
    # and back again
    _worktree(repo, "HEAD~1").sync([])
    assert (wt.root / "mm/c.c").read_text() == "int c;\n" and not (wt.root / "mm/d.c").exists()
    assert _snapshot(repo) == before


def test_series_overlay_survives_revision_switch_without_rewrite(repo: Path) -> None:
    patch = _patch("mm/b.c", "int b;", "int b = 1;")
    wt = _worktree(repo, "HEAD~1")
    assert wt.sync([patch]) == ["mm/b.c"]
    assert (wt.root / "mm/b.c").read_text() == "int b = 1;\n"
    m_b = (wt.root / "mm/b.c").stat().st_mtime_ns
    time.sleep(0.02)
    changed = _worktree(repo, "HEAD").sync([patch])
    assert "mm/b.c" not in changed
    assert (wt.root / "mm/b.c").read_text() == "int b = 1;\n"
    # b.c is patched identically at both revisions: same content, so no rebuild of its users
    assert (wt.root / "mm/b.c").stat().st_mtime_ns == m_b
    assert (wt.root / "mm/a.c").read_text() == "int a = 2;\n"
    # dropping the series restores the base with a new mtime
    time.sleep(0.02)
    assert _worktree(repo, "HEAD").sync([]) == ["mm/b.c"]
    assert (wt.root / "mm/b.c").read_text() == "int b;\n"
    assert (wt.root / "mm/b.c").stat().st_mtime_ns != m_b


def test_source_identity_follows_tree_not_commit(repo: Path) -> None:
    a = resolve_source(repo, "HEAD")
    git(repo, "commit", "-q", "--allow-empty", "-m", "empty")
    b = resolve_source(repo, "HEAD")
    assert a.rev != b.rev and a.identity == b.identity and a.lineage == b.lineage
    assert a.read_base("mm/d.c") == b"int d;\n" and a.read_base("mm/c.c") is None
