"""``harness build``: build (or fetch from cache) a patched kernel and print its artifact path."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from harness.core.request import KernelOverrides
from harness.kernel.build import DEFAULT_FRAGMENTS, DEFAULT_SERIES, BuildRequest, build_kernel
from harness.kernel.progress import BuildProgress, ProgressCallback

NAME = "build"
HELP = "build the kernel with a patch series applied; print the cached artifact's path"


def add_build_options(p: argparse.ArgumentParser) -> None:
    """Options shared by every subcommand that needs a kernel (build, boot, run, bisect)."""
    g = p.add_argument_group("kernel")
    g.add_argument("--source", help="Debian tarball, kernel directory or git repo "
                   "(default /usr/src/linux-source-6.12.tar.xz)")
    g.add_argument("--rev", help="git revision when --source is a git repository")
    g.add_argument("--patches", action="append", type=Path, metavar="SERIES",
                   help="patch series dir (with a 'series' file) or mbox; repeat to stack; "
                   "'none' for no series (default patches/mempressure-shrinker)")
    g.add_argument("--config", action="append", metavar="FRAGMENT",
                   help="config fragment name in kernel-config/ or path; repeat "
                   f"(default {','.join(DEFAULT_FRAGMENTS)})")
    g.add_argument("--base", default="tinyconfig",
                   help="base config: tinyconfig, defconfig, ... or a .config file")
    g.add_argument("-j", "--jobs", type=int, help="make -j (default: all cores)")


def overrides_from_args(args: argparse.Namespace) -> KernelOverrides:
    """The build options the user gave; what they left out stays None ("the scenario's")."""
    series = (tuple(p for p in args.patches if str(p) != "none") if args.patches else None)
    frags = (tuple(f for c in args.config for f in c.split(",") if f) if args.config else None)
    return KernelOverrides(source=args.source, rev=args.rev, series=series, fragments=frags,
                           base=args.base, jobs=args.jobs)


def request_from_args(args: argparse.Namespace) -> BuildRequest:
    """The kernel of a command without a scenario (build, exec): the defaults, overridden."""
    o = overrides_from_args(args)
    return BuildRequest(source=o.source, rev=o.rev,
                        series=DEFAULT_SERIES if o.series is None else o.series,
                        fragments=DEFAULT_FRAGMENTS if o.fragments is None else o.fragments,
                        base=o.base or "tinyconfig", jobs=o.jobs)


def terminal_progress() -> ProgressCallback | None:
    """A one-line, self-overwriting progress display when stderr is a terminal."""
    if not sys.stderr.isatty():
        return None

    def show(p: BuildProgress) -> None:
        sys.stderr.write("\r\033[K" + p.line())
        sys.stderr.flush()
        if p.stage == "store artifact":
            sys.stderr.write("\n")

    return show


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_build_options(p)
    p.add_argument("--json", action="store_true", help="print the artifact's metadata as JSON")


def run(args: argparse.Namespace) -> int:
    art = build_kernel(request_from_args(args), progress=terminal_progress())
    if args.json:
        print(json.dumps(art.metadata, indent=2))
    else:
        print(art.dir)
    return 0
