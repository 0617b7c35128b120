"""The debian rootfs end to end (``harness exec --rootfs debian``): a Debian 12 image built by
mmdebstrap from the host's apt sources (cached), booted through a throwaway overlay with the
same SSH, QMP, swap and event channel as the busybox initramfs.

Negative control: the same command in the initramfs guest, which has no python3 (exit 127).
In CI: the image build costs about 100 s cold (mmdebstrap 62 s, mke2fs and sealing), each
boot about 4 s; the default package set (python3, stress-ng) is the one
scenarios/stress-ng-memory.toml uses, so CI builds one image.

The host rootfs (``--rootfs host``: the host's / over 9p) needs its own kernel configuration,
so its test is extended; its control is the initramfs on that same kernel."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness import cachefile
from harness.core.events import guest_relay_command
from harness.vm.argv import EVENTS_PORT

pytestmark = pytest.mark.vm


def _exec(kernel: Path, run_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", "exec", "--kernel", str(kernel),
                           "--accel", "tcg", "--run-dir", str(run_dir), *args],
                          capture_output=True, text=True, timeout=1800)


def test_python3_runs_in_debian_not_in_the_initramfs(kernel: Path, tmp_path: Path) -> None:
    code = "import sys, platform; print(6 * 7, platform.python_version())"
    r = _exec(kernel, tmp_path / "deb", "--rootfs", "debian", "--", "python3", "-c", code)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.startswith("42 3."), r.stdout
    r = _exec(kernel, tmp_path / "busybox", "--", "python3", "-c", code)
    assert r.returncode == 127, (r.returncode, r.stderr[-2000:])  # negative control


def test_debian_guest_has_swap_events_and_a_throwaway_disk(kernel: Path, tmp_path: Path) -> None:
    """With a swap disk the root is the second virtio disk and swap is on the first; the
    event port is there; what the guest writes never reaches the cached image."""
    probe = ("cat /etc/debian_version; grep -c '^/dev/vda ' /proc/swaps; "
             "echo canary > /etc/harness-canary; sync; " + guest_relay_command(EVENTS_PORT))
    r = _exec(kernel, tmp_path / "a", "--rootfs", "debian", "--swap", "64", "--", probe)
    assert r.returncode == 0, r.stderr[-3000:]
    version, swaps, events = r.stdout.splitlines()[:3]
    assert version.startswith("12."), r.stdout
    assert swaps == "1", r.stdout  # /dev/vda is swap, not the root disk
    assert events.startswith("events: /dev/"), r.stdout
    assert not (tmp_path / "a" / "root.qcow2").exists()  # the overlay went with the run
    r = _exec(kernel, tmp_path / "b", "--rootfs", "debian", "--swap", "0", "--",
              "test -e /etc/harness-canary && echo kept || echo fresh; grep -c . /proc/swaps")
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.split() == ["fresh", "1"], r.stdout  # root on /dev/vda, no swap lines
    from harness.image.rootfs import build_debian

    img = build_debian()
    assert cachefile.problems(img.image.parent) == []  # sealed image, unchanged


def test_stress_ng_runs_unshipped_in_debian(kernel: Path, tmp_path: Path) -> None:
    r = _exec(kernel, tmp_path / "run", "--rootfs", "debian", "--", "stress-ng", "--vm", "1",
              "--vm-bytes", "32M", "-t", "3", "--metrics-brief")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "successful run completed" in r.stdout + r.stderr


@pytest.mark.extended  # its own kernel configuration (rootfs-host: 9p, overlayfs)
def test_python3_runs_under_the_host_rootfs_not_in_the_initramfs(tmp_path: Path) -> None:
    """--rootfs host: the host's python3 runs unshipped, chrooted at /host on the host's /
    (read-only over 9p) with a tmpfs overlay taking the writes; the host is never written.
    Negative control: the same command on the same kernel in the initramfs guest (127)."""
    from harness.commands.exec import with_host_fragment
    from harness.kernel.build import BuildRequest, build_kernel

    kernel = Path(build_kernel(with_host_fragment(BuildRequest())).bzimage)
    canary = "/etc/harness-host-overlay"
    code = "import sys, platform; print(6 * 7, platform.python_version())"
    r = _exec(kernel, tmp_path / "host", "--rootfs", "host", "--swap", "0", "--",
              f"python3 -c '{code}' && touch {canary} && test -e {canary} && echo overlay-ok")
    assert r.returncode == 0, r.stderr[-3000:]
    host = subprocess.run(["/usr/bin/python3", "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip()  # the host's own python3, run here
    assert r.stdout.splitlines() == [host, "overlay-ok"], r.stdout
    assert not Path(canary).exists()  # the write stayed in the guest's overlay
    r = _exec(kernel, tmp_path / "busybox", "--swap", "0", "--", "python3", "-c", code)
    assert r.returncode == 127, (r.returncode, r.stderr[-2000:])  # negative control
