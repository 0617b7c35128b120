"""harness.ktap: golden logs (tests/data/ktap/) and the edge cases of KTAP v1 / TAP 13."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.core.results import Status
from harness.ktap import CaseResult, counts, parse, reported_cases, to_test_cases

DATA = Path(__file__).resolve().parent.parent / "data" / "ktap"
GOLDEN = sorted(p.stem for p in DATA.glob("*.log"))


@pytest.mark.parametrize("name", GOLDEN)
def test_golden(name: str) -> None:
    report = parse((DATA / f"{name}.log").read_text())
    want = json.loads((DATA / f"{name}.expected.json").read_text())
    got = [[path, c.result.value, c.directive] for path, c in reported_cases(report)]
    assert got == want["cases"]
    assert report.version == want["version"]
    assert report.plan == want["plan"]
    assert list(report.problems) == want["problems"]


def test_golden_set_is_not_empty() -> None:
    assert len(GOLDEN) >= 3


def test_kselftest_runner_nests_by_hash_prefix() -> None:
    log = "\n".join([
        "TAP version 13", "1..2",
        "# timeout set to 45", "# selftests: cgroup: test_memcontrol",
        "# TAP version 13", "# 1..3",
        "# ok 1 test_memcg_subtree_control",
        "# not ok 2 test_memcg_min",
        "# ok 3 test_memcg_swap_max # SKIP no swap",
        "# # Totals: pass:1 fail:1 xfail:0 xpass:0 skip:1 error:0",
        "not ok 1 selftests: cgroup: test_memcontrol # exit=1",
        "# timeout set to 45", "# selftests: cgroup: test_kmem",
        "not ok 2 selftests: cgroup: test_kmem # TIMEOUT 45 seconds",
    ])
    r = parse(log)
    assert r.problems == ()
    got = [(p, c.result) for p, c in reported_cases(r)]
    top = "selftests: cgroup: test_memcontrol"
    assert got == [(f"{top}.test_memcg_subtree_control", CaseResult.PASS),
                   (f"{top}.test_memcg_min", CaseResult.FAIL),
                   (f"{top}.test_memcg_swap_max", CaseResult.SKIP),
                   ("selftests: cgroup: test_kmem", CaseResult.TIMEOUT)]
    assert r.cases[0].directive == "exit=1"
    assert counts(r) == {"pass": 1, "fail": 1, "skip": 1, "timeout": 1}


def test_parent_failure_without_failing_child_is_kept() -> None:
    """A program that exits non-zero after printing only "ok" lines is still reported."""
    log = "TAP version 13\n1..1\n# TAP version 13\n# 1..1\n# ok 1 a\nnot ok 1 prog # exit=139\n"
    paths = [(p, c.result) for p, c in reported_cases(parse(log))]
    assert paths == [("prog", CaseResult.FAIL), ("prog.a", CaseResult.PASS)]


def test_directives_and_fallback() -> None:
    log = ("KTAP version 1\n1..6\nnot ok 1 a # SKIP not here\nnot ok 2 b # TODO later\n"
           "ok 3 # XFAIL known\nnot ok 4 d # weird directive\nok 5 e # rcode=0\n"
           "not ok 6 f # ERROR could not start\n")
    got = [(c.name, c.result) for c in parse(log).cases]
    assert got == [("a", CaseResult.SKIP), ("b", CaseResult.TODO), ("case 3", CaseResult.XFAIL),
                   ("d", CaseResult.FAIL), ("e", CaseResult.PASS), ("f", CaseResult.ERROR)]


def test_unknown_lines_do_not_end_a_subtest() -> None:
    """ktap.rst: unknown lines may be indented or not, inside a subtest."""
    log = ("KTAP version 1\n1..1\n  KTAP version 1\n  1..2\n  ok 1 x\n"
           "[   12.5] random kernel message\n  ok 2 y\nok 1 suite\n")
    r = parse(log)
    assert [p for p, _ in reported_cases(r)] == ["suite.x", "suite.y"]
    assert "[   12.5] random kernel message" in r.cases[0].children[1].log


def test_trailing_plan_and_no_version() -> None:
    r = parse("ok 1 first\nnot ok 2 second\n1..2\n")
    assert [c.result for c in r.cases] == [CaseResult.PASS, CaseResult.FAIL]
    assert r.plan == 2 and r.problems == ("no KTAP/TAP version line",)


def test_nothing_found() -> None:
    r = parse("segfault\n")
    assert not r.found and r.cases == ()


def test_skip_whole_program() -> None:
    r = parse("TAP version 13\n1..0 # SKIP memory controller isn't available\n")
    assert r.plan == 0 and r.cases == () and r.problems == ()


def test_test_cases_map_to_core_statuses() -> None:
    r = parse((DATA / "kunit-crash-midrun.log").read_text())
    tcs = to_test_cases(r)
    by = {t.name: t for t in tcs}
    assert by["memcg_charge.charge_over_limit"].status == Status.PASS  # XFAIL is not a failure
    assert by["swap_slots.free_slot"].status == Status.FAIL
    assert by["swap_slots.case 3"].status == Status.ERROR
    assert any("Oops: 0000" in line for line in by["swap_slots.case 3"].log.splitlines())
