"""Run a scenario end to end: build, boot, ship, exercise, collect, judge, report.

The runner is the thin shell around the pure parts (parsers, checks,
reports). Its one rule: an :class:`~harness.errors.InfraError` anywhere turns
the checks not yet judged into status "error" -- never into a failure -- and
the run directory is written either way.
"""

from __future__ import annotations

import json
import logging
import shlex
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.console import Finding, classify_text
from harness.errors import InfraError
from harness.image import build_image
from harness.kernel.build import Artifact, BuildRequest, build_kernel
from harness.kernel.progress import ProgressCallback
from harness.paths import runs_root
from harness.scenario import checks as C
from harness.scenario import guest_scripts as G
from harness.scenario.spec import Scenario
from harness.scenario.workload_output import (
    MemSample,
    OpResult,
    StressLog,
    parse_mem_series,
    parse_ops,
    parse_stress,
    parse_vmstat,
)
from harness.vm import CommandResult, Machine, VMConfig
from harness.workloads import build_workload

log = logging.getLogger(__name__)

TITLES = {
    "notifications": "eventfd notifications",
    "clamping": "counter clamping and bad input",
    "oom_absence": "no OOM kill under pressure",
    "child_cgroup": "inside a limited child memory cgroup",
}
GUEST_BIN = "/tmp"


@dataclass
class RunOptions:
    scenario: Scenario
    build: BuildRequest
    ram_mib: int
    swap_mib: int
    smp: int
    accel: str
    stress_s: int
    no_reclaim: bool = False
    run_dir: Path | None = None
    kernel: Path | None = None  # a prebuilt bzImage instead of building
    build_progress: ProgressCallback | None = None  # None: log lines (CI)


@dataclass
class RunOutcome:
    run_dir: Path
    results: list[C.CheckResult]
    verdict: C.Status
    timings: dict[str, float] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    infra_error: str = ""


class _HostSampler(threading.Thread):
    """Polls the balloon's guest statistics over QMP: a view that survives an SSH stall."""

    def __init__(self, vm: Machine, interval: float = 1.0) -> None:
        super().__init__(daemon=True, name="qmp-sampler")
        self.vm = vm
        self.interval = interval
        self.samples: list[dict[str, Any]] = []
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(self.interval):
            try:
                stats = self.vm.balloon_stats()
            except Exception as exc:  # QEMU gone: the runner reports it, we just stop
                log.debug("host sampler stopped: %s", exc)
                return
            self.samples.append({"host_t": time.monotonic(), **stats})

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)


