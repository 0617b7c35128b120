"""KTAP v1 and kselftest TAP 13 output -> typed test cases (pure; no I/O).

KTAP (``Documentation/dev-tools/ktap.rst``) nests a subtest by a version line indented one
level deeper than its parent, the subtest's lines keep that indent, and the parent's result
line follows at the parent's level. kselftest's runner (``run_kselftest.sh``) nests the same
way but with ``# `` as the indent: every line a test program prints is prefixed ``# ``, and
the program's own TAP ("# TAP version 13", "# ok 1 ...") becomes a subtest of the runner's
``ok N selftests: <target>: <program>`` line. So one parser handles both: an indent is
whatever precedes a nested version line, as long as it extends the parent's.

What a log does not say is reported too, KUnit-style: a planned case that never printed a
result (the program crashed, the guest output ended) is ``CRASHED``; a ``Bail out!`` makes
the remaining planned cases ``ERROR``; a subtest whose parent result line never came is
``CRASHED`` with its children kept. Unknown lines never change a status (KTAP allows them:
the console may interleave kernel messages); they are kept as the case's log.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum

from harness.core.results import Status, TestCase

_VERSION = re.compile(r"^(?:KTAP version \d+|TAP version \d+)\s*$")
_PLAN = re.compile(r"^1\.\.(\d+)\s*(?:#.*)?$")
_RESULT = re.compile(r"^(ok|not ok)\b(?:\s+(\d+))?(?:\s+-)?\s*([^#]*?)\s*(?:#\s*(.*?))?\s*$")
_BAIL = re.compile(r"^Bail out!\s*(.*)$")
_DIRECTIVES = ("SKIP", "TODO", "XFAIL", "TIMEOUT", "ERROR")


class CaseResult(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"
    XFAIL = "xfail"  # expected to fail and did (kselftest); not a failure
    TODO = "todo"  # TAP's "not expected to pass yet"; not a failure
    TIMEOUT = "timeout"
    ERROR = "error"  # the test could not run (ERROR directive, Bail out!)
    CRASHED = "crashed"  # planned, but its result line never came

    @property
    def failed(self) -> bool:
        return self in (CaseResult.FAIL, CaseResult.TIMEOUT, CaseResult.ERROR,
                        CaseResult.CRASHED)


@dataclass(frozen=True)
class Case:
    """One result line (or one a plan promised): ``children`` is its subtest, if nested."""

    number: int
    name: str
    result: CaseResult
    directive: str = ""  # "SKIP no swap", "TIMEOUT 45 seconds", "exit=1", ...
    log: tuple[str, ...] = ()
    children: tuple[Case, ...] = ()


@dataclass(frozen=True)
class Report:
    """A parsed log: the top-level cases, the plan, and what was wrong with the log itself."""

    version: str = ""  # "" when no version line was found
    plan: int | None = None
    cases: tuple[Case, ...] = ()
    problems: tuple[str, ...] = ()  # "no version line", "planned 5 cases, saw 3", ...

    @property
    def found(self) -> bool:
        return bool(self.version) or bool(self.cases)


@dataclass
class _Block:
    prefix: str
    version: str = ""
    plan: int | None = None
    cases: list[Case] = field(default_factory=list)
    pending_log: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    bail: str | None = None
    subtest: str = ""  # KUnit's "# Subtest: NAME": names a subtest whose result never came


def _parse_result(body: str) -> tuple[bool, int | None, str, str] | None:
    m = _RESULT.match(body)
    if not m:
        return None
    num = int(m.group(2)) if m.group(2) else None
    return m.group(1) == "ok", num, m.group(3).strip(), (m.group(4) or "").strip()


def _classify(ok: bool, directive: str) -> CaseResult:
    word = directive.split(maxsplit=1)[0].upper() if directive else ""
    if word == "SKIP":
        return CaseResult.SKIP
    if word == "XFAIL":
        return CaseResult.XFAIL
    if word == "TODO":
        return CaseResult.TODO
    if word == "TIMEOUT":
        return CaseResult.TIMEOUT
    if word == "ERROR":
        return CaseResult.ERROR
    return CaseResult.PASS if ok else CaseResult.FAIL  # unknown directive: fall back (ktap.rst)


def _is_structural(body: str) -> bool:
    return bool(_VERSION.match(body) or _PLAN.match(body) or _RESULT.match(body)
                or _BAIL.match(body))


class _Parser:
    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.i = 0

    def block(self, prefix: str, version: str, ancestors: tuple[str, ...] = ()) -> _Block:
        """Parse the lines of one (sub)test whose version line (already read) had ``prefix``.

        ``ancestors`` are the enclosing blocks' prefixes: a structural line at one of those
        levels ends this block; any other line not at this level is an unknown line.
        """
        b = _Block(prefix=prefix, version=version)
        while self.i < len(self.lines):
            line = self.lines[self.i]
            if not line.strip():
                self.i += 1
                continue
            if not line.startswith(prefix):
                if any(line.startswith(a) and _is_structural(line[len(a):]) for a in ancestors):
                    return b  # an ancestor's line: this block is over
                b.pending_log.append(line.strip())  # unindented unknown line (ktap.rst allows)
                self.i += 1
                continue
            body = line[len(prefix):]
            if _VERSION.match(body.lstrip(" #").strip()) and body != body.lstrip(" #"):
                child_prefix = prefix + body[:len(body) - len(body.lstrip(" #"))]
                self.i += 1
                child = self.block(child_prefix, body.strip(), (*ancestors, prefix))
                self._close_child(b, child)
                continue
            self.i += 1
            self._line(b, body)
        return b

    def _line(self, b: _Block, body: str) -> None:
        stripped = body.strip()
        if b.bail is not None:
            b.pending_log.append(stripped)
            return
        m_plan = _PLAN.match(stripped)
        if m_plan and b.plan is None and body == stripped:  # leading or trailing plan
            b.plan = int(m_plan.group(1))
            return
        res = _parse_result(body) if body == body.lstrip() else None
        if res is not None:
            ok, num, name, directive = res
            number = num or len(b.cases) + 1
            b.cases.append(Case(number, name or f"case {number}", _classify(ok, directive),
                                directive, tuple(b.pending_log)))
            b.pending_log = []
            return
        m_bail = _BAIL.match(stripped)
        if m_bail:
            b.bail = m_bail.group(1) or "Bail out!"
            b.pending_log.append(stripped)
            return
        if _VERSION.match(stripped) and not b.version:
            b.version = stripped
            return
        diag = stripped[1:].strip() if stripped.startswith("#") else stripped
        if diag.startswith("Subtest: ") and not b.subtest:
            b.subtest = diag[len("Subtest: "):].strip()
        b.pending_log.append(diag)

    def _close_child(self, parent: _Block, child: _Block) -> None:
        """The parent's next result line is the subtest's own result."""
        kids = tuple(_finish(child))
        line = self.lines[self.i] if self.i < len(self.lines) else None
        res = None
        if line is not None and line.startswith(parent.prefix):
            res = _parse_result(line[len(parent.prefix):])
        if res is None:
            # the subtest's result never came: output ended or an ancestor took over
            number = len(parent.cases) + 1
            parent.cases.append(Case(number, child.subtest or f"case {number}",
                                     CaseResult.CRASHED, "result line missing",
                                     tuple(parent.pending_log + child.pending_log), kids))
            parent.pending_log = []
            parent.problems.extend(child.problems)
            parent.problems.append(f"{child.subtest or f'case {number}'}: result line missing")
            return
        self.i += 1
        ok, num, name, directive = res
        number = num or len(parent.cases) + 1
        parent.cases.append(Case(number, name or f"case {number}", _classify(ok, directive),
                                 directive, tuple(parent.pending_log + child.pending_log), kids))
        parent.pending_log = []
        parent.problems.extend(child.problems)


def _finish(b: _Block) -> list[Case]:
    """The block's cases plus the ones its plan promised but never printed."""
    cases = list(b.cases)
    if b.plan is not None and len(cases) < b.plan:
        why = (CaseResult.ERROR, f"not run: Bail out! {b.bail}") if b.bail is not None else \
            (CaseResult.CRASHED, "not run: output ended before its result")
        b.problems.append(f"planned {b.plan} case(s), saw {len(cases)}")
        for n in range(len(cases) + 1, b.plan + 1):
            cases.append(Case(n, f"case {n}", why[0], why[1], tuple(b.pending_log)))
            b.pending_log = []
    elif b.plan is not None and len(cases) > b.plan:
        b.problems.append(f"planned {b.plan} case(s), saw {len(cases)}")
    return cases


