"""harness check-series without a VM: the per-patch table and exit status, and the walk over
prefixes with build and run faked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from harness.commands import check_series as cs
from harness.commands.check_series import Row
from harness.core.results import CheckResult, Status
from harness.core.runner import RunOutcome
from harness.errors import BuildError, UsageError


def _ok(k: int) -> Row:
    return Row(k, f"p{k}", True, True, True, "pass")


def test_every_prefix_passing_is_exit_0() -> None:
    rows = [_ok(0), _ok(1), _ok(2)]
    assert cs.exit_status(rows) == 0
    assert cs.first_breaks(rows) == {"applies": None, "builds": None, "boots": None,
                                     "verdict": None}
    assert cs.culprit_line(rows) == ""
    assert "every prefix passed" in cs.table(rows)


def test_the_first_broken_patch_decides() -> None:
    rows = [_ok(0), _ok(1), Row(2, "p2", True, False, detail="mm/x.c:3: error"),
            Row(3, "p3", True, True, True, "fail", failed_checks=["contract"])]
    assert cs.exit_status(rows) == 2
    assert cs.culprit_line(rows).startswith("patch 2 (p2) does not build: mm/x.c:3")
    fb = cs.first_breaks(rows)
    assert fb["builds"] == 2 and fb["verdict"] == 3
    assert cs.first_failing_checks(rows) == {"contract": 3}
    rows[2] = _ok(2)
    assert cs.exit_status(rows) == 1
    assert "patch 3 (p3) fails contract" in cs.culprit_line(rows)


def test_infra_only_when_nothing_else_broke() -> None:
    rows = [_ok(0), Row(1, "p1", True, True, False, "error", detail="no boot")]
    assert cs.exit_status(rows) == 3
    rows.append(Row(2, "p2", False, detail="does not apply"))
    assert cs.exit_status(rows) == 2
    assert cs.culprit_line(rows).startswith("patch 2 (p2) does not apply")


def test_untried_prefixes_do_not_count() -> None:
    rows = [_ok(0), Row(1, "p1", False), Row(2, "p2", detail="not tried")]
    assert cs.exit_status(rows) == 2
    assert "-" in cs.table(rows).splitlines()[3]


def test_commit_of_a_format_patch() -> None:
    sha = "a" * 40
    assert cs.commit_of_patch(f"From {sha} Mon Sep 17 00:00:00 2001\nSubject: x\n".encode()) \
        == sha
    assert cs.commit_of_patch(b"--- a/x\n+++ b/x\n") is None


def _series(tmp_path: Path, n: int) -> Path:
    d = tmp_path / "series"
    d.mkdir()
    names = []
    for i in range(1, n + 1):
        name = f"{i:04d}-p{i}.patch"
        (d / name).write_text(f"--- a/f{i}\n+++ b/f{i}\n@@ -0,0 +1 @@\n+x\n")
        names.append(name)
    (d / "series").write_text("\n".join(names) + "\n")
    return d


def _fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, build: Any, verdict: Any) -> None:
    import harness.core.runner as runner
    import harness.kernel.build as kb

    def fake_build(req: Any, progress: Any = None) -> None:
        build(len(req.series[-1].joinpath("series").read_text().splitlines()) if req.series else 0)

    def fake_run(opts: Any) -> RunOutcome:
        k = len(opts.build.series[-1].joinpath("series").read_text().splitlines()) \
            if opts.build.series else 0
        st = verdict(k)
        opts.run_dir.mkdir(parents=True, exist_ok=True)
        (opts.run_dir / "run.json").write_text(json.dumps({"timings_s": {"boot": 1.0}}))
        res = [CheckResult("zero", "zero", Status(st))]
        return RunOutcome(opts.run_dir, "s", res, Status(st), {})  # type: ignore[typeddict-item]

    monkeypatch.setattr(kb, "build_kernel", fake_build)
    monkeypatch.setattr(runner, "run_scenario", fake_run)


def test_the_walk_names_the_patch_that_does_not_build(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    def build(k: int) -> None:
        if k >= 2:
            raise BuildError("mm/vmpressure.c:12", "error: expected ';'")
    _fake(monkeypatch, tmp_path, build, lambda k: "pass")
    rc = main(["check-series", str(_series(tmp_path, 3)), "--run-dir", str(tmp_path / "r")])
    out = capsys.readouterr().out
    assert rc == 2
    assert "patch 2 (0002-p2.patch) does not build: mm/vmpressure.c:12" in out
    doc = json.loads((tmp_path / "r" / "results.json").read_text())
    assert [p["builds"] for p in doc["prefixes"]] == [True, True, False, False]
    assert doc["first_break"]["builds"] == 2
    assert doc["prefixes"][0]["patch"] == "(base)"


def test_an_apply_failure_ends_the_walk(tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    def build(k: int) -> None:
        if k >= 1:
            raise UsageError("patch 0001-p1.patch", "does not apply: f1, hunk #1: no match")
    _fake(monkeypatch, tmp_path, build, lambda k: "pass")
    rc = main(["check-series", str(_series(tmp_path, 3)), "--skip-base", "--json",
               "--run-dir", str(tmp_path / "r")])
    doc = json.loads((tmp_path / "r" / "results.json").read_text())
    assert rc == 2
    assert [p["applies"] for p in doc["prefixes"]] == [False, None, None]
    assert "not tried" in doc["prefixes"][1]["detail"]


def test_a_failing_verdict_is_exit_1_with_the_first_failing_check(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake(monkeypatch, tmp_path, lambda k: None, lambda k: "fail" if k >= 2 else "pass")
    rc = main(["check-series", str(_series(tmp_path, 3)), "--run-dir", str(tmp_path / "r")])
    doc = json.loads((tmp_path / "r" / "results.json").read_text())
    assert rc == 1 and doc["first_failing_check"] == {"zero": 2}
    assert doc["culprit"].startswith("patch 2 (0002-p2.patch) fails zero")


def test_bad_input_is_exit_2_naming_it(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-series", str(tmp_path / "nope")]) == 2
    assert "nope" in capsys.readouterr().err
    assert main(["check-series", str(_series(tmp_path, 1)), "--check", "nosuch"]) == 2
