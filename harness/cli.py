"""Command-line entry point: ``harness <subcommand>``.

The CLI owns the terminal: it configures logging, turns every
:class:`~harness.errors.HarnessError` into one line on stderr plus a distinct
exit status, and makes SIGTERM and SIGHUP (what a CI runner or a closed
terminal sends) unwind exactly like Ctrl-C: each raises
:class:`~harness.errors.Terminated`, a KeyboardInterrupt, so every cleanup path
runs, and the exit status is 128 + signum (130, 143, 129). Subcommands live one per module in
:mod:`harness.commands`; each module exposes ``NAME``, ``HELP``,
``add_arguments(parser)`` and ``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys
import threading
from types import FrameType, ModuleType
from typing import Any

from harness import __version__
from harness.errors import (
    HarnessError,
    Terminated,
    exit_status_for_signal,
    interrupt_signum,
    signal_name,
)

log = logging.getLogger(__name__)

#: Signals that stop a run cleanly. SIGQUIT keeps its core-dumping default.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

# Order is the order shown in --help.
COMMAND_MODULES = (
    "doctor",
    "build",
    "boot",
    "shell",
    "exec",
    "run",
    "judge",
    "checks",
    "bisect",
    "check_series",
    "matrix",
    "compare",
)


def _load_commands() -> list[ModuleType]:
    return [importlib.import_module(f"harness.commands.{name}") for name in COMMAND_MODULES]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="harness",
        description="Build a kernel with a patch series, boot it under QEMU with constrained "
        "RAM and swap, run a stress test over SSH and assert on the kernel's behaviour.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    for mod in _load_commands():
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


class StopSignals:
    """Turns the first stop signal into :class:`Terminated`; later ones only log.

    A signal that arrives while the first one's cleanup runs (QEMU's shutdown,
    the partial results.json) must not abort that cleanup half-way: it is
    bounded (seconds), and SIGKILL is there for the impatient. A signal the
    caller left ignored (``nohup`` ignores SIGHUP; a shell ignores SIGINT for
    a background job) stays ignored: that is the caller's explicit choice.
    """

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signal.signal only works there; an embedding caller keeps its own
        for sig in STOP_SIGNALS:
            previous = signal.getsignal(sig)
            if previous is signal.SIG_IGN:
                continue
            self._previous[sig] = previous
            signal.signal(sig, self._handle)

    def restore(self) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None:
            log.warning("%s received while stopping after %s: still cleaning up",
                        signal_name(signum), signal_name(self.received))
            return
        self.received = signum
        raise Terminated(signum)


def interrupted_line(signum: int) -> str:
    """What the CLI prints when a stop signal ended the run."""
    return "harness: interrupted" if signum == signal.SIGINT else "harness: terminated"


def main(argv: list[str] | None = None) -> int:
    stop = StopSignals()
    stop.install()
    try:
        return _main(argv)
    except KeyboardInterrupt as exc:  # Ctrl-C, or a Terminated from StopSignals
        signum = interrupt_signum(exc)
        print(interrupted_line(signum), file=sys.stderr)
        return exit_status_for_signal(signum)
    finally:
        stop.restore()


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname).1s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        rc: int = args._run(args)
        return rc
    except HarnessError as exc:
        print(f"harness: error: {exc.one_line()}", file=sys.stderr)
        if exc.detail:
            print(exc.detail.rstrip(), file=sys.stderr)
        return exc.exit_status
