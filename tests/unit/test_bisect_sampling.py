"""Adaptive repeats of a bisect: the pure rules (sampling) and the driver with fake runs."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

import pytest

from harness.bisect import parallel, sampling
from harness.bisect.adaptive import run_series_adaptive
from harness.bisect.report import summary_text
from harness.bisect.sampling import Call, Counts, Rates, Rule
from harness.bisect.step import BisectConfig, read_steps
from harness.core.results import Status
from harness.errors import UsageError
from harness.matrix.builds import KernelBuild
from harness.matrix.job import JobResult

CHECK = Rule("check", min_runs=3, max_runs=10, step_confidence=0.99)
METRIC = Rule("metric", min_runs=3, max_runs=10, step_confidence=0.99)


# --- the pure rules ------------------------------------------------------------------------

def test_binomial_cdf() -> None:
    assert sampling.binom_cdf(0, 3, 0.5) == pytest.approx(1 / 8)
    assert sampling.binom_cdf(1, 3, 0.5) == pytest.approx(4 / 8)
    assert sampling.binom_cdf(3, 3, 0.5) == 1.0
    assert sampling.binom_cdf(-1, 3, 0.5) == 0.0
    assert sampling.binom_cdf(0, 5, 0.0) == 1.0
    assert sampling.binom_cdf(4, 5, 1.0) == 0.0


def test_bad_needs_max_2_n_over_6_failures_for_a_check_and_a_majority_for_a_metric() -> None:
    assert [sampling.min_bad("check", n) for n in (1, 3, 6, 12, 13, 20)] == [2, 2, 2, 2, 3, 4]
    assert [sampling.min_bad("metric", n) for n in (3, 4, 5)] == [2, 3, 3]


def test_too_few_judged_runs_ask_for_more_then_skip() -> None:
    d = sampling.decide(Counts(0, 1, 1), Rates(0.9, 0.0), CHECK)
    assert d.call == Call.MORE and d.more == 2
    d = sampling.decide(Counts(0, 2, 10), Rates(0.9, 0.0), CHECK)  # 8 runs did not run
    assert d.call == Call.SKIP and "2 of 10" in d.reason


def test_a_check_that_always_fails_is_bad_at_once_with_full_confidence() -> None:
    d = sampling.decide(Counts(3, 3, 3), Rates(0.875, 0.0), CHECK)
    assert d.call == Call.BAD and d.confidence == 1.0  # never failed without the change


def test_one_failure_is_not_enough_and_asks_for_more() -> None:
    d = sampling.decide(Counts(1, 3, 3), Rates(0.875, 0.0), CHECK)
    assert d.call == Call.MORE and d.more >= 1


def test_good_confidence_is_the_chance_the_change_would_have_shown() -> None:
    d = sampling.decide(Counts(0, 3, 3), Rates(0.875, 0.0), CHECK)
    assert d.call == Call.GOOD
    assert d.confidence == pytest.approx(1 - 0.125 ** 3)  # syzkaller's 1 - (1-r)^n
    # a rarely reproducing failure needs many passes: more runs, as many as the target needs
    d = sampling.decide(Counts(0, 3, 3), Rates(0.3, 0.0), CHECK)
    assert d.call == Call.MORE and d.more == 7  # (0.7)^13 > 0.01: up to the budget (10)
    d = sampling.decide(Counts(0, 10, 10), Rates(0.3, 0.0), CHECK)
    assert d.call == Call.GOOD and d.confidence == pytest.approx(1 - 0.7 ** 10)
    assert "under the step's" in d.reason  # honest: the budget ran out


def test_a_failure_under_half_of_the_runs_is_flaky_not_bad() -> None:
    d = sampling.decide(Counts(2, 6, 6), Rates(0.5, 0.0), CHECK)
    assert d.call == Call.FLAKY and "flaky" in d.reason
    d = sampling.decide(Counts(3, 6, 6), Rates(0.5, 0.0), CHECK)
    assert d.call == Call.BAD  # exactly half is not under half


def test_a_check_that_fails_at_the_good_endpoint_lowers_bad_confidence() -> None:
    d = sampling.decide(Counts(2, 3, 3), Rates(0.875, 0.2), CHECK)
    assert d.call == Call.MORE  # 2 of 3 is not sure when 1 in 5 runs fail without the change
    d = sampling.decide(Counts(6, 6, 6), Rates(0.875, 0.2), CHECK)
    assert d.call == Call.BAD and d.confidence == pytest.approx(1 - 0.2 ** 6)


def test_metric_calls_need_a_majority_and_grow_on_disagreement() -> None:
    rates = sampling.estimate_rates("metric", Counts(0, 3, 3), [Counts(3, 3, 3)])
    assert rates == Rates(0.875, 0.125)
    clean_bad = sampling.decide(Counts(3, 3, 3), rates, METRIC)
    clean_good = sampling.decide(Counts(0, 3, 3), rates, METRIC)
    assert clean_bad.call == Call.BAD and clean_good.call == Call.GOOD
    assert clean_bad.confidence == pytest.approx(1 - 0.125 ** 3)
    one_off = sampling.decide(Counts(2, 3, 3), rates, METRIC)
    assert one_off.call == Call.MORE and one_off.more == 1  # one agreeing run reaches 0.99
    assert sampling.decide(Counts(3, 4, 4), rates, METRIC).call == Call.BAD
    assert sampling.decide(Counts(2, 4, 10), rates, METRIC).call == Call.GOOD  # no majority


def test_rates_only_decrease_with_later_bad_calls() -> None:
    r = sampling.estimate_rates("check", Counts(0, 5, 5), [Counts(5, 5, 5), Counts(2, 6, 6)])
    assert r.bad == pytest.approx(sampling.smoothed(7, 11))
    r = sampling.estimate_rates("check", Counts(0, 5, 5), [Counts(2, 6, 6), Counts(6, 6, 6)])
    assert r.bad == pytest.approx(sampling.smoothed(2, 6))  # never raised above the endpoint's
    assert sampling.estimate_rates("check", Counts(1, 5, 5), []).good == 0.2


def test_step_target_and_overall_confidence() -> None:
    assert sampling.expected_steps(4, 1) == 4  # 2 endpoints + log2(4) points
    assert sampling.expected_steps(1, 2) == 2
    assert sampling.expected_steps(9, 3) == 2 + 2 * 2
    t = sampling.step_target(0.95, 4)
    assert t ** 4 == pytest.approx(0.95)
    assert sampling.overall_confidence([0.99, 0.98, 1.0]) == pytest.approx(0.99 * 0.98)


def test_confident_range_ignores_unsure_calls() -> None:
    calls = {0: (Call.GOOD, 1.0), 8: (Call.BAD, 1.0), 4: (Call.GOOD, 0.9),
             6: (Call.BAD, 0.999), 5: (Call.BAD, 0.999)}
    assert sampling.confident_range(calls, 0, 8, 0.99) == (0, 5)  # the 0.9 at 4 does not count
    calls[4] = (Call.GOOD, 0.995)
    assert sampling.confident_range(calls, 0, 8, 0.99) == (4, 5)
    calls[7] = (Call.FLAKY, 1.0)
    assert sampling.confident_range(calls, 0, 8, 0.99) == (4, 5)


def test_threshold_parsing_and_the_cut() -> None:
    assert sampling.parse_threshold("0.75x") == sampling.Threshold(0.75, True)
    assert sampling.parse_threshold("2.5") == sampling.Threshold(2.5, False)
    for bad in ("1x", "0x", "fast", "x"):
        with pytest.raises(UsageError) as ei:
            sampling.parse_threshold(bad)
        assert ei.value.culprit.startswith("--threshold")
    cut = sampling.resolve_cut(sampling.Threshold(0.75, True), 100.0, 50.0)
    assert cut == sampling.Cut(75.0, False) and cut.bad_side(60) and not cut.bad_side(90)
    cut = sampling.resolve_cut(sampling.Threshold(1.5, True), 2.0, 4.0)
    assert cut.bad_above and cut.value == 3.0
    cut = sampling.resolve_cut(sampling.Threshold(3.0, False), 2.0, 4.0)
    assert cut.bad_above  # absolute: the side the bad endpoint is on
    with pytest.raises(UsageError, match="not on either side"):
        sampling.resolve_cut(sampling.Threshold(0.75, True), 100.0, 90.0)
    with pytest.raises(UsageError, match="not on either side"):
        sampling.resolve_cut(sampling.Threshold(5.0, False), 2.0, 4.0)


def test_metric_names_match_like_compare() -> None:
    rows = [("zero", "duration_s", 2.0), ("full", "duration_s", 3.0), ("run", "x", 1.0)]
    assert sampling.metric_value(rows, "full.duration_s") == 3.0
    assert sampling.metric_value(rows, "x") == 1.0
    assert sampling.metric_value(rows, "y") is None
    assert sampling.ambiguous_metric(rows, "duration_s") == ["full.duration_s",
                                                             "zero.duration_s"]


# --- the driver with fake runs ----------------------------------------------------------------

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


def _fake_pool(tmp_path: Path, outcome: Any, calls: list[list[int]]) -> Any:
    """A BatchRunner._run that writes each job's results.json from ``outcome(k, i)`` ->
    (check status, value or None) instead of booting anything."""
    count: dict[int, int] = {}

    def fake_run(self: parallel.BatchRunner, named: list[tuple[str, parallel.Target]],
                 parallel: int | None = None) -> tuple[list[JobResult], dict[str, KernelBuild]]:
        ks = [int(t.target.split("=")[1]) for _, t in named]
        calls.append(ks)
        out = []
        for (name, _), k in zip(named, ks, strict=True):
            i = count.get(k, 0)
            count[k] = i + 1
            status, value = outcome(k, i)
            d = tmp_path / "jobs" / name
            d.mkdir(parents=True)
            ms = [] if value is None else [{"check": "zero", "name": "duration_s",
                                            "value": value, "unit": "s",
                                            "direction": "lower"}]
            (d / "results.json").write_text(json.dumps({
                "checks": [{"name": "zero", "status": status}], "measurements": ms}))
            out.append(JobResult(f"{name}/bisect/vm", name,
                                 Status.PASS if status == "pass" else Status.FAIL,
                                 0 if status == "pass" else 1, str(d), 1.0,
                                 checks=[{"name": "zero", "status": status}]))
        return out, {name: KernelBuild(name, "key", "/bz") for name, _ in named}

    return fake_run


def _cfg(tmp_path: Path, n: int, **kw: Any) -> BisectConfig:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    return BisectConfig(mode="series", run_dir=str(run_dir), scenario="mempressure",
                        checks=["zero"], series=[str(_series(tmp_path, n))], **kw)


def test_metric_bisect_names_the_halving_patch_with_its_confidence(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    culprit, n = 5, 8
    rng = random.Random(7)

    def outcome(k: int, i: int) -> tuple[str, float]:
        base = 2.0 if k >= culprit else 1.0  # the duration doubles: throughput halves
        return "pass", base * rng.uniform(0.85, 1.15)  # +-15 % run-to-run noise

    calls: list[list[int]] = []
    monkeypatch.setattr(parallel.BatchRunner, "_run", _fake_pool(tmp_path, outcome, calls))
    cfg = _cfg(tmp_path, n, metric="zero.duration_s", threshold="1.5x", max_runs=8)
    doc = run_series_adaptive(cfg)
    assert doc["status"] == "found", doc["message"]
    assert doc["first_bad"]["index"] == culprit
    assert doc["confidence"] >= 0.95
    assert doc["message"].startswith("culprit patch 5")
    assert doc["adaptive"]["cut"]["bad_above"] is True
    assert calls[0] == [0, 0, 0, n, n, n]  # min-runs at both endpoints, in one batch
    steps = read_steps(Path(cfg.run_dir))
    assert [s.phase for s in steps[:2]] == ["endpoint", "endpoint"]
    assert all(s.confidence is not None and len(s.attempts) >= 3 for s in steps)
    text = summary_text(doc)
    assert "culprit patch 5" in text and "threshold 1.5x" in text
    json.dumps(doc)


def test_metric_noise_costs_runs_not_correctness(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """An outlier run at the culprit (one value on the wrong side) adds runs instead of
    sending the search the wrong way."""
    culprit, n = 2, 4
    outliers = {(culprit, 1)}

    def outcome(k: int, i: int) -> tuple[str, float]:
        v = 2.0 if k >= culprit else 1.0
        return "pass", (1.0 if (k, i) in outliers else v)

    calls: list[list[int]] = []
    monkeypatch.setattr(parallel.BatchRunner, "_run", _fake_pool(tmp_path, outcome, calls))
    doc = run_series_adaptive(_cfg(tmp_path, n, metric="duration_s", threshold="1.5x",
                                   max_runs=8))
    assert doc["status"] == "found" and doc["first_bad"]["index"] == culprit
    step = next(s for s in doc["steps"] if s["target"] == f"k={culprit}")
    assert len(step["attempts"]) > 3 and step["verdict"] == "bad"


def test_a_too_small_budget_is_inconclusive_with_the_range(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def outcome(k: int, i: int) -> tuple[str, float]:
        return "pass", (2.0 if k >= 3 else 1.0) * (1.3 if i % 2 else 0.8)  # heavy noise

    monkeypatch.setattr(parallel.BatchRunner, "_run", _fake_pool(tmp_path, outcome, []))
    doc = run_series_adaptive(_cfg(tmp_path, 6, metric="duration_s", threshold="1.5x",
                                   min_runs=2, max_runs=2, confidence=0.999))
    assert doc["status"] == "inconclusive"
    assert "could be any of" in doc["message"] and doc["candidates"]
    assert doc["confidence"] < 0.999


def test_unknown_metric_is_usage_error_naming_what_is_measured(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel.BatchRunner, "_run",
                        _fake_pool(tmp_path, lambda k, i: ("pass", 1.0), []))
    with pytest.raises(UsageError) as ei:
        run_series_adaptive(_cfg(tmp_path, 3, metric="nope", threshold="0.5x",
                                        max_runs=10))
    assert ei.value.culprit == "--metric nope" and "zero.duration_s" in ei.value.message


def test_endpoints_on_the_same_side_are_usage_error(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel.BatchRunner, "_run",
                        _fake_pool(tmp_path, lambda k, i: ("pass", 1.0 + k / 100), []))
    with pytest.raises(UsageError) as ei:
        run_series_adaptive(_cfg(tmp_path, 3, metric="duration_s", threshold="1.5x",
                                        max_runs=10))
    assert ei.value.culprit == "--threshold 1.5x"


def test_flaky_failure_with_the_change_is_found_and_flagged(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The change makes the check fail in every third run: revisions with it are flaky
    (not bad), the search still names it, and the result says it is flaky."""
    culprit, n = 3, 4

    def outcome(k: int, i: int) -> tuple[str, None]:
        return ("fail" if k >= culprit and i % 3 == 2 else "pass"), None

    monkeypatch.setattr(parallel.BatchRunner, "_run", _fake_pool(tmp_path, outcome, []))
    doc = run_series_adaptive(_cfg(tmp_path, n, max_runs=12))
    verdicts = {s["target"]: s["verdict"] for s in doc["steps"]}
    assert verdicts[f"k={n}"] == "flaky" and verdicts[f"k={culprit}"] == "flaky"
    assert "bad" not in verdicts.values()
    assert doc["flaky"] is True
    assert doc["first_bad"] is not None or doc["status"] == "inconclusive"
    if doc["first_bad"]:
        assert doc["first_bad"]["index"] == culprit


