"""Choosing KVM or TCG, and remembering whether KVM really works here.

``/dev/kvm`` existing is not enough: on this project's machines a Linux guest
under KVM hangs right after the firmware. So ``auto`` boots the real kernel
under KVM for a few seconds and looks for its first console line. The verdict
is cached in ``cache_root()/accel-verdict.json`` keyed by host kernel, QEMU
version and CPU model, because a probe costs seconds and the answer only
changes when one of those does.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path

from harness import rundir
from harness.arch import X86_64, Arch
from harness.errors import InfraError, UsageError
from harness.paths import cache_root
from harness.proc import die_with_parent

log = logging.getLogger(__name__)

VERDICT_FILE = "accel-verdict.json"
PROBE_MARKER = "Linux version"
_warned = False


def kvm_usable(dev: Path = Path("/dev/kvm")) -> bool:
    """True if /dev/kvm exists and we may open it read-write."""
    try:
        fd = os.open(dev, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    os.close(fd)
    return True


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _qemu_version(qemu: str) -> str:
    try:
        out = subprocess.run([qemu, "--version"], capture_output=True, text=True, timeout=10)
        return out.stdout.splitlines()[0].strip() if out.stdout else "unknown"
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def verdict_key(qemu: str = X86_64.qemu) -> str:
    """What a KVM verdict depends on: host kernel, QEMU build, CPU model."""
    return f"{platform.release()} | {_qemu_version(qemu)} | {_cpu_model()}"


def load_verdict(key: str, path: Path | None = None) -> bool | None:
    path = path or cache_root() / VERDICT_FILE
    try:
        data = json.loads(path.read_text())
        entry = data.get(key)
        return bool(entry["kvm_boots"]) if isinstance(entry, dict) else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def save_verdict(key: str, kvm_boots: bool, reason: str, path: Path | None = None) -> None:
    """Merge one verdict into the JSON file (temp + rename: never half-written)."""
    path = path or cache_root() / VERDICT_FILE
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            data = {}
    except (OSError, ValueError):
        data = {}
    data[key] = {"kvm_boots": kvm_boots, "reason": reason, "when": time.time()}
    fd, tmp = tempfile.mkstemp(prefix=".accel.", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
    os.replace(tmp, path)


def probe_kvm(kernel: Path, timeout: float = 6.0, arch: Arch = X86_64) -> str | None:
    """Boot ``kernel`` under KVM; None if its first console line appears in time, else why not.

    No initramfs and no disk: the kernel will panic at mount-root, which is
    fine -- we only need proof that guest code runs and reaches the console.
    ``earlyprintk`` makes the very first kernel line appear immediately.
    """
    with tempfile.TemporaryDirectory(prefix="harness-kvmprobe-") as d:
        console = Path(d) / rundir.CONSOLE
        argv = [
            arch.qemu, "-accel", "kvm", "-M", arch.kvm_probe_machine, "-m", "128M",
            *(["-cpu", arch.kvm_cpu] if arch.kvm_cpu else []), "-nodefaults",
            "-no-user-config", "-display", "none", "-no-reboot",
            "-kernel", str(kernel),
            "-append", probe_cmdline(arch),
            "-serial", f"file:{console}",
        ]
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, start_new_session=True,
                                preexec_fn=die_with_parent())
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if console.exists() and PROBE_MARKER in console.read_text(errors="replace"):
                    return None
                if proc.poll() is not None:
                    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                    if console.exists() and PROBE_MARKER in console.read_text(errors="replace"):
                        return None
                    return f"QEMU exited ({proc.returncode}) under KVM: {err.strip()[:300]}"
                time.sleep(0.05)
            return f"no kernel console output within {timeout:.0f} s under KVM"
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            if proc.stderr:
                proc.stderr.close()


def probe_cmdline(arch: Arch) -> str:
    """The probe's kernel command line: the first console line appears at once."""
    early = (f" earlyprintk=serial,{arch.console},115200" if arch.console == "ttyS0"
             else " earlycon")
    return f"console={arch.console}{early} panic=-1"


def resolve_accel(requested: str, kernel: Path, *, probe_timeout: float = 6.0,
                  verdict_path: Path | None = None, arch: Arch = X86_64) -> str:
    """Turn ``auto|kvm|tcg`` into ``kvm`` or ``tcg``.

    ``kvm`` is honoured only if /dev/kvm is usable (else InfraError: the user
    asked for something this machine cannot do) and the guest's architecture is the
    host's (else UsageError naming ``--accel kvm``). ``auto`` picks KVM only if a
    guest has been seen to boot under it here, and says once when it falls back.
    """
    global _warned
    if requested == "tcg":
        return "tcg"
    if requested in ("kvm", "auto") and not arch.native:
        if requested == "kvm":
            raise UsageError("--accel kvm", f"an {arch.name} guest cannot use KVM on this "
                             f"{platform.machine()} host: use --accel tcg")
        return "tcg"  # emulation is the only way: nothing to warn about
    if requested == "kvm":
        if not kvm_usable():
            raise InfraError("--accel kvm", "/dev/kvm is missing or not accessible")
        return "kvm"
    if requested != "auto":
        raise UsageError("--accel", f"must be auto, kvm or tcg, not {requested!r}")
    if not kvm_usable():
        reason = "/dev/kvm missing or not accessible"
        verdict: bool | None = False
    else:
        key = verdict_key(arch.qemu)
        verdict = load_verdict(key, verdict_path)
        reason = "cached verdict"
        if verdict is None:
            log.info("probing whether a guest boots under KVM (up to %.0f s, once per machine)",
                     probe_timeout)
            why = probe_kvm(kernel, probe_timeout, arch)
            verdict = why is None
            reason = why or "guest boots under KVM"
            save_verdict(key, verdict, reason, verdict_path)
    if verdict:
        return "kvm"
    if not _warned:
        log.warning("not using KVM (%s): falling back to TCG emulation, boots will be slower",
                    reason)
        _warned = True
    return "tcg"
