"""The judging half of the mempressure scenario: a saved run dir in, check results out.

Pure apart from reading files: the same function judges a live run and ``harness judge
RUN_DIR``. Each check is judged only if its phase left its observations; a check whose
phase never ran is left to the core (status "error", "not run").
"""

from __future__ import annotations

import re
from typing import Any

from harness import ktap, rundir
from harness.console import Finding, classify_text
from harness.core.plugin import SavedRun
from harness.core.results import CheckResult, Status
from harness.core.spec import ScenarioSpec
from harness.scenarios.mempressure import checks as C
from harness.scenarios.mempressure import timeline
from harness.scenarios.mempressure.workload_output import (
    parse_mem_series,
    parse_ops,
    parse_stress,
)


def dmesg_since(text: str, t_start: float | None) -> str:
    """The lines of a dmesg snapshot printed from ``t_start`` on (guest uptime seconds).

    A snapshot holds the whole ring buffer: without this, an OOM kill of an earlier phase
    is a finding of every later one. Lines without a timestamp stay with the line before."""
    if t_start is None:
        return text
    out, keep = [], False
    for line in text.splitlines():
        m = _DMESG_TIME.match(line)
        if m:
            keep = float(m.group(1)) >= t_start - 0.5
        if keep:
            out.append(line)
    return "\n".join(out)


def _findings(run: SavedRun, obs: dict[str, Any], dmesg_file: str) -> list[Finding]:
    """Console findings of one phase, plus its dmesg snapshot's from the phase's start
    (deduplicated by title)."""
    start, end = obs.get("console", [0, None])
    found = list(run.findings_between(start, end))
    titles = {f.title for f in found}
    dmesg = dmesg_since(run.text(dmesg_file), obs.get("t_start"))
    found += [f for f in classify_text(dmesg) if f.title not in titles]
    return found


_DMESG_TIME = re.compile(r"^\[\s*(\d+\.\d+)\]")


def _oom_obs(run: SavedRun, obs: dict[str, Any], out_file: str,
             dmesg_file: str) -> C.OomObservations:
    return C.OomObservations(obs.get("oom_kill_before"), obs.get("oom_kill_after"),
                             parse_stress(run.text(out_file)), str(obs.get("ended", "")),
                             _findings(run, obs, dmesg_file), run.known_issues)


def squeeze_latency(run: SavedRun) -> float | None:
    """Seconds from the balloon squeeze to the first request after it (None: no request)."""
    t_sq = run.observations.get("stress", {}).get("t_squeeze")
    if t_sq is None:
        return None
    after = [e.t for e in parse_stress(run.text("mpstress.out")).of("asked") if e.t >= t_sq]
    return round(after[0] - float(t_sq), 3) if after else None


def _contract(run: SavedRun, obs: dict[str, Any]) -> CheckResult:
    if "missing" in obs:
        return CheckResult("contract", C.TITLES["contract"], Status.SKIP, [], rundir.RUN_META,
                           f"selftest not shipped ({obs['missing']}): no kernel source to build "
                           "it from (a prebuilt --kernel)")
    start, end = obs.get("console", [0, None])
    return C.check_contract(ktap.parse(run.text("selftest.ktap")), obs.get("exit"),
                            bool(obs.get("timed_out")), run.findings_between(start, end),
                            known=run.known_issues)


def band(sc: ScenarioSpec) -> C.Band | None:
    """``[notifications] asked_per_deficit`` = [low, high] and ``min_deficit_mib`` (None for a
    run saved before the scenario had them: it is judged as it was then)."""
    if "asked_per_deficit" not in sc.data.get("notifications", {}):
        return None
    low, high = sc.get("notifications", "asked_per_deficit", list)
    return C.Band(float(low), float(high), int(sc.get("notifications", "min_deficit_mib")))


def judge(run: SavedRun) -> list[CheckResult]:
    obs = run.observations
    sc = run.spec
    iface = obs.get("interface")
    if iface is None:
        return []
    planned = [c.name for c in C.CHECKS]
    if not iface.get("present"):
        return [C.interface_missing(n, C.TITLES[n], str(iface.get("path"))) for n in planned]
    mpctl: dict[str, str] = obs.get("mpctl", {})
    out: list[CheckResult] = []
    if "contract" in obs:
        out.append(_contract(run, obs["contract"]))
    if "stress" in obs:
        stress = parse_stress(run.text("mpstress.out"))
        if not stress.registered:
            why = f"{iface.get('path')} (mpstress: {run.text('mpstress.err').strip()})"
            return out + [C.interface_missing(n, C.TITLES[n], why)
                          for n in ("notifications", "oom_absence")]
        passes = {p.label: p for p in timeline.stress_passes(
            run, parse_mem_series(run.text("memory-guest.tsv")),
            int(sc.get("workload", "chunk_size")))}
        main = passes.pop("this run", None)
        reference = next(iter(passes.values()), None)
        out.append(C.check_notifications(
            stress, parse_ops(mpctl.get("idle", "")), squeeze_latency(run),
            float(sc.get("notifications", "squeeze_bound_s")), main, band(sc)))
        out.append(C.check_oom_absence(_oom_obs(run, obs["stress"], "mpstress.out",
                                                "dmesg-stress.txt"),
                                       gap=C.gap_statement(main, reference)))
    if "child" in obs:
        ch = obs["child"]
        out.append(C.check_child_cgroup(
            _oom_obs(run, ch, "mpstress-child.out", "dmesg-child.txt"), int(ch["limit_bytes"]),
            ch.get("failcnt")))
    return out
