"""``type = "usertest"``: a test written in TOML only -- files to ship, steps, bounds.

The schema is in :mod:`.schema`, the guest-side step wrapper in :mod:`.guest`, verdicts in
:mod:`.judge`; this module is the thin shell the core calls (see harness.core.plugin).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from harness import rundir
from harness.core.plugin import CheckDef, KernelInfo, RunContext, SavedRun
from harness.core.results import CheckResult
from harness.core.spec import ScenarioSpec
from harness.errors import UsageError
from harness.scenarios.usertest.guest import SSH_GRACE_S, step_command, timed_out_query
from harness.scenarios.usertest.judge import judge_run, step_files, step_title
from harness.scenarios.usertest.schema import CONSOLE_CHECK, Step, UserTest, parse_usertest


class UserTestType:
    type_name = "usertest"

    def validate(self, spec: ScenarioSpec) -> None:
        parse_usertest(spec)

    def checks(self, spec: ScenarioSpec) -> Sequence[CheckDef]:
        test = parse_usertest(spec)
        defs = [CheckDef(s.name, step_title(s), step_files(s.name)[0], s.control)
                for s in test.steps]
        defs.append(CheckDef(CONSOLE_CHECK, f"console: clean, OOM kill {test.oom}",
                             rundir.CONSOLE))
        return defs

    def prepare(self, spec: ScenarioSpec, kernel: KernelInfo) -> dict[str, Path]:
        """The ``[[ship]]`` files, plus kselftests built from the kernel's own source."""
        test = parse_usertest(spec)
        from harness.arch import get_arch
        from harness.image.build import with_shared_libs

        arch = get_arch(kernel.arch)
        files = with_shared_libs({s.dest: s.src for s in test.ships}, f"{spec.path} [[ship]]",
                                 arch)
        if test.kselftest_targets or test.kselftest_programs:
            if kernel.source_tree is None:
                raise UsageError(f"{spec.path} [kselftest]",
                                 "kselftests are built from the kernel source under test; "
                                 "give build options instead of --kernel")
            from harness.kselftest import build_kselftests

            files.update(build_kselftests(kernel.source_tree, test.kselftest_targets,
                                          test.kselftest_programs, arch=arch).ship())
        return files

    def exercise(self, ctx: RunContext) -> None:
        test = parse_usertest(ctx.spec)
        for step in selected_steps(test, ctx.planned):
            out, err, meta = step_files(step.name)
            with ctx.phase(f"step {step.name}"):
                mark = ctx.console_mark()
                r = ctx.vm.run(step_command(step.name, step.run, step.timeout_s),
                               timeout=step.timeout_s + SSH_GRACE_S, pty=step.tty)
                timed_out = ctx.vm.run(timed_out_query(step.name), timeout=30).stdout.strip()
            ctx.save(out, r.stdout.replace("\r\n", "\n") if step.tty else r.stdout)
            ctx.save(err, r.stderr)
            ctx.save(meta, json.dumps({"exit": r.exit_status, "duration_s": round(r.duration, 2),
                                       "timed_out": timed_out == "yes", "console_mark": mark},
                                      indent=1) + "\n")

    def judge(self, run: SavedRun) -> list[CheckResult]:
        return judge_run(parse_usertest(run.spec), run)

    def timeline_svg(self, run: SavedRun) -> str:
        return ""


def selected_steps(test: UserTest, planned: Sequence[str]) -> list[Step]:
    """The steps whose check this run will judge (``--check`` selects; none given: all)."""
    if not planned:
        return list(test.steps)
    return [s for s in test.steps if s.name in planned]


SCENARIO = UserTestType()
