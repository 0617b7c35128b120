"""Verdicts of a user test, from the saved run dir only (pure given the files).

One check per step: the exit status is one of ``expect_exit`` (or, if the guest's watchdog
fired, the failed expectation "finished within timeout_s"); with ``output = ktap|tap`` a
report must be present and, with ``cases_must_pass``, every case must end ok, SKIP, XFAIL or
TODO (each case is also a TestCase for JUnit); every extracted number must be found and lie
within its bounds. Then one ``console`` check: no finding whose kind is not tolerated, and an
OOM kill present iff ``oom = "expected"`` (never, for "forbidden"; "allowed" only counts).
"""

from __future__ import annotations

import json
from typing import Any

from harness import rundir
from harness.core.plugin import SavedRun
from harness.core.results import CheckResult, Expectation, infra_error, judged
from harness.ktap import parse, reported_cases, to_test_cases
from harness.scenarios import console_rule
from harness.scenarios.usertest.schema import CONSOLE_CHECK, Step, UserTest


def step_files(name: str) -> tuple[str, str, str]:
    """The artifacts ``exercise`` writes for a step: stdout, stderr, metadata."""
    return f"step-{name}.out", f"step-{name}.err", f"step-{name}.json"


def step_title(step: Step) -> str:
    run = step.run if len(step.run) <= 60 else step.run[:57] + "..."
    return f"step {step.name}: {run}"


def _bounds(lo: float | None, hi: float | None) -> str:
    if lo is not None and hi is not None:
        return f"{lo:g} <= x <= {hi:g}"
    if lo is not None:
        return f">= {lo:g}"
    return f"<= {hi:g}" if hi is not None else "any number"


def judge_step(step: Step, stdout: str, meta: dict[str, Any]) -> CheckResult:
    """The verdict on one step from what it printed and how it ended."""
    out_file = step_files(step.name)[0]
    exps: list[Expectation] = []
    measurements: dict[str, Any] = {"duration_s": meta.get("duration_s")}
    rc = meta.get("exit")
    if meta.get("timed_out"):
        exps.append(Expectation("finished within timeout_s", f"<= {step.timeout_s:g} s",
                                f"killed by the guest watchdog after "
                                f"{float(meta.get('duration_s') or 0):.0f} s", False))
    else:
        want = " or ".join(str(x) for x in step.expect_exit)
        exps.append(Expectation("exit status", want, str(rc), rc in step.expect_exit))
    cases = []
    if step.output != "none":
        report = parse(stdout)
        found = report.found
        exps.append(Expectation(f"{step.output.upper()} report on stdout",
                                "a version line or result lines",
                                f"{len(report.cases)} top-level case(s)" if found else "none",
                                found))
        cases = to_test_cases(report)
        if step.cases_must_pass:
            for path, c in reported_cases(report):
                shown = c.result.value + (f" ({c.directive})" if c.directive else "")
                exps.append(Expectation(f"case {path}", "ok, SKIP, XFAIL or TODO", shown,
                                        not c.result.failed))
        measurements["cases"] = {s: sum(1 for t in cases if t.status == s)
                                 for s in sorted({t.status.value for t in cases})}
        if report.problems:
            measurements["report_problems"] = list(report.problems)
    for ex in step.extracts:
        matches = list(ex.regex.finditer(stdout))
        if not matches:
            exps.append(Expectation(f"{ex.name} in stdout", f"a match of /{ex.regex.pattern}/",
                                    "no match", False))
            continue
        raw = matches[-1].group(1)
        try:
            value = float(raw)
        except (TypeError, ValueError):
            exps.append(Expectation(f"{ex.name} is a number", "a number", repr(raw), False))
            continue
        measurements[ex.name] = value
        ok = (ex.min is None or value >= ex.min) and (ex.max is None or value <= ex.max)
        exps.append(Expectation(ex.name, _bounds(ex.min, ex.max), f"{value:g}", ok))
    return judged(step.name, step_title(step), exps, out_file, measurements, cases)


def judge_console(test: UserTest, run: SavedRun) -> CheckResult:
    findings = run.console_findings
    bad = console_rule.trouble(findings, test.tolerate, run.known_issues)
    ooms = console_rule.ooms(findings)
    shown = "; ".join(f"{f.kind}: {f.title}" for f in bad[:3]) or "none"
    exps = [Expectation("untolerated console findings", "none", shown, not bad)]
    oom_seen = f"{len(ooms)}" + (f" ({ooms[0].title})" if ooms else "")
    if test.oom == "forbidden":
        exps.append(Expectation("OOM kills on the console", "none", oom_seen, not ooms))
    elif test.oom == "expected":
        exps.append(Expectation("OOM kills on the console", "at least one", oom_seen,
                                bool(ooms)))
    tol = ", ".join(sorted(test.tolerate)) or "nothing"
    return judged(CONSOLE_CHECK, f"console: clean (tolerating {tol}), OOM kill {test.oom}",
                  exps, rundir.CONSOLE,
                  {"findings": len(findings), "oom_kills": len(ooms),
                   "tolerated": sum(1 for f in findings if f.kind in test.tolerate)})


def judge_run(test: UserTest, run: SavedRun) -> list[CheckResult]:
    results = []
    for step in test.steps:
        out, _, meta_file = step_files(step.name)
        raw = run.text(meta_file)
        if not raw:
            results.append(infra_error(step.name, step_title(step),
                                       f"step did not run (no {meta_file} in the run dir)",
                                       out))
            continue
        results.append(judge_step(step, run.text(out), json.loads(raw)))
    results.append(judge_console(test, run))
    return results
