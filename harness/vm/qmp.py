"""A synchronous face on ``qemu.qmp.QMPClient`` (which is asyncio-only).

The rest of the harness is synchronous, so the client lives in its own event
loop on a dedicated daemon thread and every call is a coroutine submitted to
that loop with a timeout. Every event QEMU sends (SHUTDOWN, RESET, STOP,
GUEST_PANICKED, BALLOON_CHANGE, ...) is kept in memory and appended to
``qmp-events.jsonl`` as it arrives, so the record survives even if the harness
itself dies mid-run.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from qemu.qmp import QMPClient

from harness.errors import InfraError

log = logging.getLogger(__name__)
# qemu.qmp logs every message at DEBUG and a traceback when QEMU goes away;
# our own log lines say what matters.
logging.getLogger("qemu.qmp").setLevel(logging.WARNING)
T = TypeVar("T")


async def _new_client() -> Any:
    return QMPClient("harness")


class QMP:
    """One QMP connection to one QEMU. Thread-safe; all methods are blocking."""

    def __init__(self, socket_path: Path, events_log: Path) -> None:
        self.socket_path = socket_path
        self.events_log = events_log
        self.events: list[dict[str, Any]] = []
        self._events_lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="qmp-loop",
                                        daemon=True)
        self._thread.start()
        self._client: Any = None
        # Every client made, connected or not: close() disconnects them all, so a
        # connect interrupted half-way (Ctrl-C, SIGTERM) leaves no task behind that
        # would die with EOFError when QEMU goes ("exception was never retrieved").
        self._made: list[Any] = []
        self._reader: concurrent.futures.Future[None] | None = None
        self._log_file = open(events_log, "a", encoding="utf-8")  # noqa: SIM115

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        fut = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return fut.result(timeout)
        except concurrent.futures.TimeoutError:
            fut.cancel()
            raise InfraError("qmp", f"no answer from QEMU's QMP within {timeout:.0f} s") from None
        except BaseException:
            fut.cancel()  # a Ctrl-C/SIGTERM in the waiting thread: stop the coroutine too
            raise

    def connect(self, deadline: float, alive: Callable[[], bool]) -> None:
        """Connect, retrying until the socket exists, QEMU dies or ``deadline`` passes."""
        last: Exception | None = None
        while time.monotonic() < deadline:
            if not alive():
                raise InfraError("qemu", "QEMU exited before its QMP socket came up")
            if self.socket_path.exists():
                try:
                    # Created on the loop thread: its queues belong to that loop.
                    client = self._call(_new_client(), 5.0)
                    self._made.append(client)
                    self._call(client.connect(str(self.socket_path)), 5.0)
                    self._client = client
                    self._reader = asyncio.run_coroutine_threadsafe(self._read_events(),
                                                                    self._loop)
                    return
                except Exception as exc:  # noqa: BLE001 - retried, then reported
                    last = exc
            time.sleep(0.02)
        raise InfraError("qmp", f"could not connect to {self.socket_path}", repr(last))

    async def _read_events(self) -> None:
        client = self._client
        try:
            async for msg in client.events:
                ev = dict(msg)
                ts = ev.get("timestamp")
                if isinstance(ts, dict):
                    ev["time"] = ts.get("seconds", 0) + ts.get("microseconds", 0) / 1e6
                else:
                    ev["time"] = time.time()
                with self._events_lock:
                    self.events.append(ev)
                    self._log_file.write(json.dumps(ev, sort_keys=True) + "\n")
                    self._log_file.flush()
                log.debug("QMP event %s", ev.get("event"))
        except asyncio.CancelledError:
            pass

    def execute(self, cmd: str, args: dict[str, Any] | None = None,
                timeout: float = 10.0) -> Any:
        """Run one QMP command; InfraError if not connected, failed or too slow."""
        if self._client is None:
            raise InfraError("qmp", f"{cmd}: not connected")
        try:
            return self._call(self._client.execute(cmd, args), timeout)
        except InfraError:
            raise
        except Exception as exc:  # noqa: BLE001 - qemu.qmp raises many kinds
            raise InfraError("qmp", f"{cmd} failed: {exc}") from exc

    def close(self) -> None:
        """Disconnect and stop the loop thread. Safe to call more than once."""
        if self._loop.is_closed():
            return
        for client in self._made:
            try:
                self._call(client.disconnect(), 3.0)
            except Exception:  # noqa: BLE001 - best effort at teardown
                log.debug("QMP disconnect failed", exc_info=True)
        if self._reader is not None:
            self._reader.cancel()
            try:  # let the loop run the cancellation before it stops
                self._call(asyncio.sleep(0.01), 1.0)
            except InfraError:
                pass
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5.0)
        if not self._thread.is_alive():
            self._loop.close()
        with self._events_lock:
            self._log_file.close()
