"""Negative controls: for every behaviour the scenario claims, a kernel (or workload) that
breaks exactly it must make exactly the check that owns it fail, with exit status 1.

Each row of :data:`CONTROLS` is one TEST-ONLY patch under ``patches/tests/`` applied on top
of the series (see patches/tests/README.md), the checks it must fail and, for each, an
expectation that must be among the failed ones. The run is restricted to those checks
(``--check``). Kernels differ from the default by one source file: each builds
incrementally in seconds; a run costs about a minute under TCG. CI (``tox -e vm``) runs one
control per kind of behaviour -- counter, write path, registration, split policy, byte
weights, carry, hierarchy, candidates outside the subtree, delivery, count cap, idle,
console, MGLRU; the rest are marked ``extended`` (``tox -e vm-extended``).
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

Must = tuple[str, str]  # (check, expectation that must be among its failures)

#: (control patch, scenario, what must fail, in CI?) -- one row per TEST-ONLY kernel.
CONTROLS: list[tuple[str, str, list[Must], bool]] = [
    ("broken-clamp", "mempressure", [("contract", "selftest: count_clamp_zero")], True),
    ("negative-zeroes", "mempressure", [("contract", "selftest: count_withdraw")], False),
    ("ignore-adds", "mempressure", [("contract", "selftest: count_add")], False),
    ("no-saturate-exact", "mempressure", [("contract", "selftest: count_saturate")], False),
    ("s64-min-rejected", "mempressure", [("contract", "selftest: count_s64_min")], False),
    ("whitespace-strict", "mempressure", [("contract", "selftest: write_whitespace")], True),
    ("no-ebusy", "mempressure", [("contract", "selftest: register_twice_busy")], True),
    ("chunk-zero-accepted", "mempressure", [("contract", "selftest: register_chunk_zero")],
     False),
    ("chunk-malformed-accepted", "mempressure",
     [("contract", "selftest: register_chunk_malformed")], False),
    ("list-swapped", "mempressure", [("contract", "selftest: list_new_shrinker")], False),
    ("closed-fd-einval", "mempressure", [("contract", "selftest: write_closed_fd")], False),
    ("unregistered-silent", "mempressure", [("contract", "selftest: write_unregistered")],
     False),
    ("delta-lenient", "mempressure", [("contract", "selftest: write_malformed")], False),
    ("delta-wraps", "mempressure", [("contract", "selftest: write_s64_overflow")], False),
    ("wrong-errno", "mempressure", [("contract", "selftest: write_not_eventfd")], False),
    ("dead-listed", "mempressure", [("contract", "selftest: close_unlists")], False),
    ("idle-asks", "mempressure", [("contract", "selftest: pressure_clean_cache")], False),
    ("seed-underflow", "mempressure", [("contract", "selftest: pressure_clean_cache")], True),
    ("first-only", "mempressure", [("contract", "selftest: pressure_proportional")], True),
    ("no-proportion", "mempressure", [("contract", "selftest: pressure_proportional")], False),
    ("round-up", "mempressure", [("contract", "selftest: pressure_coarse_chunk")], True),
    ("no-descendants", "mempressure",
     [("contract", "selftest: pressure_child_of_limited")], True),
    # The claim the whole series rests on: the same workload with the same settings finishes
    # on the series and is OOM-killed when the kernel never asks -- in the root and in a
    # limited child cgroup -- and the requests and the squeeze response are gone.
    ("dead-shrinker", "mempressure",
     [("contract", "selftest: pressure_at_most_advertised"),
      ("notifications", "requests under pressure"),
      ("notifications", "request after a balloon squeeze"),
      ("oom_absence", "oom_kill in /proc/vmstat"),
      ("child_cgroup", "requests from the child cgroup's own pressure")], True),
    ("ask-beyond-count", "mempressure",
     [("notifications", "total asked <= total advertised")], True),
    ("asks-on-write", "mempressure",
     [("notifications", "no request without pressure (chunks advertised, idle guest)")], True),
    ("warn-on-request", "mempressure",
     [("contract", "selftest: not_tainted"),
      ("contract", "console clean while the selftest ran"),
      ("oom_absence", "oops/BUG/WARNING/lockup on the console/dmesg")], True),
    ("mglru-blind", "mempressure-mglru", [("contract", "selftest: pressure_child_global")],
     True),
    # Issue 20: the policy the .rst documents, one kernel per promise.
    ("semaphore-accepted", "mempressure", [("contract", "selftest: register_semaphore")],
     False),
    ("chunk-cap-ignored", "mempressure", [("contract", "selftest: register_chunk_cap")],
     False),
    ("no-registration-limit", "mempressure", [("contract", "selftest: register_limit")],
     False),
    ("weigh-by-chunks", "mempressure", [("contract", "selftest: pressure_byte_weights")],
     True),
    ("keep-debt", "mempressure", [("contract", "selftest: pressure_debt_reset")], False),
    ("drop-remainder", "mempressure", [("contract", "selftest: pressure_carry")], False),
    ("ask-siblings", "mempressure", [("contract", "selftest: pressure_candidates")], True),
    ("removal-signals-more", "mempressure", [("contract", "selftest: rmdir_final_read")],
     False),
    ("leak-eventfd-ref", "mempressure", [("contract", "selftest: eventfd_released")], True),
    ("no-budget", "mempressure", [("contract", "selftest: pressure_race")], False),
]

#: Run options a control needs beyond its scenario: the race between a window's two walks
#: needs a writer on a second vCPU (on one, pressure_race skips and nothing could fail).
EXTRA_ARGS: dict[str, list[str]] = {"no-budget": ["--smp", "2"]}


def _failed(run_dir: Path) -> dict[str, tuple[str, list[str]]]:
    doc = json.loads((run_dir / "results.json").read_text())
    return {c["name"]: (c["status"], [e["what"] for e in c["expectations"] if not e["ok"]])
            for c in doc["checks"]}


@pytest.mark.parametrize(
    ("control", "scenario", "must"),
    [pytest.param(c, sc, must, id=c, marks=() if ci else pytest.mark.extended)
     for c, sc, must, ci in CONTROLS])
def test_control_fails_the_checks_that_own_it(control: str, scenario: str, must: list[Must],
                                              tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    checks = list(dict.fromkeys(check for check, _ in must))
    rc = main(["run", "--scenario", scenario, "--patches", str(SERIES), "--patches",
               str(TESTS / control), *(a for c in checks for a in ("--check", c)),
               *EXTRA_ARGS.get(control, []), "--run-dir", str(run_dir)])
    got = _failed(run_dir)
    assert rc == 1, got
    for check, expectation in must:
        status, failed = got[check]
        assert status == "fail", (check, failed)
        assert expectation in failed, (check, failed)
