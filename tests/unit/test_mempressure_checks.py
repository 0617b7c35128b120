"""The verdict functions: each expectation shown holding and shown failing."""

from __future__ import annotations

from harness import ktap
from harness.console import Finding, Severity
from harness.core.results import infra_error, overall
from harness.scenarios.mempressure import checks as C
from harness.scenarios.mempressure.workload_output import parse_ops, parse_stress

GOOD_STRESS = """EV 10.000 registered chunk_size=1048576 efd=3
EV 10.001 phase name=stress
EV 10.500 added n=40 held=40 advertised=40
EV 11.000 added n=40 held=80 advertised=80
EV 11.200 asked n=12 requests=1 asked_total=12
EV 11.300 freed n=12 held=68
EV 12.000 added n=40 held=108 advertised=120
EV 12.100 asked n=30 requests=2 asked_total=42
EV 12.200 freed n=30 held=78
SUMMARY {"added":120,"asked":42,"freed":42,"bytes_freed":44040192,"requests":2,\
"chunk_size":1048576,"max_held":108,"end":"work"}
"""
IDLE_OK = ("OP register ok efd=3\nOP add ok\nOP wait ok n=0 timeout=1\n"
           "OP read ok chunk_size=1048576 chunks=50\n")


def _failed(r: C.CheckResult) -> list[str]:
    return [e.what for e in r.failures()]


def test_notifications_pass() -> None:
    r = C.check_notifications(parse_stress(GOOD_STRESS), parse_ops(IDLE_OK), 1.5, 10)
    assert r.status == C.Status.PASS, r.summary()
    assert r.measurements["requests"] == 2 and r.measurements["chunks_asked"] == 42


def test_notifications_fail_each_way() -> None:
    no_requests = "\n".join(ln for ln in GOOD_STRESS.splitlines() if " asked " not in ln)
    r = C.check_notifications(parse_stress(no_requests), parse_ops(IDLE_OK), None, 10)
    assert r.status == C.Status.FAIL
    assert "requests under pressure" in _failed(r)
    assert "request after a balloon squeeze" in _failed(r)
    greedy = GOOD_STRESS.replace("asked n=30", "asked n=300")
    r = C.check_notifications(parse_stress(greedy), parse_ops(IDLE_OK), 1.0, 10)
    assert _failed(r) == ["total asked <= total advertised"]
    # A request printed before the "added" line of the write that enabled it is the listener
    # winning a race, not the kernel asking too much: one batch of slack, no more.
    raced = GOOD_STRESS.replace("EV 12.000 added n=40 held=108 advertised=120\n"
                                "EV 12.100 asked n=30 requests=2 asked_total=42\n",
                                "EV 12.100 asked n=30 requests=2 asked_total=42\n"
                                "EV 12.000 added n=40 held=108 advertised=120\n")
    assert raced != GOOD_STRESS
    r = C.check_notifications(parse_stress(raced), parse_ops(IDLE_OK), 1.0, 10)
    assert r.status == C.Status.PASS, r.summary()
    beyond = raced.replace("asked n=30 requests=2 asked_total=42", "asked n=200 requests=2")
    r = C.check_notifications(parse_stress(beyond), parse_ops(IDLE_OK), 1.0, 10)
    assert _failed(r) == ["total asked <= total advertised"]
    spurious = IDLE_OK.replace("wait ok n=0 timeout=1", "wait ok n=7")
    r = C.check_notifications(parse_stress(GOOD_STRESS), parse_ops(spurious), 1.0, 10)
    assert "no request without pressure (chunks advertised, idle guest)" in _failed(r)
    r = C.check_notifications(parse_stress(GOOD_STRESS), parse_ops(IDLE_OK), 25.0, 10)
    assert _failed(r) == ["request after a balloon squeeze"]


SELFTEST_OK = """TAP version 13
1..3
# register_chunk_zero: 0.01 s
ok 1 register_chunk_zero
ok 2 clamp_at_zero
# global_pressure_asks_child: skipped, no swap
ok 3 global_pressure_asks_child # SKIP no swap
# Totals: pass:2 fail:0 xfail:0 xpass:0 skip:1 error:0
"""


