"""Run any scenario end to end, and judge a saved run again.

``run_scenario``: build the kernel, let the scenario prepare what it ships, build the image,
boot, ship, let the scenario exercise the guest, then judge the run dir and write the reports.
``judge_run_dir``: the judging half alone, on a saved run dir, without a VM (``harness judge``).

The rules the core enforces for every scenario:
- infrastructure: an InfraError anywhere turns every check not judged into status "error",
  never "fail", and the run dir is written either way;
- interruption: Ctrl-C, SIGTERM or SIGHUP (a KeyboardInterrupt) still leaves a results.json
  saying which checks did not run, then propagates so the CLI exits 128+signal;
- the run dir holds everything needed to judge it again: the scenario file as run
  (``scenario.toml``), the run's metadata (``run.json``), observations and raw artifacts.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness import rundir
from harness.console.known import match
from harness.core import report
from harness.core.events import EventLog, guest_relay_command
from harness.core.plugin import (
    CheckDef,
    KernelInfo,
    RunContext,
    SavedRun,
    ScenarioType,
    timed_phase,
)
from harness.core.registry import checks_for, scenario_type, select
from harness.core.results import CheckResult, Expectation, Status, infra_error, judged, overall
from harness.core.spec import ScenarioSpec, VMSettings, spec_from_text
from harness.errors import InfraError, UsageError
from harness.kernel.build import BuildRequest
from harness.kernel.progress import ProgressCallback
from harness.paths import runs_root

log = logging.getLogger(__name__)



@dataclass
class RunOptions:
    """One run: which scenario, which kernel, which guest shape, where the results go."""

    spec: ScenarioSpec
    build: BuildRequest
    vm: VMSettings
    accel: str = "auto"
    kernel: Path | None = None  # a prebuilt bzImage instead of building
    run_dir: Path | None = None
    checks: tuple[str, ...] = ()  # restrict to these (``--check``); () = the spec's list
    options: dict[str, Any] = field(default_factory=dict)  # scenario knobs (no_reclaim, ...)
    build_progress: ProgressCallback | None = None  # None: log lines (CI)
    known_issues: Path | None = None  # --known-issues FILE, on top of known-issues.toml


@dataclass
class RunOutcome:
    run_dir: Path
    scenario: str
    results: list[CheckResult]
    verdict: Status
    doc: rundir.ResultsDoc
    infra_error: str = ""
    interrupted: str = ""


def planned_checks(spec: ScenarioSpec, names: Sequence[str] = ()) -> list[CheckDef]:
    every = list(checks_for(spec))
    return select(every, names, "--check") if names else every


def new_run_dir(name: str) -> Path:
    """``runs/<stamp>-<name>[-N]``; mkdir without exist_ok makes two runs never share one."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    root = runs_root()
    root.mkdir(parents=True, exist_ok=True)
    n = 1
    while True:
        d = root / (f"{stamp}-{name}" if n == 1 else f"{stamp}-{name}-{n}")
        try:
            d.mkdir()
            return d
        except FileExistsError:
            n += 1


def _interrupt_name(exc: BaseException) -> str:
    signum = getattr(exc, "signum", signal.SIGINT)
    try:
        return f"interrupted by {signal.Signals(signum).name}"
    except ValueError:
        return "interrupted"