class ScenarioRun:
    """One run of a scenario in one VM."""

    def __init__(self, opts: RunOptions, progress: Callable[[str], None] | None = None) -> None:
        self.opts = opts
        self.sc = opts.scenario
        self.run_dir = opts.run_dir or _new_run_dir(self.sc.name)
        self.progress = progress or (lambda msg: log.info("%s", msg))
        self.timings: dict[str, float] = {}
        self.info: dict[str, Any] = {"scenario": self.sc.name, "no_reclaim": opts.no_reclaim}
        self.results: dict[str, C.CheckResult] = {}
        self.mem: list[MemSample] = []
        self.host_samples: list[dict[str, Any]] = []
        self.stress_logs: dict[str, StressLog] = {}
        self.markers: list[dict[str, Any]] = []
        self.guest_offset: float | None = None  # guest uptime - host monotonic

    # -- helpers ---------------------------------------------------------------
    @contextmanager
    def _phase(self, name: str) -> Iterator[None]:
        self.progress(f"[run] {name}...")
        t = time.monotonic()
        try:
            yield
        finally:
            self.timings[name] = round(time.monotonic() - t, 2)

    def _save(self, name: str, text: str) -> None:
        (self.run_dir / name).write_text(text)

    def _mpctl(self, vm: Machine, args: str, log_name: str,
               cgroup: str | None = None) -> list[OpResult]:
        """Run one mpctl sequence; with ``cgroup``, inside that (child) memory cgroup."""
        cg = cgroup or self.sc.get("workload", "cgroup", str)
        cmd = f"{GUEST_BIN}/mpctl --cgroup {shlex.quote(cg)} {args}"
        if cgroup:
            # Join the cgroup first so that mpctl's memory hog is charged (and reclaimed) there.
            cmd = f"sh -c {shlex.quote(f'echo $$ > {cg}/cgroup.procs && exec {cmd}')}"
        r = vm.run(cmd, timeout=120)
        with (self.run_dir / "mpctl.out").open("a") as f:
            f.write(f"$ mpctl {args}   # {log_name}, exit {r.exit_status}\n{r.stdout}{r.stderr}\n")
        return parse_ops(r.stdout)

    def _guest_uptime(self, vm: Machine) -> float:
        t0 = time.monotonic()
        up = float(vm.run(G.uptime(), timeout=30).stdout.strip() or 0)
        self.guest_offset = up - (t0 + time.monotonic()) / 2
        return up

    def _patient(self, vm: Machine, command: str, timeout: float = 60,
                 patience: float = 240) -> CommandResult:
        """Run a command in a guest that may be crawling under memory pressure.

        Thrashing can starve dropbear for a while; that is the workload's doing
        and not yet an infrastructure failure. As long as QMP says the VM is
        running, retry until ``patience`` runs out; then it is one.
        """
        deadline = time.monotonic() + patience
        while True:
            try:
                return vm.run(command, timeout=timeout)
            except InfraError as exc:
                if time.monotonic() > deadline or not _vm_running(vm):
                    raise
                log.warning("guest unresponsive (%s); retrying while QMP says it runs",
                            exc.message)
                time.sleep(2)

    def _max_chunks(self, vm: Machine, factor: float, chunk: int) -> int:
        """Working-set size: ``factor`` x (RAM + swap) as the guest sees them."""
        info = vm.run("cat /proc/meminfo", timeout=30).stdout
        kib = {k: int(v.split()[0]) for k, _, v in (ln.partition(":") for ln in info.splitlines())
               if v.strip() and v.split()[0].isdigit()}
        total = (kib.get("MemTotal", 0) + kib.get("SwapTotal", 0)) * 1024
        return max(1, int(total * factor) // chunk)

    # -- the run ---------------------------------------------------------------
    def execute(self) -> RunOutcome:
        wanted = self.sc.checks
        infra = ""
        try:
            with self._phase("build kernel"):
                art = self._kernel()
            with self._phase("build image and workload"):
                bins = build_workload(self.sc.get("workload", "name", str))
                image = build_image()
            cfg = VMConfig(kernel=art.bzimage if art else Path(str(self.opts.kernel)),
                           initramfs=image.initramfs, ram_mib=self.opts.ram_mib,
                           swap_mib=self.opts.swap_mib, smp=self.opts.smp, accel=self.opts.accel,
                           boot_timeout=float(self.sc.get("vm", "boot_timeout_s")),
                           command_timeout=300.0)
            vm = Machine(cfg, run_dir=self.run_dir)
            self.progress("[run] boot...")
            t_boot = time.monotonic()
            with vm:  # the Machine owns QEMU's life: it is gone when this block exits
                self.timings["boot"] = round(time.monotonic() - t_boot, 2)
                self.info["accel"] = vm.accel
                self._in_guest(vm, bins, wanted)
        except InfraError as exc:
            infra = exc.one_line()
            log.error("infrastructure error: %s", infra)
            self._save("infra-error.txt", f"{infra}\n{exc.detail}\n")
        for name in wanted:
            if name not in self.results:
                self.results[name] = C.infra_error(
                    name, TITLES[name], f"not evaluated: {infra or 'run aborted'}",
                    "infra-error.txt")
        results = [self.results[n] for n in wanted]
        return RunOutcome(self.run_dir, results, C.overall(results), self.timings, self.info,
                          infra)

    def _kernel(self) -> Artifact | None:
        if self.opts.kernel:
            self.info["kernel"] = {"bzimage": str(self.opts.kernel), "prebuilt": True}
            return None
        art = build_kernel(self.opts.build, progress=self.opts.build_progress)
        self.info["kernel"] = {"artifact": str(art.dir), "release": art.metadata.get(
            "kernel_release"), "series": [s["name"] for s in art.metadata.get("series", [])]}
        return art

    def _in_guest(self, vm: Machine, bins: dict[str, Path], wanted: list[str]) -> None:
        with self._phase("ship"):
            for name, path in bins.items():
                vm.put(path, f"{GUEST_BIN}/{name}")
                vm.run(f"chmod 755 {GUEST_BIN}/{name}", timeout=30, check=True)
        cg = self.sc.get("workload", "cgroup", str)
        iface = f"{cg}/{self.sc.get('workload', 'interface_file', str)}"
        self.info["guest_kernel"] = vm.run("uname -r", timeout=30).stdout.strip()
        self.info["meminfo"] = vm.run("grep -E 'MemTotal|SwapTotal' /proc/meminfo",
                                      timeout=30).stdout.strip()
        if vm.run(f"test -e {shlex.quote(iface)}", timeout=30).exit_status != 0:
            log.warning("interface missing: %s", iface)
            for name in wanted:
                self.results[name] = C.interface_missing(name, TITLES[name], iface)
            self._collect(vm)
            return
        vm.run(G.start_sampler(), timeout=30, check=True)
        sampler = _HostSampler(vm)
        sampler.start()
        try:
            if "clamping" in wanted:
                with self._phase("clamping"):
                    self.results["clamping"] = self._clamping(vm)
            if "notifications" in wanted or "oom_absence" in wanted:
                with self._phase("stress"):
                    self._stress(vm, wanted)
            if "child_cgroup" in wanted:
                with self._phase("child cgroup"):
                    self.results["child_cgroup"] = self._child(vm)
        finally:
            sampler.stop()
            self.host_samples = sampler.samples
            with self._phase("collect"):
                self._collect(vm)

    def _clamping(self, vm: Machine) -> C.CheckResult:
        chunk = self.sc.get("clamping", "chunk_size")
        hog = f"hog {self.sc.get('clamping', 'hog_mib')} {self.sc.get('clamping', 'hog_hold_ms')}"
        wait = f"wait {self.sc.get('clamping', 'wait_ms')}"
        n_before = len(vm.console_findings)
        underflow = self._mpctl(vm, f"register {chunk} add +10 add -25 read", "underflow")
        # Pressure for the next two comes from a small child cgroup's limit: its reclaim
        # struggles at once, so a request would come if the counter allowed one.
        root = self.sc.get("workload", "cgroup", str)
        child = f"{root}/{self.sc.get('clamping', 'cgroup', str)}"
        limit = self.sc.get("clamping", "limit_mib") * 1024 * 1024
        vm.run(f"mkdir -p {child} && echo {limit} > {child}/memory.limit_in_bytes", timeout=30,
               check=True)
        zero = self._mpctl(vm, f"register {chunk} {hog} {wait}", "zero_pressure", child)
        bounded = self._mpctl(vm, f"register {chunk} add +5 {hog} {wait} wait 500 read",
                              "bounded", child)
        vm.run(f"rmdir {child}", timeout=30)
        sat = self._mpctl(vm, f"register {chunk} add +9223372036854775807 read add +10 read",
                          "saturate")
        bad = {
            "chunk_size_zero": self._mpctl(vm, "register-raw eventfd 0", "chunk_size_zero"),
            "not_an_eventfd": self._mpctl(vm, f"register-raw devnull {chunk}", "not_an_eventfd"),
            "unregistered_eventfd": self._mpctl(vm, "add-unregistered +1", "unregistered"),
            "malformed_count": self._mpctl(vm, f"register {chunk} add abc", "malformed_count"),
            "count_overflows_s64": self._mpctl(vm, f"register {chunk} add 99999999999999999999",
                                               "count_overflows_s64"),
            "malformed_write": self._mpctl(vm, "write garbage", "malformed_write"),
        }
        findings = vm.console_findings[n_before:]
        return C.check_clamping(C.ClampObservations(underflow, zero, bounded, sat, bad, findings))

    def _oom_kill(self, vm: Machine) -> int | None:
        return parse_vmstat(self._patient(vm, "cat /proc/vmstat").stdout).get("oom_kill")

    def _mpstress_argv(self, cgroup: str, max_chunks: int) -> list[str]:
        argv = [f"{GUEST_BIN}/mpstress", "--cgroup", cgroup, "--chunk-size",
                str(self.sc.get("workload", "chunk_size")), "--max-chunks", str(max_chunks)]
        return argv + (["--no-reclaim"] if self.opts.no_reclaim else [])

    def _stop_workload(self, vm: Machine, prefix: str) -> tuple[str, CommandResult]:
        """SIGTERM a workload started by ``start_workload``; return how it ended and its output."""
        self._patient(vm, f"kill -TERM $(cat {prefix}.pid) 2>/dev/null")
        ended = self._await_workload(vm, prefix, 30)
        return ended, self._patient(vm, f"cat {prefix}.out; cat {prefix}.err >&2")

    def _await_workload(self, vm: Machine, prefix: str, timeout: float) -> str:
        """Wait for a workload's exit status file; return how it ended."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = self._patient(vm, f"cat {prefix}.rc 2>/dev/null")
            if r.stdout.strip():
                rc = int(r.stdout.strip())
                return "exit 0" if rc == 0 else (f"killed by signal {rc - 128}" if rc > 128
                                                 else f"exit {rc}")
            time.sleep(1)
        return "still running"

    def _stress(self, vm: Machine, wanted: list[str]) -> None:
        cg = self.sc.get("workload", "cgroup", str)
        chunk = self.sc.get("workload", "chunk_size")
        idle = self._mpctl(vm, f"register {chunk} add +50 wait "
                           f"{self.sc.get('notifications', 'idle_wait_ms')} read", "idle")
        before = self._oom_kill(vm)
        n_before = len(vm.console_findings)
        factor = float(self.sc.get("notifications", "working_set_factor", float))
        argv = self._mpstress_argv(cg, self._max_chunks(vm, factor, chunk))
        prefix = "/tmp/mpstress"
        t_start = self._guest_uptime(vm)
        vm.run(G.start_workload(argv, prefix), timeout=30, check=True)
        self.markers.append({"t": t_start, "label": "stress start"})
        squeeze_at = self.sc.get("notifications", "squeeze_at_s")
        squeeze_mib = self.sc.get("notifications", "squeeze_mib")
        hold = self.sc.get("notifications", "squeeze_hold_s")
        stress_s = self.opts.stress_s
        t0 = time.monotonic()
        t_squeeze: float | None = None
        if squeeze_at + hold < stress_s:
            time.sleep(max(0.0, squeeze_at - (time.monotonic() - t0)))
            assert self.guest_offset is not None
            t_squeeze = time.monotonic() + self.guest_offset
            vm.balloon(self.opts.ram_mib - squeeze_mib)
            self.markers.append({"t": t_squeeze, "label": f"balloon -{squeeze_mib} MiB"})
            time.sleep(hold)
            vm.balloon(self.opts.ram_mib)
            self.markers.append({"t": time.monotonic() + self.guest_offset,
                                 "label": "balloon released"})
        time.sleep(max(0.0, stress_s - (time.monotonic() - t0)))
        if self.opts.no_reclaim:
            self._await_oom_kill(vm, n_before,
                                 float(self.sc.get("notifications", "no_reclaim_wait_s")))
        self.markers.append({"t": time.monotonic() + (self.guest_offset or 0), "label": "SIGTERM"})
        ended, out = self._stop_workload(vm, prefix)
        after = self._oom_kill(vm)
        self._save("mpstress.out", out.stdout)
        self._save("mpstress.err", out.stderr)
        stress = parse_stress(out.stdout)
        self.stress_logs["stress"] = stress
        findings = self._findings(vm, n_before)
        latency = None
        if t_squeeze is not None:
            after_sq = [e.t for e in stress.of("asked") if e.t >= t_squeeze]
            latency = round(after_sq[0] - t_squeeze, 3) if after_sq else None
        if not stress.registered:
            for name in ("notifications", "oom_absence"):
                self.results[name] = C.interface_missing(name, TITLES[name],
                                                         f"{cg} (mpstress: {out.stderr.strip()})")
            return
        if "notifications" in wanted:
            self.results["notifications"] = C.check_notifications(
                stress, idle, latency, float(self.sc.get("notifications", "squeeze_bound_s")))
        if "oom_absence" in wanted:
            self.results["oom_absence"] = C.check_oom_absence(C.OomObservations(
                before, after, stress, ended, findings, vm.query_status(),
                [str(e.get("event")) for e in vm.qmp_events]))

    def _await_oom_kill(self, vm: Machine, n_before: int, limit_s: float) -> None:
        """Negative control: give a workload that ignores the kernel time to meet the OOM killer.

        Under TCG a guest with swap can thrash for minutes before the kernel gives
        up and kills; stopping the workload at the normal duration would hide what
        the control is there to show. Watches the live console classifier, not SSH
        (new SSH sessions need memory the thrashing guest does not have).
        """
        deadline = time.monotonic() + limit_s
        self.progress(f"[run] --no-reclaim: waiting up to {limit_s:.0f} s for an OOM kill")
        while time.monotonic() < deadline and _vm_running(vm):
            if any(f.kind in C.OOM_KINDS for f in vm.console_findings[n_before:]):
                time.sleep(2)  # let the kill finish and the guest breathe again
                return
            time.sleep(1)
        log.warning("--no-reclaim: no OOM kill within %.0f s", limit_s)

    def _findings(self, vm: Machine, n_before: int) -> list[Finding]:
        """Console findings since ``n_before``, plus dmesg's (deduplicated by title)."""
        found: list[Finding] = list(vm.console_findings[n_before:])
        dmesg = self._patient(vm, "dmesg").stdout
        titles = {f.title for f in found}
        found += [f for f in classify_text(dmesg) if f.title not in titles]
        return found

    def _child(self, vm: Machine) -> C.CheckResult:
        cg = self.sc.get("workload", "cgroup", str)
        child = f"{cg}/{self.sc.get('child_cgroup', 'name', str)}"
        limit = self.sc.get("child_cgroup", "limit_mib") * 1024 * 1024
        vm.run(f"mkdir -p {child} && echo {limit} > {child}/memory.limit_in_bytes", timeout=30,
               check=True)
        before = self._oom_kill(vm)
        n_before = len(vm.console_findings)
        prefix = "/tmp/mpstress-child"
        argv = self._mpstress_argv(child, self.sc.get("child_cgroup", "max_chunks"))
        self.markers.append({"t": self._guest_uptime(vm), "label": "child cgroup start"})
        vm.run(G.start_workload(argv, prefix, f"{child}/cgroup.procs"), timeout=30, check=True)
        time.sleep(self.sc.get("child_cgroup", "stress_s"))
        ended, out = self._stop_workload(vm, prefix)
        after = self._oom_kill(vm)
        self._save("mpstress-child.out", out.stdout + ("\n# stderr:\n" + out.stderr
                                                       if out.stderr else ""))
        stress = parse_stress(out.stdout)
        self.stress_logs["child"] = stress
        stats = vm.run(f"cat {child}/memory.failcnt {child}/memory.max_usage_in_bytes",
                       timeout=30).stdout.split()
        failcnt = int(stats[0]) if len(stats) > 0 and stats[0].isdigit() else None
        max_usage = int(stats[1]) if len(stats) > 1 and stats[1].isdigit() else None
        vm.run(f"rmdir {child}", timeout=30)  # removing the cgroup unregisters its shrinkers
        findings = self._findings(vm, n_before)
        return C.check_child_cgroup(C.OomObservations(
            before, after, stress, ended, findings, vm.query_status(),
            [str(e.get("event")) for e in vm.qmp_events]), limit, failcnt, max_usage)

    def _collect(self, vm: Machine) -> None:
        try:
            self._save("dmesg.txt", vm.run("dmesg", timeout=60).stdout)
            ts = vm.run("cat /tmp/mem.ts 2>/dev/null", timeout=60).stdout
            self._save("memory-guest.tsv", "uptime_s mem_available_kib swap_total_kib "
                       "swap_free_kib\n" + ts)
            self.mem = parse_mem_series(ts)
        except InfraError as exc:
            log.warning("could not collect guest artifacts: %s", exc.one_line())
        if self.guest_offset is not None:
            for s in self.host_samples:
                s["guest_t"] = round(s["host_t"] + self.guest_offset, 3)
        self._save("memory-host-qmp.json", json.dumps(self.host_samples, indent=1))


def _vm_running(vm: Machine) -> bool:
    try:
        return vm.query_status() == "running"
    except InfraError:
        return False


def _new_run_dir(name: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    d = runs_root() / f"{stamp}-{name}"
    n = 1
    while d.exists():
        n += 1
        d = runs_root() / f"{stamp}-{name}-{n}"
    d.mkdir(parents=True)
    return d
