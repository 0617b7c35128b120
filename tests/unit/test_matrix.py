"""harness matrix without a VM: plan expansion, sharding, admission, builds, job I/O, report."""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from harness.core.results import Status
from harness.errors import UsageError
from harness.matrix import job as jobmod
from harness.matrix import local, report
from harness.matrix.builds import KernelBuild
from harness.matrix.job import JobResult, job_argv, result_from_run, run_job, status_for_exit
from harness.matrix.plan import (
    Job,
    KernelSpec,
    ScenarioSpec,
    VMSize,
    parse_plan,
    parse_shard,
    shard,
)
from harness.matrix.schedule import (
    VM_OVERHEAD_MIB,
    Capacity,
    Cost,
    build_groups,
    check_admissible,
    dask_resources,
    fits,
    host_capacity,
    job_cost,
    next_admissible,
)

PLAN = Path("/plans/p.toml")


def _plan(**over: Any) -> dict[str, Any]:
    d: dict[str, Any] = {"name": "p", "kernel": [{"name": "a"}, {"name": "b", "series": []}],
                         "scenario": ["mempressure", {"name": "c", "path": "c.toml",
                                                      "duration": 5}],
                         "vm": [{"name": "s", "ram_mib": 256}, {"ram_mib": 320, "swap_mib": 0}]}
    d.update(over)
    return d


# --- plan -----------------------------------------------------------------------------------------

def test_plan_expands_kernel_major_with_paths_relative_to_the_plan() -> None:
    p = parse_plan(_plan(), PLAN)
    assert [j.id for j in p.jobs] == [
        "a/mempressure/s", "a/mempressure/320m", "a/c/s", "a/c/320m",
        "b/mempressure/s", "b/mempressure/320m", "b/c/s", "b/c/320m"]
    assert p.jobs[0].scenario.path == "mempressure"  # a name stays a name
    assert p.jobs[2].scenario == ScenarioSpec("c", "/plans/c.toml", 5)
    assert p.jobs[0].kernel.series is None and p.jobs[4].kernel.series == ()
    assert p.jobs[1].vm == VMSize("320m", 320, 0)
    assert len({j.slug for j in p.jobs}) == len(p.jobs)  # run dirs never collide


def test_plan_revs_make_one_kernel_each_and_series_resolve() -> None:
    p = parse_plan(_plan(kernel=[{"name": "g", "source": "../repo", "revs": ["v1", "v2"],
                                  "series": ["../patches/x"], "base": "defconfig"}]), PLAN)
    ks = sorted({j.kernel for j in p.jobs}, key=lambda k: k.name)
    assert [(k.name, k.rev) for k in ks] == [("g@v1", "v1"), ("g@v2", "v2")]
    assert ks[0].source == "/repo" and ks[0].series == ("/patches/x",)
    assert ks[0].base == "defconfig"


@pytest.mark.parametrize("over, culprit", [
    ({"kernel": []}, "[[kernel]]"),
    ({"kernel": [{"name": "a", "serie": []}]}, "[[kernel]] #1"),
    ({"scenario": []}, "scenario"),
    ({"vm": [{"ram_mib": 10}]}, "ram_mib"),
    ({"kernel": [{"name": "a"}, {"name": "a"}]}, "kernel"),
    ({"typo": 1}, "top level"),
    ({"kernel": [{"name": "a", "rev": "x", "revs": ["y"]}]}, "[[kernel]] a"),
])
def test_plan_errors_name_the_file_and_key(over: dict[str, Any], culprit: str) -> None:
    with pytest.raises(UsageError) as ei:
        parse_plan(_plan(**over), PLAN)
    assert str(PLAN) in ei.value.culprit and culprit in ei.value.culprit


def test_shard_partitions_contiguously_and_balanced() -> None:
    jobs = list(parse_plan(_plan(), PLAN).jobs)
    for n in (1, 2, 3, 5, 8, 11):
        parts = [shard(jobs, i, n) for i in range(1, n + 1)]
        assert [j for p in parts for j in p] == jobs  # exact partition, order kept
        sizes = [len(p) for p in parts]
        assert max(sizes) - min(sizes) <= 1
    assert {j.kernel.name for j in shard(jobs, 1, 2)} == {"a"}  # a kernel stays on one shard
    assert parse_shard(" 2/4 ") == (2, 4)
    for bad in ("0/2", "3/2", "x", "1/0"):
        with pytest.raises(UsageError):
            parse_shard(bad)


# --- schedule -----------------------------------------------------------------------------------

