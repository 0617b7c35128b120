"""--repeat results in JUnit and KCIDB: pass rate, interval and the flaky verdict."""

from __future__ import annotations

import copy
import importlib.util
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from harness import kcidb
from harness.core import repeat

_spec = importlib.util.spec_from_file_location("kcidb_cases",
                                               Path(__file__).with_name("test_kcidb.py"))
assert _spec and _spec.loader
_k = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_k)


def _results(status: str) -> dict[str, Any]:
    r = copy.deepcopy(_k.RESULTS)
    r["checks"] = [r["checks"][0]]
    r["checks"][0]["status"] = status
    r["checks"][0]["measurements"] = {"squeeze_to_request_s": 1.0 if status == "pass" else 2.0}
    r["verdict"] = status
    return r


def _repeat_dir(tmp_path: Path, statuses: list[str]) -> Path:
    root = tmp_path / "rep"
    root.mkdir()
    docs = []
    for i, st in enumerate(statuses, start=1):
        d = _k._run_dir(root, f"repeat-{i}", _results(st))
        docs.append(json.loads((d / "results.json").read_text()))
    doc = repeat.aggregate(docs, run_dirs=[f"repeat-{i}" for i in range(1, len(statuses) + 1)])
    doc["seconds"] = 12.5
    (root / "results.json").write_text(json.dumps(doc))
    return root


def test_junit_has_one_case_per_check_with_its_rate_and_flaky_as_failure(
        tmp_path: Path) -> None:
    root = _repeat_dir(tmp_path, ["pass", "fail", "pass"])
    doc = json.loads((root / "results.json").read_text())
    suite = ET.fromstring(repeat.junit_xml(doc))
    assert suite.get("failures") == "1" and suite.get("tests") == "1"
    (case,) = suite.findall("testcase")
    fail = case.find("failure")
    assert fail is not None and fail.get("type") == "flaky"
    assert "2/3 passed (67%, 95% Wilson [" in str(fail.get("message"))
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert props["verdict"] == "flaky" and props["statuses"] == "pass fail pass"
    assert props["pass_rate"] == "0.6667"
    sprops = {p.get("name"): p.get("value") for p in suite.find("properties") or []}
    assert sprops["repeats"] == "3"
    assert sprops["measurement.clamping.squeeze_to_request_s"].startswith("median 1 s [1..2]")


def test_junit_all_pass_is_no_failure(tmp_path: Path) -> None:
    doc = json.loads((_repeat_dir(tmp_path, ["pass", "pass"]) / "results.json").read_text())
    suite = ET.fromstring(repeat.junit_xml(doc))
    assert suite.get("failures") == "0" and suite.find("testcase/failure") is None


def test_kcidb_of_a_repeat_set_is_valid_and_carries_the_rate(tmp_path: Path) -> None:
    root = _repeat_dir(tmp_path, ["pass", "fail", "pass", "pass"])
    doc = kcidb.from_repeat_dir(root)
    kcidb.validate(doc)
    assert len(doc["builds"]) == 1 and len(doc["checkouts"]) == 1  # one kernel, built once
    per_repeat = [t for t in doc["tests"] if "repeat" in t.get("misc", {})]
    assert len(per_repeat) == 4 * 2  # scenario + check of each repeat
    assert {t["misc"]["repeat"]["of"] for t in per_repeat} == {4}
    combined = {t["path"]: t for t in doc["tests"] if "repeat_summary" in t.get("misc", {})}
    check = combined["clamping.clamping"]
    assert check["status"] == "FAIL" and check["comment"].startswith("flaky: 3/4 passed (75%")
    assert check["misc"]["repeat_summary"]["wilson95"][0] < 0.75
    assert combined["clamping"]["misc"]["repeat_summary"]["measurements"][0]["median"] == 1.0
    assert len({t["id"] for t in doc["tests"]}) == len(doc["tests"])
