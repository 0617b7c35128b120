"""Process helpers for every child the harness starts: die with it, is it alive, stop it.

The lowest layer of the package (it imports nothing of the harness): the kernel build's
make, the VM's QEMU, the matrix's jobs and the bisect's steps all tie their children to
the harness and stop them the same way.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGKILL) -> Callable[[], None]:
    """A ``preexec_fn`` that makes the child get ``sig`` (SIGKILL) when the harness dies.

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
            libc.prctl(PR_SET_PDEATHSIG, sig)
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


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of process group ``pgid``, read from /proc."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


def _wait_group_empty(pgid: int, deadline: float) -> bool:
    while group_members(pgid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def stop_process_group(proc: subprocess.Popen[bytes] | subprocess.Popen[str],
                       grace: float, sig: int = signal.SIGINT) -> None:
    """Stop a child started with ``start_new_session=True`` and *every* process of its group.

    ``sig`` (SIGINT: the harness's children take their QEMU down on it) goes to the whole
    group; what is left after ``grace`` seconds gets SIGKILL. Returns only when no process
    of the group is alive: the leader's exit is not enough (``git bisect run`` dies at once
    on SIGINT while its step is still stopping, and may still touch the repo).
    """
    pgid = proc.pid
    deadline = time.monotonic() + grace
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        pass
    if proc.poll() is None or not _wait_group_empty(pgid, deadline):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
        _wait_group_empty(pgid, time.monotonic() + 10.0)