def test_admission_respects_cores_and_ram() -> None:
    cap = Capacity(cores=2, ram_mib=2400)
    small, big = job_cost(256), job_cost(1024)
    assert small == Cost(1, 256 + VM_OVERHEAD_MIB)
    assert fits([], small, cap) and fits([small], small, cap)
    assert not fits([small, small], small, cap)  # third core
    assert not fits([big], big, cap)  # RAM: 2 x 1536 > 2400
    assert next_admissible([big, small], [big], cap) == 1  # first fit lets the small one by
    assert next_admissible([big], [big], cap) is None
    with pytest.raises(UsageError, match="job x"):
        check_admissible({"x": job_cost(4096)}, cap)


def test_host_capacity_from_meminfo() -> None:
    mi = "MemTotal:       24000000 kB\nMemAvailable:   8388608 kB\n"
    assert host_capacity(2, mi) == Capacity(2, 8192 - 1024)
    assert host_capacity(8, mi, max_parallel=3).cores == 3


def test_dask_resources_per_job() -> None:
    assert dask_resources(job_cost(256)) == {"vm": 1.0, "ram_mib": 256.0 + VM_OVERHEAD_MIB}
    assert dask_resources(job_cost(256, smp=2), needs_kvm=True)["kvm"] == 2.0


def test_one_build_per_cache_key() -> None:
    names = ["a", "b", "c", "d"]
    keys = {"a": "k1", "b": "k2", "c": "k1", "d": "k2"}
    groups = build_groups(names, keys.__getitem__)
    assert groups == {"k1": ["a", "c"], "k2": ["b", "d"]}
    assert sum(len(v) for v in groups.values()) == len(names)


# --- one job --------------------------------------------------------------------------------------

def _job(name: str = "k", ram: int | None = 256) -> Job:
    return Job(KernelSpec(name), ScenarioSpec("c", "/p/c.toml", 7), VMSize("s", ram, 64))


def test_job_argv_boots_the_prebuilt_kernel() -> None:
    argv = job_argv(_job(), Path("/a/bzImage"), Path("/r/j"), "tcg", python="py")
    assert argv[:4] == ["py", "-m", "harness", "run"]
    s = " ".join(argv)
    for part in ("--scenario /p/c.toml", "--run-dir /r/j", "--json", "--kernel /a/bzImage",
                 "--ram 256", "--swap 64", "--duration 7", "--accel tcg"):
        assert part in s
    own = job_argv(Job(KernelSpec("k", series=()), ScenarioSpec("c", "c"), VMSize("d")),
                   None, Path("/r"), python="py")
    assert "--patches none" in " ".join(own) and "--ram" not in own and "--kernel" not in own


def test_a_vm_size_carries_its_cpus_into_the_job() -> None:
    """bisect --workers K dropped --smp: the matrix VM size had none."""
    job = Job(KernelSpec("k"), ScenarioSpec("c", "c"), VMSize("s", 256, 64, 2))
    argv = job_argv(job, None, Path("/r"), python="py")
    assert argv[argv.index("--smp") + 1] == "2"
    assert "--smp" not in job_argv(_job(), None, Path("/r"), python="py")


def test_job_build_options_mean_exactly_the_matrix_build() -> None:
    """The job's `harness run` options parse back to the request the matrix built."""
    import argparse

    from harness.commands.build import add_build_options
    from harness.commands.run import kernel_request
    from harness.core.spec import load_spec
    from harness.matrix.job import build_name, build_request

    for scenario in ("mempressure", "mempressure-debug"):
        for k in (KernelSpec("d"), KernelSpec("n", series=()),
                  KernelSpec("x", "/src", "v1", ("/p/a", "/p/b"), ("guest", "extra"),
                             "defconfig")):
            job = Job(k, ScenarioSpec(scenario, scenario), VMSize("d"))
            argv = job_argv(job, None, Path("/r"), python="p")
            p = argparse.ArgumentParser()
            add_build_options(p)
            args, _ = p.parse_known_args(argv[4:])
            assert kernel_request(args, load_spec(scenario)) == build_request(job), (k, scenario)
    # A plan kernel without fragments runs the debug scenario on the debug kernel (the
    # matrix used to build the default configuration and override the scenario's).
    debug = Job(KernelSpec("d"), ScenarioSpec("mempressure-debug", "mempressure-debug"),
                VMSize("d"))
    assert "debug" in build_request(debug).fragments
    assert build_name(debug) == "d@mempressure-debug"
    plain = Job(KernelSpec("d"), ScenarioSpec("mempressure", "mempressure"), VMSize("d"))
    assert build_name(plain) == "d" and "debug" not in build_request(plain).fragments


def test_exit_status_is_the_verdict() -> None:
    assert [status_for_exit(rc) for rc in (0, 1, 2, 3, -9, 130, None)] == [
        Status.PASS, Status.FAIL] + [Status.ERROR] * 5


