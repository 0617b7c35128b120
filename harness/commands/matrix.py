"""``harness matrix PLAN.toml``: run a plan of kernels x scenarios x VM sizes, one report.

Exit status: 0 every job passed; 1 a job failed (a kernel misbehaved); 3 an
infrastructure error and no failure; 2 bad input (the plan, an option, a kernel
that does not build) and nothing worse; 130 on Ctrl-C (running jobs are stopped
and take their QEMU down).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from harness.commands.cluster_options import add_cluster_options
from harness.vm.config import ACCELS

NAME = "matrix"
HELP = ("run a plan (kernels x scenarios x VM sizes) on a local pool or a Dask cluster; "
        "one combined report (results.json, junit.xml, matrix.html, kcidb.json)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("plan", type=Path, help="plan file (see plans/*.toml)")
    p.add_argument("--shard", metavar="I/N", help="run only shard I of N (a CI matrix: "
                   "contiguous, balanced slices of the plan's job list)")
    p.add_argument("--max-parallel", type=int, metavar="N",
                   help="local pool: at most N jobs at once (default: cores and RAM decide)")
    p.add_argument("--accel", default="auto", choices=ACCELS)
    p.add_argument("--timeout", type=float, default=1800.0, metavar="S",
                   help="a job that has not finished after S seconds is an infra error")
    p.add_argument("--run-dir", type=Path, help="where to write the combined report "
                   "(default runs/<stamp>-matrix-<plan>); jobs go to RUN_DIR/<job>")
    p.add_argument("--dry-run", action="store_true", help="list the jobs and exit")
    add_cluster_options(p, "run the jobs")
    p.add_argument("--json", action="store_true", help="print results.json")


def _new_run_dir(plan: str) -> Path:
    from harness.paths import runs_root

    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in range(1, 1000):
        d = runs_root() / (f"{stamp}-matrix-{plan}" + (f"-{n}" if n > 1 else ""))
        try:
            d.mkdir(parents=True)  # atomic: two matrices started in one second get two dirs
            return d
        except FileExistsError:
            continue
    raise FileExistsError(d)


def run(args: argparse.Namespace) -> int:
    from harness.core.spec import load_spec
    from harness.errors import UsageError
    from harness.matrix import report
    from harness.matrix.plan import load_plan, parse_shard, shard
    from harness.matrix.schedule import check_admissible, host_capacity, job_cost

    plan = load_plan(args.plan)
    jobs = list(plan.jobs)
    shard_txt = ""
    if args.shard:
        i, n = parse_shard(args.shard)
        jobs = shard(jobs, i, n)
        shard_txt = f"{i}/{n}"
    if args.dry_run:
        for j in jobs:
            print(j.id)
        print(f"{len(jobs)} job(s) of {len(plan.jobs)} in plan {plan.name}")
        return 0
    if args.max_parallel is not None and args.max_parallel < 1:
        raise UsageError("--max-parallel", "must be >= 1")
    costs = {}
    for j in jobs:
        vm = load_spec(j.scenario.path).vm  # a bad scenario is named now, not per job
        costs[j.id] = job_cost(j.vm.ram_mib or vm.ram_mib, j.vm.smp or vm.smp)
    out = args.run_dir.resolve() if args.run_dir else _new_run_dir(plan.name)
    out.mkdir(parents=True, exist_ok=True)
    print(f"matrix run directory: {out}", flush=True)
    t0 = time.monotonic()
    if args.scheduler:
        from harness.matrix.dask_engine import run_dask

        results, kernels = run_dask(args.scheduler, jobs, costs, out, args.accel, args.timeout,
                                    tls_dir=args.tls_dir)
        engine = f"dask {args.scheduler}"
    else:
        from harness.matrix.builds import build_all
        from harness.matrix.local import run_local

        cap = host_capacity(os.cpu_count() or 1, Path("/proc/meminfo").read_text(),
                            args.max_parallel)
        check_admissible(costs, cap)
        kernels = build_all(jobs)
        results = run_local(jobs, kernels, costs, out, cap, args.accel, args.timeout,
                            on_result=lambda r: print(f"  {r.status.value.upper():5} {r.job_id}"
                                                      f"  {r.seconds:.0f}s", flush=True))
        engine = f"local pool ({cap.cores} cores, {cap.ram_mib} MiB)"
    doc = report.matrix_doc(plan.name, results, kernels, engine, time.monotonic() - t0,
                            shard_txt)
    report.write_all(out, doc, results, kernels)
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        print(report.summary_text(doc), end="")
        print(f"run directory: {out}  (matrix.html, results.json, junit.xml, kcidb.json)")
    return int(doc["exit_status"])
