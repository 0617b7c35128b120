"""Series parsing: quilt series files, mboxes, and the errors users see."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import UsageError
from harness.kernel.series import load_series, parse_series_text, series_digest, split_mbox

PATCH_A = b"""From: A <a@example.org>
Subject: [PATCH 1/2] mm: one

---
diff --git a/mm/a.c b/mm/a.c
--- a/mm/a.c
+++ b/mm/a.c
@@ -1 +1 @@
-old
+new
"""

PATCH_B = b"""Subject: [PATCH 2/2] mm: two

diff --git a/mm/b.c b/mm/b.c
new file mode 100644
--- /dev/null
+++ b/mm/b.c
@@ -0,0 +1 @@
+hello
"""


def test_series_text_comments_blank_lines_and_strip() -> None:
    entries = parse_series_text("# header\n\n0001-a.patch\n0002-b.patch -p0  # why\n", "series")
    assert [(e.name, e.strip, e.lineno) for e in entries] == [
        ("0001-a.patch", 1, 3), ("0002-b.patch", 0, 4)]


def test_series_unknown_option_names_line() -> None:
    with pytest.raises(UsageError) as ei:
        parse_series_text("a.patch -R\n", "patches/x/series")
    assert ei.value.culprit == "patches/x/series:1"


def test_load_series_dir(tmp_path: Path) -> None:
    (tmp_path / "0001-a.patch").write_bytes(PATCH_A)
    (tmp_path / "0002-b.patch").write_bytes(PATCH_B)
    (tmp_path / "series").write_text("0001-a.patch\n0002-b.patch\n")
    patches = load_series(tmp_path)
    assert [p.name for p in patches] == ["0001-a.patch", "0002-b.patch"]
    assert patches[0].touched_files() == ["mm/a.c"]
    assert patches[1].touched_files() == ["mm/b.c"]


def test_missing_patch_is_named(tmp_path: Path) -> None:
    (tmp_path / "series").write_text("# c\n0001-gone.patch\n")
    with pytest.raises(UsageError) as ei:
        load_series(tmp_path)
    assert ei.value.culprit.endswith("series:2")
    assert "0001-gone.patch" in ei.value.message


def test_empty_series(tmp_path: Path) -> None:
    (tmp_path / "series").write_text("# nothing here\n\n")
    with pytest.raises(UsageError, match="series is empty"):
        load_series(tmp_path)


def test_missing_series_dir(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not found"):
        load_series(tmp_path / "nope")


def test_mbox_split() -> None:
    mbox = (b"From 1111111111111111111111111111111111111111 Mon Sep 17 00:00:00 2001\n" + PATCH_A
            + b"From 2222222222222222222222222222222222222222 Mon Sep 17 00:00:00 2001\n"
            + PATCH_B)
    patches = split_mbox(mbox, "x.mbox")
    assert len(patches) == 2
    assert "mm: one" in patches[0].name and "mm: two" in patches[1].name


def test_digest_depends_on_content_and_order(tmp_path: Path) -> None:
    (tmp_path / "a.patch").write_bytes(PATCH_A)
    (tmp_path / "b.patch").write_bytes(PATCH_B)
    (tmp_path / "series").write_text("a.patch\nb.patch\n")
    d1 = series_digest(load_series(tmp_path))
    (tmp_path / "series").write_text("b.patch\na.patch\n")
    d2 = series_digest(load_series(tmp_path))
    (tmp_path / "b.patch").write_bytes(PATCH_B.replace(b"hello", b"hullo"))
    d3 = series_digest(load_series(tmp_path))
    assert len({d1, d2, d3}) == 3
