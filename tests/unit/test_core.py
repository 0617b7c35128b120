"""The generic core without a VM: scenario specs, the check registry, the report emitters,
and judging a saved run dir (what ``harness judge`` does)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.cli import main
from harness.core import report
from harness.core.registry import checks_for
from harness.core.results import (
    CheckResult,
    Expectation,
    Status,
    TestCase,
    infra_error,
    overall,
)
from harness.core.runner import judge_run_dir, planned_checks
from harness.core.spec import VMSettings, load_spec, spec_from_text
from harness.errors import UsageError
from harness.rundir import RUN_META, SPEC_COPY
from harness.scenarios.mempressure.timeline import timeline_series, timeline_svg
from harness.scenarios.mempressure.workload_output import (
    parse_mem_series,
    parse_ops,
    parse_stress,
    parse_vmstat,
)


def test_default_scenario_loads_with_its_checks() -> None:
    sc = load_spec("mempressure")
    assert sc.type_name == "mempressure"
    assert [c.name for c in checks_for(sc)] == ["contract", "notifications", "oom_absence",
                                                "child_cgroup"]
    assert sc.vm.ram_mib == 160 and sc.vm.cgroup == "v1"


def test_vm_defaults_live_in_one_place_and_override_field_by_field() -> None:
    base = VMSettings()
    assert base.override(ram_mib=None, swap_mib=0) == VMSettings(swap_mib=0)


def test_spec_errors_name_file_and_key(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="scenario not found"):
        load_spec("no-such-scenario")
    p = tmp_path / "x.toml"
    text = load_spec("mempressure").text
    p.write_text(text.replace('checks = ["contract", "notifications"',
                              'checks = ["bogus", "notifications"'))
    with pytest.raises(UsageError) as ei:
        checks_for(load_spec(p))
    assert "bogus" in ei.value.message and str(p) in ei.value.culprit
    p.write_text('[vm]\nram_mib = "lots"\n')
    with pytest.raises(UsageError) as ei:
        load_spec(p)
    assert ei.value.culprit == f"{p} [vm] ram_mib"
    p.write_text('[vm]\nrm_mib = 5\n')
    with pytest.raises(UsageError, match="unknown key"):
        load_spec(p)
    p.write_text('type = "nope"\n')
    with pytest.raises(UsageError, match="unknown scenario type"):
        checks_for(load_spec(p))
    p.write_text(text.replace('interface_file = "memory.pressure_shrinker"', ''))
    with pytest.raises(UsageError, match="missing parameter") as ei:
        checks_for(load_spec(p))
    assert ei.value.culprit == f"{p} [workload] interface_file"


def test_check_option_is_validated_against_the_registry() -> None:
    sc = load_spec("mempressure")
    assert [c.name for c in planned_checks(sc, ["contract"])] == ["contract"]
    with pytest.raises(UsageError) as ei:
        planned_checks(sc, ["contrac"])
    assert ei.value.culprit == "--check"


def test_workload_parsers() -> None:
    log = parse_stress("EV 1.5 asked n=3 requests=1 asked_total=3\nnoise\nSUMMARY {bad json\n")
    assert log.of("asked")[0].int("n") == 3
    assert log.summary is None and log.other == ["noise", "SUMMARY {bad json"]
    ops = parse_ops("OP add err EINVAL Invalid argument\nOP read ok chunk_size=4096 chunks=7\n")
    assert (ops[0].ok, ops[0].errno) == (False, "EINVAL")
    assert ops[1].int("chunks") == 7
    mem = parse_mem_series("12.5 1000 2000 1500\nbad line\n")
    assert mem[0].mem_available == 1000 and len(mem) == 1
    assert parse_vmstat("oom_kill 2\nnr_free_pages 100\n")["oom_kill"] == 2


def _results() -> list[CheckResult]:
    ok = CheckResult("clamping", "clamp", Status.PASS, [Expectation("a", "1", "1", True)],
                     "mpctl.out", cases=[TestCase("suite.case_a", Status.PASS),
                                         TestCase("suite.case_b", Status.SKIP, "SKIP no swap")])
    bad = CheckResult("oom_absence", "oom", Status.FAIL,
                      [Expectation("oom_kill", "unchanged", "+1", False)], "console.log")
    err = infra_error("child_cgroup", "child", "SSH lost", "infra-error.txt")
    return [ok, bad, err]


def test_junit_separates_failures_errors_and_reports_cases() -> None:
    root = ET.fromstring(report.junit_xml("mempressure", _results(), {"boot": 3.0}))
    assert root.get("tests") == "5" and root.get("failures") == "1"
    assert root.get("errors") == "1" and root.get("skipped") == "1"
    cases = {c.get("name"): c for c in root.iter("testcase")}
    failure = cases["oom_absence"].find("failure")
    assert failure is not None and "expected unchanged, observed +1" in failure.get("message", "")
    assert cases["child_cgroup"].find("error") is not None
    assert cases["suite.case_a"].get("classname") == "mempressure.clamping"


def test_results_doc_html_and_table(tmp_path: Path) -> None:
    results = _results()
    doc = report.results_doc("mempressure", overall(results), results, {"accel": "tcg"},
                             {"boot": 3.0}, tmp_path)
    assert doc["verdict"] == "error"
    lines, reqs = timeline_series(
        parse_mem_series("1 1000 2000 2000\n2 500 2000 1000\n"),
        parse_stress("EV 1.5 added n=5 held=5 advertised=5\nEV 1.7 asked n=2 requests=1 "
                     "asked_total=2\nEV 1.8 freed n=2 held=3\n"), 1 << 20)
    svg = timeline_svg(lines, reqs, [{"t": 1.6, "label": "balloon"}])
    assert svg.startswith("<svg") and "polyline" in svg and "balloon" in svg
    report.write_all(tmp_path, doc, report.junit_xml("m", results, {}), svg)
    html = (tmp_path / "report.html").read_text()
    assert "oom_absence" in html and "<svg" in html and "Infrastructure" not in html
    assert "suite.case_b" in html
    assert json.loads((tmp_path / "results.json").read_text())["checks"][1]["status"] == "fail"
    assert "verdict: ERROR" in report.verdict_table(doc)


# -- judging a saved run dir -------------------------------------------------------------
STRESS_OUT = """EV 10.000 registered chunk_size=1048576 efd=3
EV 10.001 phase name=stress
EV 10.500 added n=40 held=40 advertised=40
EV 12.000 asked n=4 requests=1 asked_total=4
EV 12.010 freed n=4 held=36
EV 23.000 asked n=2 requests=2 asked_total=6
EV 23.010 freed n=2 held=34
SUMMARY {"added":40,"asked":6,"freed":6,"requests":2,"end":"work"}
"""


def _saved_run(tmp_path: Path, **stress_obs: object) -> Path:
    """A run dir as the mempressure protocol leaves it, for the stress checks only."""
    run = tmp_path / "run"
    run.mkdir()
    spec = load_spec("mempressure")
    (run / SPEC_COPY).write_text(spec.text)
    (run / RUN_META).write_text(json.dumps({
        "scenario": "mempressure", "planned": ["notifications", "oom_absence"],
        "infra_error": "", "interrupted": "", "info": {}, "timings_s": {}}))
    stress = {"oom_kill_before": 0, "oom_kill_after": 0, "ended": "exit 0",
              "console": [0, None], "qmp_status": "running", "t_squeeze": 22.0,
              "t_start": 10.0, "lru_gen": "0x0000"}
    stress.update(stress_obs)
    (run / "observations.json").write_text(json.dumps({
        "interface": {"path": "/sys/fs/cgroup/memory/memory.pressure_shrinker", "present": True},
        "mpctl": {"idle": "OP register ok efd=4 id=0\nOP add ok\nOP wait ok n=0 timeout=1\n"
                          "OP read ok id=0 chunk_size=1048576 chunks=50\n"},
        "stress": stress}))
    (run / "mpstress.out").write_text(STRESS_OUT)
    (run / "console.log").write_text("[    0.000000] Linux version 6.12\n")
    # uptime MemAvailable SwapTotal SwapFree, pgscan k/d, pgsteal k/d, pgrefill, oom_kill
    (run / "memory-guest.tsv").write_text(
        "header\n" + "".join(f"{10 + i} 1000 2000 2000 {100 * i} 0 {90 * i} 0 0 0\n"
                             for i in range(15)))
    return run


def test_judge_a_saved_run_without_a_vm(tmp_path: Path) -> None:
    run = _saved_run(tmp_path)
    outcome = judge_run_dir(run)
    assert [r.status for r in outcome.results] == [Status.PASS, Status.PASS], \
        [r.summary() for r in outcome.results]
    notif = outcome.results[0]
    assert notif.measurements["squeeze_to_request_s"] == 1.0
    assert (run / "results.json").is_file() and (run / "junit.xml").is_file()


def test_judge_sees_what_the_saved_run_saw(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    run = _saved_run(tmp_path, oom_kill_after=1)
    assert main(["judge", str(run)]) == 1
    assert "oom_kill in /proc/vmstat: expected unchanged, observed +1" in capsys.readouterr().out


def test_judge_partial_run_marks_unrun_checks_error(tmp_path: Path) -> None:
    run = _saved_run(tmp_path)
    obs = json.loads((run / "observations.json").read_text())
    del obs["stress"]
    (run / "observations.json").write_text(json.dumps(obs))
    meta = json.loads((run / RUN_META).read_text())
    meta["interrupted"] = "interrupted by SIGTERM"
    (run / RUN_META).write_text(json.dumps(meta))
    outcome = judge_run_dir(run)
    assert outcome.verdict == Status.ERROR
    assert all("not run: interrupted by SIGTERM" in r.summary() for r in outcome.results)


def test_judge_rejects_a_dir_that_is_not_a_run(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not a run directory"):
        judge_run_dir(tmp_path)


def test_spec_copy_round_trips() -> None:
    sc = load_spec("mempressure")
    again = spec_from_text(sc.text, Path("run/scenario.toml"))
    assert again.data == sc.data and again.vm == sc.vm


@pytest.mark.parametrize(("body", "culprit"), [
    ("[notifications]\nsqueeze_at = 4\n", "[notifications] squeeze_at"),
    ("[kernel]\nfragmnts = []\n", "[kernel] fragmnts"),
    ("[notificatons]\nx = 1\n", "notificatons"),
    ("[guest]\nsetpu = []\n", "[guest] setpu"),
])
def test_a_key_nobody_reads_is_an_error_naming_file_and_key(tmp_path: Path, body: str,
                                                           culprit: str) -> None:
    from harness.core.registry import scenario_type

    p = tmp_path / "v.toml"
    p.write_text('extends = "mempressure"\nname = "v"\n' + body)
    with pytest.raises(UsageError) as ei:
        spec = load_spec(str(p))
        scenario_type(spec).validate(spec)
    assert ei.value.culprit.endswith(culprit) and "unknown key" in ei.value.message
