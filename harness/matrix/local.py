"""The local-pool engine: as many jobs at once as this machine's cores and RAM admit.

A thread per running job waits on its ``harness run`` subprocess; the admission
rule is :func:`~harness.matrix.schedule.next_admissible` (first fit in plan
order, one core and guest RAM + overhead per job). Ctrl-C stops every running
job (each takes its QEMU down) before it propagates.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path

from harness.core.results import Status
from harness.matrix.builds import KernelBuild, bzimage_of
from harness.matrix.job import DEFAULT_TIMEOUT_S, JobResult, build_name, run_job
from harness.matrix.plan import Job
from harness.matrix.schedule import Capacity, Cost, next_admissible

log = logging.getLogger(__name__)

ResultCallback = Callable[[JobResult], None]


def not_run(job: Job, kb: KernelBuild, run_root: Path) -> JobResult:
    """A job whose kernel did not build: an error naming the build, never a verdict."""
    return JobResult(job.id, job.slug, Status.ERROR, None, str(run_root / job.slug), 0.0,
                     f"kernel {kb.name} did not build: {kb.error}", [], kb.to_json())


def run_local(jobs: Sequence[Job], kernels: Mapping[str, KernelBuild], costs: Mapping[str, Cost],
              run_root: Path, cap: Capacity, accel: str = "auto",
              timeout_s: float = DEFAULT_TIMEOUT_S,
              on_result: ResultCallback | None = None) -> list[JobResult]:
    """Run the jobs on this machine; results in plan order."""
    results: dict[str, JobResult] = {}
    pending: list[Job] = []
    for j in jobs:
        kb = kernels[build_name(j)]
        if bzimage_of(kb) is None:
            results[j.id] = not_run(j, kb, run_root)
            if on_result:
                on_result(results[j.id])
        else:
            pending.append(j)
    stop = threading.Event()
    running: dict[Future[JobResult], Job] = {}
    with ThreadPoolExecutor(max_workers=max(1, cap.cores),
                            thread_name_prefix="matrix-job") as pool:
        try:
            while pending or running:
                while pending:
                    i = next_admissible([costs[j.id] for j in pending],
                                        [costs[j.id] for j in running.values()], cap)
                    if i is None:
                        break
                    job = pending.pop(i)
                    kb = kernels[build_name(job)]
                    log.info("matrix: start %s (%d running, %d waiting)", job.id,
                             len(running) + 1, len(pending))
                    # built above: the job's own build is a cache hit (see job_argv)
                    running[pool.submit(run_job, job, None, run_root / job.slug,
                                        kb.to_json(), accel, timeout_s, "local", stop)] = job
                if not running:  # nothing fits even alone: checked up front, so a bug
                    raise RuntimeError("matrix: no pending job fits an idle machine")
                done, _ = wait(list(running), timeout=5.0, return_when=FIRST_COMPLETED)
                for fut in done:
                    job = running.pop(fut)
                    try:
                        res = fut.result()
                    except Exception as exc:  # a bug in the launcher: this job only
                        log.exception("matrix: job %s crashed in the engine", job.id)
                        res = JobResult(job.id, job.slug, Status.ERROR, None,
                                        str(run_root / job.slug), 0.0, f"engine error: {exc}")
                    results[job.id] = res
                    if on_result:
                        on_result(res)
        except BaseException:
            stop.set()
            log.warning("matrix: stopping %d running job(s)", len(running))
            t0 = time.monotonic()
            wait(list(running))
            log.info("matrix: jobs stopped in %.0fs", time.monotonic() - t0)
            raise
    return [results[j.id] for j in jobs]
