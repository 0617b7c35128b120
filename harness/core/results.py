"""Typed results shared by every scenario: statuses, expectations, checks, test cases.

A check is a named verdict made of expectations (what, expected, observed, ok), so a failure
always says what was expected, what was seen and which artifact to open. A check may also
carry test cases (KTAP/TAP results of a step, kselftest cases) that JUnit reports one by one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from harness import rundir


class Status(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"  # infrastructure: the check could not be evaluated
    SKIP = "skip"


@dataclass(frozen=True)
class Expectation:
    what: str
    expected: str
    observed: str
    ok: bool


@dataclass(frozen=True)
class TestCase:
    """One case of a test program's own report (KTAP/TAP line, kselftest case)."""

    __test__ = False  # not a pytest class, whatever its name

    name: str  # path within the report, "suite.sub.case"
    status: Status
    message: str = ""  # directive or reason: "SKIP no swap", "TIMEOUT 45 seconds", ...
    log: str = ""  # the case's diagnostic lines


@dataclass
class CheckResult:
    name: str
    title: str
    status: Status
    expectations: list[Expectation] = field(default_factory=list)
    artifact: str = ""
    message: str = ""
    measurements: dict[str, Any] = field(default_factory=dict)
    cases: list[TestCase] = field(default_factory=list)

    def failures(self) -> list[Expectation]:
        return [e for e in self.expectations if not e.ok]

    def summary(self) -> str:
        if self.message:
            return self.message
        bad = self.failures()
        if not bad:
            return f"{len(self.expectations)} expectation(s) held"
        e = bad[0]
        more = f" (+{len(bad) - 1} more)" if len(bad) > 1 else ""
        return f"{e.what}: expected {e.expected}, observed {e.observed}{more}; see {self.artifact}"


def judged(name: str, title: str, exps: list[Expectation], artifact: str,
           measurements: dict[str, Any] | None = None,
           cases: list[TestCase] | None = None) -> CheckResult:
    """A check whose status follows from its expectations: pass iff every one held."""
    status = Status.PASS if all(e.ok for e in exps) else Status.FAIL
    return CheckResult(name, title, status, exps, artifact, "", measurements or {},
                       cases or [])


def infra_error(name: str, title: str, message: str, artifact: str = rundir.CONSOLE) -> CheckResult:
    """Status "error": the rig failed, the kernel is not judged."""
    return CheckResult(name, title, Status.ERROR, [], artifact, message)


def overall(results: Sequence[CheckResult]) -> Status:
    """Any infrastructure error wins (the verdict is unknown), then any failure; a run in
    which every check was skipped tested nothing, and says so (verdict "skip", not "pass")."""
    if any(r.status == Status.ERROR for r in results):
        return Status.ERROR
    if any(r.status == Status.FAIL for r in results):
        return Status.FAIL
    if results and all(r.status == Status.SKIP for r in results):
        return Status.SKIP
    return Status.PASS
