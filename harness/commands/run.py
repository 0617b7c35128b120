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


def add_scenario_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("scenario")
    g.add_argument("--scenario", default=DEFAULT_SCENARIO,
                   help=f"scenario name in scenarios/ or a .toml path (default {DEFAULT_SCENARIO})")
    g.add_argument("--check", action="append", metavar="CHECK",
                   help="run only this check of the scenario; repeatable "
                   "(names: `harness checks --scenario S`)")
    g.add_argument("--duration", type=int, metavar="S",
                   help="mempressure: longest the stress phase may take, in seconds (default: the "
                   "scenario's stress_timeout_s)")
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
        check_kernel_file(args.kernel)
    req = kernel_request(args, spec)
    opts: dict[str, Any] = {}
    if args.no_reclaim:
        opts["no_reclaim"] = True
    if args.duration:
        opts["duration_s"] = args.duration
    return RunOptions(spec=spec, build=req, vm=vm,
                      accel=args.accel, kernel=args.kernel, run_dir=args.run_dir, checks=checks,
                      options=opts, build_progress=terminal_progress())


def run(args: argparse.Namespace) -> int:
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
