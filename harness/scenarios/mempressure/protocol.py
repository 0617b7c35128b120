"""The guest half of the mempressure scenario: drive mpctl/mpstress, save what they said.

Nothing here decides a verdict. Each phase leaves its raw output in the run dir and its few
numbers (oom_kill before/after, how the workload ended, console marks, the squeeze time) in
``observations.json``; :mod:`harness.scenarios.mempressure.judge` turns those into checks,
live or later from a saved run dir.
"""

from __future__ import annotations

import json
import logging
import re
import shlex
import threading
import time
from collections.abc import Callable
from typing import Any

from harness.core.events import GUEST_FIFO, lines_with_prefix
from harness.core.plugin import RunContext
from harness.errors import InfraError, UsageError
from harness.scenarios.mempressure import guest_scripts as G
from harness.scenarios.mempressure.workload_output import parse_auxv_page_size, parse_vmstat
from harness.vm import CommandResult, Machine

log = logging.getLogger(__name__)

GUEST_BIN = "/tmp"
SELFTEST_ROOT = "/opt/kselftest"  # where harness.kselftest's build lands in the guest


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
                str(self.sc.get("workload", "chunk_size")), "--max-chunks", str(max_chunks),
                "--regrow", str(self.sc.get("workload", "regrow_ms"))]
        return argv + (["--no-reclaim"] if self.no_reclaim else [])

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

    # -- the run ---------------------------------------------------------------
    def run(self, wanted: list[str]) -> None:
        vm, ctx = self.vm, self.ctx
        cg = self.sc.get("workload", "cgroup", str)
        iface = f"{cg}/{self.sc.get('workload', 'interface_file', str)}"
        ctx.info["guest_kernel"] = vm.run("uname -r", timeout=30).stdout.strip()
        ctx.info["meminfo"] = vm.run("grep -E 'MemTotal|SwapTotal' /proc/meminfo",
                                     timeout=30).stdout.strip()
        # Reclaim counts pages: the judge turns them into bytes with the running kernel's page
        # size (4 KiB on x86_64, 4, 16 or 64 KiB on arm64), read from busybox od's auxv.
        page = parse_auxv_page_size(vm.run(G.PAGE_SIZE_COMMAND, timeout=30).stdout)
        ctx.observe("page_size", page)
        ctx.info["page_size"] = page
        if self.no_reclaim:
            ctx.info["negative_control"] = "--no-reclaim"
        present = vm.run(f"test -e {shlex.quote(iface)}", timeout=30).exit_status == 0
        ctx.observe("interface", {"path": iface, "present": present})
        if not present:
            log.warning("interface missing: %s", iface)
            self._collect([])
            return
        vm.run(G.start_sampler(GUEST_FIFO if ctx.events else "/tmp/mem.ts"), timeout=30,
               check=True)
        sampler = _HostSampler(vm)
        sampler.start()
        try:
            if "contract" in wanted:
                with ctx.phase("contract (selftest)"):
                    self._contract()
            if "notifications" in wanted or "oom_absence" in wanted:
                with ctx.phase("stress"):
                    self._stress()
            if "child_cgroup" in wanted:
                with ctx.phase("child cgroup"):
                    self._child()
            reference = self.sc.data.get("reference")
            if reference and ("notifications" in wanted or "oom_absence" in wanted):
                with ctx.phase(f"reference ({reference.get('label', 'reference')})"):
                    self._reference(reference)
        finally:
            sampler.stop()
            with ctx.phase("collect"):
                self._collect(sampler.samples)

    def _contract(self) -> None:
        """Run the series' own kselftest (shipped by prepare) and keep its KTAP output."""
        prog = f"{SELFTEST_ROOT}/{self.sc.get('contract', 'program', str)}"
        if self.vm.run(f"test -x {shlex.quote(prog)}", timeout=30).exit_status != 0:
            self.ctx.observe("contract", {"missing": prog})
            return
        start = self.ctx.console_mark()
        timeout = float(self.sc.get("contract", "timeout_s"))
        args = contract_args(self.sc.get("contract", "args", list, []), "[contract] args")
        t0 = time.monotonic()
        timed_out = False
        try:
            r = self.vm.run(f"cd {shlex.quote(prog.rsplit('/', 1)[0])} && "
                            f"timeout {int(timeout)} {shlex.join([prog, *args])}",
                            timeout=timeout + 30)
            out, rc = r.stdout + r.stderr, r.exit_status
            timed_out = rc == 124  # busybox timeout's status for a killed program
        except InfraError:
            if not _vm_running(self.vm):
                raise
            out, rc, timed_out = "", None, True
        self.ctx.save("selftest.ktap", out)
        self.ctx.observe("contract", {"exit": rc, "timed_out": timed_out,
                                      "seconds": round(time.monotonic() - t0, 2),
                                      "console": [start, self.ctx.console_mark()]})

    def _work_bytes(self, factor: float, base_bytes: int | None = None) -> int:
        """How much the workload must touch before it is done: ``factor`` x (RAM + swap)."""
        if base_bytes is None:
            base_bytes = self._max_chunks(1.0, 1)
        return int(base_bytes * factor)

    def _run_workload(self, argv: list[str], prefix: str, name: str, timeout_s: float,
                      cgroup_procs: str | None = None,
                      during: list[tuple[float, Callable[[], None]]] | None = None
                      ) -> tuple[str, str, str]:
        """Start a workload, act at given times while it runs, wait for its end.

        Returns (how it ended, its event lines, its stderr). With the event stream the end is
        an ``EXIT`` line on it (no SSH command per poll); without, the status file is polled.
        A workload still running at ``timeout_s`` is stopped with SIGTERM: "did not finish"
        is then what the checks see, the kernel's doing, not the rig's.
        """
        ev = self.ctx.events
        fifo = GUEST_FIFO if ev else None
        if fifo:
            argv = [*argv, "--events", fifo]
        mark = ev.mark() if ev else 0
        self.vm.run(G.start_workload(argv, prefix, cgroup_procs, fifo, name), timeout=30,
                    check=True)
        t0 = time.monotonic()
        ended = ""
        for at, action in sorted(during or [], key=lambda x: x[0]):
            ended = self._wait_end(prefix, name, mark, max(0.0, at - (time.monotonic() - t0)))
            if ended:
                break
            action()
        if not ended:
            ended = self._wait_end(prefix, name, mark,
                                   max(1.0, timeout_s - (time.monotonic() - t0)))
        if not ended:
            self._mark("SIGTERM (timeout)")
            self._patient(f"kill -TERM $(cat {prefix}.pid) 2>/dev/null")
            ended = self._wait_end(prefix, name, mark, 30) or "still running"
            ended = f"{ended} (stopped after {timeout_s:.0f} s)"
        end_mark = ev.mark() if ev else 0
        if ev:
            time.sleep(0.3)  # the relay may still be copying the last lines
            lines = lines_with_prefix(ev.text(mark), "EV ", "SUMMARY")
            err = self._patient(f"cat {prefix}.err").stdout
        else:
            r = self._patient(f"cat {prefix}.out; cat {prefix}.err >&2")
            lines, err = r.stdout, r.stderr
        self.ctx.observe(f"events_{name}", [mark, end_mark])
        return ended, lines, err

    def _wait_end(self, prefix: str, name: str, mark: int, timeout: float) -> str:
        """How the workload ended, or "" if it still runs after ``timeout``."""
        ev = self.ctx.events
        if ev is None:
            got = self._await_workload(prefix, timeout)
            return "" if got == "still running" else got
        pat = re.compile(rf"^EXIT {re.escape(name)} (\d+)\s*$", re.M)
        m = ev.wait_for(pat, mark, timeout, lambda: _vm_running(self.vm))
        if m is None:
            if not _vm_running(self.vm):
                raise InfraError("guest", f"gone while {name} ran (QMP: not running)")
            return ""
        rc = int(m.group(1))
        return "exit 0" if rc == 0 else (f"killed by signal {rc - 128}" if rc > 128
                                         else f"exit {rc}")

    def _reference(self, reference: dict[str, Any]) -> None:
        """The stress phase again under the reference's guest setup (e.g. the classic LRU
        beside MGLRU): the same workload and sizes in the same boot, as evidence for the
        report, never a check."""
        for cmd in reference.get("setup", []):
            self.vm.run(cmd, timeout=60, check=True)
        self._mark(f"reference: {reference.get('label', '')}")
        self._stress(suffix="-reference", idle=False)

    def _stress(self, suffix: str = "", idle: bool = True) -> None:
        vm, ctx = self.vm, self.ctx
        cg = self.sc.get("workload", "cgroup", str)
        chunk = self.sc.get("workload", "chunk_size")
        if idle:
            self._mpctl(f"register {chunk} add +50 wait "
                        f"{self.sc.get('notifications', 'idle_wait_ms')} read", "idle")
        obs: dict[str, Any] = {"oom_kill_before": self._oom_kill(),
                               "lru_gen": vm.run("cat /sys/kernel/mm/lru_gen/enabled "
                                                 "2>/dev/null", timeout=30).stdout.strip()}
        start = ctx.console_mark()
        factor = float(self.sc.get("notifications", "working_set_factor", float))
        work = self._work_bytes(float(self.sc.get("notifications", "work_factor", float)))
        argv = [*self._mpstress_argv(cg, self._max_chunks(factor, chunk)),
                "--until-bytes", str(work)]
        obs["until_bytes"] = work
        squeeze_at = float(self.sc.get("notifications", "squeeze_at_s"))
        squeeze_mib = self.sc.get("notifications", "squeeze_mib")
        hold = self.sc.get("notifications", "squeeze_hold_s")
        ram = ctx.vm_settings.ram_mib

        def squeeze() -> None:
            obs["t_squeeze"] = self._now_guest()
            vm.balloon(ram - squeeze_mib)
            self._mark(f"balloon -{squeeze_mib} MiB", obs["t_squeeze"])
            time.sleep(hold)
            vm.balloon(ram)
            self._mark("balloon released")

        obs["t_start"] = self._guest_uptime()
        self._mark(f"stress{suffix} start", obs["t_start"])
        timeout = float(ctx.options.get("duration_s") or
                        self.sc.get("notifications", "stress_timeout_s"))
        ended, lines, err = self._run_workload(argv, f"/tmp/mpstress{suffix}",
                                               f"mpstress{suffix}", timeout,
                                               during=[(squeeze_at, squeeze)])
        self._mark(f"stress{suffix} end")
        obs["ended"] = ended
        obs["oom_kill_after"] = self._oom_kill()
        ctx.save(f"mpstress{suffix}.out", lines)
        ctx.save(f"mpstress{suffix}.err", err)
        ctx.save(f"dmesg-stress{suffix}.txt", self._patient("dmesg").stdout)
        obs["console"] = [start, ctx.console_mark()]
        obs["qmp_status"] = vm.query_status()
        ctx.observe(f"stress{suffix.replace('-', '_')}", obs)

    def _child(self) -> None:
        vm, ctx = self.vm, self.ctx
        cg = self.sc.get("workload", "cgroup", str)
        child = f"{cg}/{self.sc.get('child_cgroup', 'name', str)}"
        limit = self.sc.get("child_cgroup", "limit_mib") * 1024 * 1024
        # memsw = limit + a little: the child cannot escape its limit into swap beyond the
        # slack an asynchronous request needs, so without the shrinker's help its own OOM
        # killer comes (fast); with it, the workload finishes.
        memsw = limit + self.sc.get("child_cgroup", "swap_slack_mib") * 1024 * 1024
        vm.run(f"mkdir -p {child} && echo {limit} > {child}/memory.limit_in_bytes && "
               f"echo {memsw} > {child}/memory.memsw.limit_in_bytes", timeout=30, check=True)
        obs: dict[str, Any] = {"oom_kill_before": self._oom_kill(), "limit_bytes": limit}
        start = ctx.console_mark()
        work = self._work_bytes(float(self.sc.get("child_cgroup", "work_factor", float)), limit)
        argv = [*self._mpstress_argv(child, self.sc.get("child_cgroup", "max_chunks")),
                "--until-bytes", str(work)]
        obs["t_start"] = self._guest_uptime()
        self._mark("child cgroup start", obs["t_start"])
        ended, lines, err = self._run_workload(
            argv, "/tmp/mpstress-child", "mpstress-child",
            float(self.sc.get("child_cgroup", "timeout_s")), f"{child}/cgroup.procs")
        obs["ended"] = ended
        obs["oom_kill_after"] = self._oom_kill()
        ctx.save("mpstress-child.out", lines + ("\n# stderr:\n" + err if err else ""))
        stats = vm.run(f"cat {child}/memory.failcnt", timeout=30).stdout.split()
        obs["failcnt"] = int(stats[0]) if stats and stats[0].isdigit() else None
        vm.run(f"rmdir {child}", timeout=30)  # removing the cgroup unregisters its shrinkers
        ctx.save("dmesg-child.txt", self._patient("dmesg").stdout)
        obs["console"] = [start, ctx.console_mark()]
        obs["qmp_status"] = vm.query_status()
        ctx.observe("child", obs)

    def _collect(self, host_samples: list[dict[str, Any]]) -> None:
        try:
            self.ctx.save("dmesg.txt", self.vm.run("dmesg", timeout=60).stdout)
            if self.ctx.events:
                ts = "".join(ln[4:] + "\n" for ln in self.ctx.events.text().splitlines()
                             if ln.startswith("MEM "))
            else:
                ts = self.vm.run("cat /tmp/mem.ts 2>/dev/null", timeout=60).stdout
            self.ctx.save("memory-guest.tsv", " ".join(G.MEM_COLUMNS) + "\n" + ts)
        except InfraError as exc:
            log.warning("could not collect guest artifacts: %s", exc.one_line())
        if self.guest_offset is not None:
            for s in host_samples:
                s["guest_t"] = round(s["host_t"] + self.guest_offset, 3)
        self.ctx.save("memory-host-qmp.json", json.dumps(host_samples, indent=1))


def contract_args(args: list[object], where: str) -> list[str]:
    """``[contract] args``: extra arguments of the selftest (the debug variant's
    ``--lifetime-stress SECONDS``), each a string; validated when the scenario loads."""
    if not all(isinstance(a, str) for a in args):
        raise UsageError(where, "must be a list of strings")
    return [str(a) for a in args]
