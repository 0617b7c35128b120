"""``harness exec`` end to end through the real CLI: a real kernel, a real QEMU.

The command's status comes back as the harness's own, its output is streamed, --ship copies
files and directories in first, and a guest that panics under the command is exit 3 with
the console's title -- never the command's status (negative control: the same command line
without the crash exits with the command's status)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.vm


def _exec(kernel: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", "exec", "--kernel", str(kernel),
                           "--accel", "tcg", "--swap", "0", "--run-dir", str(tmp_path / "run"),
                           *args], capture_output=True, text=True, timeout=600)


def test_exit_status_and_streams_pass_through(kernel: Path, tmp_path: Path) -> None:
    r = _exec(kernel, tmp_path, "--", "echo to-stdout; echo to-stderr >&2; exit 7")
    assert r.returncode == 7, r.stderr
    assert "to-stdout" in r.stdout and "to-stderr" not in r.stdout
    assert "to-stderr" in r.stderr
    assert "exit status 7" in r.stderr


def test_argv_form_and_ship(kernel: Path, tmp_path: Path) -> None:
    f = tmp_path / "hello.txt"
    f.write_text("hello from the host\n")
    d = tmp_path / "tree"
    (d / "sub").mkdir(parents=True)
    (d / "sub" / "run.sh").write_text("#!/bin/sh\necho script ran with $1\n")
    (d / "sub" / "run.sh").chmod(0o755)
    r = _exec(kernel, tmp_path, "--ship", str(f), "--ship", f"{d}:/opt/tree",
              "--", "sh", "-c", "cat /root/hello.txt && /opt/tree/sub/run.sh 'a b'")
    assert r.returncode == 0, r.stderr
    assert "hello from the host" in r.stdout
    assert "script ran with a b" in r.stdout


def test_panic_is_exit_3_not_the_commands_status(kernel: Path, tmp_path: Path) -> None:
    r = _exec(kernel, tmp_path, "--", "echo c > /proc/sysrq-trigger; exit 0")
    assert r.returncode == 3, (r.returncode, r.stderr[-2000:])
    assert "crashed" in r.stderr or "panic" in r.stderr.lower()
    assert "harness: console:" in r.stderr  # findings printed after the command


def test_usage_errors(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "harness", "exec", "--ship", "/nonexistent",
                        "--", "true"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "--ship /nonexistent" in r.stderr
    r = subprocess.run([sys.executable, "-m", "harness", "exec", "--"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2 and "CMD" in r.stderr
