"""The scenario's checks as pure functions: observations in, a named verdict out.

Each check lists its expectations (what, expected, observed, ok) so that a
failure always says what was expected, what was seen, and which artifact to
open. Infrastructure trouble never reaches these functions: the runner turns
it into status "error" before any verdict is computed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.console import Finding, Severity
from harness.core.plugin import CheckDef
from harness.core.results import CheckResult, Expectation, Status, judged
from harness.scenarios.mempressure.workload_output import OpResult, StressLog

INTERFACE_FILE = "memory.pressure_shrinker"

# Console findings that mean the kernel misbehaved, whatever the scenario expects of OOM.
TROUBLE_KINDS = frozenset({
    "panic", "oops", "bug", "kasan", "kfence", "ubsan", "gpf", "trap", "warning",
    "soft_lockup", "hard_lockup", "rcu_stall", "hung_task", "atomic_sleep", "lockdep",
    "bad_page", "memory_leak",
})
OOM_KINDS = frozenset({"oom_kill", "memcg_oom_kill"})


#: The scenario's checks, in run order: the one definition of their names and titles.
CHECKS = (
    CheckDef("notifications", "eventfd notifications", "mpstress.out",
             "kernel patches/tests/dead-shrinker (no request under pressure)"),
    CheckDef("clamping", "counter clamping and bad input", "mpctl.out",
             "kernel patches/tests/broken-clamp (+10 -25 wraps instead of clamping)"),
    CheckDef("oom_absence", "no OOM kill under pressure", "console.log",
             "--no-reclaim (the workload ignores requests and must be OOM-killed)"),
    CheckDef("child_cgroup", "inside a limited child memory cgroup", "mpstress-child.out",
             "--no-reclaim"),
)
TITLES = {c.name: c.title for c in CHECKS}


def _result(name: str, exps: list[Expectation], artifact: str,
            measurements: dict[str, Any] | None = None) -> CheckResult:
    return judged(name, TITLES[name], exps, artifact, measurements)


def interface_missing(name: str, title: str, path: str) -> CheckResult:
    """The kernel has no shrinker interface: a clear failure, not a harness crash."""
    msg = (f"interface missing: {path} does not exist (kernel built without the "
           "mempressure-shrinker series or CONFIG_MEMCG_PRESSURE_SHRINKER?)")
    return CheckResult(name, title, Status.FAIL,
                       [Expectation("interface present", path, "absent", False)],
                       "console.log", msg)


def _op(ops: Sequence[OpResult], name: str, index: int = 0) -> OpResult | None:
    found = [o for o in ops if o.op == name]
    return found[index] if len(found) > index else None


def _describe(o: OpResult | None) -> str:
    if o is None:
        return "no output"
    return f"ok {o.fields}" if o.ok else f"{o.errno}"


def trouble(findings: Iterable[Finding]) -> list[Finding]:
    return [f for f in findings if f.kind in TROUBLE_KINDS or f.severity == Severity.FATAL]


def check_notifications(stress: StressLog, idle_ops: Sequence[OpResult],
                        squeeze_latency_s: float | None, squeeze_bound_s: float,
                        artifact: str = "mpstress.out") -> CheckResult:
    """Check 1: requests arrive under pressure, are sane, and don't arrive without it."""
    asked = stress.of("asked")
    added = stress.of("added")
    exps = [Expectation("requests under pressure", ">= 1", str(len(asked)), len(asked) >= 1)]
    small = [e for e in asked if e.int("n") < 1]
    exps.append(Expectation("every request asks for >= 1 chunk", "0 requests with n < 1",
                            f"{len(small)}" + (f" (first: n={small[0].int('n')})" if small else ""),
                            not small))
    # Walk the events in order: the cumulative asked count never exceeds the advertised one.
    adv = 0
    total_asked = 0
    worst = ""
    for e in stress.events:
        if e.kind == "added":
            adv += e.int("n")
        elif e.kind == "asked":
            total_asked += e.int("n")
            if total_asked > adv and not worst:
                worst = f"asked {total_asked} > advertised {adv} at t={e.t:.3f}"
    exps.append(Expectation("total asked <= total advertised", "never exceeded",
                            worst or f"asked {total_asked} <= advertised {adv}", not worst))
    wait = _op(idle_ops, "wait")
    rd = _op(idle_ops, "read")
    idle_ok = wait is not None and wait.ok and wait.int("n", -1) == 0
    exps.append(Expectation("no request without pressure (chunks advertised, idle guest)",
                            "wait n=0 (timeout)", _describe(wait), idle_ok))
    exps.append(Expectation("idle read-back keeps the advertised count", "chunks=50",
                            _describe(rd), rd is not None and rd.ok and rd.int("chunks") == 50))
    lat_ok = squeeze_latency_s is not None and squeeze_latency_s <= squeeze_bound_s
    exps.append(Expectation("request after a balloon squeeze", f"within {squeeze_bound_s:.0f} s",
                            "no request after the squeeze" if squeeze_latency_s is None
                            else f"{squeeze_latency_s:.2f} s", lat_ok))
    return _result("notifications", exps, artifact,
                   {"requests": len(asked), "chunks_asked": total_asked,
                    "chunks_advertised": adv, "squeeze_to_request_s": squeeze_latency_s,
                    "added_events": len(added)})