def _results(run_dir: Path, verdict: str, checks: dict[str, str]) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "results.json").write_text(json.dumps({
        "scenario": "c", "verdict": verdict, "run_dir": str(run_dir), "infra_error": None,
        "checks": [{"name": n, "title": n, "status": s, "summary": f"{n} {s}", "artifact": "",
                    "measurements": {}, "expectations": []} for n, s in checks.items()],
        "info": {}, "timings_s": {"boot": 1.0}}))


def test_result_reads_checks_and_distrusts_a_missing_results_file(tmp_path: Path) -> None:
    _results(tmp_path / "a", "fail", {"clamping": "fail", "x": "pass"})
    r = result_from_run(_job(), 1, tmp_path / "a", 3.0, "", {})
    assert r.status == Status.FAIL and r.detail == "failed: clamping" and len(r.checks) == 2
    r = result_from_run(_job(), 0, tmp_path / "none", 3.0, "", {})
    assert r.status == Status.ERROR and "no results.json" in r.detail
    r = result_from_run(_job(), -9, tmp_path / "none", 3.0, "", {})
    assert r.status == Status.ERROR and "signal 9" in r.detail


def test_a_skipped_job_is_skip_not_pass(tmp_path: Path) -> None:
    """Exit 0 with verdict skip (every check skipped) was reported as PASS."""
    _results(tmp_path / "s", "skip", {"contract": "skip"})
    r = result_from_run(_job(), 0, tmp_path / "s", 3.0, "", {})
    assert r.status == Status.SKIP
    _results(tmp_path / "p", "pass", {"contract": "pass"})
    assert result_from_run(_job(), 0, tmp_path / "p", 3.0, "", {}).status == Status.PASS


FAKE = """
import json, os, sys, time
rd = sys.argv[sys.argv.index("--run-dir") + 1]
mode = os.environ["FAKE_MODE"]
if mode == "hang":
    time.sleep(60)
checks = {"pass": "pass", "fail": "fail"}.get(mode, "error")
json.dump({"scenario": "c", "verdict": checks, "run_dir": rd, "infra_error": None,
           "checks": [{"name": "clamping", "title": "t", "status": checks, "summary": "s",
                       "artifact": "", "measurements": {}, "expectations": []}],
           "info": {}, "timings_s": {}}, open(os.path.join(rd, "results.json"), "w"))
print("harness: error: qemu: no boot", file=sys.stderr)
sys.exit({"pass": 0, "fail": 1, "infra": 3}[mode])
"""


