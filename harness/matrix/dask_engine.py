"""The Dask distributed engine: the same jobs on a cluster (``--scheduler tcp://HOST:PORT``).

Task graph: one **build task per distinct cache key** (Dask key ``build-<key>``,
so the scheduler itself guarantees it never runs twice at once), and one **job
task** per job that depends on its kernel's build. Dask places a job next to
its build's result when resources allow -- the kernel is then already in that
worker's cache; elsewhere the bzImage travels with the build's result and is
written into the job's run dir. Job tasks request ``vm`` and ``ram_mib``
resources (:func:`~harness.matrix.schedule.dask_resources`): start each worker
with ``--resources "vm=<cores>,ram_mib=<MiB>"`` and ``--nthreads <cores>``.

A worker that dies mid-job: Dask would quietly re-run the task elsewhere. A job
is not idempotent evidence (half a run already happened), so each job task
marks itself started in a scheduler-side :class:`distributed.Variable`; a
re-run finds the mark and returns an infrastructure error naming the dead
worker instead of running again. A job whose task is lost otherwise
(``KilledWorker``, a lost connection) is an infrastructure error too. Either
way the rest of the plan goes on.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.core.results import Status
from harness.errors import HarnessError, InfraError, SetupError, UsageError
from harness.kernel.build import BuildRequest
from harness.matrix.builds import KernelBuild, resolve_keys
from harness.matrix.job import (
    DEFAULT_TIMEOUT_S,
    JobResult,
    build_name,
    build_request,
    run_job,
)
from harness.matrix.local import not_run
from harness.matrix.plan import Job
from harness.matrix.schedule import Cost, build_groups, dask_resources

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 20.0


def build_task(req: BuildRequest, names: list[str]) -> dict[str, Any]:
    """On a worker: build (or fetch) one kernel; the result carries the bzImage itself."""
    from harness.kernel.build import build_kernel

    t0 = time.monotonic()
    try:
        art = build_kernel(req)
    except HarnessError as exc:
        return {"error": exc.one_line(), "seconds": round(time.monotonic() - t0, 1)}
    return {"key": art.key, "bzimage": str(art.bzimage), "artifact_dir": str(art.dir),
            "release": str(art.metadata.get("kernel_release", "")),
            "source": dict(art.metadata.get("source", {})),
            "seconds": round(time.monotonic() - t0, 1), "host": socket.gethostname(),
            "bzimage_bytes": art.bzimage.read_bytes(),
            "metadata_json": (art.dir / "metadata.json").read_text()}


def _local_kernel(build: Mapping[str, Any], run_dir: Path) -> Path | None:
    """None when this worker's cache holds the artifact (the job's build is then a cache
    hit); else the travelled bzImage, written into the job's run dir."""
    cached = Path(str(build["bzimage"]))
    if cached.is_file() and cached.read_bytes() == build["bzimage_bytes"]:
        return None
    d = run_dir / "kernel"
    d.mkdir(parents=True, exist_ok=True)
    name = Path(str(build["bzimage"])).name  # bzImage, or arm64's Image
    (d / name).write_bytes(build["bzimage_bytes"])
    (d / "metadata.json").write_text(str(build["metadata_json"]))
    return d / name


def job_task(job: Job, build: dict[str, Any], run_dir: str, accel: str,
             timeout_s: float, mark: str) -> dict[str, Any]:
    """On a worker: run one job (once: a re-run after a worker died is an infra error)."""
    from distributed import Variable, get_worker

    me = get_worker().address
    started = Variable(mark)  # type: ignore[no-untyped-call]
    try:
        before = started.get(timeout=0.1)  # type: ignore[no-untyped-call]
    except TimeoutError:
        before = None
    kinfo = {k: v for k, v in build.items() if k not in ("bzimage_bytes", "metadata_json")}
    if build.get("error"):
        return JobResult(job.id, job.slug, Status.ERROR, None, run_dir, 0.0,
                         f"kernel {job.kernel.name} did not build: {build['error']}", [], kinfo,
                         me).to_json()
    if before is not None:
        return JobResult(job.id, job.slug, Status.ERROR, None, run_dir, 0.0,
                         f"infrastructure error: worker {before} died mid-job; not re-run",
                         [], kinfo, me).to_json()
    started.set(me)  # type: ignore[no-untyped-call]
    rd = Path(run_dir)
    kernel = _local_kernel(build, rd)
    if kernel is not None:
        kinfo = {**kinfo, "bzimage": str(kernel), "travelled": True}
    return run_job(job, kernel, rd, kinfo, accel, timeout_s, worker=me).to_json()


