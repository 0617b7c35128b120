"""The flagship under MGLRU: every check of the variant passes, and its controls fail.

Under the multi-gen LRU a page found in use is a miss wherever MGLRU finds it -- mostly in the
page-table walk of its aging (patch 0006) -- as a referenced page is on the classic LRU, so the
shrinker is asked in the same bursts under either LRU and keeps the flagship workload alive.
The variant's verdict must be a plain PASS, its report must chart both LRUs side by side.

The controls break the MGLRU reporting in exactly one way each and fail a named check:
``mglru-double-report`` (a pass reported twice) the notifications band from above,
``mglru-walk-uncounted`` (the walk's pages left out of vmpressure, still in pgrefill) from
below, and ``mglru-blind`` (no MGLRU report) the selftest's global case
(tests/vm/test_controls.py). ``mglru-kswapd-only`` (direct reclaim silent) fails the band in
2 runs of 3 only (patches/tests/README.md), so it is not among them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import main
from harness.paths import PROJECT_ROOT

pytestmark = pytest.mark.vm

SERIES = PROJECT_ROOT / "patches" / "mempressure-shrinker"
TESTS = PROJECT_ROOT / "patches" / "tests"
BAND = "asked per byte reclaim missed (pgscan - pgsteal, /proc/vmstat)"


def _checks(run_dir: Path) -> dict[str, dict[str, object]]:
    doc = json.loads((run_dir / "results.json").read_text())
    return {c["name"]: c for c in doc["checks"]}


def _failed(check: dict[str, object]) -> list[str]:
    return [str(e["what"]) for e in check["expectations"] if not e["ok"]]  # type: ignore[attr-defined, index]


def test_mglru_variant_passes_every_check(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    rc = main(["run", "--scenario", "mempressure-mglru", "--run-dir", str(run_dir)])
    got = _checks(run_dir)
    assert set(got) == {"contract", "notifications", "oom_absence", "child_cgroup"}
    for name, check in got.items():
        assert check["status"] == "pass", (name, check["summary"], _failed(check))
    assert rc == 0
    html = (run_dir / "report.html").read_text()
    assert "Reclaim's deficit and what the shrinker was asked" in html
    assert "classic LRU" in html and "this run" in html


@pytest.mark.parametrize("control", ["mglru-double-report", "mglru-walk-uncounted"])
def test_mglru_reporting_controls_fail_the_band(control: str, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    rc = main(["run", "--scenario", "mempressure-mglru", "--patches", str(SERIES),
               "--patches", str(TESTS / control), "--check", "notifications",
               "--run-dir", str(run_dir)])
    notif = _checks(run_dir)["notifications"]
    assert rc == 1 and notif["status"] == "fail", notif
    assert BAND in _failed(notif), _failed(notif)
