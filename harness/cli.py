"""Command-line entry point: ``harness <subcommand>``.

The CLI owns the terminal: it configures logging, turns every
:class:`~harness.errors.HarnessError` into one line on stderr plus a distinct
exit status, and maps Ctrl-C to 130. Subcommands live one per module in
:mod:`harness.commands`; each module exposes ``NAME``, ``HELP``,
``add_arguments(parser)`` and ``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from types import ModuleType

from harness import __version__
from harness.errors import EXIT_INTERRUPTED, HarnessError

# Order is the order shown in --help.
COMMAND_MODULES = (
    "doctor",
    "build",
    "boot",
    "shell",
    "run",
    "judge",
    "checks",
    "bisect",
    "matrix",
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


def main(argv: list[str] | None = None) -> int:
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
    except KeyboardInterrupt:
        print("harness: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