class _Run:
    """The thin shell around one run: I/O and the rules, no scenario knowledge."""

    def __init__(self, opts: RunOptions, progress: Callable[[str], None] | None) -> None:
        self.opts = opts
        self.spec = opts.spec
        self.st: ScenarioType = scenario_type(self.spec)
        self.planned = planned_checks(self.spec, opts.checks)
        self.progress = progress or (lambda msg: log.info("%s", msg))
        self.run_dir = opts.run_dir or new_run_dir(self.spec.name)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.timings: dict[str, float] = {}
        self.info: dict[str, Any] = {"scenario": self.spec.name, "type": self.spec.type_name}
        self.meta: rundir.RunMeta = {
            "scenario": self.spec.name, "type": self.spec.type_name,
            "planned": [c.name for c in self.planned], "options": opts.options,
            "vm": asdict(opts.vm), "accel": opts.accel,
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "infra_error": "", "interrupted": "",
            "guest": None, "host_load": {"start": _loadavg(), "end": None},
        }

    def _write_meta(self) -> None:
        self.meta["timings_s"] = self.timings
        self.meta["info"] = self.info
        tmp = self.run_dir / f".{rundir.RUN_META}.tmp"
        tmp.write_text(json.dumps(self.meta, indent=1, default=str) + "\n")
        tmp.replace(self.run_dir / rundir.RUN_META)

    def _timed(self, name: str, fn: Callable[[], Any]) -> Any:
        with timed_phase(name, self.timings, self.progress):
            return fn()

    def _kernel(self) -> KernelInfo:
        if self.opts.kernel:
            if not self.opts.kernel.is_file():
                raise UsageError(f"--kernel {self.opts.kernel}", "no such file")
            self.info["kernel"] = {"bzimage": str(self.opts.kernel), "prebuilt": True,
                                   "arch": self.opts.build.arch}
            return KernelInfo(bzimage=self.opts.kernel, arch=self.opts.build.arch)
        from harness.kernel.build import build_kernel, lineage_dirs, resolve_inputs

        art = build_kernel(self.opts.build, progress=self.opts.build_progress)
        self.info["kernel"] = {"artifact": str(art.dir), "key": art.key,
                               "release": art.metadata.get("kernel_release"),
                               "series": [s["name"] for s in art.metadata.get("series", [])],
                               "source": art.metadata.get("source", {})}
        src, build_dir = lineage_dirs(resolve_inputs(self.opts.build))
        self.info["kernel"]["arch"] = art.arch.name
        self.info["kernel"]["page_size"] = art.metadata.get("page_size", "4k")
        return KernelInfo(bzimage=art.bzimage, request=self.opts.build, source_tree=src,
                          arch=art.arch.name,
                          build_dir=build_dir, config=art.config)

    def _prepare(self, kernel: KernelInfo) -> dict[str, Path]:
        """The scenario's host-side preparation, with the work tree in this kernel's state
        (and locked) when it was built from a request: what prepare builds from the tree
        (kselftests) then matches the kernel under test."""
        if kernel.request is None:
            return self.st.prepare(self.spec, kernel)
        from harness.kernel.build import synced_tree

        with synced_tree(kernel.request):
            return self.st.prepare(self.spec, kernel)

    def execute(self) -> RunOutcome:
        (self.run_dir / rundir.SPEC_COPY).write_text(self.spec.text)
        if self.opts.known_issues is not None:  # kept, so that `harness judge` triages alike
            (self.run_dir / rundir.KNOWN_ISSUES).write_text(self.opts.known_issues.read_text())
        self._write_meta()
        try:
            self._execute()
        except InfraError as exc:
            self.meta["infra_error"] = exc.one_line()
            log.error("infrastructure error: %s", exc.one_line())
            (self.run_dir / rundir.INFRA).write_text(f"{exc.one_line()}\n{exc.detail}\n")
        except KeyboardInterrupt as exc:
            self.meta["interrupted"] = _interrupt_name(exc)
            self._write_meta()
            try:
                judge_run_dir(self.run_dir)  # a partial results.json, then propagate
            except Exception as jexc:  # noqa: BLE001 - never mask the interrupt
                log.debug("partial judge failed: %s", jexc)
            raise
        self.meta["host_load"]["end"] = _loadavg()
        self._write_meta()
        return judge_run_dir(self.run_dir)

    def _execute(self) -> None:
        from harness.arch import get_arch
        from harness.image import build_image
        from harness.vm import Machine, VMConfig

        kernel = self._timed("build kernel", self._kernel)
        files = self._timed("prepare", lambda: self._prepare(kernel))
        image = self._timed("build image", lambda: build_image(arch=get_arch(kernel.arch)))
        vm_set = self.opts.vm
        from harness.image import rootfs

        root = (None if vm_set.rootfs == "initramfs" else self._timed(
            "build rootfs", lambda: rootfs.resolve(vm_set.rootfs, vm_set.packages,
                                                   f"{self.spec.path} [vm] rootfs", kernel.arch)))
        cmdline = "harness.cgroup=v2" if vm_set.cgroup == "v2" else ""
        cfg = VMConfig(kernel=kernel.bzimage, initramfs=image.initramfs, ram_mib=vm_set.ram_mib,
                       swap_mib=vm_set.swap_mib, smp=vm_set.smp, accel=self.opts.accel,
                       boot_timeout=vm_set.boot_timeout_s, cmdline_extra=cmdline,
                       arch=kernel.arch, rootfs_image=root)
        cfg.validate()
        self.progress("[run] boot...")
        t_boot = time.monotonic()
        with Machine(cfg, run_dir=self.run_dir) as vm:  # QEMU is gone when this block exits
            self.timings["boot"] = round(time.monotonic() - t_boot, 2)
            self.info["accel"] = vm.accel
            self.meta["guest"] = read_guest_state(vm)
            if files:
                self._timed("ship", lambda: ship_files(vm, files))
            ctx = RunContext(self.spec, vm, self.run_dir, self.progress, self.timings,
                             self.opts.options, [c.name for c in self.planned], vm_set)
            ctx.info = self.info
            ctx.events = _start_event_relay(vm)
            for i, cmd in enumerate(self.spec.setup):
                r = vm.run(cmd, timeout=60)
                if r.exit_status != 0:
                    raise UsageError(f"{self.spec.path} [guest] setup[{i}]",
                                     f"{cmd!r} failed in the guest (exit {r.exit_status}): "
                                     f"{(r.stderr or r.stdout).strip()[:200]}")
            try:
                self.st.exercise(ctx)
            finally:
                self._write_meta()


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


