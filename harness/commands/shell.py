"""``harness shell``: an interactive SSH shell in a freshly booted guest.

For poking at a kernel by hand. The VM exists exactly as long as the shell:
leaving the shell (or Ctrl-D, or losing the connection) shuts QEMU down.
"""

from __future__ import annotations

import argparse
import logging
import os
import select
import shutil
import sys
import termios
import tty

from harness.commands.build import add_arch_options
from harness.commands.vm_options import add_vm_arguments, config_from_args
from harness.errors import InfraError, UsageError
from harness.vm import Machine

NAME = "shell"
HELP = "boot a guest and open an interactive root shell in it; the VM goes when you exit"

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_vm_arguments(parser)
    add_arch_options(parser.add_argument_group("kernel"))


def _interactive(vm: Machine) -> int:
    """Pump bytes between the local tty (raw mode) and a remote PTY."""
    if vm.ssh is None:
        raise InfraError("ssh", "no SSH session")
    client = vm.ssh.ensure_connected()
    size = shutil.get_terminal_size()
    chan = client.invoke_shell(term=os.environ.get("TERM", "vt100"),
                               width=size.columns, height=size.lines)
    fd = sys.stdin.fileno()
    old = termios.tcgetattr(fd)
    try:
        tty.setraw(fd)
        while True:
            r, _, _ = select.select([chan, fd], [], [], 0.5)
            if chan in r:
                data = chan.recv(4096)
                if not data:
                    break
                os.write(sys.stdout.fileno(), data)
            if fd in r:
                data = os.read(fd, 1024)
                if not data:
                    break
                chan.sendall(data)
            if chan.exit_status_ready() and not chan.recv_ready():
                break
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, old)
    status = chan.recv_exit_status() if chan.status_event.is_set() else 0
    chan.close()
    return status


def run(args: argparse.Namespace) -> int:
    if not sys.stdin.isatty():
        raise UsageError("stdin", "harness shell needs a terminal")
    cfg = config_from_args(args)
    with Machine(cfg, run_dir=args.run_dir) as vm:
        print(f"guest up in {vm.boot_time or 0:.1f} s ({vm.accel}); exit the shell to stop it",
              file=sys.stderr)
        status = _interactive(vm)
    return status
