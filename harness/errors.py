"""The harness's error taxonomy and the exit status each one maps to.

Every error the CLI can report is one of these. The split matters to users:
a *check failure* is the kernel misbehaving (exit 1), a *usage/setup error* is
bad input that the user must fix (exit 2), and an *infrastructure error* is
the test rig failing (no boot, SSH lost, timeout; exit 3). CI systems retry
the third kind and report the first; mixing them up is the bug users of peer
tools complain about most.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_USAGE = 2
EXIT_INFRA = 3
EXIT_INTERRUPTED = 130

#: A run's verdict (harness.core.results.Status value) -> the CLI's exit status.
EXIT_FOR_VERDICT = {"pass": EXIT_OK, "fail": EXIT_CHECK_FAILED, "error": EXIT_INFRA,
                    "skip": EXIT_OK}


def exit_for_verdict(verdict: str) -> int:
    """The one mapping from verdicts to exit statuses (run, judge, matrix jobs)."""
    return EXIT_FOR_VERDICT.get(verdict, EXIT_INFRA)


class HarnessError(Exception):
    """Base class. ``culprit`` names the file, option or patch at fault."""

    exit_status = EXIT_USAGE

    def __init__(self, culprit: str, message: str, detail: str = "") -> None:
        super().__init__(f"{culprit}: {message}")
        self.culprit = culprit
        self.message = message
        self.detail = detail

    def one_line(self) -> str:
        """The single line the CLI prints: culprit first, then what is wrong."""
        return f"{self.culprit}: {self.message}"


class UsageError(HarnessError):
    """Bad input from the user: a missing file, an unknown option, a bad patch."""

    exit_status = EXIT_USAGE


class SetupError(HarnessError):
    """The machine lacks something the harness needs (a package, disk space)."""

    exit_status = EXIT_USAGE


class BuildError(UsageError):
    """The kernel did not configure or compile. Bad input, not infrastructure."""


class InfraError(HarnessError):
    """The rig failed: no boot, QEMU died, SSH lost, a timeout."""

    exit_status = EXIT_INFRA


class CheckFailed(HarnessError):
    """The kernel misbehaved: a check's expectation did not hold."""

    exit_status = EXIT_CHECK_FAILED
