"""``harness boot``: boot a kernel, print a short summary, shut it down.

The quickest end-to-end check that a kernel, the guest image and QEMU work
together on this machine; also how a user sees which accelerator is used.
"""

from __future__ import annotations

import argparse
import logging

from harness.commands.build import add_arch_options
from harness.commands.vm_options import add_vm_arguments, config_from_args
from harness.vm import Machine

NAME = "boot"
HELP = "boot a kernel in QEMU to SSH-ready, print kernel version, RAM, swap, accel, boot time"

log = logging.getLogger(__name__)

SUMMARY_CMD = ("uname -r; awk '/^MemTotal:/{print $2} /^SwapTotal:/{print $2}' /proc/meminfo; "
               "nproc")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_vm_arguments(parser)
    add_arch_options(parser.add_argument_group("kernel"))


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    with Machine(cfg, run_dir=args.run_dir) as vm:
        r = vm.run(SUMMARY_CMD, timeout=60, check=True)
        lines = r.stdout.split()
        release, mem_kib, swap_kib, cpus = (lines + ["?"] * 4)[:4]
        findings = vm.console_findings
        print(f"kernel:      {release} ({cfg.kernel})")
        print(f"RAM:         {int(mem_kib) // 1024 if mem_kib.isdigit() else '?'} MiB usable "
              f"of {cfg.ram_mib} MiB")
        print(f"swap:        {int(swap_kib) // 1024 if swap_kib.isdigit() else '?'} MiB")
        print(f"CPUs:        {cpus}")
        print(f"accelerator: {vm.accel}")
        print(f"boot time:   {vm.boot_time or 0:.2f} s to SSH-ready")
        print(f"console:     {len(findings)} finding(s)")
        print(f"run dir:     {vm.run_dir}")
    return 0
