"""``harness bisect``: find the commit (``--repo``) or the patch (``--patches``) that broke a check.

Exit status: 0 when a single culprit is named and its verification re-runs agree
(parent good, culprit bad) -- with adaptive repeats (``--metric``, ``--max-runs``): when
its confidence reaches ``--confidence``; 3 when the bisect could not name one (only
skipped commits left, the re-runs disagree, inconclusive, flaky at the good endpoint);
2 for bad options; 130 on Ctrl-C (the repository is restored and the run directory can
be resumed).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING

from harness.commands.build import add_build_options
from harness.commands.cluster_options import add_cluster_options
from harness.commands.run import add_duration, add_scenario_selection
from harness.commands.vm_options import add_guest_shape

if TYPE_CHECKING:
    from harness.bisect.step import BisectConfig

NAME = "bisect"
HELP = ("find the first commit (--repo, git bisect run) or patch (--patches, binary search) "
        "that fails the named checks")

def sampling_defaults() -> tuple[int, int, float]:
    from harness.bisect.sampling import DEFAULT_CONFIDENCE, DEFAULT_MAX_RUNS, DEFAULT_MIN_RUNS

    return DEFAULT_MIN_RUNS, DEFAULT_MAX_RUNS, DEFAULT_CONFIDENCE


def adaptive_settings(args: argparse.Namespace) -> dict[str, object]:
    """The adaptive-repeat part of the config (max_runs 0: classic), checked (exit 2)."""
    from harness.bisect.sampling import DEFAULT_MAX_RUNS, parse_threshold
    from harness.errors import UsageError

    if bool(args.metric) != bool(args.threshold):
        raise UsageError("--metric" if args.threshold else "--threshold",
                         "--metric and --threshold go together")
    if args.threshold:
        parse_threshold(args.threshold)
    max_runs = args.max_runs if args.max_runs is not None else (
        DEFAULT_MAX_RUNS if args.metric else 0)
    if not max_runs:
        return {"max_runs": 0}
    if args.min_runs < 1:
        raise UsageError(f"--min-runs {args.min_runs}", "must be >= 1")
    if max_runs < max(2, args.min_runs):
        raise UsageError(f"--max-runs {max_runs}", f"must be >= 2 and >= --min-runs "
                         f"({args.min_runs})")
    if not 0 < args.confidence < 1:
        raise UsageError(f"--confidence {args.confidence}", "must be between 0 and 1")
    if args.retries:
        raise UsageError("--retries", "not with adaptive repeats (--metric/--max-runs): "
                         "they decide how often a revision runs")
    if args.resume:
        raise UsageError("--resume", "nothing to resume: no bisect was started in --run-dir "
                         "(a resumed bisect takes its settings from there, not from "
                         "--metric/--max-runs)")
    return {"metric": args.metric, "threshold": args.threshold, "min_runs": args.min_runs,
            "max_runs": max_runs, "confidence": args.confidence}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--repo", help="kernel git repository to bisect (git bisect run, "
                   "--no-checkout: your work tree and HEAD are not touched)")
    p.add_argument("--good", help="git mode: a good revision; series mode: number of leading "
                   "patches known good (default 0)")
    p.add_argument("--bad", help="git mode: a bad revision; series mode: number of leading "
                   "patches known bad (default all)")
    add_scenario_selection(p, "check that decides the verdict (default: all of the "
                           "scenario's)")
    p.add_argument("--retries", type=int, default=0,
                   help="re-run a bad verdict N more times; any pass makes the step 'skip' "
                   "(flaky) instead of 'bad'")
    a = p.add_argument_group("adaptive repeats (each revision run several times, on the "
                             "parallel pool; a confidence for the result)")
    a.add_argument("--metric", metavar="NAME",
                   help="bisect a measurement instead of a verdict: check.name or name, as in "
                   "results.json's measurements (needs --threshold)")
    a.add_argument("--threshold", metavar="X",
                   help="with --metric: a run is bad beyond X -- a number, or a factor of the "
                   "good endpoint's median (0.75x: below 3/4 of it; 1.5x: above 1.5 times "
                   "it); the bad side is the bad endpoint's")
    a.add_argument("--min-runs", type=int, default=sampling_defaults()[0], metavar="N",
                   help="runs of each revision before any call (default %(default)s)")
    a.add_argument("--max-runs", type=int, metavar="N",
                   help="most runs of one revision while its call is uncertain (default "
                   f"{sampling_defaults()[1]} with --metric); with --check it turns on the "
                   "flake-aware rule: bad needs max(2, n/6) failures, under half is flaky")
    a.add_argument("--confidence", type=float, default=sampling_defaults()[2], metavar="P",
                   help="the result's confidence target, the product over its steps "
                   "(default %(default)s); below it the result is inconclusive, with a range")
    p.add_argument("--workers", type=int, default=1, metavar="K",
                   help="n-section on K workers: test K-1 points per round in parallel "
                   "(local pool, or --scheduler); 1 = plain bisect. (-j/--jobs is make's)")
    p.add_argument("--run-dir", type=Path, help="results directory (default runs/<stamp>-bisect)")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted bisect: the one in progress in --repo, or "
                   "the one recorded in --run-dir")
    add_cluster_options(p, "with --workers: run each round's points")
    add_build_options(p)
    g = p.add_argument_group("guest")
    add_guest_shape(g)
    add_duration(g)


def _config_from_args(args: argparse.Namespace, run_dir: Path) -> BisectConfig:
    from harness.bisect.step import BisectConfig, git_out
    from harness.commands.build import arch_from_args
    from harness.core.runner import planned_checks
    from harness.core.spec import load_spec
    from harness.errors import UsageError
    from harness.kernel.build import (
        DEFAULT_FRAGMENTS,
        BuildRequest,
        resolve_inputs,
        source_record,
    )

    sc = load_spec(args.scenario)  # a bad name fails now, not as 'skip' on every step
    arch, page = arch_from_args(args)
    checks = [c.name for c in planned_checks(sc, args.check or ())]
    frags = (tuple(f for c in args.config for f in c.split(",") if f) if args.config
             else sc.fragments or DEFAULT_FRAGMENTS)
    series = [str(Path(s).resolve()) for s in (args.patches or []) if str(s) != "none"]
    if args.retries < 0:
        raise UsageError("--retries", "must be >= 0")
    if args.workers < 1:
        raise UsageError(f"--workers {args.workers}", "must be >= 1")
    if args.scheduler and args.workers < 2:
        raise UsageError("--scheduler", "needs --workers K with K >= 2")
    common = dict(run_dir=str(run_dir), scenario=str(sc.path), checks=list(checks),
                  retries=args.retries, fragments=list(frags), base=args.base, jobs=args.jobs,
                  series=series, ram_mib=args.ram, swap_mib=args.swap, smp=args.smp,
                  accel=args.accel, duration=args.duration, workers=args.workers,
                  arch=arch, page_size=page,
                  scheduler=args.scheduler,
                  tls_dir=str(args.tls_dir) if args.tls_dir else None,
                  **adaptive_settings(args))
    if args.repo:
        if args.source or args.rev:
            raise UsageError("--source/--rev", "not with --repo: the repository is the source")
        repo = git_out(args.repo, "rev-parse", "--show-toplevel")
        if not args.resume and not (args.good and args.bad):
            raise UsageError("--good/--bad", "both are needed with --repo")
        good = bad = ""
        if args.good and args.bad:
            good = git_out(repo, "rev-parse", "--verify", f"{args.good}^{{commit}}")
            bad = git_out(repo, "rev-parse", "--verify", f"{args.bad}^{{commit}}")
            # Fragments, base and any --patches on top are checked once, up front.
            resolve_inputs(BuildRequest(source=repo, rev=bad, series=tuple(
                Path(s) for s in series), fragments=frags, base=args.base, arch=arch,
                page_size=page))
        return BisectConfig(mode="git", repo=repo, good=good, bad=bad, **common)
    if not series:
        raise UsageError("--repo or --patches", "give a git repository to bisect, or a series")
    for opt in ("good", "bad"):
        v = getattr(args, opt)
        if v is not None and not v.isdigit():
            raise UsageError(f"--{opt} {v}", "with --patches, a number of leading patches")
    inputs = resolve_inputs(BuildRequest(source=args.source, rev=args.rev,
                                         series=tuple(Path(s) for s in series),
                                         fragments=frags, base=args.base, arch=arch,
                                         page_size=page))
    return BisectConfig(mode="series", source=args.source, rev=args.rev, good=args.good or "0",
                        bad=args.bad or "", source_record=source_record(inputs.source),
                        **common)


def same_source(cfg: BisectConfig) -> None:
    """A resumed series bisect must see the base tree it started on (exit 2 otherwise)."""
    from harness.errors import UsageError
    from harness.kernel.build import source_record
    from harness.kernel.source import resolve_source

    if cfg.mode != "series" or not cfg.source_record:
        return
    now = source_record(resolve_source(cfg.source, cfg.rev))
    was = cfg.source_record
    if now["identity"] != was["identity"]:
        raise UsageError("--resume", f"this bisect started on {was.get('version')} "
                         f"({was.get('package') or was['identity'][:28]}); the source is now "
                         f"{now.get('version')} ({now.get('package') or now['identity'][:28]}):"
                         " start a new bisect, or point --source at the original tarball")


def run(args: argparse.Namespace) -> int:
    # Imported here so that `harness --help` stays fast and independent of the VM stack.
    from harness.bisect.gitbisect import run_git_bisect, run_git_nsection
    from harness.bisect.report import summary_text, write_results
    from harness.bisect.series import run_series_bisect
    from harness.bisect.step import CONFIG_FILE, BisectConfig
    from harness.errors import EXIT_INFRA, EXIT_OK
    from harness.paths import runs_root

    if args.resume and args.run_dir and (args.run_dir / CONFIG_FILE).is_file():
        cfg = BisectConfig.load(args.run_dir.resolve())
        same_source(cfg)
    else:
        run_dir = (args.run_dir or runs_root() / f"{time.strftime('%Y%m%d-%H%M%S')}-bisect")
        run_dir = run_dir.resolve()
        run_dir.mkdir(parents=True, exist_ok=True)
        cfg = _config_from_args(args, run_dir)
    Path(cfg.run_dir).mkdir(parents=True, exist_ok=True)
    cfg.save()
    print(f"bisect run directory: {cfg.run_dir}", flush=True)
    if cfg.adaptive:
        from harness.bisect.adaptive import run_git_adaptive, run_series_adaptive

        doc = (run_git_adaptive(cfg, resume=args.resume) if cfg.mode == "git"
               else run_series_adaptive(cfg, resume=args.resume))
    elif cfg.mode == "git" and cfg.workers > 1:
        doc = run_git_nsection(cfg)
    elif cfg.mode == "git":
        doc = run_git_bisect(cfg, resume=args.resume)
    else:
        doc = run_series_bisect(cfg, resume=args.resume)
    write_results(Path(cfg.run_dir), doc)
    print(summary_text(doc), end="")
    print(f"run directory: {cfg.run_dir}  (results.json, summary.txt"
          f"{', bisect.log' if cfg.mode == 'git' else ''}, steps/)")
    return EXIT_OK if doc["status"] == "found" else EXIT_INFRA
