"""``harness build``: build (or fetch from cache) a patched kernel and print its artifact path."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from harness.arch import ARCHES, DEFAULT_ARCH, PAGE_SIZES, get_arch
from harness.core.request import KernelOverrides
from harness.kernel.build import DEFAULT_FRAGMENTS, DEFAULT_SERIES, BuildRequest, build_kernel
from harness.kernel.progress import BuildProgress, ProgressCallback

NAME = "build"
HELP = "build the kernel with a patch series applied; print the cached artifact's path"


def add_arch_options(g: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """--arch and --page-size, defined here once: the build options carry them (build, run,
    exec, bisect), and boot and shell, which take no other build option, add them alone."""
    g.add_argument("--arch", choices=tuple(ARCHES), default=None,
                   help=f"guest architecture: the kernel is cross-built for it and booted under "
                   f"its QEMU (default {DEFAULT_ARCH})")
    g.add_argument("--page-size", choices=tuple(PAGE_SIZES), default=None,
                   help="the kernel's page size (arm64: 4k, 16k or 64k; x86_64: 4k only; "
                   "default 4k)")


def arch_from_args(args: argparse.Namespace) -> tuple[str, str | None]:
    """(architecture, page size) as given; a page size the architecture lacks is exit 2
    naming --page-size, before anything is built."""
    arch = get_arch(getattr(args, "arch", None))
    page = getattr(args, "page_size", None)
    arch.page_fragment(page)
    return arch.name, page


def add_build_options(p: argparse.ArgumentParser) -> None:
    """Options shared by every subcommand that needs a kernel (build, boot, run, bisect)."""
    g = p.add_argument_group("kernel")
    add_arch_options(g)
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
    arch, page = arch_from_args(args)
    return KernelOverrides(source=args.source, rev=args.rev, series=series, fragments=frags,
                           base=args.base, jobs=args.jobs, arch=arch, page_size=page)


def request_from_args(args: argparse.Namespace) -> BuildRequest:
    """The kernel of a command without a scenario (build, exec): the defaults, overridden."""
    o = overrides_from_args(args)
    return BuildRequest(source=o.source, rev=o.rev,
                        series=DEFAULT_SERIES if o.series is None else o.series,
                        fragments=DEFAULT_FRAGMENTS if o.fragments is None else o.fragments,
                        base=o.base or "tinyconfig", jobs=o.jobs, arch=o.arch or DEFAULT_ARCH,
                        page_size=o.page_size)


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