@pytest.fixture
def fake_harness(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    script = tmp_path / "fake_harness.py"
    script.write_text(FAKE)
    real = jobmod.job_argv

    def argv(job: Job, kernel: Path | None, run_dir: Path, accel: str = "auto",
             python: str = sys.executable) -> list[str]:
        return [python, str(script), *real(job, kernel, run_dir, accel)[2:]]

    monkeypatch.setattr(jobmod, "job_argv", argv)
    return script


@pytest.mark.parametrize("mode, status, code", [("pass", Status.PASS, 0),
                                                ("fail", Status.FAIL, 1),
                                                ("infra", Status.ERROR, 3)])
def test_run_job_subprocess(fake_harness: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                            mode: str, status: Status, code: int) -> None:
    monkeypatch.setenv("FAKE_MODE", mode)
    r = run_job(_job(), Path("/k/bzImage"), tmp_path / "j", {"key": "k"})
    assert (r.status, r.exit_code) == (status, code)
    assert (tmp_path / "j" / jobmod.JOB_FILE).is_file()
    if mode == "infra":
        assert "harness: error: qemu: no boot" in r.detail
    assert r.kcidb["tests"][0]["status"] == {"pass": "PASS", "fail": "FAIL"}.get(mode, "ERROR")


def test_run_job_timeout_and_stop(fake_harness: Path, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_MODE", "hang")
    monkeypatch.setattr(jobmod, "STOP_GRACE_S", 5.0)
    t0 = time.monotonic()
    r = run_job(_job(), None, tmp_path / "t", {}, timeout_s=1.0)
    assert r.status == Status.ERROR and r.exit_code is None and "timed out" in r.detail
    assert time.monotonic() - t0 < 10
    stop = threading.Event()
    stop.set()
    with pytest.raises(KeyboardInterrupt):
        run_job(_job(), None, tmp_path / "s", {}, stop=stop)


# --- local pool ---------------------------------------------------------------------------------

def test_local_pool_never_exceeds_capacity_and_skips_unbuilt(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    lock = threading.Lock()
    now = {"n": 0, "max": 0}

    def fake_run(job: Job, kernel: Path | None, run_dir: Path, kinfo: dict[str, Any],
                 *a: Any, **kw: Any) -> JobResult:
        with lock:
            now["n"] += 1
            now["max"] = max(now["max"], now["n"])
        time.sleep(0.2)
        with lock:
            now["n"] -= 1
        return JobResult(job.id, job.slug, Status.PASS, 0, str(run_dir), 0.2)

    monkeypatch.setattr(local, "run_job", fake_run)
    jobs = [_job("ok", 256) for _ in range(1)] + [
        Job(KernelSpec("ok"), ScenarioSpec(f"s{i}", "x"), VMSize("v", 256)) for i in range(5)]
    jobs.append(_job("broken"))
    kernels = {"ok": KernelBuild("ok", "k", "/k/bzImage"),
               "broken": KernelBuild("broken", "k2", error="mm/x.c:1: error")}
    costs = {j.id: job_cost(256) for j in jobs}
    res = local.run_local(jobs, kernels, costs, tmp_path, Capacity(2, 100000))
    assert now["max"] == 2
    assert [r.status for r in res] == [Status.PASS] * 6 + [Status.ERROR]
    assert "did not build" in res[-1].detail
    assert report.exit_status(res) == 2  # bad input, nothing worse


# --- report -------------------------------------------------------------------------------------

def _r(status: Status, code: int | None, kernel: dict[str, Any] | None = None) -> JobResult:
    return JobResult("k/c/s", "k--c--s", status, code, "/nonexistent", 1.0,
                     checks=[{"name": "clamping", "status": status.value, "summary": "x"}],
                     kernel=kernel or {})


def test_exit_status_precedence() -> None:
    P, F, E = Status.PASS, Status.FAIL, Status.ERROR
    assert report.exit_status([_r(P, 0)]) == 0
    assert report.exit_status([_r(P, 0), _r(E, 3), _r(F, 1)]) == 1
    assert report.exit_status([_r(P, 0), _r(E, 3), _r(E, 2)]) == 3
    assert report.exit_status([_r(E, None)]) == 3  # a dead worker is infra
    assert report.exit_status([_r(E, None, {"error": "no build"}), _r(E, 2)]) == 2


def test_combined_report_files(tmp_path: Path) -> None:
    run = tmp_path / "jobs" / "k--c--s"
    _results(run, "fail", {"clamping": "fail"})
    (run / "report.html").write_text("<html></html>")
    res = [JobResult("k/c/s", "k--c--s", Status.FAIL, 1, str(run), 2.0,
                     "failed: clamping", [{"name": "clamping", "status": "fail",
                                           "summary": "clamp <broken>"}])]
    kernels = {"k": KernelBuild("k", "key", "/k/bzImage", release="6.12"),
               "x": KernelBuild("x", "key2", error="does not build")}
    doc = report.matrix_doc("p", res, kernels, "local", 3.0, "1/2")
    report.write_all(tmp_path, doc, res, kernels)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["verdict"] == "fail" and saved["exit_status"] == 1 and saved["shard"] == "1/2"
    html = (tmp_path / "matrix.html").read_text()
    assert 'href="jobs/k--c--s/report.html"' in html and "clamp &lt;broken&gt;" not in html
    assert "does not build" in html
    junit = (tmp_path / "junit.xml").read_text()
    assert '<testsuite name="k/c/s"' in junit and "<failure" in junit
    kc = json.loads((tmp_path / "kcidb.json").read_text())
    assert [b["status"] for b in kc["builds"]] == ["FAIL"]  # the kernel that did not build


def test_findings_are_grouped_by_signature_across_jobs(tmp_path: Path) -> None:
    from harness.matrix.report import findings_by_signature

    res = []
    for i, titles in enumerate((["WARNING in f", "WARNING in f"], ["WARNING in f", "BUG in g"],
                                [])):
        d = tmp_path / f"j{i}"
        d.mkdir()
        (d / "results.json").write_text(json.dumps({"findings": [
            {"signature": t, "title": t, "kind": "warning",
             **({"known_issue": {"id": "k1"}} if t.startswith("BUG") else {})}
            for t in titles]}))
        res.append(JobResult(f"job{i}", f"j{i}", Status.PASS, 0, str(d), 1.0))
    rows = findings_by_signature(res)
    assert rows[0] == {"signature": "WARNING in f", "title": "WARNING in f", "kind": "warning",
                       "jobs": 2, "first_job": "job0", "known_issue": None}
    assert rows[1]["jobs"] == 1 and rows[1]["first_job"] == "job1"
    assert rows[1]["known_issue"] == "k1"
