"""An interrupt during an SFTP transfer abandons the session instead of hanging in paramiko."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from typing import cast

import paramiko
import pytest

from harness.errors import InfraError
from harness.vm.ssh import SSHSession


class FakeChannel:
    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


class FakeSFTP:
    """put() blocks like paramiko waiting for a reply, until its channel is closed."""

    def __init__(self, fail: BaseException | None = None) -> None:
        self.chan = FakeChannel()
        self.fail = fail

    def get_channel(self) -> FakeChannel:
        return self.chan

    def put(self, local: str, remote: str) -> None:
        if self.fail is not None:
            raise self.fail
        for _ in range(500):
            if self.chan.closed:
                raise EOFError("channel closed")
            threading.Event().wait(0.01)


def session_with(sftp: FakeSFTP, monkeypatch: pytest.MonkeyPatch) -> SSHSession:
    s = SSHSession("127.0.0.1", 1, cast(paramiko.PKey, None))  # never connects
    s._sftp = sftp  # type: ignore[assignment]
    monkeypatch.setattr(s, "sftp", lambda: sftp)
    return s


def test_interrupt_mid_put_abandons_the_session(monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    fake = FakeSFTP()
    s = session_with(fake, monkeypatch)
    timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            s.put(tmp_path / "x", "/tmp/x")
    finally:
        timer.cancel()
    assert fake.chan.closed  # the worker's blocked read ends too
    assert s._sftp is None  # the next transfer opens a fresh session


def test_transfer_errors_still_come_through(monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    """Negative control: without an interrupt the session stays, errors are InfraError."""
    fake = FakeSFTP(fail=OSError("Permission denied"))
    s = session_with(fake, monkeypatch)
    with pytest.raises(InfraError, match="Permission denied"):
        s.put(tmp_path / "x", "/tmp/x")
    assert not fake.chan.closed and s._sftp is not None
