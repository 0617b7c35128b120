"""Fault injection: stop a real ``harness run`` at random points and check what it leaves.

Each kill point is a whole ``harness run`` (real kernel, real QEMU under TCG)
stopped after a seeded random delay with SIGINT, SIGTERM or SIGKILL. After
every stop: the exit status is the signal's (130, 143; -9 for SIGKILL), no
QEMU of that run is alive (for SIGKILL only QEMU's death signal can have done
it), a ``results.json`` that exists says verdict "error", and for SIGINT and
SIGTERM no harness temp dir remains in the run's private $TMPDIR. Around the
series, a run on the same private cache completes and finds everything it
needs already built (the cache stayed consistent, nothing was half-written).

SIGINT is reset to its default disposition in the child: a process started
in the background inherits SIGINT ignored, and then the test would test
nothing (see /work/shared/reference/machine-notes.md). The child's
/proc/PID/status is checked to prove it.

``HARNESS_FAULT_SEED`` and ``HARNESS_FAULT_RUNS`` replay or widen a series;
the delays used are logged and shown in any failure.
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.vm import pid_alive

pytestmark = pytest.mark.vm

log = logging.getLogger(__name__)

HARNESS = Path(sys.executable).with_name("harness")
SEED = int(os.environ.get("HARNESS_FAULT_SEED", "16"))
KILLS = int(os.environ.get("HARNESS_FAULT_RUNS", "12"))  # signals that land in a live run
MAX_EXTRA_RUNS = 8  # runs that ended before their signal, tolerated on a fast host
#: A ``--check notifications`` run with a prebuilt kernel takes 20-40 s under TCG here (build
#: lookup, image, boot 2-6 s, ship ~2 s, the idle check and the stress phase with its event
#: stream and balloon squeeze, collect), depending on the host's load. (``contract`` would
#: be skipped with a prebuilt kernel: no source to build the series' selftest from.)
#: Kills land within this fraction of the shortest run seen so far, so they fall inside a
#: run however loaded the host is; a run that still ends first shrinks the window.
MAX_DELAY_FRACTION = 0.8
#: What the harness names its temp dirs (image/runfiles, kernel/tree, vm/accel, bisect/series;
#: vm/machine's former ``hvm-`` socket dir is gone); gcc's cc* files are not the harness's.
HARNESS_TMP_PREFIXES = ("harness-", "hvm-")
#: Temp dirs that live for milliseconds (the per-run SSH keys): only a SIGKILL landing in
#: that window may leave one, since nothing at all runs after SIGKILL.
SIGKILL_TOLERATED = ("harness-hk-",)
EXPECTED_STATUS = {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGKILL: -signal.SIGKILL}
STOP_WAIT_S = 60.0


def _default_signals() -> None:
    """In the child before exec: the stop signals at SIG_DFL, whatever pytest inherited."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