def test_a_check_flaky_at_the_good_endpoint_is_reported_flaky(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def outcome(k: int, i: int) -> tuple[str, None]:
        return ("fail" if i % 3 == 2 else "pass"), None  # every third run, any revision

    monkeypatch.setattr(parallel.BatchRunner, "_run", _fake_pool(tmp_path, outcome, []))
    doc = run_series_adaptive(_cfg(tmp_path, 3, max_runs=6))
    assert doc["status"] == "flaky" and doc["first_bad"] is None
    assert "good endpoint" in doc["message"]
    assert {s["verdict"] for s in doc["steps"]} == {"flaky"}
    assert "flaky" in summary_text(doc)


def test_the_classic_check_rule_still_reaches_full_confidence_quickly(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    culprit, n = 6, 16
    calls: list[list[int]] = []

    def outcome(k: int, i: int) -> tuple[str, None]:
        return ("fail" if k >= culprit else "pass"), None

    monkeypatch.setattr(parallel.BatchRunner, "_run", _fake_pool(tmp_path, outcome, calls))
    doc = run_series_adaptive(_cfg(tmp_path, n, max_runs=10))
    assert doc["status"] == "found" and doc["first_bad"]["index"] == culprit
    assert doc["confidence"] >= 0.95
    runs = sum(len(c) for c in calls)
    assert runs <= 3 * (2 + math.ceil(math.log2(n))) + 6  # a few extra passes at most


@pytest.mark.parametrize("extra, culprit", [
    (["--metric", "zero.mib_s"], "--metric"),
    (["--threshold", "0.5x"], "--threshold"),
    (["--metric", "m", "--threshold", "1x"], "--threshold 1x"),
    (["--metric", "m", "--threshold", "fast"], "--threshold fast"),
    (["--max-runs", "1"], "--max-runs 1"),
    (["--max-runs", "4", "--min-runs", "5"], "--max-runs 4"),
    (["--max-runs", "4", "--retries", "2"], "--retries"),
    (["--max-runs", "4", "--confidence", "1.5"], "--confidence 1.5"),
])
def test_adaptive_options_are_checked_up_front(tmp_path: Path, extra: list[str], culprit: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli import main

    rc = main(["bisect", "--patches", str(_series(tmp_path, 2)), "--check", "contract",
               "--run-dir", str(tmp_path / "run"), *extra])
    err = capsys.readouterr().err
    assert rc == 2 and culprit in err, err


def test_resume_reuses_the_recorded_runs_and_runs_only_what_is_left(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An adaptive bisect interrupted after some steps: --resume decides those from their
    records (no run again) and reaches the same culprit; resuming a finished one runs nothing."""
    culprit, n = 5, 8
    rng = random.Random(3)
    values = {(k, i): (2.0 if k >= culprit else 1.0) * rng.uniform(0.9, 1.1)
              for k in range(n + 1) for i in range(8)}

    def outcome(k: int, i: int) -> tuple[str, float]:
        return "pass", values[(k, i)]

    calls: list[list[int]] = []
    monkeypatch.setattr(parallel.BatchRunner, "_run", _fake_pool(tmp_path, outcome, calls))
    cfg = _cfg(tmp_path, n, metric="duration_s", threshold="1.5x", max_runs=8)
    full = run_series_adaptive(cfg)
    assert full["status"] == "found" and full["first_bad"]["index"] == culprit
    ran = sum(len(c) for c in calls)
    steps_file = Path(cfg.run_dir) / "steps.jsonl"
    lines = steps_file.read_text().splitlines()
    assert len(lines) >= 4

    calls.clear()
    again = run_series_adaptive(cfg, resume=True)
    assert calls == [] and again["first_bad"] == full["first_bad"]
    assert steps_file.read_text().splitlines() == lines  # nothing recorded twice

    steps_file.write_text("\n".join(lines[:3]) + "\n")  # interrupted after three steps
    monkeypatch.setattr(parallel.BatchRunner, "_run",
                        _fake_pool(tmp_path / "second", outcome, calls))
    resumed = run_series_adaptive(cfg, resume=True)
    assert resumed["first_bad"] == full["first_bad"] and resumed["status"] == "found"
    done = {json.loads(x)["target"] for x in lines[:3]}
    assert not any(f"k={k}" in done for batch in calls for k in batch), calls
    assert 0 < sum(len(c) for c in calls) < ran
