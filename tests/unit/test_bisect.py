"""harness bisect without a VM: verdicts, retries, the series search, and the git driver.

The git-driver tests run the real ``git bisect run`` -> ``python -m harness.bisect.step``
path over a tiny repository; only build+boot+scenario is replaced (through
``$HARNESS_BISECT_FAKE_EXECUTE``) by a fake that reads the verdict from a file
in the commit under test.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.bisect import gitbisect
from harness.bisect.series import search, write_truncated
from harness.bisect.step import FAKE_ENV, BisectConfig, Outcome, StepRunner, read_steps
from harness.bisect.verdict import (
    EXIT_ABORT,
    Attempt,
    Verdict,
    decide,
    verdict_for_error,
    verdict_for_statuses,
)
from harness.cli import main
from harness.core.results import Status
from harness.errors import BuildError, CheckFailed, InfraError, SetupError, UsageError
from harness.kernel.build import BuildRequest
from harness.kernel.series import Patch, load_series
from harness.proc import pid_alive

# --- verdict mapping ---------------------------------------------------------------------------


def test_verdict_exit_codes() -> None:
    assert (Verdict.GOOD.exit_code, Verdict.BAD.exit_code, Verdict.SKIP.exit_code) == (0, 1, 125)
    assert EXIT_ABORT >= 128  # git bisect run aborts on it: never read as a verdict


def test_statuses_to_verdict() -> None:
    P, F, E = Status.PASS, Status.FAIL, Status.ERROR
    assert verdict_for_statuses({"contract": P}, ["contract"]) == Verdict.GOOD
    assert verdict_for_statuses({"contract": F}, ["contract"]) == Verdict.BAD
    assert verdict_for_statuses({"contract": E}, ["contract"]) == Verdict.SKIP
    assert verdict_for_statuses({}, ["contract"]) == Verdict.SKIP  # did not run: no evidence
    # only the named checks count
    assert verdict_for_statuses({"contract": P, "notifications": F}, ["contract"]) == Verdict.GOOD
    assert verdict_for_statuses({"a": P, "b": E}, ["a", "b"]) == Verdict.SKIP
    assert verdict_for_statuses({"a": F, "b": E}, ["a", "b"]) == Verdict.BAD


def test_errors_to_verdict() -> None:
    assert verdict_for_error(BuildError("mm/vmpressure.c:10", "expected ';'")) == Verdict.SKIP
    assert verdict_for_error(InfraError("qemu", "no boot")) == Verdict.SKIP
    assert verdict_for_error(UsageError("patch x", "does not apply")) == Verdict.SKIP
    assert verdict_for_error(CheckFailed("contract", "read-back")) == Verdict.BAD
    assert verdict_for_error(SetupError("ccache", "missing")) is None  # abort: same everywhere
    assert verdict_for_error(RuntimeError("harness bug")) is None


def _runner(tmp_path: Path, checks: list[str] | None = None, retries: int = 0) -> StepRunner:
    cfg = BisectConfig(mode="series", run_dir=str(tmp_path), scenario="mempressure",
                       checks=checks or ["contract"], retries=retries)
    return StepRunner(cfg)


@pytest.mark.parametrize("outcome, expected", [
    (Outcome({"contract": Status.PASS}, "", "", 1.0), (Verdict.GOOD, 0)),
    (Outcome({"contract": Status.FAIL}, "", "", 1.0), (Verdict.BAD, 1)),
    (Outcome({"contract": Status.ERROR}, "ssh lost", "", 1.0), (Verdict.SKIP, 125)),
    (BuildError("mm/vmpressure.c:3", "error: expected ';'"), (Verdict.SKIP, 125)),
    (InfraError("qemu", "boot timeout"), (Verdict.SKIP, 125)),
])
def test_attempt_maps_outcomes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                               outcome: Outcome | Exception,
                               expected: tuple[Verdict, int]) -> None:
    runner = _runner(tmp_path)

    def fake(req: BuildRequest, step_dir: Path) -> Outcome:
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    monkeypatch.setattr(runner, "execute", fake)
    a = runner.attempt(BuildRequest(), tmp_path / "s")
    assert (a.verdict, a.verdict.exit_code) == expected
    if isinstance(outcome, Exception):
        assert (tmp_path / "s" / "error.txt").is_file()


def test_attempt_setup_error_aborts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = _runner(tmp_path)

    def fake(req: BuildRequest, step_dir: Path) -> Outcome:
        raise SetupError("gcc", "not found")

    monkeypatch.setattr(runner, "execute", fake)
    with pytest.raises(SetupError):
        runner.attempt(BuildRequest(), tmp_path / "s")


# --- retries ----------------------------------------------------------------------------------


def _scripted(*verdicts: Verdict) -> tuple[Callable[[int], Attempt], list[int]]:
    calls: list[int] = []

    def attempt(n: int) -> Attempt:
        calls.append(n)
        return Attempt(verdicts[n], 1.0)

    return attempt, calls


def test_good_and_skip_are_not_rerun() -> None:
    for v in (Verdict.GOOD, Verdict.SKIP):
        fn, calls = _scripted(v, Verdict.BAD)
        assert decide(fn, 3)[0] == v and calls == [0]


def test_bad_confirmed_by_every_rerun() -> None:
    fn, calls = _scripted(Verdict.BAD, Verdict.BAD, Verdict.BAD)
    verdict, attempts, note = decide(fn, 2)
    assert verdict == Verdict.BAD and calls == [0, 1, 2] and "3 of 3" in note


def test_bad_then_pass_is_a_flake_not_blamed() -> None:
    fn, calls = _scripted(Verdict.BAD, Verdict.GOOD, Verdict.BAD)
    verdict, attempts, note = decide(fn, 2)
    assert verdict == Verdict.SKIP and calls == [0, 1] and "flaky" in note


def test_rerun_skips_do_not_refute_bad() -> None:
    fn, _ = _scripted(Verdict.BAD, Verdict.SKIP, Verdict.BAD)
    assert decide(fn, 2)[0] == Verdict.BAD


def test_no_retries_accepts_bad_at_once() -> None:
    fn, calls = _scripted(Verdict.BAD)
    assert decide(fn, 0)[0] == Verdict.BAD and calls == [0]


def test_run_target_records_steps_with_retries(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    runner = _runner(tmp_path, retries=1)
    seq = iter([Status.FAIL, Status.PASS])
    monkeypatch.setattr(runner, "execute",
                        lambda req, d: Outcome({"contract": next(seq)}, "", str(d), 0.5))
    rec = runner.run_target("abc", "subject", BuildRequest())
    assert rec.verdict == Verdict.SKIP and len(rec.attempts) == 2
    [saved] = read_steps(tmp_path)
    assert saved.verdict == Verdict.SKIP and saved.attempts[1].verdict == Verdict.GOOD
    assert saved.attempts[0].run_dir.endswith("01-abc-0")


# --- series search ----------------------------------------------------------------------------


def _fake_series_step(first_bad: int, skip: set[int] = frozenset(),  # type: ignore[assignment]
                      ) -> tuple[Callable[[int], Verdict], list[int]]:
    tried: list[int] = []

    def step(k: int) -> Verdict:
        tried.append(k)
        if k in skip:
            return Verdict.SKIP
        return Verdict.BAD if k >= first_bad else Verdict.GOOD

    return step, tried


@pytest.mark.parametrize("n, first_bad", [(1, 1), (2, 1), (2, 2), (9, 5), (9, 9), (16, 1),
                                          (16, 13)])
def test_series_search_finds_first_bad(n: int, first_bad: int) -> None:
    step, tried = _fake_series_step(first_bad)
    r = search(0, n, step)
    assert r.first_bad == first_bad and r.candidates == []
    assert len(tried) <= max(1, (n - 1).bit_length())
    assert 0 not in tried and n not in tried  # the endpoints are given, not re-tested


def test_series_search_steps_around_skips() -> None:
    step, tried = _fake_series_step(6, skip={4})
    r = search(0, 9, step)
    assert r.first_bad == 6 and tried[0] == 4 and 5 in tried


def test_series_search_ambiguous_when_only_skips_left() -> None:
    step, _ = _fake_series_step(6, skip={5})
    r = search(4, 6, step)
    assert r.first_bad is None and r.candidates == [5, 6]


def test_series_search_rejects_bad_bounds() -> None:
    with pytest.raises(UsageError):
        search(3, 3, lambda k: Verdict.GOOD)


def test_truncated_series_is_a_loadable_series(tmp_path: Path) -> None:
    patches = [Patch(f"#{i}: fix the thing/{i}", "mbox", f"diff {i}\n".encode(), strip=1 + i % 2)
               for i in range(1, 4)]
    d = write_truncated(patches, 2, tmp_path)
    loaded = load_series(d)
    assert [p.data for p in loaded] == [p.data for p in patches[:2]]
    assert [p.strip for p in loaded] == [2, 1]


# --- git driver -------------------------------------------------------------------------------

FAKE_MODULE = textwrap.dedent('''
    """Fake build+boot+run: the commit's VERDICT file says what happens."""
    import subprocess
    from pathlib import Path

    from harness.bisect.step import Outcome
    from harness.errors import BuildError, InfraError
    from harness.core.results import Status


    def execute(req, step_dir):
        text = subprocess.run(["git", "-C", str(req.source), "show", f"{req.rev}:VERDICT"],
                              capture_output=True, text=True, check=True).stdout.strip()
        with open(Path(req.source).parent / "calls.log", "a") as f:
            f.write(f"{req.rev} {text}\\n")
        if text == "build-error":
            raise BuildError("mm/vmpressure.c:1", "error: expected ';'")
        if text == "slow":  # stands for a long build/boot: the test interrupts it
            import os, time
            (Path(req.source).parent / "slow.pid").write_text(str(os.getpid()))
            time.sleep(60)
        if text == "infra":
            raise InfraError("qemu", "boot timeout")
        status = {"good": Status.PASS, "bad": Status.FAIL}[text]
        return Outcome({"contract": status}, "", str(step_dir), 0.0)
