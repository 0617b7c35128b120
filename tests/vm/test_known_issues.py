"""Known issues in a real run: a TEST-ONLY kernel that WARNs on every request.

Listed in a --known-issues file with policy warn, the warning is reported under its issue id
and the run passes (its KCIDB document carries the issue and an incident); the same kernel
without the file fails the console expectation -- the negative control.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import main
from harness.kcidb import validate
from harness.paths import PROJECT_ROOT

pytestmark = pytest.mark.vm

SERIES = PROJECT_ROOT / "patches" / "mempressure-shrinker"
WARN = PROJECT_ROOT / "patches" / "tests" / "warn-on-request"
KNOWN = """[[issue]]
id = "test-warn-on-request"
title = "vmpressure"
culprit = "code"
policy = "warn"
url = "https://example.org/known/warn-on-request"
comment = "TEST-ONLY: patches/tests/warn-on-request"
"""


def _run(tmp_path: Path, name: str, *extra: str) -> tuple[int, dict[str, object]]:
    run_dir = tmp_path / name
    rc = main(["run", "--patches", str(SERIES), "--patches", str(WARN), "--check",
               "oom_absence", "--run-dir", str(run_dir), *extra])
    return rc, json.loads((run_dir / "results.json").read_text())


def test_a_known_warning_with_policy_warn_passes_named_and_unknown_fails(tmp_path: Path
                                                                          ) -> None:
    known = tmp_path / "known.toml"
    known.write_text(KNOWN)
    kcidb = tmp_path / "kcidb.json"
    rc, doc = _run(tmp_path, "known", "--known-issues", str(known), "--kcidb", str(kcidb))
    named = [f for f in doc["findings"] if f.get("known_issue")]  # type: ignore[union-attr]
    assert rc == 0, doc["checks"]
    assert named and named[0]["known_issue"]["id"] == "test-warn-on-request"
    k = json.loads(kcidb.read_text())
    validate(k)
    assert [i["id"] for i in k["issues"]] == ["kpharness:test-warn-on-request"]
    assert k["incidents"] and k["incidents"][0]["issue_id"] == "kpharness:test-warn-on-request"
    rc, doc = _run(tmp_path, "unknown")
    oom = next(c for c in doc["checks"] if c["name"] == "oom_absence")  # type: ignore[union-attr]
    assert rc == 1 and oom["status"] == "fail"
    assert any(not e["ok"] and "WARNING" in e["what"] for e in oom["expectations"])
