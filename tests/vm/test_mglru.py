"""The flagship under MGLRU: every check of the variant, its measured gap, and its controls.

Under the multi-gen LRU the series' accounting holds (what a window asks follows what
reclaim missed, as on the classic LRU), but the shrinker does not keep the flagship workload
from being OOM-killed in most runs (6 of 7 measured): MGLRU misses far fewer pages, so it asks
far less, and the workload fills swap. A run that ends in an OOM kill must say so in plain
words -- an oom_absence failure that names what reclaim missed and what was asked, beside the
classic-LRU reference pass of the same boot -- never a PASS that hides it; a run without one
is a true pass.

The controls break the MGLRU reporting in exactly one way each and fail a named check:
``mglru-double-report`` (a pass reported twice: asks twice what was missed) the notifications
band, and ``mglru-blind`` (no MGLRU report) the selftest's global case (tests/vm/test_controls.py).
``mglru-kswapd-only`` (direct reclaim silent) is *not* caught yet: under MGLRU direct reclaim
misses only about a fifth of what is missed before the OOM kill (measured 11-13 MiB of 46-52
MiB), so its band (0.91) is within the series' run-to-run spread (0.95); it is kept in
patches/tests/ as the open case.
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


def test_mglru_variant_runs_every_check_and_names_its_gap(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    rc = main(["run", "--scenario", "mempressure-mglru", "--run-dir", str(run_dir)])
    got = _checks(run_dir)
    assert set(got) == {"contract", "notifications", "oom_absence", "child_cgroup"}
    for name in ("contract", "notifications", "child_cgroup"):
        assert got[name]["status"] == "pass", (name, _failed(got[name]))
    # The gap, measured and named -- not hidden. It is not deterministic: the workload is
    # OOM-killed under MGLRU in most runs (6 of 7 measured), not all; a run without an OOM
    # kill is a true pass, and one with it must say what reclaim and the shrinker did.
    oom = got["oom_absence"]
    if oom["status"] == "pass":
        assert rc == 0, got
    else:
        assert rc == 1 and oom["status"] == "fail", oom
        summary = str(oom["summary"])
        assert "into the stress phase under MGLRU" in summary, summary
        assert "classic LRU, same workload in the same boot" in summary, summary
    html = (run_dir / "report.html").read_text()
    assert "Reclaim's deficit and what the shrinker was asked" in html
    assert "classic LRU" in html and "this run" in html


@pytest.mark.parametrize("control", ["mglru-double-report"])
def test_mglru_reporting_controls_fail_the_band(control: str, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    rc = main(["run", "--scenario", "mempressure-mglru", "--patches", str(SERIES),
               "--patches", str(TESTS / control), "--check", "notifications",
               "--run-dir", str(run_dir)])
    notif = _checks(run_dir)["notifications"]
    assert rc == 1 and notif["status"] == "fail", notif
    assert BAND in _failed(notif), _failed(notif)
