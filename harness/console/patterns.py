"""The one table of kernel console report patterns.

Every kind of report the classifier knows is one :class:`Pattern` row in
:data:`PATTERNS`: its kind, the regex its first line matches, how it ends,
its severity and how to build its one-line title.  The classifier itself
holds no pattern knowledge, so adding a report kind means adding a row here
(and a log with it to ``tests/data/console/``).

Start regexes are matched with ``re.match`` against a line whose console
prefixes (``<4>``, ``[   12.345678]``, ``[    T1]``) were removed, so they
are anchored at the kernel's own text: ``ODEBUG: ...``, ``DEBUG: ...`` or
``CONFIG_BUG=y`` never match ``BUG:`` rows.  Rows are tried in order; put
the specific ones (``BUG: KASAN:``) before the general ones (``BUG:``).

Titles follow syzkaller's style ("WARNING in foo", "BUG: soft lockup in
foo").  A title template may use the named groups of the start regex, of the
end line's regex, and ``{fn}``: the function the report blames (the function
on the ``WARNING:`` line, else the ``RIP:`` line, else the first interesting
frame of the call trace).  The first template whose fields are all known
wins, so the last one of a row should need no ``{fn}``.

Severities (see :class:`~harness.console.types.Severity`): only a panic is
fatal.  Oops/BUG/sanitizer reports, traps and lockups are errors.  WARN_ON,
lockdep's "possible" deadlocks, hung tasks (TCG is slow enough to make them
appear spuriously), leaks, allocation failures and global OOM kills are
warnings.  A memcg OOM kill is the memory controller doing its job: info.
Whether an OOM is expected is the scenario's call, hence the separate kinds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from harness.console.types import Severity

__all__ = ["END_TRACE", "KINDS", "PATTERNS", "PREFILTER_WORDS", "End", "Pattern"]


class End(Enum):
    """How a report's block ends.

    ``MARKER``: at the first later line containing ``Pattern.marker`` (and,
    when ``Pattern.end`` is set, matching it once prefixes are stripped); that
    line is part of the block.  ``CONTINUATION``: at the first later line NOT
    matching ``Pattern.end`` (that line is not part of the block).  ``LINE``:
    the report is its first line only.

    Whatever the rule, a block also ends before the first line that starts
    another report, after ``MAX_BLOCK_LINES`` lines, and at ``close()``: a
    guest that dies mid-report must not leave a report unreported.
    """

    MARKER = "marker"
    CONTINUATION = "continuation"
    LINE = "line"


#: Marker printed by oops_exit() and at the end of WARN/UBSAN reports.
END_TRACE = "---[ end trace"
#: Marker closing an x86 stack dump (``Call Trace: <TASK> ... </TASK>``).
END_TASK = "</TASK>"

_END_TASK_RE = re.compile(r"\s*</TASK>\s*$")
_SEPARATOR_RE = re.compile(r"={20,}\s*$")


@dataclass(frozen=True, slots=True)
class Pattern:
    """One row of the table: one kind of kernel report."""

    kind: str
    #: Matched (``re.match``) against the prefix-stripped first line.
    start: re.Pattern[str]
    severity: Severity
    #: Title templates, tried in order (see the module docstring).
    titles: tuple[str, ...]
    end_rule: End = End.MARKER
    #: Literal substring that the end line contains (found with str.find,
    #: which is what keeps long blocks cheap).
    marker: str = END_TASK
    #: MARKER: the end line must also match this; CONTINUATION: lines that
    #: still belong to the block.
    end: re.Pattern[str] | None = _END_TASK_RE
    #: Publish the finding on the first line instead of at the end (panics:
    #: the end may never come, and the runtime wants to stop right away).
    emit_on_start: bool = False
    #: This line is an x86 die() header ("Oops: ...: 0000 [#1] ...").
    die_header: bool = False
    #: A die() header may follow and then belongs to this report; the block
    #: then ends at ``END_TRACE`` (printed by oops_exit()).
    expects_die: bool = False
    #: The kernel prints "------------[ cut here ]------------" (and maybe
    #: a WARN() message) before this line; the block then starts there.
    after_cut_here: bool = False
    #: When the end line's regex has a group ``alt`` that matched, the
    #: finding gets this kind/severity/titles instead (global vs memcg OOM).
    alt_kind: str = ""
    alt_severity: Severity = Severity.INFO
    alt_titles: tuple[str, ...] = ()


def _re(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


_DIE = r"[0-9a-f]{4} \[#\d+\]"
_LOCKDEP_HEADINGS = (
    r"possible circular locking dependency detected",
    r"possible recursive locking detected",
    r"possible irq lock inversion dependency detected",
    r"\S+-safe -> \S+-unsafe lock order detected",
    r"inconsistent lock state",
    r"suspicious RCU usage",
    r"held lock freed!",
    r"bad unlock balance detected!",
    r"bad contention detected!",
    r"Nested lock was not taken",
    r"\S+/\d+ still has locks held!",
    r"chain_key collision",
)

PATTERNS: tuple[Pattern, ...] = (
    # --- panic: fatal, published on its first line -------------------------
    Pattern(
        kind="panic",
        start=_re(r"Kernel panic - not syncing: ?(?P<msg>.*?)\s*$"),
        severity=Severity.FATAL,
        titles=("kernel panic: {msg}",),
        marker="---[ end Kernel panic",
        end=None,
        emit_on_start=True,
    ),
    # --- sanitizers --------------------------------------------------------
    Pattern(
        kind="kasan",
        start=_re(r"BUG: KASAN: (?P<what>[\w-]+)(?: in (?P<fn>[\w.]+))?"),
        severity=Severity.ERROR,
        titles=("KASAN: {what} {access} in {fn}", "KASAN: {what} in {fn}", "KASAN: {what}"),
        marker="=" * 20,
        end=_SEPARATOR_RE,
    ),
    Pattern(
        kind="kfence",
        start=_re(r"BUG: KFENCE: (?P<what>.+?)(?: in (?P<fn>[\w.]+)\S*)?\s*$"),
        severity=Severity.ERROR,
        titles=("KFENCE: {what} in {fn}", "KFENCE: {what}"),
        marker="=" * 20,
        end=_SEPARATOR_RE,
    ),
    Pattern(
        kind="ubsan",
        start=_re(r"UBSAN: (?P<what>[\w-]+) in (?P<file>[^:\s]+)"),
        after_cut_here=True,
        severity=Severity.ERROR,
        titles=("UBSAN: {what} in {fn}", "UBSAN: {what} in {file}"),
        marker=END_TRACE,
        end=None,
    ),
    # --- page faults: "BUG: ..." then an "Oops: ..." die() header ----------
    Pattern(
        kind="oops",
        start=_re(
            r"BUG: (?P<what>kernel NULL pointer dereference|unable to handle page fault"
            r"|unable to handle kernel (?:NULL pointer dereference|paging request))"
        ),
        severity=Severity.ERROR,
        titles=("BUG: {what} in {fn}", "BUG: {what}"),
        expects_die=True,
        marker=END_TRACE,
        end=None,
    ),
    Pattern(
        kind="bug",
        start=_re(r"kernel BUG at (?P<file>[^:\s]+):(?P<lineno>\d+)!"),
        after_cut_here=True,
        severity=Severity.ERROR,
        titles=("kernel BUG in {fn}", "kernel BUG at {file}"),
        expects_die=True,
        marker=END_TRACE,
        end=None,
    ),
    Pattern(
        kind="trap",
        start=_re(r"(?:traps: )?PANIC: (?P<what>double fault)"),
        severity=Severity.ERROR,
        titles=("{what} in {fn}", "{what}"),
        expects_die=True,
        marker=END_TRACE,
        end=None,
    ),
    # --- x86 die() headers on their own ------------------------------------
    Pattern(
        kind="gpf",
        start=_re(r"(?:Oops: )?general protection fault.*?: " + _DIE),
        severity=Severity.ERROR,
        titles=("general protection fault in {fn}", "general protection fault"),
        die_header=True,
        marker=END_TRACE,
        end=None,
    ),
    Pattern(
        kind="oops",
        start=_re(r"Oops: (?:Oops: )?" + _DIE),
        severity=Severity.ERROR,
        titles=("Oops in {fn}", "Oops"),
        die_header=True,
        marker=END_TRACE,
        end=None,
    ),
    Pattern(
        kind="trap",
        start=_re(r"(?:Oops: )?(?P<what>[a-z][a-z0-9 -]*?)(?:, [^:]*)?: " + _DIE),
        severity=Severity.ERROR,
        titles=("{what} in {fn}", "{what}"),
        die_header=True,
        marker=END_TRACE,
        end=None,
    ),
    # --- lockups and stalls --------------------------------------------------
    Pattern(
        kind="soft_lockup",
        start=_re(
            r"(?:watchdog: )?BUG: soft lockup - CPU#(?P<cpu>\d+) stuck for \d+s! "
            r"\[(?P<comm>.*):(?P<pid>\d+)\]"
        ),
        severity=Severity.ERROR,
        titles=("BUG: soft lockup in {fn}", "BUG: soft lockup in {comm}"),
    ),
    Pattern(
        kind="hard_lockup",
        start=_re(
            r"(?:NMI )?watchdog: (?:CPU ?\d+: )?Watchdog detected hard LOCKUP on cpu (?P<cpu>\d+)"
        ),
        severity=Severity.ERROR,
        titles=("watchdog: hard LOCKUP in {fn}", "watchdog: hard LOCKUP on cpu {cpu}"),
    ),
    Pattern(
        kind="rcu_stall",
        start=_re(r"(?:rcu: )?INFO: (?P<flavor>rcu_\w+) (?:self-)?detected (?:expedited )?stall"),
        severity=Severity.ERROR,
        titles=("INFO: rcu detected stall in {fn}", "INFO: {flavor} detected stall"),
    ),
    Pattern(
        kind="hung_task",
        start=_re(
            r"INFO: task (?P<comm>.*):(?P<pid>\d+) blocked for more than (?P<secs>\d+) seconds"
        ),
        severity=Severity.WARNING,
        titles=("INFO: task hung in {fn}", "INFO: task {comm} blocked"),
    ),
    # --- sleeping in atomic context ----------------------------------------
    Pattern(
        kind="atomic_sleep",
        start=_re(r"BUG: sleeping function called from invalid context at (?P<loc>[^:\s]+)"),
        severity=Severity.ERROR,
        titles=(
            "BUG: sleeping function called from invalid context in {fn}",
            "BUG: sleeping function called from invalid context at {loc}",
        ),
    ),
    Pattern(
        kind="atomic_sleep",
        start=_re(
            r"BUG: scheduling (?P<what>while atomic|in a non-blocking section): (?P<comm>.*)/"
        ),
        severity=Severity.ERROR,
        titles=("BUG: scheduling {what} in {fn}", "BUG: scheduling {what} in {comm}"),
    ),
    # --- lockdep -----------------------------------------------------------
    Pattern(
        kind="lockdep",
        start=_re(r"(?:WARNING|BUG): (?P<what>lock held when returning to user space)!"),
        severity=Severity.WARNING,
        # No stack trace: the report is the list of held locks; the first
        # "#0:" line names the lock and where it was taken.
        titles=("{what} in {fn}", "{what}"),
        marker="#0: ",
        end=None,
    ),
    Pattern(
        kind="lockdep",
        start=_re(r"WARNING: (?P<what>" + "|".join(_LOCKDEP_HEADINGS) + r")"),
        severity=Severity.WARNING,
        titles=("{what} in {fn}", "{what}"),
    ),
    Pattern(
        kind="lockdep",
        start=_re(r"BUG: (?P<what>MAX_\w+ too low!|key \S+ has not been registered!)"),
        severity=Severity.WARNING,
        titles=("BUG: {what}",),
    ),
    # --- WARN_ON ----------------------------------------------------------
    Pattern(
        kind="warning",
        start=_re(
            r"WARNING: (?:CPU: \d+ PID: \d+ )?at (?:(?P<file>[^:\s]+):\d+ )?(?P<fn>[\w.]+)"
        ),
        after_cut_here=True,
        severity=Severity.WARNING,
        titles=("WARNING in {fn}",),
        marker=END_TRACE,
        end=None,
    ),
    # --- memory ------------------------------------------------------------
    Pattern(
        kind="bad_page",
        start=_re(r"BUG: Bad page (?P<what>state|map) in process (?P<comm>.*?)\s+pfn:"),
        severity=Severity.ERROR,
        titles=("BUG: Bad page {what} in {fn}", "BUG: Bad page {what}"),
    ),
    Pattern(
        kind="memory_leak",
        start=_re(r"(?:kmemleak: )?(?:unreferenced object 0x[0-9a-f]+|BUG: memory leak)"),
        severity=Severity.WARNING,
        titles=("memory leak in {fn}", "memory leak"),
        end_rule=End.CONTINUATION,
        marker="",
        end=_re(r"(?:kmemleak: )?\s"),
    ),
    Pattern(
        kind="oom_kill",
        start=_re(r"(?P<comm>.*?) invoked oom-killer: gfp_mask=(?P<gfp>0x[0-9a-f]+)"),
        severity=Severity.WARNING,
        titles=(
            "OOM kill: {vcomm} (pid {vpid})",
            "OOM: {nokill} ({comm})",
            "OOM: {comm} invoked oom-killer",
        ),
        # Ends at the kill, or at the admission that there is nothing to
        # kill (a panic follows).  With panic_on_oom the panic's first line
        # ends it.
        marker="of memory",
        end=_re(
            r"(?:(?P<alt>Memory cgroup out of memory)|Out of memory[^:]*): "
            r"Killed process (?P<vpid>\d+) \((?P<vcomm>[^)]*)\)"
            r"|Out of memory and (?P<nokill>no killable processes)"
        ),
        alt_kind="memcg_oom_kill",
        alt_severity=Severity.INFO,
        alt_titles=("memcg OOM kill: {vcomm} (pid {vpid})",),
    ),
    Pattern(
        kind="memcg_oom_kill",
        start=_re(
            r"Memory cgroup out of memory: Killed process (?P<vpid>\d+) \((?P<vcomm>[^)]*)\)"
        ),
        severity=Severity.INFO,
        titles=("memcg OOM kill: {vcomm} (pid {vpid})",),
        end_rule=End.LINE,
    ),
    Pattern(
        kind="oom_kill",
        start=_re(r"Out of memory[^:]*: Killed process (?P<vpid>\d+) \((?P<vcomm>[^)]*)\)"),
        severity=Severity.WARNING,
        titles=("OOM kill: {vcomm} (pid {vpid})",),
        end_rule=End.LINE,
    ),
    Pattern(
        kind="alloc_failure",
        start=_re(r"(?P<comm>.*?): page allocation failure: order:(?P<order>\d+)"),
        severity=Severity.WARNING,
        titles=(
            "page allocation failure: order:{order} in {fn}",
            "page allocation failure: order:{order} in {comm}",
        ),
        # warn_alloc() ends with show_mem(), whose last unconditional line
        # is "N pages reserved".
        marker="pages reserved",
        end=_re(r"\d+ pages reserved"),
    ),
    Pattern(
        # SLUB debugging (slub_debug=...): "BUG kmalloc-1k (Not tainted): ..."
        kind="bug",
        start=_re(r"BUG (?P<cache>[\w.:-]+) \((?:Not tainted|Tainted: [^)]*)\): (?P<what>.+?)\s*$"),
        severity=Severity.ERROR,
        titles=("BUG {cache}: {what}",),
    ),
    # --- anything else the kernel calls a BUG -------------------------------
    Pattern(
        kind="bug",
        start=_re(r"BUG: (?P<what>[^:\n]*[A-Za-z][^:\n]*?)(?:[:!]|$)"),
        severity=Severity.ERROR,
        titles=("BUG: {what} in {fn}", "BUG: {what}"),
        expects_die=True,
    ),
)

#: Literal words at least one of which every start line (and the ``cut
#: here`` line) contains.  The classifier searches for these with one regex
#: over the whole chunk and only looks at the lines they hit, which is what
#: makes clean console text cheap.
PREFILTER_WORDS: tuple[str, ...] = (
    "Kernel panic",
    "BUG",
    "UBSAN: ",
    "[#",
    "LOCKUP",
    "PANIC: ",
    "INFO: ",
    "WARNING: ",
    "unreferenced object",
    "oom-killer",
    "Killed process",
    "page allocation failure",
    "cut here",
)

#: Every kind a Finding can have.
KINDS: tuple[str, ...] = tuple(dict.fromkeys(p.kind for p in PATTERNS))
