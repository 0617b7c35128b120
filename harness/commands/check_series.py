"""``harness check-series SERIES``: every prefix of a series applied, built, booted and judged.

Prefix k is the base (``--source``/``--rev`` with any ``--patches`` beneath, default none)
plus the series' first k patches, built in the lineage's persistent tree -- so each prefix
rebuilds only what its patch touched -- then run through the scenario (``--scenario``,
``--check``). The base itself goes first (row 0) unless ``--skip-base``: a base that already
fails would otherwise blame patch 1. A patch that does not apply ends the walk (every later
prefix contains it); a build failure does not (a later patch may fix it).

``SERIES`` may be ``-``: one patch on stdin, as b4's ``prep-perpatch-check-cmd`` feeds it.
Its ``From <sha>`` line names the commit in the git tree (``--source``, default the current
directory's), and that commit -- the series up to this patch, as committed -- is built,
booted and judged. Nothing is printed when it passes; one line when it does not.

Exit status: 0 every prefix passed; else the first prefix that did not pass decides:
1 a verdict failed, 2 a patch does not apply or does not build (named); 3 when only
infrastructure failed (no boot, lost guest).
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.commands.build import add_build_options
from harness.commands.run import add_duration, add_scenario_selection
from harness.commands.vm_options import add_guest_shape

NAME = "check-series"
HELP = ("apply, build, boot and judge every prefix of a patch series; a per-patch table "
        "(b4 prep-perpatch-check-cmd with '-')")

EXIT_OK, EXIT_FAIL, EXIT_PATCH, EXIT_INFRA = 0, 1, 2, 3
log = logging.getLogger(__name__)
_FROM = re.compile(rb"^From ([0-9a-f]{40}) ", re.MULTILINE)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("series", metavar="SERIES",
                   help="patch series dir (with a 'series' file) or mbox; '-': one patch "
                   "on stdin whose 'From <sha>' commit is in the git tree (b4)")
    add_scenario_selection(p, "check that judges each prefix (default: all of the scenario's)")
    p.add_argument("--skip-base", action="store_true",
                   help="do not run the base (prefix 0) first")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--run-dir", type=Path,
                   help="results directory (default runs/<stamp>-check-series)")
    add_build_options(p)  # --patches: series beneath SERIES (default: none)
    g = p.add_argument_group("guest")
    add_guest_shape(g)
    add_duration(g)


# --- the verdict, pure ----------------------------------------------------------------------

@dataclass
class Row:
    """One prefix: k patches (0 = the base) and what became of it. None: not tried."""

    k: int
    patch: str  # the k-th patch's name ("(base)" for k = 0)
    applies: bool | None = None
    builds: bool | None = None
    boots: bool | None = None
    verdict: str | None = None  # the run's: pass | fail | error | skip
    detail: str = ""
    failed_checks: list[str] = field(default_factory=list)
    run_dir: str = ""
    seconds: float = 0.0
    build_s: float = 0.0

    def status(self) -> int:
        """This prefix's exit status on its own."""
        if self.applies is False or self.builds is False:
            return EXIT_PATCH
        if self.boots is False or self.verdict == "error":
            return EXIT_INFRA
        if self.verdict == "fail":
            return EXIT_FAIL
        return EXIT_OK


def exit_status(rows: Sequence[Row]) -> int:
    """The first prefix whose patch or kernel broke decides (1 or 2); infrastructure
    failures (3) only when nothing else went wrong; 0 when every prefix passed."""
    tried = [r for r in rows if r.applies is not None]
    for r in tried:
        if r.status() in (EXIT_FAIL, EXIT_PATCH):
            return r.status()
    return EXIT_INFRA if any(r.status() == EXIT_INFRA for r in tried) else EXIT_OK


def first_breaks(rows: Sequence[Row]) -> dict[str, int | None]:
    """For each column, the first prefix (k) where it broke, or None."""
    def first(pred: Any) -> int | None:
        return next((r.k for r in rows if pred(r)), None)
    return {"applies": first(lambda r: r.applies is False),
            "builds": first(lambda r: r.builds is False),
            "boots": first(lambda r: r.boots is False),
            "verdict": first(lambda r: r.verdict == "fail")}


def first_failing_checks(rows: Sequence[Row]) -> dict[str, int]:
    """check -> the first prefix that failed it."""
    out: dict[str, int] = {}
    for r in rows:
        for c in r.failed_checks:
            out.setdefault(c, r.k)
    return out