@dataclass(frozen=True)
class ClampObservations:
    """Outputs of the mpctl sequences the runner ran for check 2 (see scenario file)."""

    underflow: Sequence[OpResult]  # register, add +10, add -25, read
    zero_pressure: Sequence[OpResult]  # register, hog, wait  (count stays 0)
    bounded: Sequence[OpResult]  # register, add +5, hog, wait, wait, read
    saturate: Sequence[OpResult]  # register, add +MAX, read, add +10, read
    bad_input: Mapping[str, Sequence[OpResult]]  # case name -> ops
    console_findings: Sequence[Finding]


BAD_INPUT_EXPECTED = {
    # case -> (op whose result matters, acceptable errno names)
    "chunk_size_zero": ("register-raw", ("EINVAL",)),
    "not_an_eventfd": ("register-raw", ("EBADF", "EINVAL")),
    "unregistered_eventfd": ("add-unregistered", ("ENOENT",)),
    "malformed_count": ("add", ("EINVAL",)),
    "count_overflows_s64": ("add", ("EINVAL", "ERANGE")),
    "malformed_write": ("write", ("EINVAL",)),
}


def check_clamping(obs: ClampObservations, artifact: str = "mpctl.out") -> CheckResult:
    """Check 2: the counter clamps at zero, bounds requests, saturates, and rejects bad input."""
    exps = []
    rd = _op(obs.underflow, "read")
    exps.append(Expectation("register, +10, -25 -> read-back", "chunks=0", _describe(rd),
                            rd is not None and rd.ok and rd.int("chunks") == 0))
    w = _op(obs.zero_pressure, "wait")
    exps.append(Expectation("pressure while the count is 0", "no request (wait n=0)",
                            _describe(w), w is not None and w.ok and w.int("n", -1) == 0))
    waits = [o for o in obs.bounded if o.op == "wait" and o.ok]
    total = sum(max(o.int("n", 0), 0) for o in waits)
    rd5 = _op(obs.bounded, "read")
    # At least one: the same pressure must produce a request, or "at most 5" proves nothing.
    exps.append(Expectation("+5 then pressure -> chunks asked in total", "1..5",
                            f"{total}", bool(waits) and 1 <= total <= 5))
    exps.append(Expectation("+5 then pressure -> read-back", "5 - asked",
                            _describe(rd5),
                            rd5 is not None and rd5.ok and rd5.int("chunks") == 5 - total))
    r1 = _op(obs.saturate, "read", 0)
    r2 = _op(obs.saturate, "read", 1)
    sat_ok = (r1 is not None and r2 is not None and r1.ok and r2.ok
              and r1.int("chunks") >= 2**62 and r2.int("chunks") == r1.int("chunks"))
    exps.append(Expectation("adding past the maximum saturates", "count stays at the maximum",
                            f"{_describe(r1)} then {_describe(r2)}", sat_ok))
    for case, (opname, errnos) in BAD_INPUT_EXPECTED.items():
        ops = obs.bad_input.get(case, [])
        o = next((x for x in reversed(ops) if x.op == opname), None)
        ok = o is not None and not o.ok and o.errno in errnos
        exps.append(Expectation(f"bad input: {case}", "/".join(errnos),
                                _describe(o) if o else "no output", ok))
    bad = trouble(obs.console_findings)
    exps.append(Expectation("console clean during the interface tests", "no finding",
                            "; ".join(f.title for f in bad[:3]) or "none", not bad))
    return _result("clamping", exps, artifact)


