"""Accel verdict cache, deadlines and the console-following logic (no QEMU run)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.console import ConsoleClassifier, Severity
from harness.errors import InfraError
from harness.proc import pid_alive
from harness.vm import accel
from harness.vm.machine import Deadline, _ConsoleTail


def test_verdict_roundtrip(tmp_path: Path) -> None:
    f = tmp_path / "v.json"
    assert accel.load_verdict("k", f) is None
    accel.save_verdict("k", False, "hangs", f)
    accel.save_verdict("other", True, "ok", f)
    assert accel.load_verdict("k", f) is False
    assert accel.load_verdict("other", f) is True
    assert json.loads(f.read_text())["k"]["reason"] == "hangs"


def test_verdict_corrupt_file(tmp_path: Path) -> None:
    f = tmp_path / "v.json"
    f.write_text("{not json")
    assert accel.load_verdict("k", f) is None
    accel.save_verdict("k", True, "ok", f)
    assert accel.load_verdict("k", f) is True


def test_verdict_key_names_host() -> None:
    key = accel.verdict_key()
    assert key.count("|") == 2


def test_auto_uses_cached_verdict_without_probe(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "v.json"
    monkeypatch.setattr(accel, "kvm_usable", lambda *a: True)
    monkeypatch.setattr(accel, "verdict_key", lambda *a: "K")

    def no_probe(*a: object, **k: object) -> str | None:
        raise AssertionError("probed despite a cached verdict")

    accel.save_verdict("K", False, "hangs", f)
    monkeypatch.setattr(accel, "probe_kvm", no_probe)
    assert accel.resolve_accel("auto", Path("bz"), verdict_path=f) == "tcg"
    accel.save_verdict("K", True, "ok", f)
    assert accel.resolve_accel("auto", Path("bz"), verdict_path=f) == "kvm"


def test_auto_probes_once_and_caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "v.json"
    calls: list[Path] = []
    monkeypatch.setattr(accel, "kvm_usable", lambda *a: True)
    monkeypatch.setattr(accel, "verdict_key", lambda *a: "K")

    def fake_probe(kernel: Path, timeout: float = 0, arch: object = None) -> str | None:
        calls.append(kernel)
        return "no output"

    monkeypatch.setattr(accel, "probe_kvm", fake_probe)
    assert accel.resolve_accel("auto", Path("bz"), verdict_path=f) == "tcg"
    assert accel.resolve_accel("auto", Path("bz"), verdict_path=f) == "tcg"
    assert len(calls) == 1


def test_auto_without_dev_kvm(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(accel, "kvm_usable", lambda *a: False)
    assert accel.resolve_accel("auto", Path("bz"), verdict_path=tmp_path / "v") == "tcg"
    assert accel.resolve_accel("tcg", Path("bz")) == "tcg"
    with pytest.raises(InfraError):
        accel.resolve_accel("kvm", Path("bz"))


def test_deadline_with_fake_clock() -> None:
    now = [100.0]
    d = Deadline(5.0, clock=lambda: now[0])
    assert d.remaining() == 5.0 and not d.expired()
    now[0] = 104.0
    assert d.remaining() == pytest.approx(1.0)
    now[0] = 106.0
    assert d.expired() and d.remaining() == 0.0


def test_console_tail_marker_split_across_writes(tmp_path: Path) -> None:
    log = tmp_path / "console.log"
    c = _ConsoleTail(log, ConsoleClassifier(), "HARNESS-READY-abc")
    assert not c._poll()  # file absent
    log.write_bytes(b"boot...\nHARNESS-REA")
    c._poll()
    assert not c.ready.is_set()
    with open(log, "ab") as f:
        f.write(b"DY-abc\n")
    c._poll()
    assert c.ready.is_set()


def test_console_tail_flags_fatal_panic(tmp_path: Path) -> None:
    log = tmp_path / "console.log"
    log.write_text("[    1.0] Kernel panic - not syncing: sysrq triggered crash\n")
    c = _ConsoleTail(log, ConsoleClassifier(), "X")
    c.finish()
    assert c.fatal.is_set()
    assert any(f.severity is Severity.FATAL and f.kind == "panic"
               for f in c.classifier.findings)


def test_console_tail_not_fatal_on_harmless_lines(tmp_path: Path) -> None:
    """Negative control for the test above: ODEBUG contains BUG: but is no report."""
    log = tmp_path / "console.log"
    log.write_text("[    1.0] ODEBUG: something\n[    1.1] hello\n")
    c = _ConsoleTail(log, ConsoleClassifier(), "X")
    c.finish()
    assert not c.fatal.is_set() and c.classifier.findings == []


def test_pid_alive() -> None:
    import os
    import subprocess

    assert pid_alive(os.getpid())
    p = subprocess.Popen(["true"])
    p.wait()
    assert not pid_alive(p.pid)