def culprit_line(rows: Sequence[Row]) -> str:
    """One line naming the patch that decided the exit status ("" when all passed)."""
    code = exit_status(rows)
    if code == EXIT_OK:
        return ""
    r = next(r for r in rows if r.applies is not None and r.status() == code)
    what = ("does not apply" if r.applies is False else "does not build" if r.builds is False
            else "does not boot" if r.boots is False else
            f"fails {', '.join(r.failed_checks) or 'its checks'}" if r.verdict == "fail"
            else "could not be judged (infrastructure)")
    who = "the base" if r.k == 0 else f"patch {r.k} ({r.patch})"
    return f"{who} {what}" + (f": {r.detail}" if r.detail and r.verdict != "fail" else "")


def _cell(v: bool | None) -> str:
    return "-" if v is None else "yes" if v else "NO"


def table(rows: Sequence[Row]) -> str:
    width = max([12] + [len(r.patch) + 1 for r in rows])
    width = min(width, 60)
    out = [f"{'#':>3}  {'patch':<{width}} {'applies':<8}{'builds':<7}{'boots':<6}"
           f"{'verdict':<8}{'time':>6}"]
    for r in rows:
        out.append(f"{r.k:>3}  {r.patch[:width]:<{width}} {_cell(r.applies):<8}"
                   f"{_cell(r.builds):<7}{_cell(r.boots):<6}{(r.verdict or '-').upper():<8}"
                   f"{r.seconds:>5.0f}s" + (f"  {r.detail[:90]}" if r.detail and
                                            r.status() else ""))
    fb = first_breaks(rows)
    breaks = [f"{col} at patch {k}" for col, k in fb.items() if k is not None]
    out.append("first break: " + (", ".join(breaks) if breaks else "none"))
    for c, k in first_failing_checks(rows).items():
        out.append(f"  check {c} first fails at patch {k}")
    line = culprit_line(rows)
    out.append(f"check-series: {line}" if line else "check-series: every prefix passed")
    return "\n".join(out)


def commit_of_patch(data: bytes) -> str | None:
    """The commit a ``git format-patch`` patch came from (its ``From <sha>`` line)."""
    m = _FROM.search(data)
    return m.group(1).decode() if m else None


# --- the shell ------------------------------------------------------------------------------

def _is_apply_error(exc: BaseException) -> bool:
    from harness.errors import UsageError

    return (isinstance(exc, UsageError) and exc.culprit.startswith("patch ")
            and exc.message.startswith("does not apply"))


def check_prefix(row: Row, req: Any, args: argparse.Namespace, spec: Any,
                 run_dir: Path) -> Row:
    """Build the prefix, then boot and judge it; fills ``row`` in."""
    from harness import rundir
    from harness.core.runner import RunOptions, run_scenario
    from harness.errors import BuildError, HarnessError, InfraError
    from harness.kernel.build import build_kernel

    t0 = time.monotonic()
    try:
        build_kernel(req)
        row.applies = row.builds = True
    except BuildError as exc:
        row.applies, row.builds, row.detail = True, False, exc.one_line()
    except HarnessError as exc:
        if not _is_apply_error(exc) and not isinstance(exc, InfraError):
            raise  # bad input of this command (a --config that does not exist...): exit 2
        if isinstance(exc, InfraError):
            row.applies, row.detail = True, exc.one_line()
            row.verdict = "error"
        else:
            row.applies, row.detail = False, exc.one_line()
    row.build_s = round(time.monotonic() - t0, 1)
    if row.builds:
        run_dir.mkdir(parents=True, exist_ok=True)
        opts = RunOptions(spec=spec, build=req,
                          vm=spec.vm.override(ram_mib=args.ram, swap_mib=args.swap,
                                              smp=args.smp),
                          accel=args.accel, run_dir=run_dir, checks=tuple(args.check or ()),
                          options={"duration_s": args.duration} if args.duration else {})
        out = run_scenario(opts)
        row.run_dir = str(out.run_dir)
        try:
            meta = json.loads((out.run_dir / rundir.RUN_META).read_text())
            booted = "boot" in (meta.get("timings_s") or {})
        except (OSError, ValueError):
            booted = not out.infra_error
        row.boots = booted
        row.verdict = out.verdict.value
        row.failed_checks = [r.name for r in out.results if r.status.value == "fail"]
        if out.infra_error:
            row.detail = out.infra_error
        elif row.failed_checks:
            row.detail = "failed: " + ", ".join(row.failed_checks)
    row.seconds = round(time.monotonic() - t0, 1)
    return row


