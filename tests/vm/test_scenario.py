"""The mempressure scenario end to end in a real VM, re-judged from its run dir, and the
controls that are not kernel patches: a workload that ignores the kernel (--no-reclaim) and
a kernel without the series at all (the kernel-patch controls are in test_controls.py)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.cli import main
from harness.core.request import kernel_request
from harness.core.results import Status
from harness.core.runner import RunOptions, RunOutcome, run_scenario
from harness.core.spec import ScenarioSpec, load_spec

pytestmark = pytest.mark.vm



def _run(sc: ScenarioSpec, run_dir: Path, *, no_reclaim: bool = False,
         extra_series: tuple[Path, ...] = ()) -> tuple[RunOutcome, dict[str, object]]:
    opts = RunOptions(spec=sc, build=kernel_request(sc, extra_series=extra_series), vm=sc.vm,
                      options={"no_reclaim": True} if no_reclaim else {}, run_dir=run_dir)
    outcome = run_scenario(opts)
    return outcome, outcome.doc


def _status(outcome: RunOutcome) -> dict[str, Status]:
    return {r.name: r.status for r in outcome.results}


def _only(checks: list[str], tmp_path: Path) -> ScenarioSpec:
    """The default scenario restricted to some checks: a data change (a variant that
    extends it), not a code change."""
    p = tmp_path / "scenario.toml"
    p.write_text(f'extends = "mempressure"\nname = "mempressure-part"\n'
                 f"checks = {json.dumps(checks)}\n")
    return load_spec(p)


def test_mempressure_scenario_passes(tmp_path: Path) -> None:
    outcome, doc = _run(load_spec("mempressure"), tmp_path / "run")
    assert _status(outcome) == {"contract": Status.PASS, "notifications": Status.PASS,
                                "oom_absence": Status.PASS, "child_cgroup": Status.PASS}, \
        [r.summary() for r in outcome.results]
    assert outcome.verdict == Status.PASS
    run = outcome.run_dir
    for name in ("console.log", "dmesg.txt", "mpstress.out", "mpctl.out", "memory-guest.tsv",
                 "memory-host-qmp.json", "results.json", "junit.xml", "report.html",
                 "scenario.toml", "run.json", "observations.json", "selftest.ktap",
                 "guest-events.log"):
        assert (run / name).is_file() and (run / name).stat().st_size > 0, name
    cases = [c.get("name") for c in ET.parse(run / "junit.xml").getroot().iter("testcase")]
    assert cases[:5] == ["contract", "register_chunk_zero", "register_chunk_malformed",
                         "register_not_eventfd", "register_twice_busy"]
    assert cases[-3:] == ["notifications", "oom_absence", "child_cgroup"]
    contract = next(r for r in outcome.results if r.name == "contract")
    # Every case passes but the two that cannot mean anything in this guest and say so: the
    # race of a window's two walks needs a second vCPU, the lifetime stress its option (both
    # run on mempressure-debug, where test_debug_kernel requires them to pass).
    # (kselftest's ksft_test_result_skip() prints "ok N # SKIP <name>": the name is in the
    # directive, so the case is "case N" and its message names it.)
    not_passed = {c.message: c.status for c in contract.cases if c.status != Status.PASS}
    assert len(contract.cases) >= 28 and not_passed == {
        "SKIP pressure_race": Status.SKIP, "SKIP lifetime_stress": Status.SKIP}, not_passed
    notif = next(r for r in outcome.results if r.name == "notifications")
    assert notif.measurements["squeeze_to_request_s"] is not None
    assert "<svg" in (run / "report.html").read_text()


def test_no_reclaim_negative_control_fails_oom_absence(tmp_path: Path) -> None:
    outcome, _ = _run(_only(["oom_absence"], tmp_path), tmp_path / "run", no_reclaim=True)
    result = outcome.results[0]
    # A failed check (the kernel had to OOM-kill), not an infrastructure error.
    assert result.status == Status.FAIL, result.summary()
    failed = {e.what for e in result.failures()}
    assert "oom_kill in /proc/vmstat" in failed
    assert "stress test finishes its work (it touched 2x what fits) with its summary" in failed


def test_saved_run_is_judged_again_without_a_vm(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """``harness judge`` on a real run dir gives the live verdict back, check for check."""
    outcome, _ = _run(_only(["contract"], tmp_path), tmp_path / "run")
    live = json.loads((outcome.run_dir / "results.json").read_text())
    (outcome.run_dir / "results.json").unlink()
    assert main(["judge", str(outcome.run_dir)]) == 0, capsys.readouterr().out
    again = json.loads((outcome.run_dir / "results.json").read_text())
    assert [(c["name"], c["status"], c["expectations"]) for c in again["checks"]] == \
        [(c["name"], c["status"], c["expectations"]) for c in live["checks"]]


def test_unpatched_kernel_gives_interface_missing(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = tmp_path / "run"
    rc = main(["run", "--patches", "none", "--config", "guest,mempressure",
               "--run-dir", str(run_dir)])
    out = capsys.readouterr().out
    assert rc == 1, out
    assert out.count("interface missing") >= 4, out
    doc = json.loads((run_dir / "results.json").read_text())
    assert doc["verdict"] == "fail"
    assert all(c["status"] == "fail" for c in doc["checks"])
