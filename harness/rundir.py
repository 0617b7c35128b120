"""The names of a run directory's files: defined once, read by everything that writes or
reads a run dir (the VM, the core, the scenarios, the matrix, bisect, KCIDB).

A run dir holds everything needed to judge it again without a VM (``harness judge``). At the
bottom of the package (no harness imports), so that ``vm`` can name its console log too.
"""

from __future__ import annotations

from typing import Any, TypedDict

CONSOLE = "console.log"          # the guest's serial console, classified live
RUN_META = "run.json"            # planned checks, options, VM shape, timings, errors
SPEC_COPY = "scenario.toml"      # the scenario as it ran, variants merged
OBSERVATIONS = "observations.json"  # each phase's numbers and console marks
RESULTS = "results.json"         # the verdict: checks, expectations, cases, findings
JUNIT = "junit.xml"
REPORT = "report.html"
INFRA = "infra-error.txt"        # why the rig failed, when it did
KNOWN_ISSUES = "known-issues.toml"  # the user's --known-issues file, as the run used it


# -- the two JSON documents every run dir holds, as their writers produce them -------------
# (TypedDicts: the format is written down once, and mypy holds the writers to it.)

class ExpectationDoc(TypedDict):
    what: str
    expected: str
    observed: str
    ok: bool


class CaseDoc(TypedDict):
    name: str
    status: str  # pass | fail | error | skip
    message: str


class CheckDoc(TypedDict):
    name: str
    title: str
    status: str
    summary: str
    artifact: str
    measurements: dict[str, Any]
    expectations: list[ExpectationDoc]
    cases: list[CaseDoc]


class ResultsDoc(TypedDict):
    """``results.json``."""

    schema: int
    scenario: str
    verdict: str  # pass | fail | error | skip
    run_dir: str
    infra_error: str | None
    interrupted: str | None
    checks: list[CheckDoc]
    findings: list[dict[str, Any]]  # console findings; "known_issue" when triaged
    info: dict[str, Any]
    timings_s: dict[str, float]
    measurements: list[dict[str, Any]]  # {check, name, value, unit, direction}


class RunMeta(TypedDict, total=False):
    """``run.json`` (written as the run goes: keys appear as their phase is reached)."""

    scenario: str
    type: str
    planned: list[str]
    options: dict[str, Any]
    vm: dict[str, Any]
    accel: str
    started: str
    infra_error: str
    interrupted: str
    guest: dict[str, Any] | None
    host_load: dict[str, Any]
    timings_s: dict[str, float]
    info: dict[str, Any]
