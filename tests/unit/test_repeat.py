"""--repeat: the combined verdict of N run dirs, its exit status, and the CLI's validation."""

from __future__ import annotations

from typing import Any

import pytest

from harness.cli import main
from harness.core import repeat
from harness.core.measure import describe, of_run
from harness.core.runner import parse_guest_state


def doc(*statuses: tuple[str, str], sq: float = 1.0) -> dict[str, Any]:
    return {"scenario": "mempressure", "verdict": "x",
            "checks": [{"name": n, "title": n.title(), "status": s,
                        "measurements": {"squeeze_to_request_s": sq, "cases": {"pass": 3}}}
                       for n, s in statuses],
            "timings_s": {"boot": 2.0}}


def test_all_pass() -> None:
    d = repeat.aggregate([doc(("contract", "pass")), doc(("contract", "pass"))])
    c = d["checks"][0]
    assert (c["verdict"], c["passes"], c["total"], d["verdict"]) == ("pass", 2, 2, "pass")
    assert c["wilson95"] == [pytest.approx(0.3424, abs=1e-4), 1.0]
    assert repeat.exit_for(d["verdict"]) == 0


def test_mixed_is_flaky_and_exit_1() -> None:
    docs = [doc(("contract", "pass"), ("notifications", "pass")),
            doc(("contract", "fail"), ("notifications", "pass"))]
    d = repeat.aggregate(docs)
    by = {c["name"]: c for c in d["checks"]}
    assert by["contract"]["verdict"] == "flaky" and by["contract"]["pass_rate"] == 0.5
    assert by["notifications"]["verdict"] == "pass"
    assert d["verdict"] == "flaky" and repeat.exit_for(d["verdict"]) == 1


def test_all_fail_and_error() -> None:
    assert repeat.aggregate([doc(("c", "fail"))] * 3)["verdict"] == "fail"
    d = repeat.aggregate([doc(("c", "pass")), doc(("c", "error"))])
    assert d["checks"][0]["verdict"] == "error" and repeat.exit_for(d["verdict"]) == 3
    # a repeat that left no results.json is an infra error, not a pass
    assert repeat.aggregate([doc(("c", "pass")), None])["verdict"] == "error"


def test_measurement_spread() -> None:
    d = repeat.aggregate([doc(("n", "pass"), sq=v) for v in (3.0, 1.0, 2.0)])
    m = {f"{r['check']}.{r['name']}": r for r in d["measurements"]}
    sq = m["n.squeeze_to_request_s"]
    assert (sq["n"], sq["median"], sq["min"], sq["max"]) == (3, 2.0, 1.0, 3.0)
    assert sq["unit"] == "s" and sq["direction"] == "lower" and sq["values"] == [3.0, 1.0, 2.0]
    assert "n.cases" not in m  # a dict is not a measurement
    assert m["run.timings_s.boot"]["unit"] == "s"
    assert "flaky" not in repeat.summary_table(d) and "<svg" in repeat.summary_html(d)


def test_measurement_table() -> None:
    assert describe("chunks_asked") == ("chunks", None)
    assert describe("squeeze_to_request_s") == ("s", "lower")
    rows = of_run([("notifications", {"requests": 3, "squeeze_to_request_s": None,
                                      "ok": True})], {"build kernel": 1.5})
    assert [(r.check, r.name, r.value) for r in rows] == [
        ("notifications", "requests", 3.0), ("run", "timings_s.build_kernel", 1.5)]


def test_guest_state_missing_files_are_null() -> None:
    got = parse_guest_state("=== harness-state thp\nalways [madvise] never\n"
                            "=== harness-state swappiness\n=== harness-state swaps\n")
    assert got == {"thp": "madvise", "swappiness": None, "mglru": None, "swap_kib": None,
                   "cmdline": None}
    # /proc/swaps with only its header: no swap, 0 KiB
    assert parse_guest_state("=== harness-state swaps\nFilename Type Size Used Priority\n"
                             )["swap_kib"] == 0


@pytest.mark.parametrize("n", ["1", "0", "-3"])
def test_repeat_below_two_is_usage_error(n: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--repeat", n, "--check", "contract"]) == 2
    assert f"--repeat {n}" in capsys.readouterr().err
