"""Scenario files, workload output parsing, and the report emitters."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.errors import UsageError
from harness.scenario import checks as C
from harness.scenario import report
from harness.scenario.spec import load_scenario
from harness.scenario.workload_output import parse_mem_series, parse_ops, parse_stress, parse_vmstat


def test_default_scenario_loads() -> None:
    sc = load_scenario("mempressure")
    assert sc.checks == ["notifications", "clamping", "oom_absence", "child_cgroup"]
    assert sc.get("vm", "ram_mib") == 256


def test_scenario_errors_name_file_and_key(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="scenario not found"):
        load_scenario("no-such-scenario")
    p = tmp_path / "x.toml"
    p.write_text('checks = ["notifications", "bogus"]\n')
    with pytest.raises(UsageError) as ei:
        load_scenario(str(p))
    assert "bogus" in ei.value.message
    p.write_text('[vm]\nram_mib = "lots"\n')
    sc = load_scenario(str(p))
    with pytest.raises(UsageError) as ei:
        sc.get("vm", "ram_mib")
    assert ei.value.culprit == f"{p} [vm] ram_mib"
    with pytest.raises(UsageError, match="missing parameter"):
        sc.get("vm", "swap_mib")


def test_parse_stress_keeps_unknown_lines() -> None:
    log = parse_stress("EV 1.5 asked n=3 requests=1 asked_total=3\nnoise\nSUMMARY {bad json\n")
    assert log.of("asked")[0].int("n") == 3
    assert log.summary is None and log.other == ["noise", "SUMMARY {bad json"]


def test_parse_ops_and_series() -> None:
    ops = parse_ops("OP add err EINVAL Invalid argument\nOP read ok chunk_size=4096 chunks=7\n")
    assert (ops[0].ok, ops[0].errno) == (False, "EINVAL")
    assert ops[1].int("chunks") == 7
    mem = parse_mem_series("12.5 1000 2000 1500\nbad line\n")
    assert mem[0].mem_available == 1000 and len(mem) == 1
    assert parse_vmstat("oom_kill 2\nnr_free_pages 100\n")["oom_kill"] == 2


def _results() -> list[C.CheckResult]:
    ok = C.CheckResult("clamping", "clamp", C.Status.PASS,
                       [C.Expectation("a", "1", "1", True)], "mpctl.out")
    bad = C.CheckResult("oom_absence", "oom", C.Status.FAIL,
                        [C.Expectation("oom_kill", "unchanged", "+1", False)], "console.log")
    err = C.infra_error("child_cgroup", "child", "SSH lost", "infra-error.txt")
    return [ok, bad, err]


def test_junit_separates_failures_from_errors() -> None:
    root = ET.fromstring(report.junit_xml("mempressure", _results(), {"boot": 3.0}))
    assert root.get("tests") == "3" and root.get("failures") == "1" and root.get("errors") == "1"
    cases = {c.get("name"): c for c in root.iter("testcase")}
    failure = cases["oom_absence"].find("failure")
    assert failure is not None and "expected unchanged, observed +1" in failure.get("message", "")
    assert cases["child_cgroup"].find("error") is not None


def test_results_doc_and_html(tmp_path: Path) -> None:
    results = _results()
    doc = report.results_doc("mempressure", C.overall(results), results, {"accel": "tcg"},
                             {"boot": 3.0}, tmp_path)
    assert doc["verdict"] == "error"
    lines, reqs = report.timeline_series(
        parse_mem_series("1 1000 2000 2000\n2 500 2000 1000\n"),
        parse_stress("EV 1.5 added n=5 held=5 advertised=5\nEV 1.7 asked n=2 requests=1 "
                     "asked_total=2\nEV 1.8 freed n=2 held=3\n"), 1 << 20)
    svg = report.timeline_svg(lines, reqs, [{"t": 1.6, "label": "balloon"}])
    assert svg.startswith("<svg") and "polyline" in svg and "balloon" in svg
    report.write_all(tmp_path, doc, report.junit_xml("m", results, {}), svg)
    html = (tmp_path / "report.html").read_text()
    assert "oom_absence" in html and "<svg" in html and "Infrastructure" not in html
    assert json.loads((tmp_path / "results.json").read_text())["checks"][1]["status"] == "fail"
    assert "verdict: ERROR" in report.verdict_table(doc)
