"""One bisect step: build the target, boot it, run the scenario's chosen checks, give a verdict.

It runs in two ways. ``git bisect run`` calls ``python -m harness.bisect.step RUN_DIR``
(a separate process per commit, as git wants an exit status); the driver calls
:meth:`StepRunner.run_target` in-process for the verification runs and the series
search. Either way every step appends one JSON line to ``RUN_DIR/steps.jsonl``,
which is how the driver (and a resumed bisect) learns what happened.

The step builds with :func:`build_kernel` from the harness's own work tree at
the commit under test -- never from the user's checkout -- so it does not care
whether ``git bisect`` checked anything out.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.bisect.verdict import (
    EXIT_ABORT,
    Attempt,
    StepRecord,
    decide,
    verdict_for_error,
    verdict_for_statuses,
)
from harness.core.results import Status
from harness.errors import EXIT_INTERRUPTED, HarnessError, UsageError, raise_terminated
from harness.kernel.build import BuildRequest

log = logging.getLogger(__name__)

CONFIG_FILE = "bisect.json"
STEPS_FILE = "steps.jsonl"


@dataclass
class BisectConfig:
    """Everything a step needs, saved in the run directory so that a resume needs no options."""

    mode: str  # "git" or "series"
    run_dir: str
    scenario: str
    checks: list[str]
    retries: int = 0
    fragments: list[str] = field(default_factory=list)
    base: str = "tinyconfig"
    jobs: int | None = None
    series: list[str] = field(default_factory=list)  # git: on top of each commit; series: bisected
    repo: str | None = None
    source: str | None = None  # series mode: the base tree
    rev: str | None = None  # series mode: revision of a git base tree
    good: str = ""
    bad: str = ""
    ram_mib: int | None = None
    swap_mib: int | None = None
    smp: int | None = None
    accel: str = "auto"
    arch: str = "x86_64"  # --arch / --page-size: every step's kernel and guest
    page_size: str | None = None
    duration: int | None = None
    orig_head: str = ""
    workers: int = 1  # > 1: n-section, workers - 1 points per round, run in parallel
    scheduler: str | None = None  # a Dask scheduler for those rounds (default: local pool)
    tls_dir: str | None = None  # its client certificates, for a tls:// scheduler
    # series mode: what the base tree was when the bisect started (version, tarball hash):
    # Debian's tarball moves, and a resume against another one would mix two kernels.
    source_record: dict[str, Any] = field(default_factory=dict)
    # adaptive repeats (harness.bisect.adaptive): max_runs 0 = the classic one run per step
    metric: str | None = None  # bisect a measurement (check.name or name), not a verdict
    threshold: str | None = None  # its --threshold: absolute, or "0.75x" of the good median
    min_runs: int = 3
    max_runs: int = 0
    confidence: float = 0.95  # the result's target: the product over the steps

    @property
    def adaptive(self) -> bool:
        return self.max_runs > 0

    def save(self) -> None:
        path = Path(self.run_dir) / CONFIG_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n")
        tmp.replace(path)

    @classmethod
    def load(cls, run_dir: Path) -> BisectConfig:
        path = run_dir / CONFIG_FILE
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise UsageError(str(path), f"not a bisect run directory: {exc}") from exc
        data["run_dir"] = str(run_dir)
        return cls(**data)


def read_steps(run_dir: Path) -> list[StepRecord]:
    """Every step recorded so far (by this process, git bisect run's steps, earlier runs)."""
    path = run_dir / STEPS_FILE
    if not path.is_file():
        return []
    out = []
    for line in path.read_text().splitlines():
        if line.strip():
            try:
                out.append(StepRecord.from_json(json.loads(line)))
            except (ValueError, KeyError, TypeError):
                log.warning("%s: ignoring a corrupt line (an interrupted step?)", path)
    return out


def append_step(run_dir: Path, rec: StepRecord) -> None:
    with (run_dir / STEPS_FILE).open("a") as f:
        f.write(json.dumps(rec.to_json()) + "\n")


@dataclass
class Outcome:
    """What one execution produced, reduced to what the verdict needs."""

    statuses: dict[str, Status]
    infra_error: str
    run_dir: str
    build_s: float


ExecuteFn = Callable[[BuildRequest, Path], Outcome]
FAKE_ENV = "HARNESS_BISECT_FAKE_EXECUTE"


def _fake_execute() -> ExecuteFn | None:
    """Test seam: ``$HARNESS_BISECT_FAKE_EXECUTE=module:function`` replaces build+boot+run.

    The unit tests drive the real ``git bisect run`` -> step process -> verdict path
    with it, in a second instead of a kernel build per commit.
    """
    spec = os.environ.get(FAKE_ENV)
    if not spec:
        return None
    mod, _, fn = spec.partition(":")
    func: ExecuteFn = getattr(importlib.import_module(mod), fn)
    return func


class StepRunner:
    """Builds and runs targets for one bisect configuration."""

    def __init__(self, cfg: BisectConfig) -> None:
        from harness.core.spec import load_spec

        self.cfg = cfg
        self.run_dir = Path(cfg.run_dir)
        self.spec = load_spec(cfg.scenario)

    def request(self, rev: str | None = None, series: tuple[Path, ...] | None = None,
                source: str | None = None) -> BuildRequest:
        """A step's kernel, by the one rule (core.request): the bisect always names its series
        (git mode: ``--patches`` on top of each commit, none by default, since the history
        carries what is tested; series mode: the first k patches) and its fragments (resolved
        from ``--config``, else the scenario's, when the bisect started)."""
        from harness.core.request import KernelOverrides, kernel_request

        return kernel_request(self.spec, KernelOverrides(
            source=source, rev=rev,
            series=series if series is not None else tuple(Path(s) for s in self.cfg.series),
            fragments=tuple(self.cfg.fragments), base=self.cfg.base, jobs=self.cfg.jobs,
            arch=self.cfg.arch, page_size=self.cfg.page_size))

    def execute(self, req: BuildRequest, step_dir: Path) -> Outcome:
        """Build, boot, run the scenario. Raises what build/boot raise (see verdict_for_error)."""
        from harness.core.runner import RunOptions, run_scenario
        from harness.kernel.build import build_kernel

        t0 = time.monotonic()
        build_kernel(req)
        build_s = time.monotonic() - t0
        step_dir.mkdir(parents=True, exist_ok=True)
        opts = RunOptions(  # the runner finds the artifact in the cache at once
            spec=self.spec, build=req,
            vm=self.spec.vm.override(ram_mib=self.cfg.ram_mib, swap_mib=self.cfg.swap_mib,
                                     smp=self.cfg.smp),
            accel=self.cfg.accel, run_dir=step_dir, checks=tuple(self.cfg.checks),
            options={"duration_s": self.cfg.duration} if self.cfg.duration else {})
        outcome = run_scenario(opts)
        return Outcome({r.name: r.status for r in outcome.results}, outcome.infra_error,
                       str(outcome.run_dir), build_s)

    def attempt(self, req: BuildRequest, step_dir: Path) -> Attempt:
        """One execution, its outcome (or error) mapped to a verdict."""
        t0 = time.monotonic()
        execute = _fake_execute() or self.execute
        try:
            out = execute(req, step_dir)
        except HarnessError as exc:
            verdict = verdict_for_error(exc)
            if verdict is None:
                raise
            secs = time.monotonic() - t0
            log.warning("step: %s -> %s", exc.one_line(), verdict.value)
            step_dir.mkdir(parents=True, exist_ok=True)
            (step_dir / "error.txt").write_text(f"{exc.one_line()}\n{exc.detail}\n")
            return Attempt(verdict, round(secs, 1), exc.one_line(), round(secs, 1), 0.0,
                           str(step_dir))
        verdict = verdict_for_statuses(out.statuses, self.cfg.checks)
        failed = [n for n, st in out.statuses.items() if st.value != "pass"]
        detail = (out.infra_error or
                  (f"not passed: {', '.join(failed)}" if failed else "all checks passed"))
        secs = time.monotonic() - t0
        return Attempt(verdict, round(secs, 1), detail, round(out.build_s, 1),
                       round(secs - out.build_s, 1), out.run_dir,
                       {k: v.value for k, v in out.statuses.items()})

    def run_target(self, target: str, label: str, req: BuildRequest,
                   phase: str = "bisect") -> StepRecord:
        """Decide one target's verdict (with re-runs of a bad one) and record it."""
        index = len(read_steps(self.run_dir)) + 1
        short = target[:12].replace("=", "")
        t0 = time.monotonic()
        log.info("step %d (%s): %s %s", index, phase, target[:12], label)

        def one(n: int) -> Attempt:
            return self.attempt(req, self.run_dir / "steps" / f"{index:02d}-{short}-{n}")

        verdict, attempts, note = decide(one, self.cfg.retries)
        rec = StepRecord(target, label, verdict, round(time.monotonic() - t0, 1), attempts, note,
                         phase)
        append_step(self.run_dir, rec)
        log.info("step %d: %s %s -> %s in %.0fs%s", index, target[:12], label, verdict.value,
                 rec.seconds, f" ({note})" if note else "")
        return rec


def git_out(repo: str | Path, *args: str, check: bool = True) -> str:
    r = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    if check and r.returncode != 0:
        raise UsageError(f"git {' '.join(args)}", r.stderr.strip() or f"exit {r.returncode}")
    return r.stdout.strip()


def commit_under_test(repo: str | Path) -> str:
    """BISECT_HEAD in ``--no-checkout`` mode (ours), else HEAD (a bisect the user started)."""
    sha = git_out(repo, "rev-parse", "--verify", "-q", "BISECT_HEAD^{commit}", check=False)
    return sha or git_out(repo, "rev-parse", "HEAD^{commit}")


def main(argv: list[str] | None = None) -> int:
    """Entry point for ``git bisect run``: exit 0 good, 1 bad, 125 skip, 255 abort.

    Logs go to stderr, which the driver captures with git's output into bisect-run.log.
    """
    args = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname).1s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    # SIGTERM/SIGHUP unwind like Ctrl-C: the Machine context manager then takes QEMU down.
    signal.signal(signal.SIGTERM, raise_terminated)
    signal.signal(signal.SIGHUP, raise_terminated)
    if len(args) != 1:
        log.error("usage: python -m harness.bisect.step RUN_DIR")
        return EXIT_ABORT
    try:
        cfg = BisectConfig.load(Path(args[0]))
        assert cfg.repo is not None
        runner = StepRunner(cfg)
        sha = commit_under_test(cfg.repo)
        subject = git_out(cfg.repo, "log", "-1", "--format=%s", sha)
        rec = runner.run_target(sha, subject, runner.request(rev=sha, source=cfg.repo))
        return rec.verdict.exit_code
    except KeyboardInterrupt:
        log.error("step interrupted: aborting the bisect")
        return EXIT_INTERRUPTED
    except HarnessError as exc:
        log.error("step cannot go on, aborting the bisect: %s", exc.one_line())
        return EXIT_ABORT
    except Exception:
        # A harness bug is not evidence about the kernel: abort rather than blame or skip.
        log.exception("step crashed: aborting the bisect")
        return EXIT_ABORT


if __name__ == "__main__":
    sys.exit(main())
