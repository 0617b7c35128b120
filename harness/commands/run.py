"""``harness run``: the main job -- build, boot, run a scenario, print the verdict.

Also home of the scenario options (``--scenario``, ``--check``, ``--duration``,
``--no-reclaim``) that ``bisect`` shares, so each is spelled and checked once.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.commands.build import add_build_options, overrides_from_args, terminal_progress
from harness.commands.vm_options import add_vm_arguments

if TYPE_CHECKING:
    from harness.core.runner import RunOptions
    from harness.core.spec import ScenarioSpec
    from harness.kernel.build import BuildRequest  # noqa: F401 (the annotation)

NAME = "run"
HELP = "build the patched kernel, boot it, run a scenario (default: mempressure), print a verdict"
DEFAULT_SCENARIO = "mempressure"


def add_scenario_selection(g: argparse.ArgumentParser | argparse._ArgumentGroup,
                           check_help: str = "run only this check of the scenario") -> None:
    """--scenario and --check: run, bisect and the matrix's jobs spell them the same."""
    g.add_argument("--scenario", default=DEFAULT_SCENARIO,
                   help=f"scenario name in scenarios/ or a .toml path (default {DEFAULT_SCENARIO})")
    g.add_argument("--check", action="append", metavar="CHECK",
                   help=f"{check_help}; repeatable (names: `harness checks --scenario S`)")


