"""SIGTERM and SIGHUP unwind like Ctrl-C: cleanup runs, exit 128 + signum, one line."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator

import pytest

from harness.cli import main
from harness.commands import doctor
from harness.errors import Terminated, exit_status_for_signal, interrupt_signum


@pytest.fixture(autouse=True)
def _keep_handlers() -> Iterator[None]:
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    yield
    for s, h in saved.items():
        signal.signal(s, h)


def fake_command(monkeypatch: pytest.MonkeyPatch, body: Callable[[], int]) -> None:
    monkeypatch.setattr(doctor, "run", lambda args: body())


def test_terminated_is_a_keyboard_interrupt() -> None:
    t = Terminated(signal.SIGTERM)
    assert isinstance(t, KeyboardInterrupt) and t.signum == signal.SIGTERM
    assert t.reason == "interrupted by SIGTERM"
    assert interrupt_signum(t) == 15 and interrupt_signum(KeyboardInterrupt()) == 2
    assert [exit_status_for_signal(s) for s in (2, 15, 1)] == [130, 143, 129]


@pytest.mark.parametrize("sig,rc,line", [
    (signal.SIGTERM, 143, "harness: terminated"),
    (signal.SIGHUP, 129, "harness: terminated"),
    (signal.SIGINT, 130, "harness: interrupted"),
])
def test_stop_signal_runs_cleanup_and_exits_128_plus_signum(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        sig: int, rc: int, line: str) -> None:
    cleaned: list[bool] = []

    def body() -> int:
        try:
            os.kill(os.getpid(), sig)
            time.sleep(5)
            return 0
        finally:
            cleaned.append(True)

    fake_command(monkeypatch, body)
    assert main(["doctor"]) == rc
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == line
    assert cleaned == [True]
    if sig != signal.SIGINT:
        assert "interrupted" not in err  # none of Ctrl-C's words for a CI runner's SIGTERM
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers restored


def test_second_signal_does_not_abort_cleanup(monkeypatch: pytest.MonkeyPatch) -> None:
    done: list[str] = []

    def body() -> int:
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
            return 0
        finally:
            os.kill(os.getpid(), signal.SIGINT)  # impatient second signal mid-cleanup
            done.append("cleanup finished")

    fake_command(monkeypatch, body)
    assert main(["doctor"]) == 143
    assert done == ["cleanup finished"]


def test_ignored_signal_stays_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    """nohup ignores SIGHUP on purpose; the harness must not undo that."""
    signal.signal(signal.SIGHUP, signal.SIG_IGN)

    def body() -> int:
        os.kill(os.getpid(), signal.SIGHUP)
        time.sleep(0.05)
        return 0

    fake_command(monkeypatch, body)
    assert main(["doctor"]) == 0
    assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN


def test_no_signal_no_change(monkeypatch: pytest.MonkeyPatch) -> None:
    """Negative control: without a signal the command's own status comes through."""
    fake_command(monkeypatch, lambda: 0)
    assert main(["doctor"]) == 0
