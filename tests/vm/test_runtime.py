"""The guest runtime end to end: boot, commands, SFTP, RAM/swap, balloon, failures."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.errors import InfraError
from harness.image.build import NONCE_PARAM
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
    actual = vm.balloon_actual_mib()
    # The balloon inflates page by page: wait for both views to arrive, the guest's MemTotal
    # and QEMU's "actual" (seen in CI: MemTotal already down, actual still at 147 MiB).
    while time.monotonic() < deadline:
        after = meminfo(vm)["MemTotal"]
        actual = vm.balloon_actual_mib()
        if after <= before - 100 * 1024 and actual <= 140:
            break
        time.sleep(1)
    assert after <= before - 100 * 1024, (before, after)
    assert actual <= 140
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
    """A guest that boots but never says the marker this run waits for (its init takes
    the last nonce on the command line) times out however fast the host is: a bare short
    timeout raced a warm 2-core CI machine that booted in under 1.5 s."""
    cfg = make_vm_config(boot_timeout=6.0, cmdline_extra=f"{NONCE_PARAM}=not-this-run")
    m = Machine(cfg, run_dir=tmp_path / "run")
    with pytest.raises(InfraError) as ei:
        m.start()
    assert "no ready marker" in ei.value.message
    assert "qemu-system-x86_64" in ei.value.detail
    assert m.pid is not None and not pid_alive(m.pid)


# -- QEMU's start-up errors: the user's input named, exit 2 ---------------------
def _fake_bzimage(path: Path, initrd_max: int) -> Path:
    """A file with a plausible boot header and nothing behind it."""
    import struct

    h = bytearray(1 << 20)
    struct.pack_into("<H", h, 0x1FE, 0xAA55)
    h[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", h, 0x206, 0x020F)
    struct.pack_into("<I", h, 0x22C, initrd_max)
    path.write_bytes(bytes(h))
    return path


@pytest.mark.parametrize("args,culprit", [
    (["-m", "99999999M", "-kernel", "{kernel}"], "--ram"),
    (["-m", "256M", "-kernel", "/etc/passwd"], "--kernel /etc/passwd"),
    (["-m", "256M", "-smp", "999", "-kernel", "{kernel}"], "--smp"),
    (["-m", "256M", "-kernel", "{fake}", "-initrd", "/etc/hostname"], "--kernel {fake}"),
])
def test_this_qemus_startup_messages_are_classified(kernel: Path, tmp_path: Path,
                                                    args: list[str], culprit: str) -> None:
    """QEMU's real words for each mistake still map to the option (guards against drift)."""
    import subprocess

    from harness.errors import UsageError
    from harness.vm.qemu_errors import classify_startup

    fake = _fake_bzimage(tmp_path / "fake", initrd_max=0)
    argv = ["qemu-system-x86_64", "-M", "q35", "-accel", "tcg", "-nodefaults", "-display",
            "none", "-no-reboot"] + [a.format(kernel=kernel, fake=fake) for a in args]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert p.returncode != 0, "QEMU accepted the bad input: nothing to classify"
    kernel_arg = argv[argv.index("-kernel") + 1]
    err = classify_startup(p.stderr, kernel=kernel_arg, ram_mib=99999999, smp=999,
                           status=p.returncode)
    assert isinstance(err, UsageError), err
    assert err.culprit == culprit.format(fake=fake)
    assert p.stderr.strip().splitlines()[-1].split(": ", 1)[-1] in err.message


def test_machine_turns_qemus_startup_error_into_usage_error(
        make_vm_config: Callable[..., VMConfig], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the pre-launch checks, QEMU's own refusal still names --kernel (exit 2)."""
    import harness.vm.machine as machine
    from harness.errors import UsageError

    monkeypatch.setattr(machine, "preflight", lambda cfg: None)
    fake = _fake_bzimage(tmp_path / "fake", initrd_max=0)
    m = Machine(dataclasses.replace(make_vm_config(), kernel=fake), run_dir=tmp_path / "run")
    t0 = time.monotonic()
    with pytest.raises(UsageError) as ei:
        m.start()
    assert ei.value.culprit == f"--kernel {fake}"
    assert "initrd is too large" in ei.value.message  # QEMU's own words kept
    assert time.monotonic() - t0 < 30  # at once, not after the boot timeout
    assert m.pid is not None and not pid_alive(m.pid)
    assert not (tmp_path / "run" / "qmp.sock").exists()
