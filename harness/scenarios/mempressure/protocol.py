"""The guest half of the mempressure scenario: drive mpctl/mpstress, save what they said.

Nothing here decides a verdict. Each phase leaves its raw output in the run dir and its few
numbers (oom_kill before/after, how the workload ended, console marks, the squeeze time) in
``observations.json``; :mod:`harness.scenarios.mempressure.judge` turns those into checks,
live or later from a saved run dir.
"""

from __future__ import annotations

import json
import logging
import shlex
import threading
import time
from typing import Any

from harness.core.plugin import RunContext
from harness.errors import InfraError
from harness.scenarios.mempressure import guest_scripts as G
from harness.scenarios.mempressure.checks import OOM_KINDS
from harness.scenarios.mempressure.workload_output import parse_vmstat
from harness.vm import CommandResult, Machine

log = logging.getLogger(__name__)

GUEST_BIN = "/tmp"


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
            except Exception as exc:  # QEMU gone: the core reports it, we just stop
                log.debug("host sampler stopped: %s", exc)
                return
            self.samples.append({"host_t": time.monotonic(), **stats})

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)


def _vm_running(vm: Machine) -> bool:
    try:
        return vm.query_status() == "running"
    except InfraError:
        return False


class Protocol:
    """One pass of the scenario through a booted guest."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.vm = ctx.vm
        self.sc = ctx.spec
        self.no_reclaim = bool(ctx.options.get("no_reclaim"))
        self.markers: list[dict[str, Any]] = []
        self.guest_offset: float | None = None  # guest uptime - host monotonic
        self.mpctl: dict[str, str] = {}

    # -- helpers ---------------------------------------------------------------
    def _mpctl(self, args: str, name: str, cgroup: str | None = None) -> None:
        """Run one mpctl sequence; with ``cgroup``, inside that (child) memory cgroup."""
        cg = cgroup or self.sc.get("workload", "cgroup", str)
        cmd = f"{GUEST_BIN}/mpctl --cgroup {shlex.quote(cg)} {args}"
        if cgroup:
            # Join the cgroup first so that mpctl's memory hog is charged (and reclaimed) there.
            cmd = f"sh -c {shlex.quote(f'echo $$ > {cg}/cgroup.procs && exec {cmd}')}"
        r = self.vm.run(cmd, timeout=120)
        self.ctx.save("mpctl.out", f"$ mpctl {args}   # {name}, exit {r.exit_status}\n"
                      f"{r.stdout}{r.stderr}\n", append=True)
        self.mpctl[name] = r.stdout
        self.ctx.observe("mpctl", self.mpctl)

    def _guest_uptime(self) -> float:
        t0 = time.monotonic()
        up = float(self.vm.run(G.uptime(), timeout=30).stdout.strip() or 0)
        self.guest_offset = up - (t0 + time.monotonic()) / 2
        return up

    def _now_guest(self) -> float:
        return time.monotonic() + (self.guest_offset or 0.0)

    def _mark(self, label: str, t: float | None = None) -> None:
        self.markers.append({"t": self._now_guest() if t is None else t, "label": label})
        self.ctx.observe("markers", self.markers)

    def _patient(self, command: str, timeout: float = 60,
                 patience: float = 240) -> CommandResult:
        """Run a command in a guest that may be crawling under memory pressure.

        Thrashing can starve dropbear for a while; that is the workload's doing and not yet
        an infrastructure failure. As long as QMP says the VM is running, retry until
        ``patience`` runs out; then it is one.
        """
        deadline = time.monotonic() + patience
        while True:
            try:
                return self.vm.run(command, timeout=timeout)
            except InfraError as exc:
                if time.monotonic() > deadline or not _vm_running(self.vm):
                    raise
                log.warning("guest unresponsive (%s); retrying while QMP says it runs",
                            exc.message)
                time.sleep(2)

    def _oom_kill(self) -> int | None:
        return parse_vmstat(self._patient("cat /proc/vmstat").stdout).get("oom_kill")

    def _max_chunks(self, factor: float, chunk: int) -> int:
        """Working-set size: ``factor`` x (RAM + swap) as the guest sees them."""
        info = self.vm.run("cat /proc/meminfo", timeout=30).stdout
        kib = {k: int(v.split()[0]) for k, _, v in (ln.partition(":") for ln in info.splitlines())
               if v.strip() and v.split()[0].isdigit()}
        total = (kib.get("MemTotal", 0) + kib.get("SwapTotal", 0)) * 1024
        return max(1, int(total * factor) // chunk)

    def _mpstress_argv(self, cgroup: str, max_chunks: int) -> list[str]:
        argv = [f"{GUEST_BIN}/mpstress", "--cgroup", cgroup, "--chunk-size",
                str(self.sc.get("workload", "chunk_size")), "--max-chunks", str(max_chunks)]
        return argv + (["--no-reclaim"] if self.no_reclaim else [])

    def _stop_workload(self, prefix: str) -> tuple[str, CommandResult]:
        """SIGTERM a workload started by ``start_workload``; return how it ended and its output."""
        self._patient(f"kill -TERM $(cat {prefix}.pid) 2>/dev/null")
        ended = self._await_workload(prefix, 30)
        return ended, self._patient(f"cat {prefix}.out; cat {prefix}.err >&2")

    def _await_workload(self, prefix: str, timeout: float) -> str:
        """Wait for a workload's exit status file; return how it ended."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = self._patient(f"cat {prefix}.rc 2>/dev/null")
            if r.stdout.strip():
                rc = int(r.stdout.strip())
                return "exit 0" if rc == 0 else (f"killed by signal {rc - 128}" if rc > 128
                                                 else f"exit {rc}")
            time.sleep(1)
        return "still running"

    def _await_oom_kill(self, mark: int, limit_s: float) -> None:
        """Negative control: give a workload that ignores the kernel time to meet the OOM killer.

        Watches the live console classifier, not SSH (new SSH sessions need memory the
        thrashing guest does not have).
        """
        deadline = time.monotonic() + limit_s
        self.ctx.progress(f"[run] --no-reclaim: waiting up to {limit_s:.0f} s for an OOM kill")
        while time.monotonic() < deadline and _vm_running(self.vm):
            if any(f.kind in OOM_KINDS for f in self.vm.console_findings[mark:]):
                time.sleep(2)  # let the kill finish and the guest breathe again
                return
            time.sleep(1)
        log.warning("--no-reclaim: no OOM kill within %.0f s", limit_s)

    # -- the run ---------------------------------------------------------------
    def run(self, wanted: list[str]) -> None:
        vm, ctx = self.vm, self.ctx
        cg = self.sc.get("workload", "cgroup", str)
        iface = f"{cg}/{self.sc.get('workload', 'interface_file', str)}"
        ctx.info["guest_kernel"] = vm.run("uname -r", timeout=30).stdout.strip()
        ctx.info["meminfo"] = vm.run("grep -E 'MemTotal|SwapTotal' /proc/meminfo",
                                     timeout=30).stdout.strip()
        if self.no_reclaim:
            ctx.info["negative_control"] = "--no-reclaim"
        present = vm.run(f"test -e {shlex.quote(iface)}", timeout=30).exit_status == 0
        ctx.observe("interface", {"path": iface, "present": present})
        if not present:
            log.warning("interface missing: %s", iface)
            self._collect([])
            return
        vm.run(G.start_sampler(), timeout=30, check=True)
        sampler = _HostSampler(vm)
        sampler.start()
        try:
            if "clamping" in wanted:
                with ctx.phase("clamping"):
                    self._clamping()
            if "notifications" in wanted or "oom_absence" in wanted:
                with ctx.phase("stress"):
                    self._stress()
            if "child_cgroup" in wanted:
                with ctx.phase("child cgroup"):
                    self._child()
        finally:
            sampler.stop()
            with ctx.phase("collect"):
                self._collect(sampler.samples)

    def _clamping(self) -> None:
        chunk = self.sc.get("clamping", "chunk_size")
        hog = f"hog {self.sc.get('clamping', 'hog_mib')} {self.sc.get('clamping', 'hog_hold_ms')}"
        wait = f"wait {self.sc.get('clamping', 'wait_ms')}"
        start = self.ctx.console_mark()
        self._mpctl(f"register {chunk} add +10 add -25 read", "underflow")
        # Pressure for the next two comes from a small child cgroup's limit: its reclaim
        # struggles at once, so a request would come if the counter allowed one.
        root = self.sc.get("workload", "cgroup", str)
        child = f"{root}/{self.sc.get('clamping', 'cgroup', str)}"
        limit = self.sc.get("clamping", "limit_mib") * 1024 * 1024
        self.vm.run(f"mkdir -p {child} && echo {limit} > {child}/memory.limit_in_bytes",
                    timeout=30, check=True)
        self._mpctl(f"register {chunk} {hog} {wait}", "zero_pressure", child)
        self._mpctl(f"register {chunk} add +5 {hog} {wait} wait 500 read", "bounded", child)
        self.vm.run(f"rmdir {child}", timeout=30)
        self._mpctl(f"register {chunk} add +9223372036854775807 read add +10 read", "saturate")
        for name, args in (
            ("chunk_size_zero", "register-raw eventfd 0"),
            ("not_an_eventfd", f"register-raw devnull {chunk}"),
            ("unregistered_eventfd", "add-unregistered +1"),
            ("malformed_count", f"register {chunk} add abc"),
            ("count_overflows_s64", f"register {chunk} add 99999999999999999999"),
            ("malformed_write", "write garbage"),
        ):
            self._mpctl(args, name)
        self.ctx.observe("clamping", {"console": [start, self.ctx.console_mark()]})

    def _stress(self) -> None:
        vm, ctx = self.vm, self.ctx
        cg = self.sc.get("workload", "cgroup", str)
        chunk = self.sc.get("workload", "chunk_size")
        self._mpctl(f"register {chunk} add +50 wait "
                    f"{self.sc.get('notifications', 'idle_wait_ms')} read", "idle")
        obs: dict[str, Any] = {"oom_kill_before": self._oom_kill()}
        start = ctx.console_mark()
        factor = float(self.sc.get("notifications", "working_set_factor", float))
        argv = self._mpstress_argv(cg, self._max_chunks(factor, chunk))
        prefix = "/tmp/mpstress"
        self._mark("stress start", self._guest_uptime())
        vm.run(G.start_workload(argv, prefix), timeout=30, check=True)
        squeeze_at = self.sc.get("notifications", "squeeze_at_s")
        squeeze_mib = self.sc.get("notifications", "squeeze_mib")
        hold = self.sc.get("notifications", "squeeze_hold_s")
        stress_s = int(ctx.options.get("duration_s") or
                       self.sc.get("notifications", "stress_s"))
        ram = ctx.vm_settings.ram_mib
        t0 = time.monotonic()
        if squeeze_at + hold < stress_s:
            time.sleep(max(0.0, squeeze_at - (time.monotonic() - t0)))
            obs["t_squeeze"] = self._now_guest()
            vm.balloon(ram - squeeze_mib)
            self._mark(f"balloon -{squeeze_mib} MiB", obs["t_squeeze"])
            time.sleep(hold)
            vm.balloon(ram)
            self._mark("balloon released")
        time.sleep(max(0.0, stress_s - (time.monotonic() - t0)))
        if self.no_reclaim:
            self._await_oom_kill(start, float(self.sc.get("notifications", "no_reclaim_wait_s")))
        self._mark("SIGTERM")
        ended, out = self._stop_workload(prefix)
        obs["ended"] = ended
        obs["oom_kill_after"] = self._oom_kill()
        ctx.save("mpstress.out", out.stdout)
        ctx.save("mpstress.err", out.stderr)
        ctx.save("dmesg-stress.txt", self._patient("dmesg").stdout)
        obs["console"] = [start, ctx.console_mark()]
        obs["qmp_status"] = vm.query_status()
        ctx.observe("stress", obs)

    def _child(self) -> None:
        vm, ctx = self.vm, self.ctx
        cg = self.sc.get("workload", "cgroup", str)
        child = f"{cg}/{self.sc.get('child_cgroup', 'name', str)}"
        limit = self.sc.get("child_cgroup", "limit_mib") * 1024 * 1024
        vm.run(f"mkdir -p {child} && echo {limit} > {child}/memory.limit_in_bytes", timeout=30,
               check=True)
        obs: dict[str, Any] = {"oom_kill_before": self._oom_kill(), "limit_bytes": limit}
        start = ctx.console_mark()
        prefix = "/tmp/mpstress-child"
        argv = self._mpstress_argv(child, self.sc.get("child_cgroup", "max_chunks"))
        self._mark("child cgroup start", self._guest_uptime())
        vm.run(G.start_workload(argv, prefix, f"{child}/cgroup.procs"), timeout=30, check=True)
        time.sleep(self.sc.get("child_cgroup", "stress_s"))
        ended, out = self._stop_workload(prefix)
        obs["ended"] = ended
        obs["oom_kill_after"] = self._oom_kill()
        ctx.save("mpstress-child.out", out.stdout + ("\n# stderr:\n" + out.stderr
                                                     if out.stderr else ""))
        stats = vm.run(f"cat {child}/memory.failcnt {child}/memory.max_usage_in_bytes",
                       timeout=30).stdout.split()
        obs["failcnt"] = int(stats[0]) if len(stats) > 0 and stats[0].isdigit() else None
        obs["max_usage"] = int(stats[1]) if len(stats) > 1 and stats[1].isdigit() else None
        vm.run(f"rmdir {child}", timeout=30)  # removing the cgroup unregisters its shrinkers
        ctx.save("dmesg-child.txt", self._patient("dmesg").stdout)
        obs["console"] = [start, ctx.console_mark()]
        obs["qmp_status"] = vm.query_status()
        ctx.observe("child", obs)

    def _collect(self, host_samples: list[dict[str, Any]]) -> None:
        try:
            self.ctx.save("dmesg.txt", self.vm.run("dmesg", timeout=60).stdout)
            ts = self.vm.run("cat /tmp/mem.ts 2>/dev/null", timeout=60).stdout
            self.ctx.save("memory-guest.tsv", "uptime_s mem_available_kib swap_total_kib "
                          "swap_free_kib\n" + ts)
        except InfraError as exc:
            log.warning("could not collect guest artifacts: %s", exc.one_line())
        if self.guest_offset is not None:
            for s in host_samples:
                s["guest_t"] = round(s["host_t"] + self.guest_offset, 3)
        self.ctx.save("memory-host-qmp.json", json.dumps(host_samples, indent=1))
