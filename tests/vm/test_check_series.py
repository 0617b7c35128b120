"""harness check-series end to end: a three-patch series on top of the default kernel whose
middle patch does not build. The base and prefix 1 build incrementally in the default
lineage, boot and pass; prefixes 2 and 3 do not build, and patch 2 is the one named.
"""

from __future__ import annotations

import difflib
import json
import os
import time
from pathlib import Path

import pytest

from harness.cli import main
from harness.kernel.source import resolve_source
from harness.paths import PROJECT_ROOT

pytestmark = pytest.mark.vm

SERIES = PROJECT_ROOT / "patches" / "mempressure-shrinker"
TOML = """
name = "uname"
type = "usertest"
[vm]
ram_mib = 128
swap_mib = 0
[[step]]
name = "uname"
run = "uname -r"
timeout_s = 60
"""


def _append(base: Path, rel: str, text: str, subject: str) -> str:
    """A mail-style patch appending ``text`` to ``rel`` of the base tree."""
    old = (base / rel).read_text()
    diff = difflib.unified_diff(old.splitlines(True), (old + text).splitlines(True),
                                f"a/{rel}", f"b/{rel}")
    return f"From: Series Test <series@test>\nSubject: [PATCH] {subject}\n\n---\n" + \
        "".join(diff)


def test_check_series_names_the_patch_in_the_middle_that_does_not_build(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = resolve_source(None).base_dir
    assert base is not None
    d = tmp_path / "series"
    d.mkdir()
    patches = {
        "0001-doc-a-harmless-line.patch": _append(
            base, "Documentation/admin-guide/README.rst", "\n.. check-series: harmless 1\n",
            "doc: a harmless line"),
        "0002-char-mem-a-syntax-error.patch": _append(
            base, "drivers/char/mem.c", "\nint harness_series_syntax_error(void) { return 0 }\n",
            "char: mem: work in progress (does not build)"),
        "0003-doc-another-harmless-line.patch": _append(
            base, "Documentation/admin-guide/bug-bisect.rst", "\n.. check-series: harmless 3\n",
            "doc: another harmless line"),
    }
    for name, text in patches.items():
        (d / name).write_text(text)
    (d / "series").write_text("\n".join(patches) + "\n")
    scen = tmp_path / "uname.toml"
    scen.write_text(TOML)
    t0 = time.monotonic()
    rc = main(["check-series", str(d), "--scenario", str(scen), "--patches", str(SERIES),
               "--accel", os.environ.get("HARNESS_TEST_ACCEL", "tcg"),
               "--run-dir", str(tmp_path / "run")])
    wall = time.monotonic() - t0
    out = capsys.readouterr().out
    with capsys.disabled():
        print(f"\n{out}\ncheck-series wall time: {wall:.0f}s")
    doc = json.loads((tmp_path / "run" / "results.json").read_text())
    rows = doc["prefixes"]
    assert rc == 2, out
    assert [r["k"] for r in rows] == [0, 1, 2, 3]
    assert [r["applies"] for r in rows] == [True] * 4
    assert [r["builds"] for r in rows] == [True, True, False, False]
    assert [r["verdict"] for r in rows[:2]] == ["pass", "pass"] and rows[1]["boots"] is True
    assert doc["first_break"] == {"applies": None, "builds": 2, "boots": None, "verdict": None}
    assert doc["culprit"].startswith("patch 2 (0002-char-mem-a-syntax-error.patch) does not "
                                     "build"), doc["culprit"]
    assert "drivers/char/mem.c" in rows[2]["detail"], rows[2]
    assert "check-series: patch 2 (0002-char-mem-a-syntax-error.patch) does not build" in out
