"""``harness doctor``: one line per thing the harness needs, and whether it is there."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from harness.arch import ARM64, X86_64
from harness.kernel.source import DEFAULT_TARBALL
from harness.paths import cache_root
from harness.vm import accel

NAME = "doctor"
HELP = "check QEMU, kernel source, compilers, ccache, KVM and disk; one line each"


@dataclass
class Check:
    """One requirement. ``info`` marks a note, neither a pass nor a failure.

    (KVM not probed yet is such a note: nothing is known to be wrong, and the
    line says which command finds out.)
    """

    name: str
    ok: bool
    detail: str
    info: bool = False

    def line(self) -> str:
        tag = "INFO" if self.info else "ok" if self.ok else "FAIL"
        return f"[{tag}] {self.name}: {self.detail}"


def _version(cmd: list[str]) -> str | None:
    if not shutil.which(cmd[0]):
        return None
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.splitlines()[0].strip() if out else ""


def _tool(name: str, cmd: list[str]) -> Check:
    v = _version(cmd)
    if v is None:
        return Check(name, False, "not found (run scripts/bootstrap)")
    return Check(name, True, v or "found (no version output)")


def _any_kernel() -> Path | None:
    """A kernel to probe KVM with: any artifact the harness has built (newest first)."""
    kernels = sorted((cache_root() / "artifacts").glob(f"*/{X86_64.image_name}"),
                     key=lambda p: p.stat().st_mtime, reverse=True)
    return kernels[0] if kernels else None


def kvm_check(dev: Path = Path("/dev/kvm")) -> Check:
    """/dev/kvm presence and usability, and whether a Linux guest really boots under it.

    The device existing proves little (on this project's machines a guest hangs
    after the BIOS), so doctor runs the same boot probe as ``--accel auto``, or
    reuses its remembered verdict.
    """
    if not dev.exists():
        return Check("kvm", False, "/dev/kvm absent: guests run under TCG (slower)")
    if not accel.kvm_usable(dev):
        return Check("kvm", False, "/dev/kvm present but not accessible (group kvm?): TCG")
    key = accel.verdict_key()
    boots = accel.load_verdict(key)
    how = "remembered verdict"
    if boots is None:
        kernel = _any_kernel()
        if kernel is None:
            return Check("kvm", True, "/dev/kvm present and usable; whether a Linux guest boots "
                         "under it is not probed yet (no kernel built): run `harness build`, "
                         "then `harness doctor` again", info=True)
        why = accel.probe_kvm(kernel)
        boots = why is None
        accel.save_verdict(key, boots, why or "guest boots under KVM")
        how = f"probed now with {kernel}" + (f": {why}" if why else "")
    if boots:
        return Check("kvm", True, f"/dev/kvm present and a Linux guest boots under it ({how})")
    return Check("kvm", False, "/dev/kvm present, but a Linux guest does NOT boot under it "
                 f"({how}): runs use TCG")


def disk_check() -> Check:
    root = cache_root()
    free = shutil.disk_usage(root).free / 2**30
    return Check("disk", free >= 10, f"{free:.1f} GiB free under {root} (a build needs ~3 GiB, "
                 "10 GiB recommended)")


def run_checks() -> list[Check]:
    tarball = Check("kernel source", DEFAULT_TARBALL.is_file(),
                    f"{DEFAULT_TARBALL}" if DEFAULT_TARBALL.is_file() else
                    f"{DEFAULT_TARBALL} not found (apt-get install linux-source-6.12)")
    qboot = str(X86_64.bios)
    checks = [
        _tool("qemu", [X86_64.qemu, "--version"]),
        Check("qboot", os.path.exists(qboot), qboot if os.path.exists(qboot) else
              "absent: SeaBIOS is used (slower boot)"),
        tarball,
        _tool("gcc", ["gcc", "--version"]),
        _tool("make", ["make", "--version"]),
        _tool("ccache", ["ccache", "--version"]),
        _tool("flex", ["flex", "--version"]),
        _tool("bison", ["bison", "--version"]),
        _tool("rsync", ["rsync", "--version"]),  # kselftest's install target
        _tool("busybox", ["busybox"]),
        Check("dropbear", shutil.which("dropbear") is not None
              or os.path.exists("/usr/sbin/dropbear"), "/usr/sbin/dropbear"),
        Check("sftp-server", os.path.exists("/usr/lib/openssh/sftp-server"),
              "/usr/lib/openssh/sftp-server"),
        kvm_check(),
        disk_check(),
        *arm64_checks(),
    ]
    return checks


def arm64_checks() -> list[Check]:
    """What ``--arch arm64`` needs (scripts/bootstrap installs it); not needed for x86_64."""
    userland = [ARM64.userland(p) for p in ("/bin/busybox", "/usr/sbin/dropbear",
                                            "/usr/lib/openssh/sftp-server")]
    missing = [str(p) for p in userland if not p.exists()]
    loader = Path("/lib/ld-linux-aarch64.so.1")
    return [
        _tool("arm64 qemu", [ARM64.qemu, "--version"]),
        _tool("arm64 gcc", [ARM64.cc, "--version"]),
        Check("arm64 userland", not missing and loader.exists(),
              f"{ARM64.userland_root} (busybox, dropbear, sftp-server) and {loader}" if not missing
              and loader.exists() else f"missing {', '.join(missing) or loader}: run "
              "scripts/bootstrap as root"),
    ]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="machine-readable output")


def run(args: argparse.Namespace) -> int:
    checks = run_checks()
    if args.json:
        print(json.dumps([c.__dict__ for c in checks], indent=2))
    else:
        for c in checks:
            print(c.line())
    essential = [c for c in checks if c.name not in ("kvm", "qboot")
                 and not c.name.startswith("arm64")]
    return 0 if all(c.ok for c in essential) else 2