''')


def git(repo: Path, *args: str) -> str:
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@t")
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True, env=env).stdout.strip()


@pytest.fixture()
def history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, list[str]]:
    """good, good, build-error, good(fix), bad (the culprit), bad, infra, bad; on branch main."""
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HARNESS_RUNS", str(tmp_path / "runs"))
    fake_dir = tmp_path / "fake"
    fake_dir.mkdir()
    (fake_dir / "fakestep.py").write_text(FAKE_MODULE)
    monkeypatch.setenv("PYTHONPATH", str(fake_dir))
    monkeypatch.syspath_prepend(str(fake_dir))
    monkeypatch.setenv(FAKE_ENV, "fakestep:execute")
    repo = tmp_path / "linux"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "Makefile").write_text("all:\n")
    (repo / "Kconfig").write_text("")
    shas = []
    for i, v in enumerate(["good", "good", "build-error", "good", "bad", "bad", "infra", "bad"]):
        (repo / "VERDICT").write_text(v + "\n")
        (repo / "n").write_text(f"{i}\n")
        git(repo, "add", "-A")
        git(repo, "commit", "-qm", f"c{i} {v}")
        shas.append(git(repo, "rev-parse", "HEAD"))
    return repo, shas


def _cfg(repo: Path, shas: list[str], run_dir: Path, retries: int = 0) -> BisectConfig:
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg = BisectConfig(mode="git", run_dir=str(run_dir), scenario="mempressure",
                       checks=["contract"], retries=retries, repo=str(repo), good=shas[0],
                       bad=shas[-1])
    cfg.save()
    return cfg


def _repo_state(repo: Path) -> tuple[str, str, str, bool]:
    return (git(repo, "symbolic-ref", "HEAD"), git(repo, "rev-parse", "HEAD"),
            git(repo, "status", "--porcelain"), gitbisect.bisect_in_progress(repo))


def test_git_bisect_names_culprit_skips_build_error_and_restores(
        history: tuple[Path, list[str]], tmp_path: Path) -> None:
    repo, shas = history
    (repo / "n").write_text("user's uncommitted edit\n")
    before = _repo_state(repo)
    run_dir = tmp_path / "run"
    doc = gitbisect.run_git_bisect(_cfg(repo, shas, run_dir))
    assert doc["status"] == "found", doc
    assert doc["first_bad"]["commit"] == shas[4]
    assert doc["verification"] == {"ok": True, "parent": shas[3], "parent_verdict": "good",
                                   "first_bad_verdict": "bad"}
    assert _repo_state(repo) == before  # branch, HEAD, dirty edit, no bisect left behind
    assert (repo / "n").read_text() == "user's uncommitted edit\n"
    assert "# first bad commit: [" + shas[4] in (run_dir / "bisect.log").read_text()
    steps = read_steps(run_dir)
    assert [s.phase for s in steps][-2:] == ["verify", "verify"]
    assert all(s.verdict != Verdict.BAD for s in steps if s.target in (shas[2], shas[6]))
    assert all(s.label.startswith("c") for s in steps)


def test_build_error_commit_is_skipped_not_blamed(history: tuple[Path, list[str]],
                                                   tmp_path: Path) -> None:
    """Range c1..c5 where c2 does not build and c3 fixes it: the culprit is still c4."""
    repo, shas = history
    cfg = _cfg(repo, shas, tmp_path / "run")
    cfg.good, cfg.bad = shas[1], shas[5]
    cfg.save()
    doc = gitbisect.run_git_bisect(cfg)
    assert doc["first_bad"]["commit"] == shas[4]
    verdicts = {s["target"]: s["verdict"] for s in doc["steps"]}
    assert verdicts.get(shas[2], "skip") == "skip"


def test_refuses_when_a_bisect_is_in_progress(history: tuple[Path, list[str]],
                                              tmp_path: Path) -> None:
    repo, shas = history
    git(repo, "bisect", "start", shas[-1], shas[0])
    with pytest.raises(UsageError, match="already in progress"):
        gitbisect.run_git_bisect(_cfg(repo, shas, tmp_path / "run"))
    assert gitbisect.bisect_in_progress(repo)  # the user's bisect is left alone
    git(repo, "bisect", "reset")


@pytest.mark.parametrize("exc", [RuntimeError("crash"), KeyboardInterrupt()])
def test_state_restored_on_exception(history: tuple[Path, list[str]], tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch,
                                     exc: BaseException) -> None:
    repo, shas = history
    git(repo, "checkout", "-q", "--detach", shas[5])  # a detached HEAD is restored too
    before = _repo_state_detached(repo)

    def boom(*a: object, **k: object) -> None:
        raise exc

    monkeypatch.setattr(gitbisect, "verify_commit", boom)
    with pytest.raises(type(exc)):
        gitbisect.run_git_bisect(_cfg(repo, shas, tmp_path / "run"))
    assert _repo_state_detached(repo) == before
    assert not gitbisect.bisect_in_progress(repo)
    assert (tmp_path / "run" / "bisect.log").is_file()  # kept for --resume


def _repo_state_detached(repo: Path) -> tuple[str, str, bool]:
    return (git(repo, "rev-parse", "HEAD"), git(repo, "status", "--porcelain"),
            gitbisect.bisect_in_progress(repo))


def test_resume_replays_the_saved_log(history: tuple[Path, list[str]], tmp_path: Path) -> None:
    repo, shas = history
    run_dir = tmp_path / "run"
    cfg = _cfg(repo, shas, run_dir)
    # An interrupted earlier run: two verdicts given, log saved, repo reset.
    git(repo, "bisect", "start", "--no-checkout", shas[-1], shas[0])
    git(repo, "bisect", "good", shas[3])
    git(repo, "bisect", "bad", shas[5])
    (run_dir / "bisect.log").write_text(git(repo, "bisect", "log") + "\n")
    git(repo, "bisect", "reset")
    doc = gitbisect.run_git_bisect(cfg, resume=True)
    assert doc["first_bad"]["commit"] == shas[4]
    tested = (repo.parent / "calls.log").read_text().split()
    assert shas[1] not in tested and shas[6] not in tested  # already decided: not re-run
    assert not gitbisect.bisect_in_progress(repo)
    assert git(repo, "symbolic-ref", "HEAD") == "refs/heads/main"


def test_resume_continues_a_bisect_in_progress(history: tuple[Path, list[str]],
                                               tmp_path: Path) -> None:
    repo, shas = history
    git(repo, "bisect", "start", shas[-1], shas[0])  # a checkout bisect, as a user would start
    doc = gitbisect.run_git_bisect(_cfg(repo, shas, tmp_path / "run"), resume=True)
    assert doc["first_bad"]["commit"] == shas[4]
    assert not gitbisect.bisect_in_progress(repo)
    assert git(repo, "symbolic-ref", "HEAD") == "refs/heads/main"
    assert git(repo, "rev-parse", "HEAD") == shas[-1]


def test_cli_git_bisect_writes_run_dir(history: tuple[Path, list[str]], tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    repo, shas = history
    run_dir = tmp_path / "clirun"
    rc = main(["bisect", "--repo", str(repo), "--good", shas[0], "--bad", "main",
               "--check", "contract", "--retries", "1", "--run-dir", str(run_dir)])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert f"first bad commit: {shas[4]} c4 bad" in out
    assert str(run_dir) in out
    doc = json.loads((run_dir / "results.json").read_text())
    assert doc["first_bad"]["commit"] == shas[4] and doc["retries"] == 1
    summary = (run_dir / "summary.txt").read_text()
    assert "verified: parent good, culprit bad" in summary
    assert all(s["attempts"] for s in doc["steps"])
    bad_steps = [s for s in doc["steps"] if s["verdict"] == "bad"]
    assert bad_steps and all(len(s["attempts"]) == 2 for s in bad_steps)  # retried


def test_cli_refuses_bisect_in_progress(history: tuple[Path, list[str]], tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    repo, shas = history
    git(repo, "bisect", "start", shas[-1], shas[0])
    rc = main(["bisect", "--repo", str(repo), "--good", shas[0], "--bad", shas[-1],
               "--run-dir", str(tmp_path / "r")])
    assert rc == 2 and "already in progress" in capsys.readouterr().err
    git(repo, "bisect", "reset")


def test_cli_series_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                         capsys: pytest.CaptureFixture[str]) -> None:
    """--patches: a binary search over k, the first bad patch reported by name."""
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    src = tmp_path / "linux"
    (src / "mm").mkdir(parents=True)
    (src / "Makefile").write_text("all:\n")
    (src / "Kconfig").write_text("")
    (src / "mm" / "f.c").write_text("0\n")
    series = tmp_path / "series"
    series.mkdir()
    names = []
    for i in range(1, 6):
        name = f"{i:04d}-step-{i}.patch"
        (series / name).write_text(f"--- a/mm/f.c\n+++ b/mm/f.c\n@@ -1 +1 @@\n-{i - 1}\n+{i}\n")
        names.append(name)
    (series / "series").write_text("\n".join(names) + "\n")
    seen: list[int] = []

    def fake(self: StepRunner, req: BuildRequest, step_dir: Path) -> Outcome:
        k = len(load_series(req.series[0])) if req.series else 0
        seen.append(k)
        return Outcome({"contract": Status.FAIL if k >= 4 else Status.PASS}, "", "", 0.0)

    monkeypatch.setattr(StepRunner, "execute", fake)
    run_dir = tmp_path / "run"
    rc = main(["bisect", "--patches", str(series), "--source", str(src), "--check", "contract",
               "--run-dir", str(run_dir)])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "first bad patch: patch 4: 0004-step-4.patch" in out
    doc = json.loads((run_dir / "results.json").read_text())
    assert doc["first_bad"]["patch"] == "0004-step-4.patch"
    assert doc["verification"]["ok"] and seen[-2:] == [3, 4]


def test_sigterm_mid_step_stops_the_step_and_restores(history: tuple[Path, list[str]],
                                                      tmp_path: Path) -> None:
    """SIGTERM (or Ctrl-C) while a step runs: the step process goes, the repo is restored."""
    import signal
    import threading
    import time

    repo, shas = history
    (repo / "VERDICT").write_text("good\n")  # a real good endpoint: endpoints are verified
    (repo / "n").write_text("fixed\n")
    git(repo, "commit", "-qam", "good again")
    good = git(repo, "rev-parse", "HEAD")
    (repo / "VERDICT").write_text("slow\n")
    git(repo, "commit", "-qam", "slow")
    for i, v in enumerate(("bad", "bad")):
        (repo / "VERDICT").write_text(v + "\n")
        (repo / "n").write_text(f"late {i}\n")
        git(repo, "commit", "-qam", v)
    before = _repo_state(repo)
    cfg = _cfg(repo, shas, tmp_path / "run")
    cfg.good, cfg.bad = good, git(repo, "rev-parse", "HEAD")
    cfg.save()
    pidfile = repo.parent / "slow.pid"

    def interrupt() -> None:
        for _ in range(200):
            if pidfile.exists() and pidfile.read_text():
                break
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGTERM)

    t = threading.Thread(target=interrupt)
    t.start()
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        gitbisect.run_git_bisect(cfg)
    t.join()
    assert time.monotonic() - t0 < 30  # did not wait for the 60 s "build"
    step_pid = int(pidfile.read_text())
    # Gone when run_git_bisect returns, not some time later (a zombie holds nothing: its
    # reaper is whoever adopted it once git died).
    assert not pid_alive(step_pid)
    assert _repo_state(repo) == before
    assert (tmp_path / "run" / "bisect.log").is_file()


def test_resume_with_nothing_to_resume_is_usage_error(history: tuple[Path, list[str]],
                                                      tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    repo, _ = history
    rc = main(["bisect", "--repo", str(repo), "--resume", "--run-dir", str(tmp_path / "r")])
    assert rc == 2 and "nothing to resume" in capsys.readouterr().err
    assert not gitbisect.bisect_in_progress(repo)