def _contract(text: str = SELFTEST_OK, rc: int | None = 0, timed_out: bool = False,
              findings: list[Finding] | None = None) -> C.CheckResult:
    return C.check_contract(ktap.parse(text), rc, timed_out, findings or [])


def test_contract_pass_reports_each_case() -> None:
    r = _contract()
    assert r.status == C.Status.PASS, r.summary()
    assert [c.name for c in r.cases] == ["register_chunk_zero", "clamp_at_zero",
                                         "global_pressure_asks_child"]
    assert r.cases[2].status == C.Status.SKIP


def test_contract_fails_on_a_case_a_crash_or_a_splat() -> None:
    broken = SELFTEST_OK.replace("ok 2 clamp_at_zero", "not ok 2 clamp_at_zero")
    assert _failed(_contract(broken, rc=1)) == ["selftest: clamp_at_zero"]
    crashed = SELFTEST_OK.split("ok 2")[0]
    # The names of cases that never printed are unknown: the plan says how many are missing.
    assert _failed(_contract(crashed, rc=139)) == [
        "selftest ran to the end", "selftest: case 2", "selftest: case 3"]
    assert "selftest ran to the end" in _failed(_contract("", rc=None, timed_out=True))
    splat = Finding("atomic_sleep", "BUG: sleeping function called from invalid context in "
                    "vmpressure_shrinker_write", Severity.ERROR, 3, "...")
    assert _failed(_contract(findings=[splat])) == ["console clean while the selftest ran"]


def test_contract_skipped_whole_is_skip_not_pass() -> None:
    r = _contract("TAP version 13\n1..0 # SKIP memory controller v1 not mounted\n", rc=4)
    assert r.status == C.Status.SKIP


def _oom(**kw: object) -> C.OomObservations:
    base: dict[str, object] = dict(oom_kill_before=0, oom_kill_after=0,
                                   stress=parse_stress(GOOD_STRESS), stress_exit="exit 0",
                                   findings=[])
    base.update(kw)
    return C.OomObservations(**base)  # type: ignore[arg-type]


def test_oom_absence_pass_and_fail() -> None:
    assert C.check_oom_absence(_oom()).status == C.Status.PASS
    killed = parse_stress(GOOD_STRESS.split("SUMMARY")[0])
    oom = Finding("oom_kill", "OOM kill: mpstress (pid 90)", Severity.WARNING, 5, "...")
    r = C.check_oom_absence(_oom(oom_kill_after=1, stress=killed,
                                 stress_exit="killed by signal 9", findings=[oom]))
    assert _failed(r) == ["oom_kill in /proc/vmstat", "OOM kill on the console/dmesg",
                          "stress test finishes its work (it touched 2x what fits) with its "
                          "summary"]
    stopped = parse_stress(GOOD_STRESS.replace('"end":"work"', '"end":"signal:SIGTERM"'))
    r = C.check_oom_absence(_oom(stress=stopped))
    assert _failed(r) == ["stress test finishes its work (it touched 2x what fits) with its "
                          "summary"]


def test_child_cgroup_requires_limit_pressure() -> None:
    ok = C.check_child_cgroup(_oom(), 48 << 20, failcnt=12)
    assert ok.status == C.Status.PASS, ok.summary()
    no_requests = "\n".join(ln for ln in GOOD_STRESS.splitlines() if " asked " not in ln)
    r = C.check_child_cgroup(_oom(stress=parse_stress(no_requests)), 48 << 20, failcnt=0)
    assert _failed(r) == ["requests from the child cgroup's own pressure"]


def test_interface_missing_and_overall() -> None:
    r = C.interface_missing("clamping", "t", "/sys/fs/cgroup/memory/memory.pressure_shrinker")
    assert r.status == C.Status.FAIL and "interface missing" in r.summary()
    err = infra_error("oom_absence", "t", "SSH lost")
    assert overall([r, err]) == C.Status.ERROR
    assert overall([r]) == C.Status.FAIL
    assert overall([]) == C.Status.PASS
