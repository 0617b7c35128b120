"""``harness run``: the main job -- build, boot, run a scenario, print the verdict."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from harness.commands.build import add_build_options, request_from_args, terminal_progress

NAME = "run"
HELP = "build the patched kernel, boot it, run a scenario (default: mempressure), print a verdict"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scenario", default="mempressure",
                   help="scenario name in scenarios/ or a .toml path (default mempressure)")
    add_build_options(p)
    g = p.add_argument_group("guest")
    g.add_argument("--kernel", type=Path, help="use this bzImage instead of building one")
    g.add_argument("--ram", type=int, help="guest RAM in MiB (scenario default: 256)")
    g.add_argument("--swap", type=int, help="swap disk in MiB, 0 for none (default: 256)")
    g.add_argument("--smp", type=int, help="guest CPUs (default 1)")
    g.add_argument("--accel", default="auto", choices=("auto", "kvm", "tcg"),
                   help="auto uses KVM only when a guest really boots under it")
    g.add_argument("--duration", type=int, help="stress phase in seconds (default: scenario's)")
    g.add_argument("--no-reclaim", action="store_true",
                   help="negative control: the workload ignores the kernel's requests (must OOM)")
    p.add_argument("--run-dir", type=Path, help="where to write results (default runs/<stamp>)")
    p.add_argument("--json", action="store_true", help="print results.json instead of the table")


def run(args: argparse.Namespace) -> int:
    # Imported here so that `harness --help` stays fast and independent of the VM stack.
    from harness.scenario import report
    from harness.scenario.api import EXIT_FOR, run_and_report, scenario_build_request
    from harness.scenario.runner import RunOptions
    from harness.scenario.spec import load_scenario

    sc = load_scenario(args.scenario)
    kernel_opts = (args.source, args.rev, args.patches, args.config, args.jobs)
    req = (request_from_args(args) if any(o is not None for o in kernel_opts)
           or args.base != "tinyconfig" else scenario_build_request(sc))
    if args.run_dir:
        args.run_dir.mkdir(parents=True, exist_ok=True)
    opts = RunOptions(
        scenario=sc, build=req,
        ram_mib=args.ram or sc.get("vm", "ram_mib"),
        swap_mib=args.swap if args.swap is not None else sc.get("vm", "swap_mib"),
        smp=args.smp or sc.get("vm", "smp"), accel=args.accel,
        stress_s=args.duration or sc.get("notifications", "stress_s"),
        no_reclaim=args.no_reclaim, run_dir=args.run_dir, kernel=args.kernel,
        build_progress=terminal_progress())
    outcome, doc = run_and_report(opts)
    if args.json:
        print(json.dumps(doc, indent=2, default=str))
    else:
        print(report.verdict_table(doc))
        print(f"run directory: {outcome.run_dir}  (report.html, results.json, junit.xml)")
    return EXIT_FOR[outcome.verdict]
