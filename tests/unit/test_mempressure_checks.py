"""The verdict functions: each expectation shown holding and shown failing."""

from __future__ import annotations

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
"chunk_size":1048576,"max_held":108,"end":"signal:SIGTERM"}
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
    zero = GOOD_STRESS.replace("asked n=12", "asked n=0")
    assert "every request asks for >= 1 chunk" in _failed(
        C.check_notifications(parse_stress(zero), parse_ops(IDLE_OK), 1.0, 10))
    spurious = IDLE_OK.replace("wait ok n=0 timeout=1", "wait ok n=7")
    r = C.check_notifications(parse_stress(GOOD_STRESS), parse_ops(spurious), 1.0, 10)
    assert "no request without pressure (chunks advertised, idle guest)" in _failed(r)
    r = C.check_notifications(parse_stress(GOOD_STRESS), parse_ops(IDLE_OK), 25.0, 10)
    assert _failed(r) == ["request after a balloon squeeze"]


def _clamp(underflow: str = "OP read ok chunk_size=4096 chunks=0",
           zero: str = "OP wait ok n=0 timeout=1",
           bounded: str = "OP wait ok n=3\nOP wait ok n=0 timeout=1\nOP read ok chunks=2",
           sat: str = ("OP read ok chunks=9223372036854775807\n"
                       "OP read ok chunks=9223372036854775807"),
           bad_errno: str = "EINVAL", findings: list[Finding] | None = None) -> C.CheckResult:
    bad = {
        "chunk_size_zero": parse_ops(f"OP register-raw err {bad_errno} Invalid argument"),
        "not_an_eventfd": parse_ops("OP register-raw err EBADF Bad file descriptor"),
        "unregistered_eventfd": parse_ops("OP add-unregistered err ENOENT No such file"),
        "malformed_count": parse_ops("OP register ok\nOP add err EINVAL Invalid argument"),
        "count_overflows_s64": parse_ops("OP register ok\nOP add err EINVAL Invalid argument"),
        "malformed_write": parse_ops("OP write err EINVAL Invalid argument"),
    }
    return C.check_clamping(C.ClampObservations(
        parse_ops(underflow), parse_ops(zero), parse_ops(bounded), parse_ops(sat), bad,
        findings or []))


def test_clamping_pass() -> None:
    r = _clamp()
    assert r.status == C.Status.PASS, r.summary()


def test_clamping_fails_each_way() -> None:
    assert _failed(_clamp(underflow="OP read ok chunks=18446744073709551601")) == [
        "register, +10, -25 -> read-back"]
    assert _failed(_clamp(zero="OP wait ok n=4")) == ["pressure while the count is 0"]
    assert "+5 then pressure -> chunks asked in total" in _failed(
        _clamp(bounded="OP wait ok n=6\nOP read ok chunks=0"))
    # No request at all under the same pressure: the bound proved nothing, so it fails.
    assert _failed(_clamp(bounded="OP wait ok n=0 timeout=1\nOP read ok chunks=5")) == [
        "+5 then pressure -> chunks asked in total"]
    assert _failed(_clamp(sat="OP read ok chunks=9223372036854775807\nOP read ok chunks=9")) == [
        "adding past the maximum saturates"]
    assert _failed(_clamp(bad_errno="ENOMEM")) == ["bad input: chunk_size_zero"]
    warn = Finding("warning", "WARNING in vmpressure_work_fn", Severity.WARNING, 3, "...")
    assert _failed(_clamp(findings=[warn])) == ["console clean during the interface tests"]


def _oom(**kw: object) -> C.OomObservations:
    base: dict[str, object] = dict(oom_kill_before=0, oom_kill_after=0,
                                   stress=parse_stress(GOOD_STRESS), stress_exit="exit 0",
                                   findings=[], qmp_status="running", qmp_events=["BALLOON_CHANGE"])
    base.update(kw)
    return C.OomObservations(**base)  # type: ignore[arg-type]


def test_oom_absence_pass_and_fail() -> None:
    assert C.check_oom_absence(_oom()).status == C.Status.PASS
    killed = parse_stress(GOOD_STRESS.split("SUMMARY")[0])
    oom = Finding("oom_kill", "OOM kill: mpstress (pid 90)", Severity.WARNING, 5, "...")
    r = C.check_oom_absence(_oom(oom_kill_after=1, stress=killed,
                                 stress_exit="killed by signal 9", findings=[oom]))
    assert _failed(r) == ["oom_kill in /proc/vmstat", "OOM kill on the console/dmesg",
                          "stress test ends by the harness's signal with its summary"]
    r = C.check_oom_absence(_oom(qmp_status="paused", qmp_events=["GUEST_PANICKED"]))
    assert _failed(r) == ["VM state (QMP query-status)", "QMP events"]


def test_child_cgroup_requires_limit_pressure() -> None:
    ok = C.check_child_cgroup(_oom(), 48 << 20, failcnt=12, max_usage=40 << 20)
    assert ok.status == C.Status.PASS, ok.summary()
    r = C.check_child_cgroup(_oom(), 48 << 20, failcnt=0, max_usage=60 << 20)
    assert _failed(r) == ["the cgroup limit was hit (memory.failcnt)",
                          "usage stayed within the limit (memory.max_usage_in_bytes)"]


def test_interface_missing_and_overall() -> None:
    r = C.interface_missing("clamping", "t", "/sys/fs/cgroup/memory/memory.pressure_shrinker")
    assert r.status == C.Status.FAIL and "interface missing" in r.summary()
    err = infra_error("oom_absence", "t", "SSH lost")
    assert overall([r, err]) == C.Status.ERROR
    assert overall([r]) == C.Status.FAIL
    assert overall([]) == C.Status.PASS
