"""SSH to the guest through paramiko: commands with timeouts, SFTP, reconnects.

Why paramiko and not ``ssh(1)``: we need the exit status, separate stdout and
stderr, streaming callbacks and SFTP from inside the harness process, without
a known_hosts file or an agent on the host interfering.

Host key trust: the per-run host key is generated on the host and shipped in
the run's cpio, so it is pinned exactly. Only if the image had to let dropbear
make its own key (no ``dropbearkey`` on the host) do we accept any key; that
is still safe here because the connection goes to 127.0.0.1:<port>, a port
QEMU itself holds and forwards only into the guest we just launched, carrying
no secret but a throwaway per-run client key.

Every failure of the *transport* (connect, timeout, dropped connection) is an
:class:`InfraError`; a command's non-zero exit status is data, not an error.
"""

from __future__ import annotations

import base64
import logging
import select
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import paramiko

from harness.errors import InfraError

log = logging.getLogger(__name__)
# paramiko logs every connection at INFO; our own lines say what matters.
logging.getLogger("paramiko").setLevel(logging.WARNING)

OutputCallback = Callable[[str, str], None]  # (stream name "stdout"/"stderr", text)
#: An SFTP transfer that moves no byte for this long has lost its guest (a guest
#: thrashing under TCG was seen to stall SSH for a minute and recover).
SFTP_IDLE_TIMEOUT_S = 180.0


@dataclass(frozen=True)
class CommandResult:
    """What a guest command did. ``duration`` is wall-clock seconds."""

    exit_status: int
    stdout: str
    stderr: str
    duration: float

    @property
    def ok(self) -> bool:
        return self.exit_status == 0


class _PinnedKey(paramiko.MissingHostKeyPolicy):
    def __init__(self, expected: paramiko.PKey | None) -> None:
        self.expected = expected

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str,
                         key: paramiko.PKey) -> None:
        if self.expected is None:
            return  # guest-generated key: see module docstring
        if key.get_name() != self.expected.get_name() or \
                key.asbytes() != self.expected.asbytes():
            raise paramiko.SSHException(f"host key mismatch for {hostname}")


def _parse_pub(line: str | None) -> paramiko.PKey | None:
    if not line:
        return None
    kind, b64 = line.split()[:2]
    return paramiko.PKey.from_type_string(kind, base64.b64decode(b64))


