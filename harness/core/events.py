"""The guest's event stream: lines the guest writes that reach the host without SSH.

QEMU gives the guest a virtio-serial port (``harness.vm.argv.EVENTS_PORT``) and writes what
arrives on it to the run dir's ``guest-events.log``. A port can be opened by one process only,
so right after boot the core starts one tiny relay in the guest: ``cat`` holding the port open
and reading a FIFO, :data:`GUEST_FIFO`, that any number of guest programs append lines to
(writes up to PIPE_BUF are atomic, so lines never interleave). The relay runs with
``oom_score_adj=-1000``: it is the harness's instrument, never the OOM killer's victim.

On the host, :class:`EventLog` reads that file: a phase takes a mark (the file's size), waits
for a line, and slices its own lines out afterwards. A thrashing guest that cannot fork an SSH
session still moves its events; whether the guest is starved or dead is QMP's call.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

GUEST_FIFO = "/tmp/harness-events"
EXIT_LINE = re.compile(r"^EXIT (?P<name>\S+) (?P<rc>\d+)\s*$", re.M)


def guest_relay_command(port_name: str) -> str:
    """Shell for the guest: find the named virtio port, start the FIFO -> port relay.

    Prints ``events: <device>`` or ``events: none`` (an old kernel without virtio-console):
    callers fall back to SSH polling then.
    """
    find = (f'for d in /sys/class/virtio-ports/*; do [ "$(cat $d/name 2>/dev/null)" = '
            f'"{port_name}" ] && p=/dev/${{d##*/}}; done')
    relay = (f"echo -1000 > /proc/self/oom_score_adj; exec cat 0<>{GUEST_FIFO} > $p")
    return (f'p=; {find}; if [ -n "$p" ] && [ -c "$p" ]; then rm -f {GUEST_FIFO}; '
            f'mkfifo {GUEST_FIFO} && (sh -c "{relay}" > /dev/null 2>&1 < /dev/null &) '
            f'&& echo "events: $p"; else echo "events: none"; fi')


class EventLog:
    """Read-only view of ``guest-events.log`` as QEMU appends to it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def mark(self) -> int:
        """Current end of the stream: slice a phase's lines with ``text(mark)``."""
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def text(self, start: int = 0, end: int | None = None) -> str:
        try:
            with self.path.open("rb") as f:
                f.seek(start)
                data = f.read() if end is None else f.read(max(0, end - start))
        except FileNotFoundError:
            return ""
        return data.decode(errors="replace")

    def wait_for(self, pattern: re.Pattern[str], start: int, timeout: float,
                 keep_going: Callable[[], bool] = lambda: True,
                 poll: float = 0.2) -> re.Match[str] | None:
        """The first match of ``pattern`` after ``start``; None on timeout or when
        ``keep_going()`` turns false (e.g. QMP says the guest is gone)."""
        deadline = time.monotonic() + timeout
        while True:
            m = pattern.search(self.text(start))
            if m:
                return m
            if time.monotonic() >= deadline or not keep_going():
                return None
            time.sleep(poll)


def lines_with_prefix(text: str, *prefixes: str) -> str:
    """Keep the lines of one program (its own prefixes: ``EV``, ``SUMMARY``, ``MEM`` ...)."""
    return "".join(ln + "\n" for ln in text.splitlines() if ln.startswith(prefixes))
