"""The guest runtime end to end: boot, commands, SFTP, RAM/swap, balloon, failures."""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.errors import InfraError
from harness.vm import Machine, VMConfig, pid_alive

pytestmark = pytest.mark.vm


def meminfo(vm: Machine) -> dict[str, int]:
    r = vm.run("cat /proc/meminfo", timeout=30)
    assert r.exit_status == 0
    out = {}
    for line in r.stdout.splitlines():
        m = re.match(r"(\w+):\s+(\d+)", line)
        if m:
            out[m.group(1)] = int(m.group(2))
    return out


def test_run_commands(vm: Machine) -> None:
    r = vm.run("uname -r; echo err >&2; exit 3", timeout=30)
    assert r.exit_status == 3
    assert r.stdout.strip()
    assert r.stderr == "err\n"
    chunks: list[tuple[str, str]] = []
    r = vm.run("for i in 1 2 3; do echo $i; done", timeout=30,
               on_output=lambda s, t: chunks.append((s, t)))
    assert r.stdout == "1\n2\n3\n"
    assert "".join(t for s, t in chunks if s == "stdout") == r.stdout
    assert vm.query_status() == "running"
    assert vm.accel in ("kvm", "tcg")
    assert (vm.run_dir / "qemu-cmdline.txt").read_text().startswith("qemu-system-x86_64")
    assert "HARNESS-READY-" in vm.console_text()


def test_command_timeout_is_infra_error(vm: Machine) -> None:
    with pytest.raises(InfraError, match="timed out"):
        vm.run("sleep 30", timeout=2)
    # the session survives a timed-out command
    assert vm.run("echo ok", timeout=30).stdout == "ok\n"


def test_sftp_roundtrip_10mb(vm: Machine, tmp_path: Path) -> None:
    src = tmp_path / "in.bin"
    src.write_bytes(os.urandom(10 * 1024 * 1024))
    vm.put(src, "/tmp/x.bin")
    want = hashlib.sha256(src.read_bytes()).hexdigest()
    r = vm.run("sha256sum /tmp/x.bin", timeout=120)
    assert r.stdout.split()[0] == want
    back = tmp_path / "out.bin"
    vm.get("/tmp/x.bin", back)
    assert hashlib.sha256(back.read_bytes()).hexdigest() == want


def test_reconnect_after_dropped_connection(vm: Machine) -> None:
    assert vm.ssh is not None
    vm.ssh.close()
    assert vm.run("echo again", timeout=30).stdout == "again\n"


@pytest.mark.parametrize("ram,swap", [(192, 96)])
def test_ram_and_swap_visible(make_vm_config: Callable[..., VMConfig], tmp_path: Path,
                              ram: int, swap: int) -> None:
    cfg = make_vm_config(ram_mib=ram, swap_mib=swap)
    with Machine(cfg, run_dir=tmp_path / "run") as vm:
        mi = meminfo(vm)
    # MemTotal excludes the kernel image and reserved memory: within 15%.
    assert ram * 1024 * 0.85 <= mi["MemTotal"] <= ram * 1024
    # A v1 swap area loses its header page.
    assert mi["SwapTotal"] == swap * 1024 - 4


def test_no_swap(make_vm_config: Callable[..., VMConfig], tmp_path: Path) -> None:
    with Machine(make_vm_config(swap_mib=0), run_dir=tmp_path / "run") as vm:
        assert meminfo(vm)["SwapTotal"] == 0


def test_balloon_down(vm: Machine) -> None:
    before = meminfo(vm)["MemTotal"]
    vm.balloon(128)
    deadline = time.monotonic() + 60
    after = before
    while time.monotonic() < deadline:
        after = meminfo(vm)["MemTotal"]
        if after <= before - 100 * 1024:
            break
        time.sleep(1)
    assert after <= before - 100 * 1024, (before, after)
    assert vm.balloon_actual_mib() <= 140
    stats = vm.balloon_stats()
    assert "stat-total-memory" in stats
    assert any(e["event"] == "BALLOON_CHANGE" for e in vm.qmp_events)


def test_qemu_killed_mid_command_is_infra_error(vm: Machine) -> None:
    pid = vm.pid
    assert pid is not None
    threading.Timer(1.5, os.kill, (pid, 9)).start()
    with pytest.raises(InfraError) as ei:
        vm.run("sleep 60", timeout=90)
    assert "QEMU exited" in ei.value.message or "connection lost" in ei.value.message
    assert not pid_alive(pid)


def test_guest_panic(vm: Machine) -> None:
    pid = vm.pid
    assert pid is not None
    with pytest.raises(InfraError) as ei:
        vm.run("echo c > /proc/sysrq-trigger; sleep 30", timeout=60)
    assert ei.value.culprit == "kernel"
    assert "panic" in ei.value.message.lower()
    vm.wait_for_exit(10)
    vm.stop()
    events = [e["event"] for e in vm.qmp_events]
    assert "GUEST_PANICKED" in events
    assert "GUEST_PANICKED" in (vm.run_dir / "qmp-events.jsonl").read_text()
    assert any(f.kind == "panic" for f in vm.console_findings)
    assert not pid_alive(pid)
    assert not (vm.run_dir / "qmp.sock").exists()


def test_boot_timeout_names_console(make_vm_config: Callable[..., VMConfig],
                                    tmp_path: Path) -> None:
    cfg = make_vm_config(boot_timeout=1.5)
    m = Machine(cfg, run_dir=tmp_path / "run")
    with pytest.raises(InfraError) as ei:
        m.start()
    assert "no ready marker" in ei.value.message
    assert "qemu-system-x86_64" in ei.value.detail
    assert m.pid is not None and not pid_alive(m.pid)
