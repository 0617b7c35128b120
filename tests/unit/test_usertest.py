"""harness.scenarios.usertest without a VM: the schema's errors, the step wrapper, judging a
saved run dir, and exercise -> judge through a fake guest."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.core.plugin import KernelInfo, RunContext, SavedRun
from harness.core.results import Status
from harness.core.spec import load_spec, spec_from_text
from harness.errors import UsageError
from harness.scenarios.usertest import SCENARIO
from harness.scenarios.usertest.guest import step_command
from harness.scenarios.usertest.judge import judge_step
from harness.scenarios.usertest.schema import Extract, Step, parse_usertest

BASE = '''
name = "t"
type = "usertest"
[[step]]
name = "one"
run = "true"
'''

MEMCG_OOM = ("[   12.000000] test_memcontrol invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), "
             "order=0, oom_score_adj=0\n"
             "[   12.100000] Memory cgroup out of memory: Killed process 99 (test_memcontrol) "
             "total-vm:1000kB, anon-rss:900kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:40kB "
             "oom_score_adj:0\n")


def spec(tmp_path: Path, text: str) -> Any:
    p = tmp_path / "t.toml"
    p.write_text(text)
    return load_spec(p)


def test_shipped_scenarios_validate() -> None:
    for name in ("kselftest-cgroup-memory", "kselftest-mm"):
        s = load_spec(name)
        assert s.type_name == "usertest"
        test = parse_usertest(s)
        assert test.steps and test.kselftest_targets + () is not None
        names = [c.name for c in SCENARIO.checks(s)]
        assert names[-1] == "console" and len(names) == len(test.steps) + 1


@pytest.mark.parametrize("snippet, culprit, message", [
    ('[[step]]\nname = "Bad Name"\nrun = "x"\n', "[[step]] 2 name", "must match"),
    ('[[step]]\nname = "two"\nrun = "x"\ntimeout_s = 0\n', "[[step]] 2 (two) timeout_s", "> 0"),
    ('[[step]]\nname = "two"\nrun = "x"\noutput = "junit"\n', "(two) output", "one of"),
    ('[[step]]\nname = "two"\nrun = "x"\nexpect_exit = [300]\n', "(two) expect_exit", "0..255"),
    ('[[step]]\nname = "two"\nrun = "x"\nbogus = 1\n', "[[step]] 2 bogus", "unknown key"),
    ('[[step]]\nname = "one"\nrun = "x"\n', "[[step]] name", "used twice"),
    ('[[step]]\nname = "console"\nrun = "x"\n', "[[step]] name", "reserved"),
    ('[[step]]\nname = "two"\nrun = "x"\n[[step.extract]]\nname = "n"\nregex = "a+"\n',
     "[[step.extract]] 1 regex", "capturing group"),
    ('[[step]]\nname = "two"\nrun = "x"\n[[step.extract]]\nname = "n"\nregex = "(a"\n',
     "[[step.extract]] 1 regex", "not a valid"),
    ('[console]\ntolerate = ["nonsense"]\n', "[console] tolerate", "unknown finding kind"),
    ('[console]\noom = "sometimes"\n', "[console] oom", "one of"),
    ('[[ship]]\nsrc = "nope"\ndest = "/x"\n', "[[ship]] 1 src", "does not exist"),
    ('[[ship]]\nsrc = "."\ndest = "rel"\n', "[[ship]] 1 dest", "absolute"),
    ('[kselftest]\ntargets = "cgroup"\n', "[kselftest] targets", "expected list"),
    ('surprise = 1\n', "surprise", "unknown key"),
])
def test_input_errors_name_file_and_key(tmp_path: Path, snippet: str, culprit: str,
                                        message: str) -> None:
    with pytest.raises(UsageError) as ei:
        parse_usertest(spec(tmp_path, BASE + snippet))
    assert str(tmp_path / "t.toml") in ei.value.culprit
    assert culprit in ei.value.culprit
    assert message in ei.value.message


def test_no_step_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="at least one"):
        parse_usertest(spec(tmp_path, 'type = "usertest"\n'))


def test_defaults(tmp_path: Path) -> None:
    t = parse_usertest(spec(tmp_path, BASE + '[[step]]\nname = "k"\nrun = "x"\n'
                            'output = "ktap"\nexpect_exit = 2\n'))
    one, k = t.steps
    assert (one.timeout_s, one.expect_exit, one.output, one.tty) == (300.0, (0,), "none", False)
    assert (k.expect_exit, k.tty, k.cases_must_pass) == ((2,), True, True)
    assert t.oom == "forbidden" and t.tolerate == frozenset()


def test_step_command_quotes_and_watchdogs() -> None:
    cmd = step_command("s", "echo 'it''s' && exit 3", 9.5)
    assert "sleep 10;" in cmd and "setsid sh -c" in cmd and "oom_score_adj" in cmd
    assert "/run/harness-steps/s.timed-out" in cmd and cmd.endswith("exit $rc")


STEP = Step("mc", "./t", 60.0, (0,), "tap", True,
            (Extract("peak", re.compile(r"peak (\d+) kB", re.M), 0.0, 1000.0),))
TAP = "TAP version 13\n1..3\nok 1 a\nok 2 b # SKIP no swap\nok 3 # XFAIL known\npeak 500 kB\n"


def test_judge_step_pass() -> None:
    r = judge_step(STEP, TAP, {"exit": 0, "duration_s": 3.0, "timed_out": False})
    assert r.status == Status.PASS, r.summary()
    assert [c.name for c in r.cases] == ["a", "b", "case 3"]
    assert [c.status for c in r.cases] == [Status.PASS, Status.SKIP, Status.PASS]
    assert r.measurements["peak"] == 500.0
    assert r.artifact == "step-mc.out"


@pytest.mark.parametrize("stdout, meta, failing", [
    (TAP.replace("ok 1 a", "not ok 1 a"), {"exit": 0}, "case a"),
    (TAP, {"exit": 1}, "exit status"),
    (TAP.replace("peak 500", "peak 5000"), {"exit": 0}, "peak"),
    (TAP.replace("peak 500 kB\n", ""), {"exit": 0}, "peak in stdout"),
    ("Segmentation fault\n", {"exit": 0}, "TAP report on stdout"),
    (TAP.replace("ok 3 # XFAIL known\n", ""), {"exit": 0}, "case case 3"),  # crashed
    (TAP, {"exit": 137, "timed_out": True, "duration_s": 60.2}, "finished within timeout_s"),
])
def test_judge_step_failures(stdout: str, meta: dict[str, Any], failing: str) -> None:
    r = judge_step(STEP, stdout, {"duration_s": 1.0, "timed_out": False, **meta})
    assert r.status == Status.FAIL
    assert failing in [e.what for e in r.failures()], r.summary()


def test_cases_must_pass_false_only_reports() -> None:
    step = Step("x", "./t", 60.0, (0,), "ktap", False)
    r = judge_step(step, "KTAP version 1\n1..1\nnot ok 1 a\n", {"exit": 0, "timed_out": False})
    assert r.status == Status.PASS and r.cases[0].status == Status.FAIL


@dataclass
class FakeResult:
    exit_status: int
    stdout: str
    stderr: str
    duration: float


class FakeVM:
    """Answers the step wrapper like a guest would: stdout per step, the watchdog marker."""

    def __init__(self, outputs: dict[str, tuple[int, str]], timed_out: set[str]) -> None:
        self.outputs, self.timed_out, self.calls = outputs, timed_out, []
        self.console_findings: list[Any] = []

    def run(self, cmd: str, timeout: float | None = None, pty: bool = False,
            **_: Any) -> FakeResult:
        self.calls.append((cmd, timeout, pty))
        for name, (rc, out) in self.outputs.items():
            if f"/run/harness-steps/{name}.timed-out" in cmd:
                if cmd.startswith("test -e"):
                    return FakeResult(0, "yes\n" if name in self.timed_out else "no\n", "", 0.0)
                return FakeResult(rc, out.replace("\n", "\r\n") if pty else out, "", 1.5)
        raise AssertionError(cmd)


TOML = BASE.replace('run = "true"', 'run = "./t"\noutput = "tap"') + '''
[[step]]
name = "slow"
run = "sleep 999"
timeout_s = 5
[console]
oom = "expected"
'''


def test_exercise_then_judge_from_files_only(tmp_path: Path) -> None:
    s = spec_from_text(TOML, tmp_path / "t.toml")
    vm = FakeVM({"one": (0, TAP), "slow": (137, "")}, {"slow"})
    ctx = RunContext(s, vm, tmp_path, lambda _: None, {}, {}, [], s.vm)  # type: ignore[arg-type]
    SCENARIO.exercise(ctx)
    assert json.loads((tmp_path / "step-slow.json").read_text())["timed_out"] is True
    assert "\r" not in (tmp_path / "step-one.out").read_text()
    assert vm.calls[0][1] == 300.0 + 60.0 and vm.calls[0][2] is True  # tap -> pty
    assert vm.calls[2][2] is False
    (tmp_path / "console.log").write_text("boot\n" + MEMCG_OOM)
    res = {r.name: r for r in SCENARIO.judge(SavedRun(tmp_path, s))}
    assert res["one"].status == Status.PASS
    assert res["slow"].status == Status.FAIL
    assert res["slow"].failures()[0].what == "finished within timeout_s"
    assert res["console"].status == Status.PASS, res["console"].summary()
    (tmp_path / "console.log").write_text("boot, no OOM\n")
    res = {r.name: r for r in SCENARIO.judge(SavedRun(tmp_path, s))}
    assert res["console"].status == Status.FAIL  # oom = "expected" but none came


def test_console_forbidden_and_tolerated(tmp_path: Path) -> None:
    text = BASE + '[console]\ntolerate = ["warning"]\n'
    s = spec_from_text(text, tmp_path / "t.toml")
    (tmp_path / "step-one.json").write_text('{"exit": 0, "timed_out": false}')
    (tmp_path / "console.log").write_text(MEMCG_OOM)
    res = {r.name: r for r in SCENARIO.judge(SavedRun(tmp_path, s))}
    assert res["one"].status == Status.PASS
    assert res["console"].status == Status.FAIL
    assert res["console"].failures()[0].what == "OOM kills on the console"


def test_missing_step_files_are_errors_not_failures(tmp_path: Path) -> None:
    s = spec_from_text(BASE, tmp_path / "t.toml")
    res = SCENARIO.judge(SavedRun(tmp_path, s))
    assert res[0].status == Status.ERROR


def test_prepare_ships_files_and_needs_a_source_for_kselftests(tmp_path: Path) -> None:
    (tmp_path / "files").mkdir()
    text = BASE + '[[ship]]\nsrc = "files/"\ndest = "/opt/u/"\n'
    s = spec(tmp_path, text)
    assert SCENARIO.prepare(s, KernelInfo(bzimage=tmp_path / "bz")) == {
        "/opt/u": (tmp_path / "files").resolve()}
    s = spec(tmp_path, text + '[kselftest]\ntargets = ["cgroup"]\n')
    with pytest.raises(UsageError, match="give build options instead of --kernel"):
        SCENARIO.prepare(s, KernelInfo(bzimage=tmp_path / "bz"))