def security(address: str, tls_dir: Path | None) -> Any:
    """The client's ``distributed.Security`` for ``address`` (None for tcp://).

    tls:// takes DIR/ca.pem, DIR/cert.pem and DIR/key.pem, or dask's own configuration
    (``distributed.comm.tls.*``) when no DIR is given; neither is exit 2, named.
    """
    from distributed import Security

    if not address.startswith("tls://"):
        if tls_dir is not None:
            raise UsageError("--tls-dir", f"only with a tls:// scheduler, not {address}")
        return None
    if tls_dir is None:
        sec = Security()  # type: ignore[no-untyped-call]
        if not getattr(sec, "tls_ca_file", None):
            raise UsageError(f"--scheduler {address}", "a tls:// scheduler needs --tls-dir DIR "
                             "(ca.pem, cert.pem, key.pem) or dask's distributed.comm.tls "
                             "configuration")
        return sec
    files = {n: tls_dir / f"{n}.pem" for n in ("ca", "cert", "key")}
    for f in files.values():
        if not f.is_file():
            raise UsageError(f"--tls-dir {tls_dir}", f"no {f.name} in it")
    return Security(tls_ca_file=str(files["ca"]),  # type: ignore[no-untyped-call]
                    tls_client_cert=str(files["cert"]), tls_client_key=str(files["key"]),
                    require_encryption=True)


def connect(address: str, tls_dir: Path | None = None) -> Any:
    """A ``distributed.Client`` of the scheduler at ``address``; unreachable is exit 3."""
    try:
        from distributed import Client
    except ImportError as exc:
        raise SetupError(f"--scheduler {address}", "needs the Dask extra: "
                         ".venv/bin/pip install -e '.[dask]' (scripts/bootstrap installs it)"
                         ) from exc
    sec = security(address, tls_dir)
    try:
        return Client(address, timeout=CONNECT_TIMEOUT_S,  # type: ignore[no-untyped-call]
                      security=sec)
    except (OSError, TimeoutError) as exc:
        raise InfraError(f"--scheduler {address}", f"cannot reach the Dask scheduler: {exc}"
                         ) from exc


def run_dask(address: str, jobs: Sequence[Job], costs: Mapping[str, Cost], run_root: Path,
             accel: str = "auto", timeout_s: float = DEFAULT_TIMEOUT_S,
             tls_dir: Path | None = None) -> tuple[list[JobResult], dict[str, KernelBuild]]:
    """Submit the plan to the cluster at ``address``; results in plan order."""
    client = connect(address, tls_dir)
    from distributed import as_completed

    keys = resolve_keys(jobs)  # bad inputs are named here, on the client, before any task
    kernels: dict[str, KernelBuild] = {}
    results: dict[str, JobResult] = {}
    token = f"{run_root.name}-{int(time.time())}"
    with client:
        reqs: dict[str, BuildRequest] = {}
        for j in jobs:
            if isinstance(keys.get(build_name(j)), str):
                reqs.setdefault(build_name(j), build_request(j))
        valid = [n for n, k in keys.items() if isinstance(k, str)]
        for n, k in keys.items():
            if isinstance(k, HarnessError):
                kernels[n] = KernelBuild(n, error=k.one_line())
        build_futs: dict[str, Any] = {}
        for key, names in build_groups(valid, lambda n: str(keys[n])).items():
            fut = client.submit(build_task, reqs[names[0]], names, key=f"build-{key}-{token}",
                                pure=False)
            for n in names:
                build_futs[n] = fut
        job_futs: dict[Any, Job] = {}
        for j in jobs:
            if build_name(j) not in build_futs:
                results[j.id] = not_run(j, kernels[build_name(j)], run_root)
                continue
            fut = client.submit(job_task, j, build_futs[build_name(j)],
                                str(run_root / j.slug), accel, timeout_s,
                                f"started-{token}-{j.slug}", key=f"job-{j.slug}-{token}",
                                resources=dask_resources(costs[j.id], accel == "kvm"), pure=False)
            job_futs[fut] = j
        for fut in as_completed(list(job_futs)):  # type: ignore[no-untyped-call]
            j = job_futs[fut]
            try:
                res = JobResult.from_json(fut.result())
            except Exception as exc:  # KilledWorker, CommClosedError, a task's own crash
                log.error("job %s: lost on the cluster: %s: %s", j.id, type(exc).__name__, exc)
                res = JobResult(j.id, j.slug, Status.ERROR, None, str(run_root / j.slug), 0.0,
                                f"infrastructure error: {type(exc).__name__}: {exc}"[:300])
            log.info("job %s: %s%s", j.id, res.status.value,
                     f" ({res.detail})" if res.detail else "")
            results[j.id] = res
        for n, fut in build_futs.items():
            try:
                b = fut.result()
            except Exception as exc:
                b = {"error": f"build task lost: {type(exc).__name__}: {exc}"}
            kernels[n] = KernelBuild(n, str(b.get("key", keys[n])), str(b.get("bzimage", "")),
                                     str(b.get("artifact_dir", "")), str(b.get("release", "")),
                                     str(b.get("error", "")), float(b.get("seconds", 0.0)),
                                     dict(b.get("source", {})))
    return [results[j.id] for j in jobs], kernels
