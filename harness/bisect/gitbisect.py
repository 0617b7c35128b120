"""Drive ``git bisect run`` over a repository with the harness as the step.

The repository is the user's, so the driver's first duty is to leave it as it
found it: :class:`RepoGuard` records HEAD and whether a bisect was already in
progress, and on the way out -- normal end, exception, Ctrl-C, SIGTERM --
saves ``git bisect log`` into the run directory and resets the bisect it
started. The bisect runs with ``--no-checkout``: git only moves
``BISECT_HEAD``, and the step builds that commit in the harness's own work
tree, so the user's work tree and HEAD are never touched (uncommitted changes
included). A resume replays the saved log (``git bisect replay``) or continues
a bisect still in progress in the repository.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from harness.bisect.nsection import check_endpoints, nsection
from harness.bisect.parallel import BatchRunner, Target
from harness.bisect.step import BisectConfig, StepRunner, git_out, read_steps
from harness.bisect.verdict import StepRecord, verification
from harness.errors import UsageError, raise_terminated
from harness.paths import PROJECT_ROOT
from harness.proc import group_members, stop_process_group

log = logging.getLogger(__name__)

LOG_FILE = "bisect.log"
RUN_LOG = "bisect-run.log"
STOP_GRACE_S = 90.0  # a step needs a moment to take its QEMU down and let make exit

_FIRST_BAD = re.compile(r"^([0-9a-f]{40}) is the first bad commit", re.MULTILINE)
_LOG_FIRST_BAD = re.compile(r"^# first bad commit: \[([0-9a-f]{40})\]", re.MULTILINE)
_SHA_LINE = re.compile(r"^([0-9a-f]{40})$", re.MULTILINE)


def bisect_in_progress(repo: str | Path) -> bool:
    start = git_out(repo, "rev-parse", "--git-path", "BISECT_START")
    p = Path(start)
    return (p if p.is_absolute() else Path(repo) / p).is_file()


def head_ref(repo: str | Path) -> str:
    """The branch HEAD is on, or the commit of a detached HEAD."""
    return (git_out(repo, "symbolic-ref", "-q", "--short", "HEAD", check=False)
            or git_out(repo, "rev-parse", "HEAD"))


class RepoGuard:
    """Restores the repository's HEAD and bisect state as found, whatever ends the bisect.

    A bisect this driver started is always reset (its log is kept in the run
    directory for ``--resume``). A bisect that was already in progress when we
    came (``--resume`` of an interrupted one) is left in progress unless it
    finished -- that is the state we found.
    """

    def __init__(self, repo: str | Path, run_dir: Path) -> None:
        self.repo = str(repo)
        self.run_dir = run_dir
        self.found_in_progress = bisect_in_progress(repo)
        self.orig_head = head_ref(repo)
        self.orig_sha = git_out(repo, "rev-parse", "HEAD")
        self.started = False
        self.finished = False
        self._old_handlers: dict[int, Any] = {}

    def __enter__(self) -> RepoGuard:
        for sig in (signal.SIGTERM, signal.SIGHUP):
            self._old_handlers[sig] = signal.signal(sig, raise_terminated)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            if bisect_in_progress(self.repo):
                save_log(self.repo, self.run_dir)
                if self.started or self.finished:
                    target = [] if self.found_in_progress else [self.orig_head]
                    r = subprocess.run(["git", "-C", self.repo, "bisect", "reset", *target],
                                       capture_output=True, text=True)
                    if r.returncode != 0:
                        log.error("git bisect reset failed: %s", r.stderr.strip())
                    else:
                        log.info("repository restored: bisect reset, HEAD on %s",
                                 head_ref(self.repo))
                else:
                    log.info("the bisect in progress is left as found; resume with --resume")
            if not self.found_in_progress and (head_ref(self.repo) != self.orig_head or
                                               git_out(self.repo, "rev-parse", "HEAD")
                                               != self.orig_sha):
                log.error("HEAD moved during the bisect: was %s, now %s", self.orig_head,
                          head_ref(self.repo))
        finally:
            for sig, h in self._old_handlers.items():
                signal.signal(sig, h)


def save_log(repo: str | Path, run_dir: Path) -> str:
    r = subprocess.run(["git", "-C", str(repo), "bisect", "log"], capture_output=True,
                       text=True)
    if r.returncode == 0 and r.stdout.strip():
        (run_dir / LOG_FILE).write_text(r.stdout)
        return r.stdout
    return ""


def _run_bisect(repo: str, run_dir: Path) -> tuple[int, str]:
    """``git bisect run <python> -m harness.bisect.step RUN_DIR``; returns (status, git's output).

    git runs in its own session so that a terminal Ctrl-C reaches only us; we then
    pass SIGINT on to the step (which takes QEMU down) and wait for it.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT),
                                                    env.get("PYTHONPATH", "")) if p)
    cmd = ["git", "-C", repo, "bisect", "run", sys.executable, "-m", "harness.bisect.step",
           str(run_dir)]
    log.info("running: %s", " ".join(cmd))
    lines: list[str] = []
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            errors="replace", env=env, start_new_session=True, bufsize=1)
    try:
        assert proc.stdout is not None
        with (run_dir / RUN_LOG).open("a") as out:
            for line in proc.stdout:
                lines.append(line)
                out.write(line)
                out.flush()
                log.info("git: %s", line.rstrip())
        rc = proc.wait()
    finally:
        if proc.poll() is None or group_members(proc.pid):
            log.warning("stopping git bisect run and its step")
            stop_process_group(proc, STOP_GRACE_S)
    return rc, "".join(lines)