def ignored_signals(pid: int) -> set[int]:
    """The signals ``pid`` ignores, from the SigIgn mask in /proc/PID/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigIgn:"):
            mask = int(line.split()[1], 16)
            return {n for n in range(1, 65) if mask & (1 << (n - 1))}
    return set()


def qemu_pids_for(run_dir: Path) -> list[int]:
    """Live QEMU processes whose command line mentions ``run_dir`` (others' VMs ignored)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and b"qemu-system" in argv[0] and any(str(run_dir).encode() in a for a in argv):
            if pid_alive(int(proc.name)):
                found.append(int(proc.name))
    return found


def harness_tmp_entries(tmpdir: Path) -> list[str]:
    return sorted(p.name for p in tmpdir.iterdir() if p.name.startswith(HARNESS_TMP_PREFIXES))


def cache_snapshot(cache: Path) -> dict[str, float]:
    """Every file in the cache with its mtime: equal snapshots = nothing rebuilt or left."""
    return {str(p.relative_to(cache)): p.stat().st_mtime
            for p in sorted(cache.rglob("*")) if p.is_file()}


@dataclass
class Outcome:
    signum: int | None
    delay: float
    status: int
    wall: float
    landed: bool  # the harness was still running when the signal was sent
    stderr: str
    stdout: str

    def describe(self) -> str:
        name = signal.Signals(self.signum).name if self.signum else "none"
        return f"{name} at {self.delay:.2f} s -> status {self.status}" + \
            ("" if self.landed else " (the run had already ended)")


class Rig:
    """Starts ``harness run`` children in a private TMPDIR and cache, and reaps them all."""

    def __init__(self, root: Path, kernel: Path) -> None:
        self.root = root
        self.kernel = kernel
        self.tmpdir = root / "tmp"
        self.cache = root / "cache"
        self.tmpdir.mkdir()
        self.cache.mkdir()
        # Long enough that the QMP socket path exceeds sun_path (108 bytes): the Machine's
        # way around that (a descriptor of the run dir) must leave nothing in TMPDIR either.
        self.runs = root / ("runs-" + "x" * 60)
        self.runs.mkdir()
        self.children: list[subprocess.Popen[bytes]] = []
        self.history: list[str] = []

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(TMPDIR=str(self.tmpdir), HARNESS_CACHE=str(self.cache),
                   HARNESS_RUNS=str(self.runs), PYTHONUNBUFFERED="1",
                   PYTHONFAULTHANDLER="1")  # a hung harness dumps its threads on SIGABRT
        return env

    def start(self, run_dir: Path) -> subprocess.Popen[bytes]:
        argv = [str(HARNESS), "run", "--kernel", str(self.kernel), "--accel", "tcg",
                "--check", "notifications", "--run-dir", str(run_dir)]
        out = open(run_dir.with_suffix(".out"), "wb")  # noqa: SIM115 - closed in run()
        err = open(run_dir.with_suffix(".err"), "wb")  # noqa: SIM115
        p = subprocess.Popen(argv, env=self.env(), stdin=subprocess.DEVNULL, stdout=out,
                             stderr=err, preexec_fn=_default_signals, start_new_session=True)
        out.close()
        err.close()
        self.children.append(p)
        return p

    def run(self, name: str, signum: int | None = None, delay: float = 0.0) -> Outcome:
        run_dir = self.runs / name
        p = self.start(run_dir)
        landed = False
        t0 = time.monotonic()
        if signum is not None:
            t_end = time.monotonic() + delay
            while time.monotonic() < t_end and p.poll() is None:
                time.sleep(0.02)
            if p.poll() is None:
                assert signal.SIGINT not in ignored_signals(p.pid), \
                    "the harness under test ignores SIGINT: this test would test nothing"
                os.kill(p.pid, signum)
                landed = True
        try:
            status = p.wait(STOP_WAIT_S if signum is not None else 300.0)
        except subprocess.TimeoutExpired:
            os.kill(p.pid, signal.SIGABRT)  # faulthandler: every thread's stack to stderr
            time.sleep(1.0)
            p.kill()
            p.wait()
            err = run_dir.with_suffix(".err").read_text(errors="replace")
            pytest.fail(f"{name}: harness did not stop within {STOP_WAIT_S:.0f} s of "
                        f"{signal.Signals(signum or 0).name} at {delay} s:\n{err[-6000:]}")
        o = Outcome(signum, delay, status, time.monotonic() - t0, landed,
                    run_dir.with_suffix(".err").read_text(errors="replace"),
                    run_dir.with_suffix(".out").read_text(errors="replace"))
        self.history.append(f"{name}: {o.describe()}")
        log.info("%s: %s", name, o.describe())
        return o

    def reap(self) -> None:
        for p in self.children:
            if p.poll() is None:
                p.kill()
                p.wait()
        for pid in qemu_pids_for(self.runs):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def rig(tmp_path: Path, kernel: Path) -> Iterator[Rig]:
    r = Rig(tmp_path, kernel)
    try:
        yield r
    finally:
        r.reap()


def wait_no_qemu(run_dir: Path, timeout: float = 10.0) -> list[int]:
    """QEMU pids of this run still alive after ``timeout`` s (a killed QEMU takes a moment
    to free its guest RAM: its cmdline reads empty then, so qemu.pid is checked too)."""
    pid_file = run_dir / "qemu.pid"
    t_end = time.monotonic() + timeout
    while True:
        left = qemu_pids_for(run_dir)
        if pid_file.exists() and pid_alive(int(pid_file.read_text())):
            left.append(int(pid_file.read_text()))
        if not left or time.monotonic() >= t_end:
            return sorted(set(left))
        time.sleep(0.1)


def signal_order(rng: random.Random, kills: int) -> list[int]:
    """Which signal each landed kill uses: every one at least ``kills // 3`` times, seeded."""
    order = [int(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL)] * (kills // 3 + 1)
    order = order[:kills]
    rng.shuffle(order)
    return order


def check_stopped(rig: Rig, name: str, o: Outcome) -> None:
    run_dir = rig.runs / name
    ctx = f"{name}: {o.describe()}; seed {SEED}; so far: {rig.history}\n--- stderr ---\n" \
          f"{o.stderr[-3000:]}"
    left = wait_no_qemu(run_dir)
    assert not left, f"QEMU outlived the harness: pids {left}; {ctx}"
    qemu_pid = run_dir / "qemu.pid"
    if qemu_pid.exists():  # only SIGKILL can leave it (QEMU's death signal did the rest)
        assert o.signum == signal.SIGKILL, f"qemu.pid left behind; {ctx}"
    if not o.landed:
        assert o.status == 0, f"the run ended by itself but failed; {ctx}"
        return
    assert o.status == EXPECTED_STATUS[o.signum], ctx
    if o.signum == signal.SIGKILL:
        left = harness_tmp_entries(rig.tmpdir)
        assert all(e.startswith(SIGKILL_TOLERATED) for e in left), f"left {left}; {ctx}"
        for entry in left:  # SIGKILL can clean nothing: start the next run afresh
            log.info("%s: SIGKILL left %s in TMPDIR", name, entry)
            shutil.rmtree(rig.tmpdir / entry, ignore_errors=True)
        return
    last = o.stderr.strip().splitlines()[-1] if o.stderr.strip() else ""
    if o.signum == signal.SIGINT:
        assert last == "harness: interrupted", ctx
    else:
        assert last == "harness: terminated", ctx
        assert "interrupted" not in last, ctx
    assert harness_tmp_entries(rig.tmpdir) == [], f"temp dirs left; {ctx}"
    results = run_dir / "results.json"
    if results.exists():
        doc = json.loads(results.read_text())
        if doc.get("interrupted"):
            assert doc["verdict"] == "error", f"results.json: {doc['verdict']}; {ctx}"
            assert any("not run" in json.dumps(c) for c in doc["checks"]) or \
                all(c.get("status") != "error" for c in doc["checks"]), ctx
        else:
            # The signal came after the verdict was final (during the report or the
            # printing): every planned check then has a real status, none "not run".
            assert "not run" not in json.dumps(doc["checks"]), ctx


def test_random_stops_leave_no_qemu_no_temp_dir_and_a_usable_cache(rig: Rig) -> None:
    rng = random.Random(SEED)
    log.info("fault injection: seed %d, %d kills", SEED, KILLS)

    # A SIGKILL while the cold private cache is being filled (image, workloads)...
    cold = rig.run("cold-kill", signal.SIGKILL, round(rng.uniform(0.5, 2.0), 2))
    check_stopped(rig, "cold-kill", cold)
    # ...must leave a cache the next run can finish with.
    warm = rig.run("warm-up")
    assert warm.status == 0, f"run after a kill mid-cache-fill failed:\n{warm.stderr[-3000:]}"
    assert "verdict: PASS" in warm.stdout
    before = cache_snapshot(rig.cache)
    assert before, "the run cached nothing: the reuse check below would be vacuous"

    order = signal_order(rng, KILLS)
    window = warm.wall
    landed = 0
    for i in range(KILLS + MAX_EXTRA_RUNS):
        if landed == len(order):
            break
        delay = round(rng.uniform(0.2, MAX_DELAY_FRACTION * window), 2)
        name = f"kill-{i:02d}"
        o = rig.run(name, order[landed], delay)
        check_stopped(rig, name, o)
        if o.landed:
            landed += 1
        else:
            window = min(window, o.wall)
    assert landed >= min(KILLS, 10), \
        f"only {landed} signals landed in a running harness: {rig.history}"

    # The cache is exactly as the warm-up left it (no half-written entry, no temp dir)...
    assert cache_snapshot(rig.cache) == before, rig.history
    final = rig.run("final")
    assert final.status == 0, f"{rig.history}\n{final.stderr[-3000:]}"
    assert "verdict: PASS" in final.stdout
    # ... and the final run reused it without rebuilding anything.
    assert cache_snapshot(rig.cache) == before, rig.history
    assert harness_tmp_entries(rig.tmpdir) == []