def add_duration(g: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    g.add_argument("--duration", type=int, metavar="S",
                   help="mempressure: longest the stress phase may take, in seconds (default: the "
                   "scenario's stress_timeout_s)")


def add_scenario_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("scenario")
    add_scenario_selection(g)
    add_duration(g)
    g.add_argument("--no-reclaim", action="store_true",
                   help="mempressure negative control: the workload ignores the kernel's "
                   "requests (must be OOM-killed)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_scenario_options(p)
    add_build_options(p)
    add_vm_arguments(p)
    p.add_argument("--json", action="store_true", help="print results.json instead of the table")
    p.add_argument("--kcidb", type=Path, metavar="FILE",
                   help="also write the results as KCIDB v5.3 JSON to FILE")
    p.add_argument("--known-issues", type=Path, metavar="FILE",
                   help="console findings already triaged, on top of the repository's "
                   "known-issues.toml: policy warn reports a match without failing the run")
    p.add_argument("--repeat", type=int, metavar="N",
                   help="N >= 2 runs of the same request, in parallel as the machine admits "
                   "(the kernel built once): RUN_DIR/repeat-<i>/ and a combined results.json "
                   "with pass rates and measurement spreads; exit 1 when any check is flaky")


def kernel_request(args: argparse.Namespace, spec: ScenarioSpec) -> BuildRequest:
    """The scenario's kernel ([kernel]), with each build option the user gave replacing
    its part (the one rule: :func:`harness.core.request.kernel_request`)."""
    from harness.core.request import kernel_request as resolve

    return resolve(spec, overrides_from_args(args))


def run_options(args: argparse.Namespace) -> RunOptions:
    """Options -> one RunOptions: the scenario's defaults, overridden by what the user gave."""
    from harness.commands.vm_options import vm_settings_from_args
    from harness.core.runner import RunOptions, planned_checks
    from harness.core.spec import load_spec
    from harness.vm.preflight import check_kernel_file, check_ram_on_host

    spec = load_spec(args.scenario)
    checks = tuple(args.check or ())
    planned_checks(spec, checks)  # an unknown --check fails before anything is built
    vm = vm_settings_from_args(args, spec.vm)
    check_ram_on_host(vm.ram_mib)  # ... and so does RAM the host does not have
    if args.kernel is not None:
        from harness.arch import get_arch
        from harness.commands.build import arch_from_args

        arch, page = arch_from_args(args)
        check_kernel_file(args.kernel, get_arch(arch), page)
    req = kernel_request(args, spec)
    opts: dict[str, Any] = {}
    if args.no_reclaim:
        opts["no_reclaim"] = True
    if args.duration:
        opts["duration_s"] = args.duration
    if args.known_issues is not None:
        from harness.console.known import load_known
        from harness.errors import UsageError

        if not args.known_issues.is_file():
            raise UsageError(f"--known-issues {args.known_issues}", "no such file")
        load_known(args.known_issues)  # a mistake in it is exit 2 now, naming file:key
    return RunOptions(spec=spec, build=req, vm=vm,
                      accel=args.accel, kernel=args.kernel, run_dir=args.run_dir, checks=checks,
                      options=opts, build_progress=terminal_progress(),
                      known_issues=args.known_issues)


def run(args: argparse.Namespace) -> int:
    if args.repeat is not None:
        return run_repeat(args)
    # Imported here so that `harness --help` stays fast and independent of the VM stack.
    from harness.core import report
    from harness.core.runner import run_scenario
    from harness.errors import exit_for_verdict

    outcome = run_scenario(run_options(args))
    if args.kcidb:
        from harness.kcidb import from_run_dir

        args.kcidb.write_text(json.dumps(from_run_dir(outcome.run_dir), indent=2) + "\n")
    if args.json:
        print(json.dumps(outcome.doc, indent=2, default=str))
    else:
        print(report.verdict_table(outcome.doc))
        print(f"run directory: {outcome.run_dir}  (report.html, results.json, junit.xml)")
    return exit_for_verdict(outcome.verdict.value)


def check_repeat_args(args: argparse.Namespace) -> None:
    from harness.errors import UsageError

    if args.repeat < 2:
        raise UsageError(f"--repeat {args.repeat}", "needs N >= 2 (one run is plain `harness run`)")
    for given, opt in ((args.kernel, "--kernel"), (args.no_reclaim, "--no-reclaim")):
        if given:
            raise UsageError(f"--repeat with {opt}", "not supported")


def run_repeat(args: argparse.Namespace) -> int:
    """N runs through the matrix's local pool, then one combined verdict."""
    import os
    import time

    from harness import rundir
    from harness.core import repeat
    from harness.core.runner import new_run_dir
    from harness.kernel.build import build_kernel
    from harness.matrix.builds import KernelBuild
    from harness.matrix.job import build_name
    from harness.matrix.local import run_local
    from harness.matrix.plan import Job, KernelSpec, VMSize
    from harness.matrix.plan import ScenarioSpec as PlanScenario
    from harness.matrix.schedule import check_admissible, host_capacity, job_cost

    check_repeat_args(args)
    opts = run_options(args)
    req = opts.build
    root: Path = args.run_dir or new_run_dir(f"{opts.spec.name}-repeat")
    root.mkdir(parents=True, exist_ok=True)
    kspec = KernelSpec(name="kernel", source=None if req.source is None else str(req.source),
                       rev=req.rev, series=tuple(str(s) for s in req.series),
                       fragments=tuple(req.fragments), base=req.base, arch=req.arch,
                       page_size=req.page_size)
    repeat_job = _repeat_job_class()
    scen = PlanScenario(opts.spec.name, str(opts.spec.path), args.duration, tuple(opts.checks))
    jobs: list[Job] = [repeat_job(kspec, scen, VMSize(f"repeat-{i}", opts.vm.ram_mib,
                                                      opts.vm.swap_mib, opts.vm.smp), i)
            for i in range(1, args.repeat + 1)]
    costs = {j.id: job_cost(opts.vm.ram_mib, opts.vm.smp) for j in jobs}
    cap = host_capacity(os.cpu_count() or 1, Path("/proc/meminfo").read_text())
    check_admissible(costs, cap)
    t0 = time.monotonic()
    art = build_kernel(req, progress=opts.build_progress)  # once: the jobs' builds are hits
    kb = KernelBuild("kernel", key=art.key, bzimage=str(art.bzimage), artifact_dir=str(art.dir),
                     release=str(art.metadata.get("kernel_release", "")))
    results = run_local(jobs, {build_name(jobs[0]): kb}, costs, root, cap, accel=args.accel)
    docs: list[dict[str, Any] | None] = []
    for r in results:
        try:
            docs.append(json.loads((Path(r.run_dir) / rundir.RESULTS).read_text()))
        except (OSError, ValueError):
            docs.append(None)
    doc = repeat.aggregate(docs, list(opts.checks), [Path(r.run_dir).name for r in results])
    doc["seconds"] = round(time.monotonic() - t0, 1)
    doc["kernel"] = kb.to_json()
    (root / rundir.RESULTS).write_text(json.dumps(doc, indent=2) + "\n")
    (root / rundir.REPORT).write_text(repeat.summary_html(doc))
    (root / rundir.JUNIT).write_text(repeat.junit_xml(doc) + "\n")
    if args.kcidb:
        from harness.kcidb import from_repeat_dir

        args.kcidb.write_text(json.dumps(from_repeat_dir(root), indent=2) + "\n")
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        print(repeat.summary_table(doc))
        print(f"run directory: {root}  (results.json, junit.xml, report.html, repeat-<i>/)")
    return repeat.exit_for(doc["verdict"])


def _repeat_job_class() -> type:
    from dataclasses import dataclass

    from harness.matrix.plan import Job

    @dataclass(frozen=True)
    class RepeatJob(Job):
        """A matrix job whose run dir is ``repeat-<index>``."""

        index: int = 1

        @property
        def id(self) -> str:
            return f"repeat-{self.index}"

        @property
        def slug(self) -> str:
            return f"repeat-{self.index}"

    return RepeatJob
