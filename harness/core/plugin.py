"""The contract between the generic run core and a scenario package.

A scenario *type* (``type = "..."`` in a scenario TOML; ``harness.scenarios.<type>``) is an
object with four jobs, split so that a saved run can be judged again without a VM:

- ``checks(spec)``: the checks this spec will produce, as :class:`CheckDef` (the one registry:
  CLI, ``bisect --check``, reports and ``judge`` all read names and titles from here);
- ``prepare(spec, kernel)``: host side, before boot -- build what must be shipped (workload
  binaries, kselftests) and return it as ``{guest path: host path}``;
- ``exercise(ctx)``: guest side -- drive the guest through ``ctx.vm`` and save every raw output
  and observation into the run dir (``ctx.save``, ``ctx.observe``). No verdict here;
- ``judge(run)``: a pure function of the saved run dir (:class:`SavedRun`) -> check results.

The core owns everything else: building the kernel, the image, booting, phases and timings,
the infrastructure rule (an InfraError makes unjudged checks "error", never "fail"),
interruption (a partial results.json), and the reports.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from harness import rundir
from harness.core.results import CheckResult
from harness.core.spec import ScenarioSpec, VMSettings

if TYPE_CHECKING:
    from harness.console import Finding
    from harness.console.known import KnownIssue
    from harness.core.events import EventLog
    from harness.kernel.build import BuildRequest
    from harness.vm import Machine



@contextmanager
def timed_phase(name: str, timings: dict[str, float],
                progress: Callable[[str], None]) -> Iterator[None]:
    """Announce a step of a run and record how long it took (the core's and a scenario's)."""
    progress(f"[run] {name}...")
    t = time.monotonic()
    try:
        yield
    finally:
        timings[name] = round(time.monotonic() - t, 2)


@dataclass(frozen=True)
class CheckDef:
    """A check a scenario can report: its stable name, its title and where to look first.

    ``control`` names the negative control that makes it fail (README's check table).
    """

    name: str
    title: str
    artifact: str = rundir.CONSOLE
    control: str = ""


@dataclass(frozen=True)
class KernelInfo:
    """What ``prepare`` may need of the kernel under test."""

    bzimage: Path
    request: BuildRequest | None = None  # what it was built from (None: a prebuilt --kernel)
    source_tree: Path | None = None  # the harness's work tree (series applied), if built here
    build_dir: Path | None = None  # its O= build dir (headers, .config), if built here
    config: Path | None = None  # the .config the kernel was built with
    arch: str = "x86_64"  # harness.arch: what its guest programs must be built for


class RunContext:
    """What ``exercise`` gets: the booted guest and the run dir it must fill.

    Observations are small JSON values (numbers, strings, console line marks) kept in
    ``observations.json`` beside the raw artifacts; together they are everything ``judge``
    reads, so ``harness judge RUN_DIR`` reproduces the verdict without a VM.
    """

    def __init__(self, spec: ScenarioSpec, vm: Machine, run_dir: Path,
                 progress: Callable[[str], None], timings: dict[str, float],
                 options: Mapping[str, Any], planned: Sequence[str],
                 vm_settings: VMSettings) -> None:
        self.spec = spec
        self.vm = vm
        self.planned = list(planned)  # names of the checks this run will judge
        self.vm_settings = vm_settings  # the guest shape as booted (spec + CLI overrides)
        self.run_dir = run_dir
        self.progress = progress
        self.timings = timings
        self.options = options  # run options a scenario may honour (e.g. no_reclaim)
        self.observations: dict[str, Any] = {}
        self.info: dict[str, Any] = {}  # facts for the report header (guest kernel, meminfo)
        self.events: EventLog | None = None  # the guest's event stream, when the guest has one

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """A timed, announced step; its duration lands in results.json ``timings_s``."""
        with timed_phase(name, self.timings, self.progress):
            yield

    def save(self, name: str, text: str, append: bool = False) -> None:
        with (self.run_dir / name).open("a" if append else "w") as f:
            f.write(text)

    def observe(self, key: str, value: Any) -> None:
        """Record one observation and flush the file (a killed run keeps what it saw)."""
        self.observations[key] = value
        (self.run_dir / rundir.OBSERVATIONS).write_text(json.dumps(self.observations, indent=1,
                                                            default=str))

    def console_mark(self) -> int:
        """How many console findings exist now: slice later findings with it."""
        return len(self.vm.console_findings)


@dataclass
class SavedRun:
    """A run dir as ``judge`` sees it: the spec it ran, its observations and artifacts."""

    run_dir: Path
    spec: ScenarioSpec
    options: Mapping[str, Any] = field(default_factory=dict)

    def text(self, name: str, default: str = "") -> str:
        p = self.run_dir / name
        return p.read_text(errors="replace") if p.is_file() else default

    def has(self, name: str) -> bool:
        return (self.run_dir / name).is_file()

    @cached_property
    def observations(self) -> dict[str, Any]:
        raw = self.text(rundir.OBSERVATIONS)
        return json.loads(raw) if raw else {}

    @cached_property
    def console_findings(self) -> list[Finding]:
        """The console re-classified from console.log (same classifier as live)."""
        from harness.console import classify_text

        return classify_text(self.text(rundir.CONSOLE))

    @cached_property
    def known_issues(self) -> list[KnownIssue]:
        """The repository's known issues, then the run's ``--known-issues`` file (a copy of
        it is kept in the run dir, so that ``harness judge`` triages as the run did)."""
        from harness.console.known import REPO_KNOWN_ISSUES, load_known, merge_known

        own = self.run_dir / rundir.KNOWN_ISSUES
        return merge_known(load_known(REPO_KNOWN_ISSUES) if REPO_KNOWN_ISSUES.is_file() else [],
                           load_known(own) if own.is_file() else [])

    def findings_between(self, start: int, end: int | None = None) -> list[Finding]:
        """Console findings with index in [start, end): marks come from ``console_mark``."""
        return self.console_findings[start:end]

    @cached_property
    def qmp_events(self) -> list[dict[str, Any]]:
        out = []
        for line in self.text("qmp-events.jsonl").splitlines():
            if line.strip():
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return out


class ScenarioType(Protocol):
    """A scenario package's entry object (``harness.scenarios.<type>.SCENARIO``)."""

    type_name: str

    def validate(self, spec: ScenarioSpec) -> None:
        """Raise UsageError naming ``spec.path`` and the key for anything malformed."""

    def checks(self, spec: ScenarioSpec) -> Sequence[CheckDef]: ...

    def prepare(self, spec: ScenarioSpec, kernel: KernelInfo) -> dict[str, Path]: ...

    def exercise(self, ctx: RunContext) -> None: ...

    def judge(self, run: SavedRun) -> list[CheckResult]: ...

    def timeline_svg(self, run: SavedRun) -> str:
        """An optional picture for report.html ("" for none)."""