class SSHSession:
    """A (re)connectable SSH session to ``root@host:port``."""

    def __init__(self, host: str, port: int, client_key: paramiko.PKey,
                 host_key_line: str | None = None, user: str = "root") -> None:
        self.host = host
        self.port = port
        self.user = user
        self.client_key = client_key
        self._policy = _PinnedKey(_parse_pub(host_key_line))
        self._client: paramiko.SSHClient | None = None
        self._sftp: paramiko.SFTPClient | None = None

    # -- connection ----------------------------------------------------------
    def _connect_once(self, timeout: float) -> paramiko.SSHClient:
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(self._policy)
        client.connect(
            self.host, self.port, username=self.user, pkey=self.client_key,
            timeout=timeout, banner_timeout=timeout, auth_timeout=timeout,
            look_for_keys=False, allow_agent=False,
        )
        transport = client.get_transport()
        if transport is not None:
            transport.set_keepalive(5)
        return client

    def connect(self, deadline: float, alive: Callable[[], bool] | None = None) -> None:
        """Connect, retrying until ``deadline`` (monotonic) -- the guest may still be
        starting dropbear, or QEMU's forward may accept and then drop us."""
        last: Exception | None = None
        attempt = 0
        while True:
            attempt += 1
            if alive is not None and not alive():
                raise InfraError("ssh", "the VM went away while connecting", repr(last))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                self._client = self._connect_once(max(1.0, min(10.0, remaining)))
                log.debug("SSH connected after %d attempt(s)", attempt)
                return
            except (OSError, paramiko.SSHException, EOFError) as exc:
                if isinstance(exc, paramiko.SSHException) and "host key mismatch" in str(exc):
                    raise InfraError("ssh", str(exc)) from exc
                last = exc
                time.sleep(min(0.2 * attempt, 1.0))
        raise InfraError("ssh", f"could not connect to {self.host}:{self.port} "
                         f"after {attempt} attempts", repr(last))

    @property
    def connected(self) -> bool:
        t = self._client.get_transport() if self._client else None
        return bool(t and t.is_active())

    def ensure_connected(self, timeout: float = 15.0) -> paramiko.SSHClient:
        """Reconnect if the previous connection dropped (guest still alive)."""
        if not self.connected:
            if self._client is not None:
                log.info("SSH connection lost; reconnecting")
                self.close()
            self.connect(time.monotonic() + timeout)
        assert self._client is not None
        return self._client

    def close(self) -> None:
        if self._sftp is not None:
            try:
                self._sftp.close()
            except Exception:  # noqa: BLE001 - teardown
                pass
            self._sftp = None
        if self._client is not None:
            self._client.close()
            self._client = None

    # -- commands ------------------------------------------------------------
    def run(self, command: str, timeout: float, on_output: OutputCallback | None = None,
            get_pty: bool = False) -> CommandResult:
        """Run ``command`` under the guest's ``sh -c``; InfraError on timeout or lost link."""
        client = self.ensure_connected()
        transport = client.get_transport()
        assert transport is not None
        start = time.monotonic()
        try:
            chan = transport.open_session(timeout=10)
            if get_pty:
                chan.get_pty()
            chan.exec_command(command)
        except (OSError, paramiko.SSHException, EOFError) as exc:
            raise InfraError("ssh", f"could not start command {command!r}: {exc}") from exc
        out: list[bytes] = []
        err: list[bytes] = []
        deadline = start + timeout
        try:
            while True:
                if chan.recv_ready():
                    data = chan.recv(65536)
                    out.append(data)
                    if on_output and data:
                        on_output("stdout", data.decode(errors="replace"))
                    continue
                if chan.recv_stderr_ready():
                    data = chan.recv_stderr(65536)
                    err.append(data)
                    if on_output and data:
                        on_output("stderr", data.decode(errors="replace"))
                    continue
                if chan.exit_status_ready() and not chan.recv_ready() \
                        and not chan.recv_stderr_ready():
                    break
                if chan.closed or not transport.is_active():
                    break
                now = time.monotonic()
                if now >= deadline:
                    raise InfraError("ssh", f"command timed out after {timeout:.0f} s: "
                                     f"{command!r}", _tail(out, err))
                select.select([chan], [], [], min(0.2, deadline - now))
            # exit_status_ready() is also true when the channel was merely closed
            # (transport died); only a real exit-status message counts.
            if not chan.status_event.is_set() or not transport.is_active() and \
                    chan.exit_status == -1:
                raise InfraError("ssh", f"connection lost while running {command!r}",
                                 _tail(out, err))
            status = chan.recv_exit_status()
        except (TimeoutError, OSError, EOFError, paramiko.SSHException) as exc:
            raise InfraError("ssh", f"connection lost while running {command!r}: {exc}",
                             _tail(out, err)) from exc
        finally:
            chan.close()
        return CommandResult(status, b"".join(out).decode(errors="replace"),
                             b"".join(err).decode(errors="replace"),
                             time.monotonic() - start)

    # -- files ---------------------------------------------------------------
    def sftp(self) -> paramiko.SFTPClient:
        client = self.ensure_connected()
        if self._sftp is None or self._sftp.get_channel() is None or \
                self._sftp.get_channel().closed:  # type: ignore[union-attr]
            try:
                self._sftp = client.open_sftp()
            except (OSError, paramiko.SSHException, EOFError) as exc:
                raise InfraError("sftp", f"could not open SFTP session: {exc}") from exc
            chan = self._sftp.get_channel()
            if chan is not None:
                chan.settimeout(SFTP_IDLE_TIMEOUT_S)
        return self._sftp

    def _transfer(self, what: str, fn: Callable[[paramiko.SFTPClient], object]) -> None:
        """Run one SFTP transfer on a worker thread; the calling thread only waits.

        Why: a Ctrl-C or SIGTERM raised inside paramiko's SFTP code lands
        between a request and its answer; paramiko's own cleanup then sends
        CLOSE and waits for a reply that never matches -- the harness hung
        forever there (seen in tests/vm/test_faults.py). Here the interrupt
        lands in this wait loop instead: the session is abandoned (its channel
        closed, which also ends the worker's read) and the interrupt goes on.
        """
        sftp = self.sftp()
        failure: list[BaseException] = []

        def work() -> None:
            try:
                fn(sftp)
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
                failure.append(exc)

        worker = threading.Thread(target=work, name=f"sftp-{what}", daemon=True)
        worker.start()
        try:
            while worker.is_alive():
                worker.join(0.1)
        except BaseException:
            self._abandon_sftp()
            worker.join(2.0)
            raise
        if failure:
            raise failure[0]

    def _abandon_sftp(self) -> None:
        """Drop the SFTP session without a goodbye: its request stream is mid-flight."""
        sftp, self._sftp = self._sftp, None
        chan = sftp.get_channel() if sftp is not None else None
        if chan is not None:
            chan.close()

    def put(self, local: Path | str, remote: str) -> None:
        try:
            self._transfer(f"put {remote}", lambda sftp: sftp.put(str(local), remote))
        except (OSError, paramiko.SSHException, EOFError) as exc:
            if isinstance(exc, FileNotFoundError) and not Path(local).exists():
                raise
            raise InfraError("sftp", f"put {local} -> {remote} failed: {exc}") from exc

    def get(self, remote: str, local: Path | str) -> None:
        try:
            self._transfer(f"get {remote}", lambda sftp: sftp.get(remote, str(local)))
        except (OSError, paramiko.SSHException, EOFError) as exc:
            raise InfraError("sftp", f"get {remote} -> {local} failed: {exc}") from exc


def _tail(out: list[bytes], err: list[bytes], n: int = 2000) -> str:
    o = b"".join(out).decode(errors="replace")[-n:]
    e = b"".join(err).decode(errors="replace")[-n:]
    return f"--- stdout (tail) ---\n{o}\n--- stderr (tail) ---\n{e}"