def parse_outcome(output: str, bisect_log: str) -> tuple[str | None, list[str]]:
    """(first bad commit, candidates when only skipped commits are left)."""
    m = _FIRST_BAD.search(output) or _LOG_FIRST_BAD.search(bisect_log)
    if m:
        return m.group(1), []
    if "only 'skip'ped commits left" in output:
        tail = output.split("could be any of:", 1)[-1]
        return None, _SHA_LINE.findall(tail)
    return None, []


def run_git_bisect(cfg: BisectConfig, resume: bool = False) -> dict[str, Any]:
    """The whole git bisect: start or resume, run, verify, restore. Returns the results doc."""
    assert cfg.repo is not None
    repo = cfg.repo
    run_dir = Path(cfg.run_dir)
    t0 = time.monotonic()
    guard = RepoGuard(repo, run_dir)
    if guard.found_in_progress and not resume:
        raise UsageError(repo, "a bisect is already in progress (see git bisect log); finish "
                         "it with 'git bisect reset' or continue it with --resume")
    cfg.orig_head = cfg.orig_head or guard.orig_head
    cfg.save()
    runner = StepRunner(cfg)
    first_bad: str | None = None
    candidates: list[str] = []
    output = ""
    rc = 0
    verify: list[StepRecord] = []
    with guard:
        if guard.found_in_progress:
            log.info("continuing the bisect in progress in %s", repo)
        elif resume and (run_dir / LOG_FILE).is_file():
            log.info("resuming: replaying %s", run_dir / LOG_FILE)
            guard.started = True
            r = subprocess.run(["git", "-C", repo, "bisect", "replay", str(run_dir / LOG_FILE)],
                               capture_output=True, text=True)
            if r.returncode != 0:
                raise UsageError(str(run_dir / LOG_FILE), "git bisect replay failed",
                                 r.stderr.strip())
        else:
            if not (cfg.good and cfg.bad):
                raise UsageError("--resume", f"nothing to resume: no bisect in progress in "
                                 f"{repo} and no {LOG_FILE} in {run_dir}")
            verify_endpoints(cfg, runner)  # before git is told anything: never trusted
            guard.started = True
            git_out(repo, "bisect", "start", "--no-checkout", cfg.bad, cfg.good)
        blog = save_log(repo, run_dir)
        if not _LOG_FIRST_BAD.search(blog):
            rc, output = _run_bisect(repo, run_dir)
            blog = save_log(repo, run_dir)
        first_bad, candidates = parse_outcome(output, blog)
        if first_bad is None and not candidates:
            raise UsageError(f"git bisect run (exit {rc})", "the bisect did not conclude",
                             "\n".join(output.splitlines()[-20:]))
        if first_bad:
            verify = verify_commit(runner, repo, first_bad)
        guard.finished = True
    doc = git_results(cfg, first_bad, candidates, verify, blog, time.monotonic() - t0)
    return doc


