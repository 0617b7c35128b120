"""The harness's work tree: series applied in staging, minimal writes, user tree untouched."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from harness.errors import UsageError
from harness.kernel.series import Patch
from harness.kernel.source import resolve_source
from harness.kernel.tree import WorkTree, hunk_number, parse_apply_error


def _patch(name: str, path: str, old: str, new: str, line: int = 1) -> Patch:
    text = (f"diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n"
            f"@@ -{line} +{line} @@\n-{old}\n+{new}\n")
    return Patch(name=name, origin=f"series:{name}", data=text.encode())


@pytest.fixture()
def user_tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    src = tmp_path / "linux"
    (src / "mm").mkdir(parents=True)
    (src / "Makefile").write_text("all:\n")
    (src / "Kconfig").write_text("")
    (src / "mm" / "a.c").write_text("int a;\n")
    (src / "mm" / "b.c").write_text("int b;\n")
    return src


def _tree(user_tree: Path) -> WorkTree:
    source = resolve_source(user_tree)
    return WorkTree(Path(os.environ["HARNESS_CACHE"]) / "trees" / source.lineage, source)


def test_series_applies_without_touching_user_tree(user_tree: Path) -> None:
    before = {p: p.read_bytes() for p in user_tree.rglob("*") if p.is_file()}
    wt = _tree(user_tree)
    changed = wt.sync([_patch("0001", "mm/a.c", "int a;", "int a = 1;")])
    assert changed == ["mm/a.c"]
    assert (wt.root / "mm/a.c").read_text() == "int a = 1;\n"
    assert {p: p.read_bytes() for p in user_tree.rglob("*") if p.is_file()} == before


def test_resync_writes_only_what_changes(user_tree: Path) -> None:
    wt = _tree(user_tree)
    p1 = _patch("0001", "mm/a.c", "int a;", "int a = 1;")
    wt.sync([p1])
    m_a = (wt.root / "mm/a.c").stat().st_mtime_ns
    m_b = (wt.root / "mm/b.c").stat().st_mtime_ns
    time.sleep(0.01)
    assert wt.sync([p1]) == []  # same series again: nothing written, mtimes kept
    assert (wt.root / "mm/a.c").stat().st_mtime_ns == m_a
    # Dropping the series restores the base content with a *new* mtime (so make rebuilds it).
    assert wt.sync([]) == ["mm/a.c"]
    assert (wt.root / "mm/a.c").read_text() == "int a;\n"
    assert (wt.root / "mm/a.c").stat().st_mtime_ns > m_a
    assert (wt.root / "mm/b.c").stat().st_mtime_ns == m_b


def test_variant_on_top_touches_only_its_file(user_tree: Path) -> None:
    wt = _tree(user_tree)
    p1 = _patch("0001", "mm/a.c", "int a;", "int a = 1;")
    wt.sync([p1])
    changed = wt.sync([p1, _patch("broken", "mm/b.c", "int b;", "int b = 2;")])
    assert changed == ["mm/b.c"]


def test_failing_patch_names_patch_file_and_hunk(user_tree: Path) -> None:
    wt = _tree(user_tree)
    good = _patch("0001-good", "mm/a.c", "int a;", "int a = 1;")
    bad = _patch("0002-bad", "mm/b.c", "int zzz;", "int b = 2;")
    with pytest.raises(UsageError) as ei:
        wt.sync([good, bad])
    msg = ei.value.one_line()
    assert "0002-bad" in msg and "mm/b.c" in msg and "hunk #1" in msg
    assert not wt.root.exists()  # failed before the work tree was created or touched


def test_hunk_number_and_error_parse() -> None:
    text = ("diff --git a/x.c b/x.c\n--- a/x.c\n+++ b/x.c\n@@ -3,1 +3,1 @@\n-a\n+b\n"
            "@@ -40,1 +40,1 @@\n-c\n+d\n")
    assert hunk_number(text, "x.c", 40) == 2
    fail = parse_apply_error("error: patch failed: x.c:40\nerror: x.c: patch does not apply\n",
                             text)
    assert (fail.file, fail.hunk, fail.line) == ("x.c", 2, 40)
    fail = parse_apply_error("error: y.c: No such file or directory\n", text)
    assert fail.file == "y.c" and "No such file" in fail.reason


def test_missing_source_is_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as ei:
        resolve_source(tmp_path / "nope")
    assert "not found" in ei.value.message


def test_corrupt_tarball(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    bad = tmp_path / "linux.tar.xz"
    bad.write_bytes(b"\xfd7zXZ\x00garbage" * 100)
    with pytest.raises(UsageError) as ei:
        resolve_source(bad)
    assert ei.value.culprit == str(bad) and "corrupt" in ei.value.message
    assert not any((tmp_path / "cache" / "src").iterdir())  # no half-extracted tree left


def test_corrupt_patch_is_named_without_a_fake_location(user_tree: Path) -> None:
    wt = _tree(user_tree)
    bad = Patch(name="0001-corrupt", origin="series:1",
                data=b"diff --git a/mm/a.c b/mm/a.c\n--- a/mm/a.c\n+++ b/mm/a.c\n"
                     b"@@ -1,3 +1,3 @@\n-int a;\n")
    with pytest.raises(UsageError) as ei:
        wt.sync([bad])
    msg = ei.value.one_line()
    assert msg.startswith("patch 0001-corrupt: does not apply: error: corrupt patch"), msg
