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


DYNAMIC_C = """#include <math.h>
#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv) { printf("cbrt=%.1f\\n", cbrt(atof(argv[1]))); return 0; }
"""


def test_a_shipped_dynamic_program_runs_with_its_libraries(kernel: Path, tmp_path: Path) -> None:
    """A developer's own dynamic binary (libm, libc, the loader) runs in the busybox guest."""
    src = tmp_path / "dyn.c"
    src.write_text(DYNAMIC_C)
    prog = tmp_path / "dyn"
    subprocess.run(["gcc", "-O2", "-o", str(prog), str(src), "-lm"], check=True)
    r = _exec(kernel, tmp_path, "--ship", f"{prog}:/root/dyn", "--", "/root/dyn", "27")
    assert r.returncode == 0, r.stderr
    assert "cbrt=3.0" in r.stdout


def test_a_program_whose_library_is_missing_is_exit_2_before_boot(tmp_path: Path) -> None:
    """The negative control: a library the host lacks is named, and nothing boots."""
    (tmp_path / "foo.c").write_text("int foo(void) { return 1; }\n")
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(tmp_path / "libfoo.so"),
                    str(tmp_path / "foo.c")], check=True)
    (tmp_path / "m.c").write_text("int foo(void);\nint main(void) { return foo(); }\n")
    prog = tmp_path / "needs-foo"
    subprocess.run(["gcc", "-o", str(prog), str(tmp_path / "m.c"), f"-L{tmp_path}", "-lfoo",
                    f"-Wl,-rpath,{tmp_path}"], check=True)
    (tmp_path / "libfoo.so").unlink()
    r = subprocess.run([sys.executable, "-m", "harness", "exec", "--kernel", "/nonexistent",
                        "--ship", str(prog), "--", "true"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2, r.stderr
    assert f"--ship {prog}" in r.stderr and "libfoo.so" in r.stderr