def verify_endpoints(cfg: BisectConfig, runner: StepRunner) -> None:
    """Run --good and --bad first: a good that fails or a bad that passes is exit 2."""
    assert cfg.repo is not None
    recs = [runner.run_target(rev, git_out(cfg.repo, "log", "-1", "--format=%s", rev),
                              runner.request(rev=rev, source=cfg.repo), phase="endpoint")
            for rev in (cfg.good, cfg.bad)]
    check_endpoints(recs[0].verdict, recs[1].verdict, cfg.good[:12], cfg.bad[:12])


def first_parent_range(repo: str, good: str, bad: str) -> list[str]:
    """The commits after ``good`` up to ``bad`` along bad's first parents, oldest first."""
    if subprocess.run(["git", "-C", repo, "merge-base", "--is-ancestor", good, bad],
                      capture_output=True).returncode != 0:
        raise UsageError(f"--good {good[:12]}", f"is not an ancestor of --bad {bad[:12]}")
    out = git_out(repo, "rev-list", "--reverse", "--first-parent", f"{good}..{bad}")
    return out.split()


def run_git_nsection(cfg: BisectConfig) -> dict[str, Any]:
    """``--workers K``: n-section over the first-parent commits good..bad, K-1 per round.

    No ``git bisect`` state is created (the harness builds each commit in its own
    work tree), so the user's repository is only read.
    """
    assert cfg.repo is not None
    repo = cfg.repo
    t0 = time.monotonic()
    commits = first_parent_range(repo, cfg.good, cfg.bad)
    revs = [cfg.good, *commits]  # index 0 = good, len(commits) = bad
    runner = StepRunner(cfg)
    batch = BatchRunner(cfg)

    def targets(ks: list[int]) -> list[Target]:
        return [Target(revs[k], git_out(repo, "log", "-1", "--format=%s", revs[k]),
                       runner.request(rev=revs[k], source=repo)) for k in ks]

    ends = batch.run_targets(targets([0, len(commits)]), "endpoint")
    check_endpoints(ends[0].verdict, ends[1].verdict, cfg.good[:12], cfg.bad[:12])
    result = nsection(0, len(commits), cfg.workers, lambda ks: {
        k: r.verdict for k, r in zip(ks, batch.run_targets(targets(ks), "bisect"), strict=True)})
    verify: list[StepRecord] = []
    first_bad = revs[result.first_bad] if result.first_bad is not None else None
    if result.first_bad is not None:
        verify = batch.run_targets(targets([result.first_bad - 1, result.first_bad]), "verify")
    doc = git_results(cfg, first_bad, [revs[k] for k in result.candidates], verify, "",
                      time.monotonic() - t0)
    doc.update(workers=cfg.workers, rounds=len(result.rounds))
    return doc


def verify_commit(runner: StepRunner, repo: str, sha: str) -> list[StepRecord]:
    """Re-run the first bad commit's parent (must be good) and the commit (must be bad)."""
    out = []
    parent = git_out(repo, "rev-parse", "--verify", "-q", f"{sha}^1", check=False)
    targets = ([parent] if parent else []) + [sha]
    for t in targets:
        subject = git_out(repo, "log", "-1", "--format=%s", t)
        out.append(runner.run_target(t, subject, runner.request(rev=t, source=repo),
                                     phase="verify"))
    return out


def git_results(cfg: BisectConfig, first_bad: str | None, candidates: list[str],
                verify: list[StepRecord], blog: str, wall: float) -> dict[str, Any]:
    assert cfg.repo is not None
    steps = read_steps(Path(cfg.run_dir))
    fb: dict[str, Any] | None = None
    if first_bad:
        fb = {"commit": first_bad,
              "subject": git_out(cfg.repo, "log", "-1", "--format=%s", first_bad)}
    ver = verification(verify)
    status = ("found" if first_bad and ver["ok"] else
              "unverified" if first_bad else "ambiguous")
    return {"mode": "git", "repo": cfg.repo, "good": cfg.good, "bad": cfg.bad,
            "scenario": cfg.scenario, "checks": cfg.checks, "retries": cfg.retries,
            "status": status, "first_bad": fb, "candidates": candidates,
            "verification": ver, "steps": [s.to_json() for s in steps],
            "bisect_log": blog, "wall_s": round(wall, 1), "run_dir": cfg.run_dir}
