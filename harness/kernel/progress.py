"""Progress of a kernel build, from Kbuild's own output lines.

Kbuild prints one ``  CC      path.o`` line per compiled object; counting
them against the count of the previous full build of the same lineage gives
an honest "objects compiled out of roughly how many". The reporter is a
callback so the library never writes to the terminal itself.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

_OBJ = re.compile(r"^  (?:CC|AS|CC \[M\])\s+\S+\.o$")

# Objects in a tinyconfig + guest + mempressure build of 6.12 (measured).
DEFAULT_TOTAL_ESTIMATE = 1100


@dataclass
class BuildProgress:
    """Snapshot passed to progress callbacks."""

    stage: str
    compiled: int
    estimate: int
    elapsed: float

    def line(self) -> str:
        m, s = divmod(int(self.elapsed), 60)
        if self.stage == "compile":
            return (f"[build] compile: {self.compiled}/~{self.estimate} objects, "
                    f"{m}m{s:02d}s elapsed")
        return f"[build] {self.stage}, {m}m{s:02d}s elapsed"


ProgressCallback = Callable[[BuildProgress], None]


class ProgressTracker:
    """Counts compiled objects from Kbuild lines and forwards snapshots, rate-limited."""

    def __init__(self, callback: ProgressCallback | None, estimate: int,
                 min_interval: float = 0.5) -> None:
        self.callback = callback or log_progress()
        self.estimate = max(estimate, 1)
        self.compiled = 0
        self.start = time.monotonic()
        self.min_interval = min_interval
        self._last = 0.0
        self.stage = "starting"

    def set_stage(self, stage: str) -> None:
        self.stage = stage
        self._emit(force=True)

    def feed(self, line: str) -> None:
        if _OBJ.match(line):
            self.compiled += 1
            self.stage = "compile"
            self._emit()

    def _emit(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self.min_interval:
            return
        self._last = now
        self.callback(BuildProgress(self.stage, self.compiled,
                                    max(self.estimate, self.compiled), now - self.start))


def log_progress(interval: float = 30.0) -> ProgressCallback:
    """A callback for non-terminal output (CI): one log line per stage and every ``interval`` s."""
    last: dict[str, object] = {"t": 0.0, "stage": None}

    def cb(p: BuildProgress) -> None:
        t = float(last["t"])  # type: ignore[arg-type]
        if p.stage != last["stage"] or p.elapsed - t >= interval:
            last["t"], last["stage"] = p.elapsed, p.stage
            log.info("%s", p.line())

    return cb