def _series_rows(args: argparse.Namespace, spec: Any, root: Path) -> list[Row]:
    import tempfile

    from harness.bisect.series import write_truncated
    from harness.commands.build import overrides_from_args
    from harness.core.request import KernelOverrides, kernel_request
    from harness.kernel.series import load_series

    patches = load_series(Path(args.series))
    o = overrides_from_args(args)
    beneath = o.series or ()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="harness-check-series-") as tmpd:
        for k in range(0 if not args.skip_base else 1, len(patches) + 1):
            row = Row(k, patches[k - 1].name if k else "(base)")
            rows.append(row)
            if any(r.applies is False for r in rows[:-1]):
                row.detail = "not tried: an earlier patch does not apply"
                continue
            top = (write_truncated(patches, k, Path(tmpd)),) if k else ()
            req = kernel_request(spec, KernelOverrides(
                source=o.source, rev=o.rev, series=tuple(beneath) + top,
                fragments=o.fragments, base=o.base, jobs=o.jobs))
            log.info("check-series: prefix %d/%d: %s", k, len(patches), row.patch)
            check_prefix(row, req, args, spec, root / f"prefix-{k:02d}")
    return rows


def _b4_rows(args: argparse.Namespace, spec: Any, root: Path) -> list[Row]:
    """One patch on stdin: test the commit it came from."""
    from harness.bisect.step import git_out
    from harness.commands.build import overrides_from_args
    from harness.core.request import KernelOverrides, kernel_request
    from harness.errors import UsageError

    data = sys.stdin.buffer.read()
    sha = commit_of_patch(data)
    if sha is None:
        raise UsageError("stdin", "not a git format-patch patch (no 'From <sha>' line): "
                         "b4 prep --check feeds those")
    repo = git_out(args.source or ".", "rev-parse", "--show-toplevel")
    if not git_out(repo, "cat-file", "-t", sha, check=False) == "commit":
        raise UsageError(f"stdin: From {sha[:12]}", f"not a commit in {repo}")
    subject = git_out(repo, "log", "-1", "--format=%s", sha)
    o = overrides_from_args(args)
    req = kernel_request(spec, KernelOverrides(source=repo, rev=sha, series=o.series or (),
                                               fragments=o.fragments, base=o.base,
                                               jobs=o.jobs))
    row = Row(1, f"{sha[:12]} {subject}")
    return [check_prefix(row, req, args, spec, root / "prefix-01")]


def run(args: argparse.Namespace) -> int:
    from harness import rundir
    from harness.core.runner import new_run_dir, planned_checks
    from harness.core.spec import load_spec
    from harness.errors import UsageError

    spec = load_spec(args.scenario)
    planned_checks(spec, tuple(args.check or ()))  # an unknown --check is exit 2 now
    b4 = args.series == "-"
    if args.rev and b4:
        raise UsageError("--rev", "not with '-': the patch's commit is the revision")
    if not b4 and not Path(args.series).exists():
        raise UsageError(args.series, "patch series not found")
    root: Path = args.run_dir or new_run_dir("check-series")
    root = root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    rows = _b4_rows(args, spec, root) if b4 else _series_rows(args, spec, root)
    code = exit_status(rows)
    doc = {"kind": "check-series", "series": args.series, "scenario": spec.name,
           "checks": list(args.check or ()), "exit_status": code,
           "culprit": culprit_line(rows) or None, "first_break": first_breaks(rows),
           "first_failing_check": first_failing_checks(rows),
           "prefixes": [asdict(r) for r in rows],
           "wall_s": round(time.monotonic() - t0, 1), "run_dir": str(root)}
    (root / rundir.RESULTS).write_text(json.dumps(doc, indent=2) + "\n")
    (root / "summary.txt").write_text(table(rows) + "\n")
    if b4:
        if code:
            print(f"ERROR: harness check-series: {culprit_line(rows)} (run dir {root})")
    elif args.json:
        print(json.dumps(doc, indent=2))
    else:
        print(table(rows))
        print(f"run directory: {root}  (results.json, summary.txt, prefix-<k>/)")
    return code