@dataclass(frozen=True)
class OomObservations:
    oom_kill_before: int | None
    oom_kill_after: int | None
    stress: StressLog
    stress_exit: str  # how the stress test ended: "summary", "killed", "running", ...
    findings: Sequence[Finding]  # console + dmesg, during the stress phase
    qmp_status: str
    qmp_events: Sequence[str]  # event names seen during the run


def check_oom_absence(obs: OomObservations, name: str = "oom_absence",
                      title: str = TITLES["oom_absence"],
                      artifact: str = "console.log") -> CheckResult:
    """Check 3: with the shrinker doing its job, nothing gets OOM-killed and nothing breaks."""
    exps = []
    delta = (None if obs.oom_kill_before is None or obs.oom_kill_after is None
             else obs.oom_kill_after - obs.oom_kill_before)
    exps.append(Expectation("oom_kill in /proc/vmstat", "unchanged",
                            "unreadable" if delta is None else f"+{delta}", delta == 0))
    ooms = [f for f in obs.findings if f.kind in OOM_KINDS]
    exps.append(Expectation("OOM kill on the console/dmesg", "none",
                            "; ".join(f.title for f in ooms[:3]) or "none", not ooms))
    bad = trouble(obs.findings)
    exps.append(Expectation("oops/BUG/WARNING/lockup on the console/dmesg", "none",
                            "; ".join(f.title for f in bad[:3]) or "none", not bad))
    end = (obs.stress.summary or {}).get("end", "")
    exps.append(Expectation("stress test ends by the harness's signal with its summary",
                            "SUMMARY end=signal:SIGTERM",
                            f"end={end}" if obs.stress.summary else obs.stress_exit,
                            str(end) == "signal:SIGTERM"))
    exps.append(Expectation("VM state (QMP query-status)", "running", obs.qmp_status,
                            obs.qmp_status == "running"))
    evil = [e for e in obs.qmp_events if e in ("GUEST_PANICKED", "RESET")]
    exps.append(Expectation("QMP events", "no GUEST_PANICKED or RESET",
                            ", ".join(evil) or "none", not evil))
    return judged(name, title, exps, artifact, {"oom_kill_delta": delta})


def check_child_cgroup(oom: OomObservations, limit_bytes: int, failcnt: int | None,
                       max_usage: int | None, artifact: str = "mpstress-child.out") -> CheckResult:
    """Check 4: the same guarantees when the pressure comes from a child cgroup's limit."""
    base = check_oom_absence(oom, "child_cgroup", TITLES["child_cgroup"], artifact)
    exps = list(base.expectations)
    asked = oom.stress.of("asked")
    exps.insert(0, Expectation("requests from the child cgroup's own pressure", ">= 1",
                               str(len(asked)), len(asked) >= 1))
    exps.append(Expectation("the cgroup limit was hit (memory.failcnt)", "> 0",
                            str(failcnt), failcnt is not None and failcnt > 0))
    exps.append(Expectation("usage stayed within the limit (memory.max_usage_in_bytes)",
                            f"<= {limit_bytes}", str(max_usage),
                            max_usage is not None and max_usage <= limit_bytes))
    return _result("child_cgroup", exps, artifact,
                   {"requests": len(asked), **base.measurements})
