"""Process helpers for the QEMU children: die with the harness, and is it alive.

Kept apart from :mod:`harness.vm.machine` so that every module that starts a
QEMU (the machine, the KVM probe) ties it to the harness the same way.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

PR_SET_PDEATHSIG = 1


def die_with_parent() -> Callable[[], None]:
    """A ``preexec_fn`` that makes the child get SIGKILL when the harness dies.

    Covers what no ``finally`` can: SIGKILL of the harness, an OOM kill. The
    death signal is tied to the *thread* that forks, so call Popen from a
    thread that lives as long as the child (the main thread, in practice).
    If the harness already died between fork and prctl, the child is an
    orphan whose parent is no longer ours: it exits at once instead.
    """
    parent = os.getpid()

    def preexec() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            return
        if os.getppid() != parent:
            os._exit(1)

    return preexec


def pid_alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie (no psutil needed)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def stop_process_group(proc: subprocess.Popen[bytes] | subprocess.Popen[str],
                       grace: float) -> None:
    """SIGINT a child started with ``start_new_session=True`` and its whole group (so its
    QEMU goes down cleanly), SIGKILL the group if it is still there after ``grace`` s."""
    try:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass
