"""Run a round of bisect targets at once, through the matrix engines.

A round's targets become matrix jobs (one kernel each, the bisect's scenario
and checks): their kernels are built one at a time first (they share one
lineage's work tree, so builds cannot overlap anyway), then the guests run in
parallel on the local pool -- or on a Dask cluster with ``--scheduler``. Each
outcome maps to a verdict with the same rules as a sequential step (a build
failure or an infrastructure error is *skip*; the named checks decide good and
bad), bad verdicts are re-run ``--retries`` times (all re-runs of a round at
once), and every target is recorded in ``steps.jsonl`` like any other step.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from harness.bisect.step import BisectConfig, append_step, read_steps
from harness.bisect.verdict import Attempt, StepRecord, Verdict, verdict_for_statuses
from harness.core.results import Status
from harness.errors import EXIT_USAGE
from harness.kernel.build import BuildRequest
from harness.matrix.builds import KernelBuild, build_all
from harness.matrix.job import JobResult
from harness.matrix.plan import Job, KernelSpec, ScenarioSpec, VMSize
from harness.matrix.schedule import host_capacity, job_cost

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Target:
    target: str  # commit sha or "k=<n>"
    label: str  # subject or patch name
    req: BuildRequest


def verdict_of(res: JobResult, checks: list[str]) -> Verdict:
    """A job's verdict for the bisect: the same mapping as a sequential step."""
    if res.exit_code is None or res.exit_code == EXIT_USAGE:
        return Verdict.SKIP  # did not build, did not run, worker died: no evidence
    statuses = {str(c["name"]): Status(str(c["status"])) for c in res.checks}
    return verdict_for_statuses(statuses, checks)


def measurements_of(run_dir: Path) -> list[tuple[str, str, float]]:
    """(check, name, value) of every measurement a job's run dir recorded ([] if none)."""
    from harness import rundir
    from harness.core.measure import of_results_doc

    try:
        doc = json.loads((run_dir / rundir.RESULTS).read_text())
    except (OSError, ValueError):
        return []
    if not isinstance(doc, dict):
        return []
    return [(m.check, m.name, m.value) for m in of_results_doc(doc)]


def value_of(res: JobResult, metric: str | None) -> float | None:
    """The ``--metric`` measurement of a job that ran (None: no metric, or not measured)."""
    from harness.bisect.sampling import metric_value

    if metric is None or res.exit_code is None or res.exit_code == EXIT_USAGE:
        return None
    return metric_value(measurements_of(Path(res.run_dir)), metric)


class BatchRunner:
    """Runs lists of targets in parallel for one bisect configuration."""

    def __init__(self, cfg: BisectConfig) -> None:
        from harness.core.spec import load_spec

        self.cfg = cfg
        self.run_dir = Path(cfg.run_dir)
        self.vm = load_spec(cfg.scenario).vm.override(ram_mib=cfg.ram_mib,
                                                      swap_mib=cfg.swap_mib, smp=cfg.smp)
        self.batches = 0

    def _job(self, name: str, req: BuildRequest) -> Job:
        k = KernelSpec(name, str(req.source) if req.source is not None else None, req.rev,
                       tuple(str(s) for s in req.series), tuple(req.fragments), req.base,
                       req.arch, req.page_size)
        return Job(k, ScenarioSpec("bisect", self.cfg.scenario, self.cfg.duration,
                                   tuple(self.cfg.checks)),
                   VMSize("vm", self.cfg.ram_mib, self.cfg.swap_mib, self.cfg.smp))

    def _run(self, named: list[tuple[str, Target]], parallel: int | None = None
             ) -> tuple[list[JobResult], dict[str, KernelBuild]]:
        """One batch of jobs, all at once as the pool admits (at most ``parallel``, default
        --workers, guests side by side)."""
        self.batches += 1
        root = self.run_dir / "steps"
        jobs = [self._job(name, t.req) for name, t in named]
        costs = {j.id: job_cost(self.vm.ram_mib, self.vm.smp) for j in jobs}
        if self.cfg.scheduler:
            from harness.matrix.dask_engine import run_dask

            return run_dask(self.cfg.scheduler, jobs, costs, root, self.cfg.accel,
                            tls_dir=Path(self.cfg.tls_dir) if self.cfg.tls_dir else None)
        from harness.matrix.local import run_local

        cap = host_capacity(os.cpu_count() or 1, Path("/proc/meminfo").read_text(),
                            self.cfg.workers if parallel is None else parallel)
        kernels = build_all(jobs)
        return run_local(jobs, kernels, costs, root, cap, self.cfg.accel), kernels

    def run_attempts(self, named: list[tuple[str, Target]]) -> list[Attempt]:
        """Run each (job name, target) once, all in one batch on the whole pool (as many
        guests at once as cores and RAM admit): the adaptive repeats of a round."""
        results, kernels = self._run(named, parallel=0)
        out = []
        built: set[str] = set()  # a kernel's build time goes to its first job only
        for res in results:
            kb = kernels.get(res.job_id.split("/")[0])
            build_s = 0.0
            if kb is not None and (kb.key or kb.name) not in built:
                built.add(kb.key or kb.name)
                build_s = kb.seconds
            out.append(Attempt(
                verdict_of(res, self.cfg.checks), res.seconds + build_s,
                res.detail or "all checks passed", build_s, res.seconds,
                res.run_dir, {str(c["name"]): str(c["status"]) for c in res.checks},
                value_of(res, self.cfg.metric)))
        return out

    def run_targets(self, targets: list[Target], phase: str) -> list[StepRecord]:
        """Decide every target's verdict (parallel runs, parallel re-runs); record them."""
        t0 = time.monotonic()
        base = len(read_steps(self.run_dir)) + 1
        attempts: dict[int, list[Attempt]] = {i: [] for i in range(len(targets))}
        todo = list(range(len(targets)))
        notes: dict[int, str] = {}
        for n in range(self.cfg.retries + 1):
            named = [(f"{base + i:02d}-{targets[i].target[:12].replace('=', '')}-{n}",
                      targets[i]) for i in todo]
            log.info("bisect round (%s): %s", phase, ", ".join(t.target[:12] for _, t in named))
            results, kernels = self._run(named)
            for i, res in zip(todo, results, strict=True):
                kb = kernels.get(res.job_id.split("/")[0])
                v = verdict_of(res, self.cfg.checks)
                attempts[i].append(Attempt(
                    v, res.seconds + (kb.seconds if kb else 0.0), res.detail or
                    "all checks passed", kb.seconds if kb else 0.0, res.seconds, res.run_dir,
                    {str(c["name"]): str(c["status"]) for c in res.checks}))
            # only a bad verdict is re-run; a pass on a re-run makes the target a flake
            todo = [i for i in todo if attempts[i][-1].verdict == Verdict.BAD
                    and not any(a.verdict == Verdict.GOOD for a in attempts[i])]
            if not todo:
                break
        records = []
        for i, t in enumerate(targets):
            att = attempts[i]
            first = att[0].verdict
            if first == Verdict.BAD and any(a.verdict == Verdict.GOOD for a in att[1:]):
                verdict, notes[i] = Verdict.SKIP, "flaky: failed, then passed on a re-run"
            else:
                verdict = first
                if first == Verdict.BAD and self.cfg.retries:
                    bad = sum(a.verdict == Verdict.BAD for a in att)
                    notes[i] = f"bad confirmed by {bad} of {len(att)} runs"
            rec = StepRecord(t.target, t.label, verdict, round(time.monotonic() - t0, 1), att,
                             notes.get(i, ""), phase)
            append_step(self.run_dir, rec)
            log.info("step %s %s -> %s", t.target[:12], t.label, verdict.value)
            records.append(rec)
        return records
