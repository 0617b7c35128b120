"""The flagship scenario on a debug kernel (KASAN, lockdep, atomic-sleep checks, KFENCE,
UBSAN), 2 vCPUs, with the selftest's lifetime stress: its console must stay clean, and a
series that sleeps under its spinlock must be caught.

These need a second kernel configuration (kernel-config/debug.config), a full rebuild of
the build dir: conftest.py runs them after every default-config test.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from harness.cli import main
from harness.paths import PROJECT_ROOT

pytestmark = [pytest.mark.vm, pytest.mark.debug_kernel]


def _doc(run_dir: Path) -> dict[str, object]:
    doc: dict[str, object] = json.loads((run_dir / "results.json").read_text())
    return doc


def test_debug_kernel_runs_the_scenario_with_a_clean_console(tmp_path: Path) -> None:
    rc = main(["run", "--scenario", "mempressure-debug", "--run-dir", str(tmp_path / "run")])
    doc = _doc(tmp_path / "run")
    assert rc == 0, [(c["name"], c["summary"]) for c in doc["checks"]]  # type: ignore[index]
    # The debug configuration really is the one booted: lockdep and KASAN announce themselves.
    console = (tmp_path / "run" / "console.log").read_text()
    assert "Lock dependency validator" in console
    assert "KernelAddressSanitizer initialized" in console
    # The cases that only mean something here ran, and did not skip: the race between a
    # window's two walks (2 vCPUs) and the lifetime stress with its leak check.
    ktap = (tmp_path / "run" / "selftest.ktap").read_text()
    for case in ("pressure_race", "lifetime_stress"):
        assert re.search(rf"^ok \d+ {case}$", ktap, re.M), case


#: Locking controls only a debug kernel sees, and the console finding each must raise first:
#: a GFP_KERNEL allocation under the shrinkers spinlock (DEBUG_ATOMIC_SLEEP), and a shrinker
#: signalled with that lock dropped (lockdep_assert_held_once() in vmpressure_shrinker_ask(),
#: inlined into the window's work: a WARNING at the first request, where a KASAN report needs
#: the race with a removal to be hit -- one 20 s stress missed it, the next run hit it too).
LOCK_CONTROLS = {"sleep-under-lock": "in vmpressure_shrinker_write",
                 "signal-unlocked": "WARNING in vmpressure_work_fn"}


#: The debug variant without its lifetime stress: both controls are caught at their first
#: advertisement or request, and when signal-unlocked's race with a removal is hit during the
#: stress, the use after free wedges the guest until the selftest's 420 s timeout.
NO_STRESS = 'extends = "mempressure-debug"\nname = "mempressure-debug-locking"\n' \
    '[contract]\nargs = []\n'


@pytest.mark.parametrize("control", sorted(LOCK_CONTROLS))
def test_locking_control_is_caught_on_the_debug_kernel(control: str, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    scenario = tmp_path / "mempressure-debug-locking.toml"
    scenario.write_text(NO_STRESS)
    rc = main(["run", "--scenario", str(scenario), "--patches",
               str(PROJECT_ROOT / "patches" / "mempressure-shrinker"), "--patches",
               str(PROJECT_ROOT / "patches" / "tests" / control),
               "--check", "contract", "--run-dir", str(run_dir)])
    doc = _doc(run_dir)
    (res,) = doc["checks"]  # type: ignore[misc]
    failed = {e["what"]: e["observed"] for e in res["expectations"] if not e["ok"]}
    assert (rc, res["status"]) == (1, "fail"), failed
    # The splat taints the kernel, which the selftest's not_tainted case may see as well.
    assert "console clean while the selftest ran" in failed, failed
    first = failed["console clean while the selftest ran"].split("; ")[0]
    assert LOCK_CONTROLS[control] in first, failed