def parse(text: str) -> Report:
    """Parse KTAP v1 or kselftest TAP 13; lines before the first version line are ignored."""
    lines = text.splitlines()
    p = _Parser(lines)
    for idx, line in enumerate(lines):
        body = line.strip()
        if _VERSION.match(body):
            p.i = idx + 1
            b = p.block(line[:len(line) - len(line.lstrip())], body)
            break
    else:
        # no version line: accept bare TAP result lines at column 0
        p.i = 0
        b = p.block("", "")
        b.problems.insert(0, "no KTAP/TAP version line")
    cases = _finish(b)
    if b.bail is not None and b.plan is None:
        b.problems.append(f"Bail out! {b.bail}")
    return Report(b.version, b.plan, tuple(cases), tuple(b.problems))


def walk(cases: tuple[Case, ...], path: str = "") -> Iterator[tuple[str, Case]]:
    """Every case with its dotted path ("suite.sub.case"), parents before children.

    A name printed twice at one level (mlock2-tests does) gets its number, " #2", so that
    every path is unique in results.json and JUnit."""
    seen: dict[str, int] = {}
    for c in cases:
        seen[c.name] = seen.get(c.name, 0) + 1
    for c in cases:
        name = f"{c.name} #{c.number}" if seen[c.name] > 1 else c.name
        here = f"{path}.{name}" if path else name
        yield here, c
        yield from walk(c.children, here)


_STATUS = {
    CaseResult.PASS: Status.PASS, CaseResult.XFAIL: Status.PASS, CaseResult.TODO: Status.SKIP,
    CaseResult.SKIP: Status.SKIP, CaseResult.FAIL: Status.FAIL, CaseResult.TIMEOUT: Status.FAIL,
    CaseResult.ERROR: Status.ERROR, CaseResult.CRASHED: Status.ERROR,
}


def _has_failing_descendant(c: Case) -> bool:
    return any(k.result.failed or _has_failing_descendant(k) for k in c.children)


def reported_cases(report: Report) -> list[tuple[str, Case]]:
    """The cases a report stands for: leaves, plus any parent whose own failure is not
    explained by a failing child (a program that crashed after its last "ok")."""
    out = []
    for path, c in walk(report.cases):
        if not c.children or (c.result.failed and not _has_failing_descendant(c)):
            out.append((path, c))
    return out


def to_test_cases(report: Report) -> list[TestCase]:
    """The report as core :class:`TestCase` objects, for results.json and JUnit."""
    out = []
    for path, c in reported_cases(report):
        out.append(TestCase(path, _STATUS[c.result], c.directive, "\n".join(c.log)))
    return out


def counts(report: Report) -> dict[str, int]:
    """How many reported cases ended in each result ("pass": 10, "skip": 2, ...)."""
    out: dict[str, int] = {}
    for _, c in reported_cases(report):
        out[c.result.value] = out.get(c.result.value, 0) + 1
    return out
