"""Shell snippets the runner executes in the busybox guest.

Kept together so the guest-side protocol (which files, which oom_score_adj)
is visible in one place. The harness's own helpers run with
``oom_score_adj=-1000`` so an OOM in the negative control kills the workload,
not the instruments; the workload itself is reset to 0 so it *can* be killed.
"""

from __future__ import annotations

import shlex

# /proc/vmstat counters sampled with memory: reclaim's own measure of the deficit
# (scanned - reclaimed, per reclaimer) to set what the shrinker was asked against.
VMSTAT_FIELDS = ("pgscan_kswapd", "pgscan_direct", "pgsteal_kswapd", "pgsteal_direct",
                 "pgrefill", "oom_kill")
MEM_COLUMNS = ("uptime_s", "mem_available_kib", "swap_total_kib", "swap_free_kib",
               *VMSTAT_FIELDS)

_VMSTAT_AWK = " ".join(f'/^{f} /{{v{i}=$2}}' for i, f in enumerate(VMSTAT_FIELDS))
_VMSTAT_OUT = ", ".join(f"v{i}+0" for i in range(len(VMSTAT_FIELDS)))

SAMPLER = (
    "sh -c 'echo -1000 > /proc/self/oom_score_adj; "
    "while :; do awk "
    "'\"'\"'FILENAME==\"/proc/uptime\"{u=$1} /^MemAvailable:/{a=$2} /^SwapTotal:/{t=$2} "
    "/^SwapFree:/{f=$2} " + _VMSTAT_AWK + " END{print u, a, t, f, " + _VMSTAT_OUT + "}"
    "'\"'\"' /proc/uptime /proc/meminfo /proc/vmstat; "
    "sleep {interval}; done' > {out} 2>/dev/null < /dev/null &"
)


#: The running kernel's page size: busybox has no getconf, but od prints od's own auxiliary
#: vector (AT_PAGESZ among its type/value pairs; workload_output.parse_auxv_page_size).
PAGE_SIZE_COMMAND = "od -An -tu8 /proc/self/auxv"


def start_sampler(out: str = "/tmp/mem.ts", interval: float = 0.5) -> str:
    """Background sampler: one line of :data:`MEM_COLUMNS` (memory in KiB) per interval.

    ``out`` may be the event FIFO: lines then carry a ``MEM`` prefix and each is flushed
    (one write, atomic on a FIFO) so they interleave cleanly with the workload's.
    """
    if out.endswith(".ts"):
        return SAMPLER.replace("{interval}", str(interval)).replace("{out}", out)
    fifo = SAMPLER.replace("{print u, a, t, f, " + _VMSTAT_OUT + "}",
                           '{print "MEM", u, a, t, f, ' + _VMSTAT_OUT + '; fflush()}')
    return fifo.replace("{interval}", str(interval)).replace("> {out}", f">> {out}")


def start_workload(argv: list[str], prefix: str, cgroup_procs: str | None = None,
                   events_fifo: str | None = None, name: str = "workload") -> str:
    """Start a workload in the background; its pid, stdout, stderr and status land in files.

    ``prefix`` names them: ``<prefix>.pid``, ``.out``, ``.err``, ``.rc``. The
    wrapper survives the workload (adj -1000) so the exit status is recorded
    even when the OOM killer takes the workload. With ``events_fifo`` the status
    is also written there as ``EXIT <name> <rc>`` (see harness.core.events), so
    the host learns of the end without asking over SSH.
    """
    cmd = " ".join(shlex.quote(a) for a in argv)
    join = f"echo $$ > {cgroup_procs}; " if cgroup_procs else ""
    report = f'; echo "EXIT {name} $rc" > {events_fifo}' if events_fifo else ""
    inner = (f"echo -1000 > /proc/self/oom_score_adj; "
             f"sh -c {shlex.quote(f'echo 0 > /proc/self/oom_score_adj; {join}exec {cmd}')} "
             f"> {prefix}.out 2> {prefix}.err < /dev/null & "
             f"echo $! > {prefix}.pid; wait $!; rc=$?; echo $rc > {prefix}.rc{report}")
    return f"rm -f {prefix}.rc; sh -c {shlex.quote(inner)} > /dev/null 2>&1 < /dev/null &"


def uptime() -> str:
    return "cut -d' ' -f1 /proc/uptime"
