"""harness compare on fabricated run dirs: guard, unchanged, too few samples, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import main
from harness.core.report import results_doc
from harness.core.results import CheckResult, Status


def repeat_dir(path: Path, values: list[float], name: str = "squeeze_to_request_s") -> Path:
    path.mkdir(parents=True)
    doc = {"kind": "repeat", "verdict": "pass", "checks": [], "measurements": [
        {"check": "notifications", "name": name, "unit": "s", "direction": "lower",
         "values": values, "n": len(values)}]}
    (path / "results.json").write_text(json.dumps(doc))
    return path


def run_dir(path: Path, sq: float) -> Path:
    path.mkdir(parents=True)
    r = CheckResult("notifications", "N", Status.PASS, measurements={"squeeze_to_request_s": sq})
    doc = results_doc("mempressure", Status.PASS, [r], {}, {"boot": 2.0}, path)
    (path / "results.json").write_text(json.dumps(doc))
    return path


BASE = [1.0, 1.1, 0.9, 1.05, 0.95, 1.02, 0.98]


def test_guarded_twice_worse_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = repeat_dir(tmp_path / "a", BASE)
    b = repeat_dir(tmp_path / "b", [2 * v for v in BASE])
    assert main(["compare", str(a), str(b), "--guard", "squeeze_to_request_s"]) == 1
    out = capsys.readouterr().out
    assert "changed (worse)" in out and "2.000" in out
    # without the guard the change is reported, not fatal
    assert main(["compare", str(a), str(b)]) == 0
    # better is not worse: B -> A with the guard exits 0
    assert main(["compare", str(b), str(a), "--guard", "notifications.squeeze_to_request_s"]) == 0


def test_unchanged_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = repeat_dir(tmp_path / "a", BASE)
    b = repeat_dir(tmp_path / "b", [1.01, 0.97, 1.08, 0.92, 1.0, 1.03, 0.99])
    assert main(["compare", str(a), str(b), "--guard", "squeeze_to_request_s", "--json",
                 "--html", str(tmp_path / "c.html")]) == 0
    doc = json.loads(capsys.readouterr().out)
    row = doc["measurements"][0]
    assert row["call"] == "unchanged" and row["p"] > 0.05 and row["n_a"] == 7
    assert "<svg" in (tmp_path / "c.html").read_text()


def test_single_run_dirs_are_too_few_samples(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    a, b = run_dir(tmp_path / "a", 1.0), run_dir(tmp_path / "b", 5.0)
    assert main(["compare", str(a), str(b), "--guard", "squeeze_to_request_s"]) == 0
    out = capsys.readouterr().out
    assert "too few samples" in out and "n=1 vs n=1" in out
    assert "run.timings_s.boot" in out


def test_not_a_run_dir_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = repeat_dir(tmp_path / "a", BASE)
    assert main(["compare", str(a), str(tmp_path / "missing")]) == 2
    assert str(tmp_path / "missing") in capsys.readouterr().err
