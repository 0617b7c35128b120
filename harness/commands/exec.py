"""``harness exec [build options] [VM options] [--ship PATH]... -- CMD...``: one command in a
freshly booted guest, scriptable.

Boots the kernel (built from the build options, or ``--kernel``), copies the ``--ship`` paths
in, runs CMD, streams its stdout/stderr live and exits with its status -- so it drops into a
script or ``git bisect run``. A guest that panics or is lost while CMD runs is exit 3 with the
console classifier's title, never CMD's status: a crash must not pass for a failing (or, with
status 0, a passing) command. The console's findings are printed after the command either way.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from harness.commands.build import (
    add_build_options,
    arch_from_args,
    request_from_args,
    terminal_progress,
)
from harness.commands.vm_options import add_vm_arguments, rootfs_image, vm_settings_from_args
from harness.errors import InfraError, UsageError
from harness.kernel.build import BuildRequest

NAME = "exec"
HELP = "boot a guest, run one command in it (streamed), exit with its status; a crash is 3"
DEFAULT_DEST = "/root"  # the command's working directory (root's home)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_build_options(p)
    add_vm_arguments(p)
    g = p.add_argument_group("command")
    g.add_argument("--ship", action="append", default=[], metavar="PATH[:DEST]",
                   help=f"copy a file or directory into the guest first (default DEST: "
                   f"{DEFAULT_DEST}/<name>); repeatable")
    g.add_argument("--cgroup", choices=("v1", "v2"), default="v1",
                   help="which hierarchy holds the memory controller in the guest")
    g.add_argument("--timeout", type=float, default=3600.0, metavar="S",
                   help="give up on the command after S seconds (exit 3)")
    g.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD...",
                   help="one argument: shell text; several: an exact argv")


def command_text(cmd: list[str]) -> str:
    """``["echo hi; exit 3"]`` runs as shell text; ``["ls", "-l", "a b"]`` as that argv."""
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        raise UsageError("CMD", "give the command to run after --")
    return cmd[0] if len(cmd) == 1 else shlex.join(cmd)


def parse_ship(spec: str) -> tuple[Path, str]:
    """``PATH[:DEST]`` -> (host path, guest path); DEST defaults to /root/<name>."""
    host, sep, dest = spec.partition(":")
    path = Path(host)
    if not path.exists():
        raise UsageError(f"--ship {spec}", f"{host} does not exist")
    if sep and not dest.startswith("/"):
        raise UsageError(f"--ship {spec}", f"guest path {dest!r} must be absolute")
    return path, dest if sep else f"{DEFAULT_DEST}/{path.resolve().name}"


def with_host_fragment(req: BuildRequest) -> BuildRequest:
    """``req`` with the host rootfs's config fragment (9p, overlayfs) merged last."""
    from harness.image.rootfs import HOST_FRAGMENT

    if HOST_FRAGMENT in req.fragments:
        return req
    return replace(req, fragments=(*req.fragments, HOST_FRAGMENT))


def host_command(text: str) -> str:
    """``text`` run chrooted in the host rootfs (harness.image.rootfs.HOST_ROOT), from /root."""
    from harness.image.rootfs import HOST_ROOT

    return f"chroot {HOST_ROOT} /bin/sh -c {shlex.quote(f'cd {DEFAULT_DEST} 2>/dev/null; {text}')}"


def format_findings(findings: list[Any]) -> list[str]:
    """One line per console finding, for the terminal after the command."""
    return [f"harness: console: {getattr(f, 'severity', '')} {f.kind}: {f.title}"
            for f in findings]


def _write(stream: str, text: str) -> None:
    out = sys.stdout if stream == "stdout" else sys.stderr
    out.write(text)
    out.flush()


def run(args: argparse.Namespace) -> int:
    text = command_text(list(args.cmd))
    from harness.arch import get_arch
    from harness.image import rootfs
    from harness.image.build import with_shared_libs

    arch_name, page = arch_from_args(args)
    arch = get_arch(arch_name)
    vm_set = vm_settings_from_args(args, command=NAME)
    host = vm_set.rootfs == rootfs.HOST_KIND
    ships = {dest: path for path, dest in map(parse_ship, args.ship)}
    if host:  # the host's own libraries are there already; the files go under its root
        if not arch.native:
            raise UsageError("--rootfs host", f"the host's / cannot run {arch.name} programs")
        ships = {f"{rootfs.HOST_ROOT}{dest}": path for dest, path in ships.items()}
        text = host_command(text)
    else:
        # Dynamic programs bring their libraries and loader (the guest architecture's); a
        # missing one, or a program of another architecture, is exit 2, before boot.
        ships = with_shared_libs(ships, "--ship", arch)
    from harness.vm.preflight import check_ram_on_host

    check_ram_on_host(vm_set.ram_mib)
    if args.kernel is not None:
        from harness.commands.vm_options import resolve_kernel

        kernel = resolve_kernel(args.kernel, arch.name, page)
    else:
        from harness.kernel.build import build_kernel

        req = with_host_fragment(request_from_args(args)) if host else request_from_args(args)
        kernel = Path(build_kernel(req, progress=terminal_progress()).bzimage)
    from harness.core.runner import ship_files  # the one implementation of "ship a tree in"
    from harness.image import build_image
    from harness.vm import Machine, VMConfig

    cfg = VMConfig(kernel=kernel, initramfs=build_image(arch=arch).initramfs,
                   ram_mib=vm_set.ram_mib, arch=arch.name,
                   swap_mib=vm_set.swap_mib, smp=vm_set.smp, accel=args.accel,
                   boot_timeout=vm_set.boot_timeout_s,
                   cmdline_extra="harness.cgroup=v2" if args.cgroup == "v2" else "",
                   rootfs_image=None if host else rootfs_image(vm_set, arch.name),
                   host_root=host)
    cfg.validate()
    with Machine(cfg, run_dir=args.run_dir) as vm:
        try:
            if ships:
                ship_files(vm, ships)
            r = vm.run(text, timeout=args.timeout, on_output=_write)
        except InfraError:
            for line in format_findings(vm.console_findings):
                print(line, file=sys.stderr)
            raise
        for line in format_findings(vm.console_findings):
            print(line, file=sys.stderr)
        print(f"harness: exit status {r.exit_status}; run dir {vm.run_dir}", file=sys.stderr)
    # paramiko reports -1 when the command died without an exit status (killed by a signal)
    return r.exit_status if r.exit_status >= 0 else 255
