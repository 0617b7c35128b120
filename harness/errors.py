"""The harness's error taxonomy and the exit status each one maps to.

Every error the CLI can report is one of these. The split matters to users:
a *check failure* is the kernel misbehaving (exit 1), a *usage/setup error* is
bad input that the user must fix (exit 2), and an *infrastructure error* is
the test rig failing (no boot, SSH lost, timeout; exit 3). CI systems retry
the third kind and report the first; mixing them up is the bug users of peer
tools complain about most.
"""

from __future__ import annotations

import signal

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_USAGE = 2
EXIT_INFRA = 3
EXIT_INTERRUPTED = 130  # 128 + SIGINT; SIGTERM gives 143 and SIGHUP 129 (exit_status_for_signal)

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


class Terminated(KeyboardInterrupt):
    """A stop signal (SIGINT, SIGTERM, SIGHUP) arrived: unwind like Ctrl-C.

    A subclass of KeyboardInterrupt on purpose: every ``except KeyboardInterrupt``
    and ``finally`` that already cleans up after Ctrl-C (QEMU stop, temp dirs,
    the build lock, a bisect's repository restore) runs unchanged for a CI
    runner's SIGTERM too. ``signum`` says which signal, so the CLI can exit
    128 + signum as a shell would and a partial result can say why it stopped.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signal_name(signum))
        self.signum = signum

    @property
    def reason(self) -> str:
        """What a check that did not run says: ``interrupted by SIGTERM``."""
        return f"interrupted by {signal_name(self.signum)}"


def raise_terminated(signum: int, frame: object) -> None:
    """A signal handler: unwind like Ctrl-C, remembering which signal it was."""
    raise Terminated(signum)


def signal_name(signum: int) -> str:
    """``SIGTERM`` for 15; a number the signal module does not know stays a number."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def interrupt_signum(exc: BaseException) -> int:
    """The signal behind a KeyboardInterrupt: its ``signum`` if it carries one, else SIGINT."""
    signum = getattr(exc, "signum", None)
    return signum if isinstance(signum, int) else int(signal.SIGINT)


def exit_status_for_signal(signum: int) -> int:
    """128 + signum, as a shell reports a process killed by that signal (130, 143, 129)."""
    return 128 + signum