#: The guest state that moves the measurements: key -> file, read in one SSH command.
GUEST_STATE_FILES = {
    "thp": "/sys/kernel/mm/transparent_hugepage/enabled",
    "swappiness": "/proc/sys/vm/swappiness",
    "mglru": "/sys/kernel/mm/lru_gen/enabled",
    "swaps": "/proc/swaps",
    "cmdline": "/proc/cmdline",
}
_MARK = "=== harness-state "


def guest_state_command() -> str:
    return "; ".join(f"echo '{_MARK}{k}'; cat {f} 2>/dev/null"
                     for k, f in GUEST_STATE_FILES.items())


def parse_guest_state(text: str) -> dict[str, Any]:
    """The output of :func:`guest_state_command` -> run.json's ``guest``; a file the guest
    lacks is null. THP mode is the bracketed choice, swap the sum of /proc/swaps in KiB."""
    raw: dict[str, list[str]] = {}
    key = None
    for line in text.splitlines():
        if line.startswith(_MARK):
            key = line[len(_MARK):].strip()
            raw[key] = []
        elif key is not None:
            raw[key].append(line)
    def one(k: str) -> str | None:
        lines = [x for x in raw.get(k, []) if x.strip()]
        return lines[0].strip() if lines else None
    thp = one("thp")
    if thp and "[" in thp:
        thp = thp.split("[", 1)[1].split("]", 1)[0]
    swappiness = one("swappiness")
    swaps = [x.split() for x in raw.get("swaps", [])[1:] if x.strip()]
    swap_kib = None
    if raw.get("swaps"):
        swap_kib = sum(int(f[2]) for f in swaps if len(f) > 2 and f[2].isdigit())
    return {"thp": thp,
            "swappiness": int(swappiness) if swappiness and swappiness.isdigit() else None,
            "mglru": one("mglru"), "swap_kib": swap_kib, "cmdline": one("cmdline")}


def read_guest_state(vm: Any) -> dict[str, Any] | None:
    """Best effort: one ``cat`` over SSH after boot; None when even that fails."""
    try:
        return parse_guest_state(vm.run(guest_state_command(), timeout=30).stdout)
    except Exception as exc:  # noqa: BLE001 - metadata only, never the run's verdict
        log.warning("could not read the guest state: %s", exc)
        return None


def ship_files(vm: Any, files: dict[str, Path]) -> None:
    """Copy ``{guest path: host path}`` in; directories recursively, file modes kept."""
    for dest, src in files.items():
        if src.is_dir():
            pairs = [(p, f"{dest}/{p.relative_to(src).as_posix()}")
                     for p in sorted(src.rglob("*")) if p.is_file()]
        else:
            pairs = [(src, dest)]
        dirs = {t.rsplit("/", 1)[0] or "/" for _, t in pairs} | ({dest} if src.is_dir() else set())
        vm.run("mkdir -p " + " ".join(shlex.quote(d) for d in sorted(dirs)), timeout=60,
               check=True)
        # Each file lands under a temporary name and is renamed into place: a file the guest
        # is running (its libc, when a dynamic program ships its libraries) is replaced, not
        # overwritten under the processes that map it (sftp-server would die mid-transfer).
        for p, t in pairs:
            vm.put(p, f"{t}.harness-tmp")
        moves = [f"chmod {p.stat().st_mode & 0o777:o} {shlex.quote(t + '.harness-tmp')} && "
                 f"mv -f {shlex.quote(t + '.harness-tmp')} {shlex.quote(t)}" for p, t in pairs]
        for i in range(0, len(moves), 200):  # one SSH command per 200 files, not one each
            vm.run(" && ".join(moves[i:i + 200]), timeout=60, check=True)


