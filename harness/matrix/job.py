"""One matrix job = one ``harness run`` subprocess with its own run directory.

The subprocess's exit status is the verdict (0 pass, 1 fail, 2 usage/build,
3 infra); anything else -- a signal, a missing results.json, a dead worker --
is an infrastructure error, never a verdict on the kernel. The job's checks are
read back from ``RUN_DIR/results.json``.

Used by both engines; on a Dask worker it runs inside the worker process, so
everything here is importable without the rest of the matrix package.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness import rundir
from harness.arch import DEFAULT_ARCH
from harness.core.request import KernelOverrides, kernel_request
from harness.core.results import Status
from harness.core.spec import load_spec
from harness.errors import EXIT_CHECK_FAILED, EXIT_INFRA, EXIT_OK, EXIT_USAGE, HarnessError
from harness.kernel.build import DEFAULT_FRAGMENTS, DEFAULT_SERIES, BuildRequest
from harness.matrix.plan import Job, KernelSpec
from harness.proc import die_with_parent, stop_process_group

log = logging.getLogger(__name__)

STDOUT_FILE = "harness-run.json"  # the job's --json output
LOG_FILE = "harness-run.log"  # the job's stderr (its log)
JOB_FILE = "matrix-job.json"  # what the matrix asked for, written before the run
STOP_GRACE_S = 60.0  # a run needs a moment to take QEMU down after SIGINT
DEFAULT_TIMEOUT_S = 1800.0


def overrides(k: KernelSpec) -> KernelOverrides:
    """What a plan kernel says about the build (None: the scenario's)."""
    return KernelOverrides(source=k.source, rev=k.rev,
                           series=None if k.series is None else tuple(Path(s) for s in k.series),
                           fragments=None if k.fragments is None else tuple(k.fragments),
                           base=k.base, arch=k.arch, page_size=k.page_size)


def build_request(job: Job) -> BuildRequest:
    """The kernel a job runs: its scenario's [kernel], its plan kernel's parts replacing it --
    the very rule its ``harness run`` applies to the options :func:`job_argv` gives it."""
    return kernel_request(load_spec(job.scenario.path), overrides(job.kernel))


def build_name(job: Job) -> str:
    """The name of the job's build in the plan's report: its kernel's, and the scenario's too
    when the scenario's [kernel] changed what is built (e.g. a debug fragment). A scenario
    that does not load keeps the kernel's name: the job's own run names that error."""
    k = job.kernel
    try:
        load_spec(job.scenario.path)
    except HarnessError:
        return k.name
    plain = BuildRequest(source=k.source, rev=k.rev,
                         series=DEFAULT_SERIES if k.series is None else tuple(Path(s)
                                                                             for s in k.series),
                         fragments=DEFAULT_FRAGMENTS if k.fragments is None else k.fragments,
                         base=k.base, arch=k.arch, page_size=k.page_size)
    return k.name if build_request(job) == plain else f"{k.name}@{job.scenario.name}"


def job_argv(job: Job, kernel: Path | None, run_dir: Path, accel: str = "auto",
             python: str = sys.executable) -> list[str]:
    """The ``harness run`` command line of a job.

    Without ``kernel`` (the normal case) the job gets its kernel's build options,
    spelled out in full so that they mean exactly :func:`build_request` -- the
    matrix has built it already, so the job's build is a cache hit in seconds, and
    the run keeps what a prebuilt image loses (the source tree the scenario may
    build its guest tools from). ``kernel`` (a bzImage that travelled to a worker
    without the artifact) boots that image instead.
    """
    argv = [python, "-m", "harness", "run", "--scenario", job.scenario.path,
            "--run-dir", str(run_dir), "--json", "--accel", accel]
    if job.kernel.arch != DEFAULT_ARCH:  # a prebuilt kernel too: its QEMU and its image
        argv += ["--arch", job.kernel.arch]
    if job.kernel.page_size is not None:
        argv += ["--page-size", job.kernel.page_size]
    if kernel is not None:
        argv += ["--kernel", str(kernel)]
    else:
        k = job.kernel
        if k.source is not None:
            argv += ["--source", str(k.source)]
        if k.rev:
            argv += ["--rev", k.rev]
        if k.series is not None:
            for s in k.series or ("none",):
                argv += ["--patches", str(s)]
        if k.fragments is not None:
            argv += ["--config", ",".join(k.fragments)]
        argv += ["--base", k.base]
    if job.vm.ram_mib is not None:
        argv += ["--ram", str(job.vm.ram_mib)]
    if job.vm.swap_mib is not None:
        argv += ["--swap", str(job.vm.swap_mib)]
    if job.vm.smp is not None:
        argv += ["--smp", str(job.vm.smp)]
    if job.scenario.duration is not None:
        argv += ["--duration", str(job.scenario.duration)]
    for c in job.scenario.checks:
        argv += ["--check", c]
    return argv


@dataclass
class JobResult:
    """What the combined report needs of one job."""

    job_id: str
    slug: str
    status: Status  # pass / fail / error (error: infra, or the job could not start)
    exit_code: int | None  # the `harness run` exit status; None when it never ran
    run_dir: str
    seconds: float
    detail: str = ""  # why, when not pass: the error line, the failed checks
    checks: list[dict[str, Any]] = field(default_factory=list)
    kernel: dict[str, Any] = field(default_factory=dict)  # artifact key/dir/bzImage
    worker: str = ""
    kcidb: dict[str, Any] = field(default_factory=dict)  # made where the run dir is

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["status"] = self.status.value
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> JobResult:
        return cls(**{**d, "status": Status(d["status"])})


def status_for_exit(rc: int | None) -> Status:
    """The job's status from ``harness run``'s exit status (anything unexpected = infra)."""
    if rc == EXIT_OK:
        return Status.PASS
    if rc == EXIT_CHECK_FAILED:
        return Status.FAIL
    return Status.ERROR


def result_from_run(job: Job, rc: int | None, run_dir: Path, seconds: float, stderr_tail: str,
                    kernel: dict[str, Any], worker: str = "") -> JobResult:
    """Pure: a finished subprocess's exit status + its run dir -> :class:`JobResult`."""
    doc: dict[str, Any] | None = None
    try:
        doc = json.loads((run_dir / rundir.RESULTS).read_text())
    except (OSError, ValueError):
        doc = None
    status = status_for_exit(rc)
    checks = list(doc.get("checks", [])) if doc else []
    if rc in (EXIT_OK, EXIT_CHECK_FAILED) and doc is None:
        status, detail = Status.ERROR, f"exit {rc} but no results.json in {run_dir}"
    elif status == Status.FAIL:
        detail = "failed: " + ", ".join(c["name"] for c in checks if c.get("status") == "fail")
    elif status == Status.ERROR:
        what = ("usage/build error" if rc == EXIT_USAGE else "infrastructure error"
                if rc == EXIT_INFRA else f"killed by signal {-rc}" if rc is not None and rc < 0
                else "did not run" if rc is None else f"unexpected exit {rc}")
        infra = (doc or {}).get("infra_error") or ""
        detail = "; ".join(x for x in (what, infra, stderr_tail) if x)
    elif doc is not None and doc.get("verdict") == Status.SKIP.value:
        # Exit 0 covers "every check skipped" too: the run's own verdict says which.
        status, detail = Status.SKIP, "every check skipped"
    else:
        detail = ""
    return JobResult(job.id, job.slug, status, rc, str(run_dir), round(seconds, 1), detail,
                     checks, kernel, worker)


def _child_setup() -> Callable[[], None]:
    """In the job's child before exec: SIGINT is a real Ctrl-C, and the parent's death sends it.

    A worker started in the background inherits SIGINT ignored (and Python keeps
    SIG_IGN), so reset it; PR_SET_PDEATHSIG makes a killed worker's job unwind
    (QEMU down, temp dirs gone) instead of running on as an orphan.
    """
    die = die_with_parent(signal.SIGINT)  # made here: it records the parent's pid

    def setup() -> None:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        die()

    return setup


def _tail(path: Path, lines: int = 1) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    errs = [t for t in text if t.startswith("harness: error:")]
    return (errs[-1] if errs else "\n".join(text[-lines:]))[:300]


def run_job(job: Job, kernel: Path | None, run_dir: Path, kernel_info: dict[str, Any],
            accel: str = "auto", timeout_s: float = DEFAULT_TIMEOUT_S,
            worker: str = "", stop: threading.Event | None = None) -> JobResult:
    """Run one job to completion (or its timeout) and read its result.

    ``run_dir`` must not be shared with any other job: the engines give each job
    ``<matrix run dir>/jobs/<slug>``. Setting ``stop`` (the engine's Ctrl-C) or an
    exception here passes SIGINT on to the job, which takes its QEMU down.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    argv = job_argv(job, kernel, run_dir, accel)
    (run_dir / JOB_FILE).write_text(json.dumps(
        {"job": job.id, "argv": argv, "kernel": kernel_info, "worker": worker}, indent=2) + "\n")
    env = dict(os.environ)
    env.pop("HARNESS_RUNS", None)  # the job has its --run-dir
    t0 = time.monotonic()
    log.info("job %s: starting", job.id)
    with (run_dir / STDOUT_FILE).open("wb") as out, (run_dir / LOG_FILE).open("wb") as err:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env,
                                start_new_session=True, preexec_fn=_child_setup())
        rc: int | None = None
        try:
            while rc is None:
                try:
                    rc = proc.wait(timeout=1.0)
                except subprocess.TimeoutExpired:
                    if stop is not None and stop.is_set():
                        raise KeyboardInterrupt(f"job {job.id} stopped") from None
                    if time.monotonic() - t0 > timeout_s:
                        log.warning("job %s: no result after %.0fs; stopping it", job.id,
                                    timeout_s)
                        stop_process_group(proc, STOP_GRACE_S)
                        (run_dir / "matrix-timeout.txt").write_text(
                            f"timed out after {timeout_s:.0f}s\n")
                        break
        except BaseException:
            stop_process_group(proc, STOP_GRACE_S)
            raise
    secs = time.monotonic() - t0
    tail = _tail(run_dir / LOG_FILE)
    if rc is None:
        tail = f"timed out after {timeout_s:.0f}s" + (f"; {tail}" if tail else "")
    res = result_from_run(job, rc, run_dir, secs, tail, kernel_info, worker)
    res.kcidb = _kcidb_of(run_dir)
    log.info("job %s: %s in %.0fs%s", job.id, res.status.value, secs,
             f" ({res.detail})" if res.detail else "")
    return res


def _kcidb_of(run_dir: Path) -> dict[str, Any]:
    """The run's KCIDB document, made here because on a cluster the run dir is the worker's."""
    from harness import kcidb

    if not (run_dir / rundir.RESULTS).is_file():
        return {}
    try:
        return kcidb.from_run_dir(run_dir)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("%s: no KCIDB document: %s", run_dir, exc)
        return {}
