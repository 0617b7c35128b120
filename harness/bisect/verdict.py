"""Verdicts of one bisect step and the retry policy, as pure functions.

Kept free of any VM or build code so that the rules that decide what gets
blamed -- the part of a bisect that must never be wrong -- are unit-tested
with fake steps.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from harness.core.results import Status
from harness.errors import (
    BuildError,
    CheckFailed,
    HarnessError,
    InfraError,
    SetupError,
    UsageError,
)

log = logging.getLogger(__name__)

# `git bisect run` aborts the whole bisect on an exit status >= 128 (and < 0). We use it for
# "the harness itself cannot go on" (missing package, Ctrl-C, a bug): never a verdict.
EXIT_ABORT = 255
EXIT_SKIP = 125


class Verdict(StrEnum):
    """What ``git bisect run`` is told about one commit."""

    GOOD = "good"
    BAD = "bad"
    FLAKY = "flaky"  # adaptive repeats: bad, but the check fails in under half of the runs
    SKIP = "skip"

    @property
    def exit_code(self) -> int:
        return {Verdict.GOOD: 0, Verdict.BAD: 1, Verdict.FLAKY: 1, Verdict.SKIP: EXIT_SKIP}[self]

    @property
    def search(self) -> Verdict:
        """What the search does with it: a flaky revision has the change (it is bad)."""
        return Verdict.BAD if self == Verdict.FLAKY else self


def verdict_for_statuses(statuses: Mapping[str, Status], checks: Iterable[str]) -> Verdict:
    """Map the named checks' statuses to a verdict.

    Any FAIL is *bad* (the kernel misbehaved, even if another check could not run);
    all PASS is *good*; anything else (an ERROR, a check that did not run) is *skip*:
    no evidence either way.
    """
    wanted = list(checks)
    got = [statuses.get(c) for c in wanted]
    if any(s == Status.FAIL for s in got):
        return Verdict.BAD
    if wanted and all(s == Status.PASS for s in got):
        return Verdict.GOOD
    return Verdict.SKIP


def verdict_for_error(exc: BaseException) -> Verdict | None:
    """The verdict an exception from build/boot/run stands for, or None to abort the bisect.

    A commit that does not build (or a series that does not apply to it) and a rig
    failure are *skip*. A missing package (SetupError) would fail every step alike,
    so it aborts instead of skipping the whole range.
    """
    if isinstance(exc, SetupError):
        return None
    if isinstance(exc, BuildError | InfraError):
        return Verdict.SKIP
    if isinstance(exc, CheckFailed):
        return Verdict.BAD
    if isinstance(exc, UsageError):  # e.g. the --patches series does not apply at this commit
        return Verdict.SKIP
    if isinstance(exc, HarnessError):
        return Verdict.SKIP
    return None


@dataclass
class Attempt:
    """One build + boot + scenario run of a target."""

    verdict: Verdict
    seconds: float
    detail: str = ""
    build_s: float = 0.0
    run_s: float = 0.0
    run_dir: str = ""
    statuses: dict[str, str] = field(default_factory=dict)
    value: float | None = None  # --metric: the measurement in this run (None: not measured)


@dataclass
class StepRecord:
    """The accepted verdict for one target and how it was reached."""

    target: str  # commit sha, or "k=<n>" for a series
    label: str  # commit subject or patch name
    verdict: Verdict
    seconds: float
    attempts: list[Attempt]
    note: str = ""
    phase: str = "bisect"  # "bisect" or "verify"
    confidence: float | None = None  # adaptive repeats: how sure the verdict is

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["verdict"] = self.verdict.value
        for a in d["attempts"]:
            a["verdict"] = a["verdict"].value if isinstance(a["verdict"], Verdict) else a["verdict"]
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> StepRecord:
        attempts = [Attempt(**{**a, "verdict": Verdict(a["verdict"])}) for a in d["attempts"]]
        return cls(str(d["target"]), str(d["label"]), Verdict(d["verdict"]),
                   float(d["seconds"]), attempts, str(d.get("note", "")),
                   str(d.get("phase", "bisect")),
                   None if d.get("confidence") is None else float(d["confidence"]))


def decide(attempt: Callable[[int], Attempt], retries: int) -> tuple[Verdict, list[Attempt], str]:
    """Run ``attempt(n)`` and apply the retry policy; return (verdict, attempts, note).

    Only a *bad* verdict is re-run (up to ``retries`` more times), because a false
    *bad* is what sends a bisect to the wrong commit. If any re-run passes, the
    failure was not reproducible: the step is *skip* ("flaky") -- neither blamed nor
    cleared on conflicting evidence. Re-runs that skip (rig trouble) do not refute
    the failure.
    """
    attempts = [attempt(0)]
    first = attempts[0].verdict
    if first != Verdict.BAD:
        return first, attempts, ""
    for n in range(1, retries + 1):
        log.info("bad verdict: re-run %d of %d to rule out a flake", n, retries)
        attempts.append(attempt(n))
        if attempts[-1].verdict == Verdict.GOOD:
            return Verdict.SKIP, attempts, "flaky: failed, then passed on a re-run"
    confirmed = sum(a.verdict == Verdict.BAD for a in attempts)
    note = f"bad confirmed by {confirmed} of {len(attempts)} runs" if retries else ""
    return Verdict.BAD, attempts, note


def verification(verify: list[StepRecord]) -> dict[str, Any]:
    """Whether the re-runs agree: parent (first of two records) good, culprit (last) bad."""
    if not verify:
        return {"ok": False}
    parent = verify[0] if len(verify) == 2 else None
    bad = verify[-1]
    ok = bad.verdict == Verdict.BAD and (parent is None or parent.verdict == Verdict.GOOD)
    return {"ok": ok, "parent": parent.target if parent else None,
            "parent_verdict": parent.verdict.value if parent else None,
            "first_bad_verdict": bad.verdict.value}