def _start_event_relay(vm: Any) -> EventLog | None:
    """The guest's FIFO -> virtio-serial relay (see harness.core.events); None without one."""
    from harness.vm.argv import EVENTS_PORT

    out = vm.run(guest_relay_command(EVENTS_PORT), timeout=30).stdout
    if vm.events_log is None or "events: /dev/" not in out:
        log.warning("guest has no %s port: events will be polled over SSH", EVENTS_PORT)
        return None
    return EventLog(vm.events_log)


def run_scenario(opts: RunOptions,
                 progress: Callable[[str], None] | None = None) -> RunOutcome:
    """Execute one run and write results.json, junit.xml and report.html into its run dir."""
    return _Run(opts, progress).execute()


def load_saved(run_dir: Path) -> tuple[SavedRun, dict[str, Any]]:
    """A run dir's spec copy and metadata; a dir that is not a run is the user's mistake."""
    if not (run_dir / rundir.SPEC_COPY).is_file() or not (run_dir / rundir.RUN_META).is_file():
        raise UsageError(str(run_dir), f"not a run directory (no {rundir.SPEC_COPY} / "
                         f"{rundir.RUN_META})")
    spec = spec_from_text((run_dir / rundir.SPEC_COPY).read_text(), run_dir / rundir.SPEC_COPY)
    try:
        meta: dict[str, Any] = json.loads((run_dir / rundir.RUN_META).read_text())
    except json.JSONDecodeError as exc:
        raise UsageError(str(run_dir / rundir.RUN_META), f"not valid JSON: {exc}") from exc
    return SavedRun(run_dir, spec, meta.get("options", {})), meta


def kernel_panic(saved: SavedRun) -> str | None:
    """The title of a kernel panic on the console, if the run ended in one."""
    from harness.console import Severity

    fatal = [f for f in saved.console_findings if f.severity == Severity.FATAL]
    return fatal[0].title if fatal else None


def panicked(check: CheckDef, title: str) -> CheckResult:
    """A check the kernel's own panic kept from finishing: the kernel failed it.

    A panic is the kernel misbehaving, not the rig: the run stops (the Machine raises
    InfraError the moment the panic line appears), but the verdict is "fail", exit 1.
    """
    return judged(check.name, check.title,
                  [Expectation("kernel does not panic", "no panic", title, False)],
                  rundir.CONSOLE)


def judge_run_dir(run_dir: Path) -> RunOutcome:
    """Judge a saved run (live or ``harness judge``) and (re)write its reports."""
    saved, meta = load_saved(run_dir)
    st = scenario_type(saved.spec)
    defs = {c.name: c for c in checks_for(saved.spec)}
    planned = [defs[n] for n in meta.get("planned", list(defs)) if n in defs]
    infra = str(meta.get("infra_error") or "")
    interrupted = str(meta.get("interrupted") or "")
    try:
        by_name = {r.name: r for r in st.judge(saved)}
    except (KeyError, ValueError, TypeError, IndexError) as exc:
        if not (infra or interrupted):
            raise
        log.debug("judging a partial run: %s", exc)  # incomplete observations: not judged
        by_name = {}
    why = infra or interrupted or "run aborted"
    panic = kernel_panic(saved) if infra else None
    results = [by_name.get(c.name) or (panicked(c, panic) if panic else infra_error(
        c.name, c.title, f"not run: {why}", rundir.INFRA if infra else rundir.RUN_META))
        for c in planned]
    verdict = overall(results)
    findings = [{**f.to_dict(), "title": f.title,
                 **({"known_issue": {"id": k.id, "policy": k.policy, "culprit": k.culprit,
                                     "url": k.url}} if k is not None else {})}
                for f, k in match(saved.console_findings, saved.known_issues)]
    doc = report.results_doc(saved.spec.name, verdict, results, meta.get("info", {}),
                             meta.get("timings_s", {}), run_dir, infra, findings, interrupted)
    doc["info"].setdefault("vm", meta.get("vm"))
    report.write_all(run_dir, doc, report.junit_xml(saved.spec.name, results,
                                                    meta.get("timings_s", {})),
                     st.timeline_svg(saved))
    return RunOutcome(run_dir, saved.spec.name, results, verdict, doc, infra, interrupted)
