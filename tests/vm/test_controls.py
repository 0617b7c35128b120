"""Negative controls: for every behaviour the scenario claims, a kernel (or workload) that
breaks exactly it must make exactly the check that owns it fail, with exit status 1.

Each row of :data:`CONTROLS` is one TEST-ONLY patch under ``patches/tests/`` applied on top
of the series (see patches/tests/README.md), the check it must fail and the expectation that
must be among the failed ones. The run is restricted to that check (``--check``), so a control
that broke something else would show as a different failure, not pass unnoticed. Kernels
differ from the default by one source file: each builds incrementally in seconds.
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

#: (control patch, scenario, check, expectation that must fail)
CONTROLS = [
    ("broken-clamp", "mempressure", "contract", "selftest: count_clamp_zero"),
    ("negative-zeroes", "mempressure", "contract", "selftest: count_withdraw"),
    ("ignore-adds", "mempressure", "contract", "selftest: count_add"),
    ("no-saturate-exact", "mempressure", "contract", "selftest: count_saturate"),
    ("s64-min-rejected", "mempressure", "contract", "selftest: count_s64_min"),
    ("whitespace-strict", "mempressure", "contract", "selftest: write_whitespace"),
    ("no-ebusy", "mempressure", "contract", "selftest: register_twice_busy"),
    ("wrong-errno", "mempressure", "contract", "selftest: write_not_eventfd"),
    ("dead-listed", "mempressure", "contract", "selftest: close_unlists"),
    ("idle-asks", "mempressure", "contract", "selftest: pressure_zero_count"),
    ("seed-underflow", "mempressure", "contract", "selftest: pressure_read_bounded"),
    ("first-only", "mempressure", "contract", "selftest: pressure_proportional"),
    ("no-proportion", "mempressure", "contract", "selftest: pressure_proportional"),
    ("round-up", "mempressure", "contract", "selftest: pressure_coarse_chunk"),
    ("no-descendants", "mempressure", "contract", "selftest: pressure_child_of_limited"),
    ("dead-shrinker", "mempressure", "contract", "selftest: pressure_at_most_advertised"),
    ("dead-shrinker", "mempressure", "notifications", "requests under pressure"),
    ("ask-beyond-count", "mempressure", "notifications", "total asked <= total advertised"),
    ("asks-on-write", "mempressure", "notifications",
     "no request without pressure (chunks advertised, idle guest)"),
    ("warn-on-request", "mempressure", "oom_absence",
     "oops/BUG/WARNING/lockup on the console/dmesg"),
    # The claim the whole series rests on: the same workload, same settings, survives on the
    # series and is OOM-killed when the kernel never asks.
    ("dead-shrinker", "mempressure", "oom_absence", "oom_kill in /proc/vmstat"),
    ("dead-shrinker", "mempressure", "child_cgroup", "requests from the child cgroup's own "
     "pressure"),
    ("mglru-blind", "mempressure-mglru", "contract", "selftest: pressure_child_global"),
]


def _failed(run_dir: Path, check: str) -> tuple[str, list[str]]:
    doc = json.loads((run_dir / "results.json").read_text())
    (res,) = [c for c in doc["checks"] if c["name"] == check]
    return res["status"], [e["what"] for e in res["expectations"] if not e["ok"]]


@pytest.mark.parametrize(("control", "scenario", "check", "expectation"), CONTROLS,
                         ids=[f"{c[0]}-{c[2]}" for c in CONTROLS])
def test_control_fails_the_check_that_owns_it(control: str, scenario: str, check: str,
                                              expectation: str, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    rc = main(["run", "--scenario", scenario, "--patches", str(SERIES), "--patches",
               str(TESTS / control), "--check", check, "--run-dir", str(run_dir)])
    status, failed = _failed(run_dir, check)
    assert (rc, status) == (1, "fail"), failed
    assert expectation in failed, failed
