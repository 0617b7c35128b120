"""harness matrix end to end: real kernels, real QEMU, two guests at once, a real Dask cluster.

Kept modest for CI (2 cores): the flagship scenario with only its contract check
(``--check contract``, ~20 s a job), the cached flagship kernel, 2-3 jobs per test.

1. Local pool: the flagship and the broken-clamp negative control side by side --
   two VMs at once that must not collide (SSH ports, run dirs, QMP sockets), one
   build per kernel, and the negative control must turn the matrix into a FAIL.
2. Dask: a real ``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1;
   one worker is SIGKILLed mid-job: that job must become an infrastructure error
   (its QEMU gone), and the other jobs must still pass.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import kcidb
from harness.cli import main
from harness.paths import PROJECT_ROOT
from harness.vm import pid_alive
from harness.vm.ports import free_port

pytestmark = pytest.mark.vm

BIN = Path(sys.executable).parent


def _plan(tmp: Path, kernels: str, vms: list[tuple[str, int]]) -> Path:
    text = (f'name = "t"\n{kernels}\n[[scenario]]\nname = "contract"\npath = "mempressure"\n'
            'checks = ["contract"]\n')
    for name, ram in vms:
        text += f'[[vm]]\nname = "{name}"\nram_mib = {ram}\nswap_mib = 128\n'
    p = tmp / "plan.toml"
    p.write_text(text)
    return p


def _ssh_port(run_dir: Path) -> int:
    m = re.search(r"hostfwd=tcp:127\.0\.0\.1:(\d+)-:22", (run_dir / "qemu-cmdline.txt").read_text())
    assert m, run_dir
    return int(m.group(1))


def _qemu_gone(run_dir: Path) -> bool:
    pidf = run_dir / "qemu.pid"
    return not pidf.is_file() or not pid_alive(int(pidf.read_text()))


def test_local_pool_two_vms_at_once_and_the_negative_control_fails(tmp_path: Path) -> None:
    series = PROJECT_ROOT / "patches" / "mempressure-shrinker"
    broken = PROJECT_ROOT / "patches" / "tests" / "broken-clamp"
    plan = _plan(tmp_path, f'[[kernel]]\nname = "flagship"\n[[kernel]]\nname = "broken"\n'
                 f'series = ["{series}", "{broken}"]\n', [("256m", 256)])
    out = tmp_path / "m"
    t0 = time.monotonic()
    rc = main(["matrix", str(plan), "--run-dir", str(out), "--accel", "tcg"])
    wall = time.monotonic() - t0
    doc = json.loads((out / "results.json").read_text())
    jobs = {j["job_id"]: j for j in doc["jobs"]}
    print(f"\nlocal matrix: exit {rc}, wall {wall:.0f}s, jobs "
          + ", ".join(f"{k} {j['status']} {j['seconds']:.0f}s" for k, j in jobs.items()))
    assert jobs["flagship/contract/256m"]["status"] == "pass"
    # the check really ran (a skipped check would pass vacuously)
    assert [c["status"] for c in jobs["flagship/contract/256m"]["checks"]] == ["pass"]
    assert jobs["broken/contract/256m"]["status"] == "fail"  # the negative control bites
    assert rc == 1 and doc["verdict"] == "fail"
    runs = [Path(j["run_dir"]) for j in jobs.values()]
    assert len(set(runs)) == 2 and all((r / "results.json").is_file() for r in runs)
    assert _ssh_port(runs[0]) != _ssh_port(runs[1])
    # both guests really ran at once: each job's interval overlaps the other's
    spans = [(os.stat(r / "matrix-job.json").st_mtime, os.stat(r / "results.json").st_mtime)
             for r in runs]
    assert max(s for s, _ in spans) < min(e for _, e in spans), spans
    assert len({k["key"] for k in doc["kernels"]}) == 2  # one build per distinct kernel
    kdoc = json.loads((out / "kcidb.json").read_text())
    kcidb.validate(kdoc)  # real output validates
    assert sorted(t["status"] for t in kdoc["tests"] if t["path"] == "mempressure.contract") == [
        "FAIL", "PASS"]
    assert len(kdoc["builds"]) == 2
    assert 'href="flagship--contract--256m/report.html"' in (out / "matrix.html").read_text()
    assert all(_qemu_gone(r) for r in runs)


@pytest.fixture
def dask_cluster(tmp_path: Path) -> Iterator[tuple[str, dict[str, subprocess.Popen[bytes]]]]:
    """A real scheduler and two single-slot workers on loopback; all killed at the end."""
    port = free_port()
    addr = f"tcp://127.0.0.1:{port}"
    procs: list[subprocess.Popen[bytes]] = []
    workers: dict[str, subprocess.Popen[bytes]] = {}
    log = (tmp_path / "dask.log").open("wb")
    try:
        procs.append(subprocess.Popen(
            [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
             "--no-dashboard"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        for i in (1, 2):
            wport = free_port()
            p = subprocess.Popen(
                [str(BIN / "dask"), "worker", addr, "--host", "127.0.0.1", "--worker-port",
                 str(wport), "--nthreads", "1", "--no-nanny", "--no-dashboard",
                 "--name", f"w{i}", "--resources", "vm=1,ram_mib=4096"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            procs.append(p)
            workers[f"tcp://127.0.0.1:{wport}"] = p
        from distributed import Client

        with Client(addr, timeout=30) as c:
            c.wait_for_workers(2, timeout=60)
        yield addr, workers
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        log.close()


def test_dask_cluster_runs_the_plan_and_a_dead_worker_is_an_infra_error(
        tmp_path: Path, dask_cluster: tuple[str, dict[str, subprocess.Popen[bytes]]]) -> None:
    addr, workers = dask_cluster
    plan = _plan(tmp_path, '[[kernel]]\nname = "flagship"\n',
                 [("256m", 256), ("288m", 288), ("320m", 320)])
    out = tmp_path / "m"
    proc = subprocess.Popen([sys.executable, "-m", "harness", "matrix", str(plan),
                             "--scheduler", addr, "--run-dir", str(out), "--accel", "tcg"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    victim_dir: Path | None = None
    try:
        deadline = time.monotonic() + 600
        while victim_dir is None and time.monotonic() < deadline and proc.poll() is None:
            for jf in out.glob("*/qemu-cmdline.txt"):  # a guest is up: kill its worker
                victim_dir = jf.parent
                break
            time.sleep(0.5)
        assert victim_dir is not None, "no job started on the cluster"
        worker = json.loads((victim_dir / "matrix-job.json").read_text())["worker"]
        time.sleep(3)
        workers[worker].kill()  # SIGKILL: no goodbye to the scheduler
        workers[worker].wait()
        output, _ = proc.communicate(timeout=900)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = output.decode(errors="replace")
    doc = json.loads((out / "results.json").read_text())
    by_dir = {Path(j["run_dir"]): j for j in doc["jobs"]}
    print(f"\ndask matrix: exit {proc.returncode}, wall {doc['wall_s']}s, "
          + ", ".join(f"{j['job_id']} {j['status']} on {j['worker']} {j['seconds']:.0f}s"
                      for j in doc["jobs"]))
    victim = by_dir[victim_dir]
    assert victim["status"] == "error" and "infrastructure error" in victim["detail"], text
    others = [j for d, j in by_dir.items() if d != victim_dir]
    assert [j["status"] for j in others] == ["pass", "pass"], text
    assert [c["status"] for j in others for c in j["checks"]] == ["pass", "pass"]
    assert proc.returncode == 3 and doc["verdict"] == "error"
    assert doc["engine"].startswith("dask")
    # the killed job's harness run unwound: its QEMU is gone, not orphaned
    deadline = time.monotonic() + 90
    while not _qemu_gone(victim_dir) and time.monotonic() < deadline:
        time.sleep(1)
    assert _qemu_gone(victim_dir)
    kcidb.validate(json.loads((out / "kcidb.json").read_text()))
