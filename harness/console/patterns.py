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

Titles follow the field's conventions -- the words syzbot's dashboard
(syzkaller's public pkg/report table) gives each kind: "KASAN: use-after-free
Read in foo", "WARNING: refcount bug in foo", "possible deadlock in foo",
"INFO: rcu detected stall in foo", "BUG: unable to handle kernel NULL pointer
dereference in foo" even where today's kernel words it differently -- so that
a finding can be matched against the field's known bugs.  A row's
``retitles`` tell sub-kinds apart by a start-line field (a WARN in
lib/refcount.c is a "refcount bug", a kernel BUG in mm/usercopy.c a "bad
usercopy").  A title template may use the named groups of the start regex, of the
end line's regex, and ``{fn}``: the guilty function, i.e. the first function
of the report's stack (the one named on its first line, then the ``RIP:`` /
``pc :`` line, then the call trace) that no :data:`SKIP_RULES` entry matches
-- helpers that only report or pass a bug on (locking, allocators, mem*,
sanitizers, WARN, might_sleep, refcount, list debugging...); tagged rules
apply only to rows (or retitles) naming their tag in ``skip_tags`` (RCU
functions are the stall machinery in a stall, a culprit elsewhere).  The first
template whose fields are all known wins, so the last one of a row should
need no ``{fn}``.  Templates never use pids, addresses or CPU numbers: a
title must be the same on every run of the same bug (titles.py).

Severities (see :class:`~harness.console.types.Severity`): only a panic is
fatal.  Oops/BUG/sanitizer (KASAN, KMSAN, KCSAN, UBSAN, KFENCE) reports,
traps (divide error), lockups and a leaked netdev reference are errors.  WARN_ON,
lockdep's "possible" deadlocks, hung tasks (TCG is slow enough to make them
appear spuriously), leaks, allocation failures and global OOM kills are
warnings.  A memcg OOM kill is the memory controller doing its job: info.
Whether an OOM is expected is the scenario's call, hence the separate kinds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum

from harness.console.types import Severity

__all__ = [
    "END_TRACE",
    "KINDS",
    "PATTERNS",
    "PREFILTER_WORDS",
    "SKIP_FRAME",
    "SKIP_RULES",
    "STALL_ANCHORS",
    "STALL_TRIM",
    "End",
    "Pattern",
    "BodyField",
    "Retitle",
    "SkipRule",
    "TAG_FRAMES",
    "is_skipped",
    "skip_regex",
]


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
class BodyField:
    """A title field read from a line of the block rather than its first line.

    The first block line containing ``needle`` whose prefix-stripped text
    matches ``regex`` sets field ``name``: to ``value`` if given, else to the
    regex's group of that name.  KASAN says Read or Write on its second line;
    old UBSAN gives its reason there, in words that map to today's names.
    """

    name: str
    needle: str
    regex: re.Pattern[str]
    value: str = ""


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
    #: The report legitimately shows several contexts (NMI backtraces of
    #: other CPUs, all blocked tasks): a second "CPU: N PID: M" header or
    #: another printk caller id in its block is not an interleaved report.
    multi_context: bool = False
    #: Fields read from later lines of the block (first match per name wins).
    body_fields: tuple[BodyField, ...] = ()
    #: Tags of the tagged :data:`SKIP_RULES` that apply to this row's stacks.
    skip_tags: tuple[str, ...] = ()
    #: Stalls and lockups: the guilty frame is the last one (not skipped)
    #: before the first :data:`STALL_ANCHORS` frame, the code that loops
    #: rather than wherever the watchdog caught it; the first frame if none.
    anchored: bool = False
    #: Frames that name the report wherever they are in the stack, tried in
    #: order before the skip rules: (whole-name regex, title name or "" for
    #: the frame itself).  A task hung in synchronize_net() is one of the
    #: many tasks stuck behind a stalled RCU grace period: "synchronize_rcu".
    anchors: tuple[tuple[re.Pattern[str], str], ...] = ()
    #: Sub-kinds told by a start-line field (first match wins): their titles
    #: replace ``titles`` (see :class:`Retitle`).
    retitles: tuple[Retitle, ...] = ()
    #: Derived: a title names the guilty function, so the stack is walked.
    blames: bool = field(init=False)

    def __post_init__(self) -> None:
        blames = any(
            "{fn}" in t
            for t in (*self.titles, *self.alt_titles, *(t for r in self.retitles for t in r.titles))
        )
        object.__setattr__(self, "blames", blames)


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


@dataclass(frozen=True, slots=True)
class SkipRule:
    """Functions that report or pass on a bug rather than cause it.

    The guilty frame of a report is the first function of its stack (the
    function on its first line, then the ``RIP:``/``pc :`` line, then the
    call trace) that no rule matches: "KASAN: use-after-free Read in
    __mutex_lock" blames whoever called mutex_lock on freed memory, and
    "WARNING in refcount_warn_saturate" the code that leaked the reference.
    Each entry is a regex that must match a whole function name (with any
    ``.constprop.0``-style suffix removed).

    ``tags`` empty: the rule applies to every report.  Otherwise only to
    reports whose row (or retitle) carries one of those tags in its
    ``skip_tags``: RCU functions are noise in a stall report (the stall
    machinery's own frames) but can be the culprit of a WARNING.
    """

    why: str
    frames: tuple[str, ...]
    tags: tuple[str, ...] = ()


SKIP_RULES: tuple[SkipRule, ...] = (
    SkipRule(
        "report printing and the WARN/BUG/die machinery",
        (
            r"dump_stack\w*", r"__dump_stack", r"show_stack\w*", r"show_trace_log_lvl",
            r"show_regs", r"__show_regs", r"dump_backtrace\w*", r"arch_stack_walk",
            r"stack_trace_\w+", r"printk\w*", r"_printk\w*", r"vprintk\w*", r"__warn\w*",
            r"warn_slowpath\w*", r"__warn_printk", r"report_bug", r"__report_bug",
            r"handle_bug", r"fixup_bug", r"bug_handler", r"do_error_trap", r"do_trap",
            r"do_int3\w*", r"die", r"__die\w*", r"die_kernel_fault", r"oops_\w+", r"panic",
            r"nmi_panic", r"vpanic", r"check_panic_on_warn", r"bust_spinlocks", r"print_\w+",
            r"__print_\w+", r"show_\w+_info", r"debug_print_object", r"debug_object_\w+",
            # vsprintf and dev_printk: a fault in them is a bad argument of their caller
            r"v?sn?printf", r"v?scnprintf", r"k?v?asprintf", r"_?dev_(?:printk|emerg|alert"
            r"|crit|err|warn|notice|info|dbg)\w*",
        ),
    ),
    SkipRule(
        "exception, fault and interrupt entry",
        (
            r"asm_\w+", r"exc_\w+", r"sysvec_\w+", r"__sysvec_\w+", r"common_interrupt",
            r"(?:smp_)?apic_timer_interrupt", r"smp_\w+_interrupt", r"irq_exit\w*",
            r"__irq_exit\w*", r"handle_softirqs", r"__do_softirq",
            r"do_softirq\w*", r"irqentry_\w+", r"page_fault_oops", r"kernelmode_fixup_or_oops",
            r"__bad_area\w*", r"bad_area\w*", r"handle_page_fault", r"do_user_addr_fault",
            r"__do_kernel_fault", r"do_page_fault", r"do_translation_fault", r"do_mem_abort",
            r"do_bad_area", r"el[01]h?_\w+", r"el[01]t?_\d+_\w+", r"__el[01]_\w+",
            r"ret_from_fork\w*", r"entry_SYSCALL\w*", r"do_syscall_\w+", r"x64_sys_call",
            r"syscall_exit_\w+", r"invoke_syscall", r"el0_svc_common\w*",
        ),
    ),
    SkipRule(
        "compiler thunks and stubs (retpolines, return thunks, CFI/patchable prefixes)",
        (
            r"__x86_indirect_(?:call_|jump_)?thunk_\w+", r"__x86_return_thunk",
            r"(?:srso|retbleed|entry)_\w*return_thunk", r"__pfx_\w+", r"__cfi_\w+",
        ),
    ),
    SkipRule(
        "sanitizers and coverage (KASAN, KMSAN, KCSAN, UBSAN, KFENCE, fortify, KCOV)",
        (
            r"_*kasan_\w+", r"__asan_\w+", r"__hwasan_\w+", r"check_region_inline",
            r"check_memory_region\w*", r"memory_is_poisoned\w*", r"_*kmsan_\w+",
            r"__msan_\w+", r"_*kcsan_\w+", r"__tsan_\w+", r"_*ubsan_\w+",
            r"_*kfence_\w+", r"_*fortify_\w+", r"__sanitizer_\w+", r"write_comp_data",
            r"check_kcov_mode", r"read_word_at_a_time",
        ),
    ),
    SkipRule(
        "might_sleep and preemption checks",
        (
            r"_*might_\w+", r"__cant_\w+", r"__schedule_bug", r"preempt_count_\w+",
            r"check_preemption_disabled", r"debug_smp_processor_id",
            r"__this_cpu_preempt_check",
        ),
    ),
    SkipRule(
        "locking primitives and lockdep",
        (
            r"_raw_\w+", r"__raw_\w+", r"do_raw_\w+", r"raw_spin_\w+", r"spin_\w+",
            r"queued_\w+", r"native_queued_\w+", r"__pv_queued_\w+", r"pv_\w+lock\w*",
            r"mutex_\w+", r"__mutex_\w+", r"rt_mutex\w*", r"__rt_mutex\w*", r"ww_mutex\w*",
            r"__ww_mutex\w*", r"down", r"down_\w+", r"__down\w*", r"up", r"up_\w+", r"__up\w*",
            r"rwsem_\w+", r"__rwsem\w*", r"percpu_down\w*", r"percpu_up\w*", r"osq_\w+",
            r"_?read_lock\w*", r"_?write_lock\w*", r"_?read_unlock\w*", r"_?write_unlock\w*",
            r"lock_acquire\w*", r"lock_release", r"lock_contended", r"lock_acquired",
            r"__lock_\w+", r"lockdep_\w+", r"__lockdep_\w+", r"lock_is_held\w*",
            # lockdep's own checks only: check_flush_dependency() is a workqueue WARN site
            r"check_(?:noncircular|prev_add|prevs_add|irq_usage|deadlock|flags|wait_context"
            r"|chain_key|usage\w*|path\w*|redundant|lock_class\w*|held_locks\w*)",
            r"validate_chain", r"mark_lock\w*", r"mark_usage", r"__bfs\w*",
            r"lookup_chain_cache\w*", r"add_chain_cache", r"debug_spin_\w+",
            r"debug_check_no_locks_\w+", r"rcu_lock_\w+", r"print_circular_bug\w*",
        ),
    ),
    SkipRule(
        "atomics and bitops",
        (
            r"(?:arch_|raw_|instrument_)?atomic(?:64|_long)?_(?:read|set|add|sub|inc|dec|and"
            r"|andnot|or|xor|fetch|cmpxchg|try_cmpxchg|xchg)\w*",
            r"instrument_atomic_\w+", r"(?:arch_|__)?(?:test_and_)?(?:set|clear|change)_bit"
            r"(?:_lock|_unlock)?", r"(?:arch_|_)?test_bit(?:_acquire)?",
        ),
    ),
    SkipRule(
        "scheduling, sleeping and waiting",
        (
            r"__schedule", r"schedule\w*", r"preempt_schedule\w*", r"io_schedule\w*",
            r"__cond_resched\w*", r"_cond_resched", r"context_switch", r"__switch_to\w*",
            r"finish_task_switch\w*", r"msleep\w*", r"usleep_range\w*", r"do_nanosleep",
            r"hrtimer_nanosleep", r"_*wait_for_common\w*", r"do_wait_for_common",
            r"wait_for_completion\w*", r"__wait_on_bit\w*", r"out_of_line_wait_on_bit\w*",
            r"bit_wait\w*", r"folio_wait_bit\w*", r"__folio_lock\w*", r"wait_on_page_bit\w*",
            r"prepare_to_wait\w*", r"finish_wait", r"__wait_event\w*", r"_*wait_on_\w+",
            r"folio_wait_\w+", r"_*wake_up\w*",
        ),
    ),
    SkipRule(
        "what a hung task waits in (hung-task reports)",
        (
            r"_*wait_rcu_gp", r"\w+_slowlock\w*", r"__flush_work\w*", r"flush_work\w*",
            r"__cancel_work\w*", r"cancel_(?:delayed_)?work_sync", r"kthread_stop\w*",
            r"flush_workqueue", r"__flush_workqueue", r"drain_workqueue",
        ),
        tags=("hung",),
    ),
    SkipRule(
        "page and slab allocators, vmalloc, kmemleak",
        (
            r"_*alloc_pages\w*", r"__alloc_pages_slowpath", r"_*folio_alloc\w*",
            r"vma_alloc_folio\w*", r"folio_prealloc", r"alloc_\w*page\w*", r"__get_free_pages",
            r"get_zeroed_page\w*", r"get_page_from_freelist", r"rmqueue\w*", r"warn_alloc",
            r"_*free_pages\w*", r"free_unref_\w+", r"free_pcppages_bulk", r"bad_page",
            r"free_page\w*", r"_*kmalloc\w*", r"kmalloc_trace\w*", r"_*kmem_cache_\w+",
            r"kzalloc\w*", r"kcalloc\w*", r"_*krealloc\w*",
            # kfree_skb() frees a packet: its callers are in net/, it is often the culprit
            r"_*kvmalloc\w*", r"kvfree\w*", r"kvzalloc\w*", r"_*kfree(?!_skb)\w*",
            r"kmemdup\w*", r"kstrn?dup\w*", r"_*slab_\w+", r"new_slab",
            r"allocate_slab", r"do_slab_free", r"__do_slab_free", r"free_to_partial_list",
            r"_*vmalloc\w*", r"vzalloc\w*", r"vfree\w*", r"mempool_\w+", r"kmemleak_\w+",
            r"_*create_object\w*", r"setup_object\w*", r"init_object\w*",
        ),
    ),
    SkipRule(
        "mem*, str* and user copies",
        (
            r"_*mem(?:cpy|move|set|cmp|chr|chr_inv|scan)\w*",
            r"_*str(?:n?cpy|n?cat|n?cmp|n?len|r?chr|nchr|str|nstr|s?cpy|l?cpy|l?cat"
            r"|n?casecmp|sep|c?spn|pbrk|n?dup)\w*",
            # vsprintf's string()/pointer() (not lib/string_helpers.c's string_*() API)
            r"string(?:_nocheck)?", r"widen_string", r"pointer",
            r"_?copy_(?:from|to)_user\w*", r"raw_copy_\w+", r"copy_user_\w+", r"__copy_user\w*",
            r"rep_movs_alternative", r"rep_stos_alternative", r"_*get_user_\w+",
            r"_*put_user_\w+", r"strncpy_from_user", r"strnlen_user", r"copy_page\w*",
        ),
    ),
    SkipRule(
        "usercopy hardening checks (bad usercopy reports)",
        (
            r"_*check_object_size", r"_*check_heap_object", r"check_stack_object",
            r"check_kernel_text_object", r"check_bogus_address", r"check_page_span",
            r"check_copy_size", r"usercopy_abort", r"usercopy_warn", r"__check_\w*usercopy\w*",
        ),
    ),
    SkipRule(
        "reference counting",
        (
            r"_*refcount_\w+", r"kref_\w+", r"percpu_ref_\w+", r"ref_tracker_\w+",
        ),
    ),
    SkipRule(
        "list debugging",
        (
            r"__list_\w+", r"list_(?:add|del|move|replace|splice)\w*", r"__hlist_\w+",
            r"hlist_(?:add|del)\w*",
        ),
    ),
    SkipRule(
        "watchdogs, timers, NMI and cross-CPU calls (lockup and stall reports)",
        (
            r"watchdog\w*", r"_*hrtimer_\w+", r"tick_\w+",
            r"update_process_times", r"sched_tick", r"scheduler_tick",
            r"nmi_\w+", r"default_do_nmi", r"arch_trigger_cpumask_backtrace",
            r"trigger_\w*backtrace", r"dump_cpu_task", r"sched_show_task", r"debug_show_\w+",
            r"hung_task\w*", r"check_hung_\w+", r"smp_call_function\w*", r"csd_lock_wait\w*",
            r"generic_exec_single", r"on_each_cpu\w*", r"kthread", r"worker_thread",
            r"process_one_work", r"process_scheduled_works",
        ),
    ),
    SkipRule(
        "RCU machinery (stall and suspicious-RCU reports)",
        (r"rcu_\w+", r"__rcu_\w+", r"_*call_rcu\w*", r"srcu_\w+", r"__srcu_\w+"),
        tags=("stall", "rcu"),
    ),
    SkipRule(
        "users of debug objects: timers, work, frees (ODEBUG reports)",
        (
            r"_*debug_\w+", r"_*(?:del_|try_to_del_)?timer\w*", r"_*(?:cancel_|queue_)?work_\w+",
            r"_*(?:free|__free)_\w+", r"kobject_\w+", r"percpu_\w+", r"rcu_\w+",
        ),
        tags=("odebug",),
    ),
    SkipRule("kobject helpers (kobject and refcount reports)", (r"kobject_\w+",),
             tags=("kobject",)),
)


#: Where a stall's representative frame sits: the entry points that dispatch
#: work (syscalls, work items, softirqs, timers, kthreads) and the calls that
#: discriminate a syscall (read/write/ioctl of which file, sendmsg of which
#: protocol).  The frame just before one names the looping code; this is how
#: the field titles stalls, so a stall gets the same title wherever the
#: watchdog interrupted the loop.  Whole-name regexes.
STALL_ANCHORS: re.Pattern[str] = re.compile("(?:" + "|".join((
    r"process_one_work", r"do_syscall_\w+", r"do_fast_syscall_\w+", r"x64_sys_call",
    r"_*netif_receive_skb\w*", r"_*do_softirq\w*", r"handle_softirqs", r"call_timer_fn",
    r"_*run_timers\w*", r"run_timer_softirq", r"run_ksoftirqd", r"smpboot_thread_fn",
    r"kthread", r"start_secondary", r"cpu_startup_entry", r"ret_from_fork\w*",
    r"vfs_(?:write|read|iter_read|iter_write|ioctl|open)", r"do_iter_(?:read|write)",
    r"do_iter_readv_writev", r"blkdev_(?:driver_)?ioctl", r"call_(?:read|write)_iter",
    r"call_mmap", r"mmap_region", r"do_mmap", r"do_dentry_open",
    r"_*sock_(?:sendmsg|recvmsg|release|mmap|do_ioctl|ioctl)\w*", r"compat_sock_ioctl",
    r"__sys_(?:setsockopt|listen|accept\w*)", r"kernel_(?:setsockopt|listen|accept)",
    r"sock_common_setsockopt", r"sk_common_release", r"nfnetlink_rcv_msg",
    r"(?:compat_)?(?:SYSC|SyS|__sys|___sys|__do_sys|__se_sys|__x64_sys)_(?:socketpair|connect"
    r"|ioctl)",
    r"__do_fault", r"handle_mm_fault", r"do_page_fault", r"page_fault", r"__fput",
    r"task_work_run", r"exit_to_user\w*",
)) + r")\Z")

#: Syscall wrapper prefixes a stall's frame loses: "__x64_sys_sendmsg" -> "sys_sendmsg".
STALL_TRIM: tuple[tuple[str, str], ...] = (
    ("__x64_sys_", "sys_"), ("__ia32_sys_", "sys_"), ("__arm64_sys_", "sys_"),
    ("compat_SyS_", "compat_sys_"), ("compat_SYSC_", "compat_sys_"), ("SyS_", "sys_"),
    ("SYSC_", "sys_"),
)


def _skip_regex(rules: tuple[SkipRule, ...]) -> re.Pattern[str]:
    return re.compile("(?:" + "|".join(f for rule in rules for f in rule.frames) + r")\Z")


#: One regex for every rule that applies to all reports:
#: ``SKIP_FRAME.match(fn)`` says ``fn`` is skipped in any report.
SKIP_FRAME: re.Pattern[str] = _skip_regex(tuple(r for r in SKIP_RULES if not r.tags))

#: Per tag, one regex for the rules of that tag (small: compiled at import,
#: like SKIP_FRAME, so that no report pays for a compilation).
TAG_FRAMES: dict[str, re.Pattern[str]] = {
    tag: _skip_regex(tuple(r for r in SKIP_RULES if tag in r.tags))
    for tag in dict.fromkeys(t for r in SKIP_RULES for t in r.tags)
}


def is_skipped(fn: str, tags: frozenset[str] = frozenset()) -> bool:
    """Whether a skip rule that applies to a report carrying ``tags`` matches ``fn``."""
    if SKIP_FRAME.match(fn) is not None:
        return True
    return any(tag in TAG_FRAMES and TAG_FRAMES[tag].match(fn) is not None for tag in tags)


_SKIP_BY_TAGS: dict[frozenset[str], re.Pattern[str]] = {frozenset(): SKIP_FRAME}


def skip_regex(tags: frozenset[str] = frozenset()) -> re.Pattern[str]:
    """One regex of the untagged rules + the rules of ``tags`` (for inspection and tests;
    the classifier uses :func:`is_skipped`)."""
    rx = _SKIP_BY_TAGS.get(tags)
    if rx is None:
        rx = _SKIP_BY_TAGS[tags] = _skip_regex(
            tuple(r for r in SKIP_RULES if not r.tags or tags.intersection(r.tags))
        )
    return rx


@dataclass(frozen=True, slots=True)
class Retitle:
    """A sub-kind of a row, told by one of its fields: other titles, more skip tags.

    The first entry of ``Pattern.retitles`` whose ``regex`` matches
    (``re.match``) field ``name`` of the start line wins: "WARNING: CPU: 0
    PID: 1 at lib/refcount.c:28 ..." is titled "WARNING: refcount bug in F",
    as the field (syzbot) titles it, not "WARNING in F".
    """

    name: str
    regex: re.Pattern[str]
    titles: tuple[str, ...]
    skip_tags: tuple[str, ...] = ()


#: lockdep names the lock being taken, and where: "... is trying to acquire
#: lock:\n (&mm->mmap_lock){++++}-{3:3}, at: __might_fault+0x.." -- the field
#: titles deadlocks after that first "at:" (no skip rule: it is who locks).
_LOCK_AT = BodyField(
    "lockfn", " at: ",
    _re(r".*? at: (?:\[<[0-9a-f]+>\] )?(?P<lockfn>[A-Za-z_]\w*)(?:\.[\w.]+)?\+0x"),
)


def _blamed(title: str, *, by_lock: bool = False) -> tuple[str, ...]:
    """Templates of a bug titled ``title``: "``title`` in F" with the lock
    taker F (``by_lock``, lockdep's first "at:") or else the guilty function,
    else ``title`` alone."""
    return (*((f"{title} in {{lockfn}}",) if by_lock else ()), f"{title} in {{fn}}", title)


def _lockdep_retitles(prefix: str) -> tuple[Retitle, ...]:
    """lockdep headings in the field's words (``prefix``: the v4 banner said INFO).

    One row per heading: (regex on the heading, the field's title, titled
    by the lock taker, skip tags).
    """
    table: tuple[tuple[str, str, bool, tuple[str, ...]], ...] = (
        (r"possible (?:circular|recursive|irq)|\S+-safe -> ", "possible deadlock", True, ()),
        (r"inconsistent lock state", "inconsistent lock state", True, ()),
        (r"suspicious RCU usage", f"{prefix}: suspicious RCU usage", False, ("rcu",)),
        (r"held lock freed", "WARNING: held lock freed", True, ()),
        (r"bad unlock balance", "WARNING: bad unlock balance", False, ()),
        (r".*still has locks held", "WARNING: still has locks held", True, ()),
    )
    return tuple(
        Retitle("what", _re(rx), _blamed(title, by_lock=by_lock), skip_tags=tags)
        for rx, title, by_lock, tags in table
    )


def _file_retitles(
    prefix: str, table: tuple[tuple[str, str, tuple[str, ...]], ...]
) -> tuple[Retitle, ...]:
    """Reports of a few library files are one kind of bug each, in the field's
    words: (file, bug, skip tags) titles a report at that file "``prefix``:
    bug in F"."""
    return tuple(
        Retitle("file", _re(re.escape(file) + r"\Z"), _blamed(f"{prefix}: {bug}"), skip_tags=tags)
        for file, bug, tags in table
    )


#: WARN()s of a few library files are one kind of bug each.
_WARNING_RETITLES: tuple[Retitle, ...] = _file_retitles("WARNING", (
    ("lib/refcount.c", "refcount bug", ("kobject",)),
    ("lib/debugobjects.c", "ODEBUG bug", ("odebug",)),
    ("mm/usercopy.c", "bad usercopy", ()),
    ("lib/kobject.c", "kobject bug", ("kobject",)),
    ("kernel/locking/lockdep.c", "locking bug", ()),
))

PATTERNS: tuple[Pattern, ...] = (
    # --- panic: fatal, published on its first line -------------------------
    Pattern(
        # CONFIG_STACKPROTECTOR's __stack_chk_fail(): the function is on the line.
        kind="panic",
        start=_re(
            r"Kernel panic - not syncing: stack-protector: Kernel stack is corrupted in: "
            r"(?P<fn>[A-Za-z_][\w.]*)"
        ),
        severity=Severity.FATAL,
        titles=("kernel panic: stack is corrupted in {fn}", "kernel panic: stack is corrupted"),
        marker="---[ end Kernel panic",
        end=None,
        emit_on_start=True,
    ),
    Pattern(
        kind="panic",
        start=_re(r"Kernel panic - not syncing: ?(?P<msg>.*?)\s*$"),
        severity=Severity.FATAL,
        titles=("kernel panic: {msg}",),
        # The exit code differs with the way init died; the bug is the same.
        retitles=(
            Retitle("msg", _re(r"Attempted to kill init!"),
                    ("kernel panic: Attempted to kill init!",)),
        ),
        marker="---[ end Kernel panic",
        end=None,
        emit_on_start=True,
    ),
    # --- sanitizers --------------------------------------------------------
    Pattern(
        # Reports the field titles without Read/Write; "double-free or
        # invalid-free" (before v6.0) is today's "invalid-free".
        kind="kasan",
        start=_re(
            r"BUG: KASAN: (?P<what>double-free or invalid-free|wild-memory-access|double-free"
            r"|invalid-free)(?: in (?P<fn>[\w.]+))?"
        ),
        severity=Severity.ERROR,
        titles=("KASAN: {what} in {fn}", "KASAN: {what}"),
        retitles=(
            Retitle("what", _re(r"double-free or invalid-free"),
                    ("KASAN: invalid-free in {fn}", "KASAN: invalid-free")),
        ),
        marker="=" * 20,
        end=_SEPARATOR_RE,
    ),
    Pattern(
        kind="kasan",
        start=_re(r"BUG: KASAN: (?P<what>[\w-]+)(?: in (?P<fn>[\w.]+))?"),
        severity=Severity.ERROR,
        titles=("KASAN: {what} {access} in {fn}", "KASAN: {what} in {fn}", "KASAN: {what}"),
        marker="=" * 20,
        end=_SEPARATOR_RE,
        body_fields=(BodyField("access", " of size", _re(r"(?P<access>Read|Write) of size")),),
    ),
    Pattern(
        kind="kmsan",
        start=_re(r"BUG: KMSAN: (?P<what>[\w-]+)(?: in (?P<fn>[\w.]+))?"),
        severity=Severity.ERROR,
        titles=("KMSAN: {what} in {fn}", "KMSAN: {what}"),
        marker="=" * 20,
        end=_SEPARATOR_RE,
    ),
    Pattern(
        # KCSAN orders the two racing functions itself "for consistent bug
        # titles" (kernel/kcsan/report.c): they are the title as printed.
        kind="kcsan",
        start=_re(
            r"BUG: KCSAN: (?P<what>[\w-]+) in (?P<a>[A-Za-z_][\w.]*)"
            r"(?:\+0x[0-9a-f]+/0x[0-9a-f]+)?(?: / (?P<b>[A-Za-z_][\w.]*))?"
        ),
        severity=Severity.ERROR,
        titles=("KCSAN: {what} in {a} / {b}", "KCSAN: {what} in {a}"),
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
    Pattern(
        # Before v5.x: "UBSAN: Undefined behaviour in FILE:LINE:COL" between
        # two "=====" lines, the reason on the next line; named the way
        # today's lib/ubsan.c names it, so that the same bug keeps its title.
        kind="ubsan",
        start=_re(r"UBSAN: Undefined behaviour in (?P<file>[^:\s]+)"),
        severity=Severity.ERROR,
        titles=(
            "UBSAN: {what} in {fn}",
            "UBSAN: Undefined behaviour in {fn}",
            "UBSAN: Undefined behaviour in {file}",
        ),
        marker="=" * 20,
        end=_SEPARATOR_RE,
        body_fields=tuple(
            BodyField("what", needle, _re(r".*" + re.escape(needle)), what)
            for needle, what in (
                ("shift exponent", "shift-out-of-bounds"),
                ("left shift of", "shift-out-of-bounds"),
                ("is out of range for type", "array-index-out-of-bounds"),
                ("signed integer overflow", "signed-integer-overflow"),
                ("unsigned integer overflow", "unsigned-integer-overflow"),
                ("negation of", "negation-overflow"),
                ("division by zero", "division-overflow"),
                ("division of", "division-overflow"),
                ("null pointer of type", "null-ptr-deref"),
                ("misaligned address", "misaligned-access"),
                ("with insufficient space", "object-size-mismatch"),
                ("calling __builtin_unreachable", "unreachable"),
                ("is not a valid value for type", "invalid-load"),
            )
        ),
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
        # v5.x renamed both ("BUG: kernel NULL pointer dereference, address:",
        # "BUG: unable to handle page fault for address:"); the field kept the old names.
        retitles=(
            Retitle("what", _re(r".*NULL"), (
                "BUG: unable to handle kernel NULL pointer dereference in {fn}",
                "BUG: unable to handle kernel NULL pointer dereference",
            )),
            Retitle("what", _re(r".*(?:page fault|paging request)"), (
                "BUG: unable to handle kernel paging request in {fn}",
                "BUG: unable to handle kernel paging request",
            )),
        ),
        expects_die=True,
        marker=END_TRACE,
        end=None,
    ),
    Pattern(
        # arm64 and arm: die_kernel_fault(), then "Internal error: Oops: ...".
        kind="oops",
        start=_re(
            r"Unable to handle kernel (?P<what>[\w -]+?) at virtual address"
        ),
        severity=Severity.ERROR,
        titles=("Unable to handle kernel {what} in {fn}", "Unable to handle kernel {what}"),
        retitles=(
            Retitle("what", _re(r"paging request"), (
                "unable to handle kernel paging request in {fn}",
                "unable to handle kernel paging request",
            )),
        ),
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
        retitles=_file_retitles("BUG", (
            ("mm/usercopy.c", "bad usercopy", ()),
            ("lib/list_debug.c", "corrupted list", ()),
        )),
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
    # --- die() headers on their own -----------------------------------------
    Pattern(
        # arm64/arm __die(): "Internal error: Oops: 0000000096000005 [#1] PREEMPT SMP";
        # arm's data aborts ("Unhandled fault: ...") die with an empty reason.
        kind="oops",
        start=_re(r"Internal error: (?P<what>[^:]+?)?: [0-9a-f]+ \[#\d+\]"),
        severity=Severity.ERROR,
        titles=("{what} in {fn}", "Oops in {fn}", "{what}", "Oops"),
        die_header=True,
        marker=END_TRACE,
        end=None,
    ),
    Pattern(
        # x86 #DE in the kernel, with or without the "Oops: " prefix of v6.x.
        kind="divide_error",
        start=_re(r"(?:Oops: )?divide error: [0-9a-f]{4} \[#\d+\]"),
        severity=Severity.ERROR,
        titles=("divide error in {fn}", "divide error"),
        die_header=True,
        marker=END_TRACE,
        end=None,
    ),
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
        retitles=(
            Retitle("what", _re(r"stack segment\Z"),
                    ("stack segment fault in {fn}", "stack segment fault")),
        ),
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
        skip_tags=("stall",),
        anchored=True,
    ),
    Pattern(
        kind="hard_lockup",
        start=_re(
            r"(?:NMI )?watchdog: (?:CPU ?\d+: )?Watchdog detected hard LOCKUP on cpu (?P<cpu>\d+)"
        ),
        severity=Severity.ERROR,
        titles=("watchdog: hard LOCKUP in {fn}", "watchdog: hard LOCKUP"),
        skip_tags=("stall",),
        multi_context=True,
    ),
    Pattern(
        kind="rcu_stall",
        start=_re(r"(?:rcu: )?INFO: (?P<flavor>rcu_\w+) (?:self-)?detected (?:expedited )?stall"),
        severity=Severity.ERROR,
        # rcu_sched, rcu_preempt, rcu_bh: one bug whatever the flavour.
        titles=("INFO: rcu detected stall in {fn}", "INFO: rcu detected stall"),
        skip_tags=("stall",),
        anchored=True,
        multi_context=True,
    ),
    Pattern(
        kind="hung_task",
        start=_re(
            r"INFO: task (?P<comm>.*):(?P<pid>\d+) blocked (?:in I/O wait )?"
            r"for more than (?P<secs>\d+) seconds"
        ),
        severity=Severity.WARNING,
        titles=("INFO: task hung in {fn}", "INFO: task {comm} blocked"),
        skip_tags=("stall", "hung"),
        anchors=(
            (_re(r"rtnl_lock\w*\Z"), ""),
            (_re(r"synchronize_(?:rcu|srcu|net|sched)\w*\Z"), "synchronize_rcu"),
        ),
        multi_context=True,
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
        titles=("WARNING: {what} in {fn}", "WARNING: {what}"),
        marker="#0: ",
        end=None,
    ),
    Pattern(
        kind="lockdep",
        start=_re(r"WARNING: (?P<what>" + "|".join(_LOCKDEP_HEADINGS) + r")"),
        severity=Severity.WARNING,
        titles=("WARNING: {what} in {fn}", "WARNING: {what}"),
        retitles=_lockdep_retitles("WARNING"),
        body_fields=(_LOCK_AT,),
    ),
    Pattern(
        # Before v4.15 lockdep framed its heading: "[ INFO: ... ]", "[ BUG: ... ]".
        kind="lockdep",
        start=_re(
            r"\[ (?:INFO|BUG): (?P<what>"
            + "|".join((*_LOCKDEP_HEADINGS, r"lock held when returning to user space!"))
            + r")\.? \]"
        ),
        severity=Severity.WARNING,
        titles=("{what} in {fn}", "{what}"),
        retitles=_lockdep_retitles("INFO"),
        body_fields=(_LOCK_AT,),
    ),
    Pattern(
        # register_lock_class() on a lock whose key is not static: a stack follows.
        kind="lockdep",
        start=_re(r"INFO: (?P<what>trying to register non-static key)\."),
        severity=Severity.WARNING,
        titles=("INFO: {what} in {fn}", "INFO: {what}"),
    ),
    Pattern(
        kind="lockdep",
        start=_re(r"BUG: (?P<what>MAX_\w+ too low!|key \S+ has not been registered!)"),
        severity=Severity.WARNING,
        titles=("BUG: {what}",),
    ),
    # --- WARN_ON ----------------------------------------------------------
    Pattern(
        # Since v6.19: "WARNING: fs/ext4/xattr.c:1058 at func+0x1/0x2, CPU#0: comm/pid".
        kind="warning",
        start=_re(r"WARNING: (?P<file>[^:\s]+):\d+ at (?P<fn>[\w.]+)\+0x"),
        after_cut_here=True,
        severity=Severity.WARNING,
        titles=("WARNING in {fn}", "WARNING at {file}", "WARNING"),
        retitles=_WARNING_RETITLES,
        marker=END_TRACE,
        end=None,
    ),
    Pattern(
        kind="warning",
        start=_re(
            r"WARNING: (?:CPU: \d+ PID: \d+ )?at (?:(?P<file>[^:\s]+):\d+ )?(?P<fn>[\w.]+)"
        ),
        after_cut_here=True,
        severity=Severity.WARNING,
        titles=("WARNING in {fn}", "WARNING at {file}", "WARNING"),
        retitles=_WARNING_RETITLES,
        marker=END_TRACE,
        end=None,
    ),
    # --- network ------------------------------------------------------------
    Pattern(
        # netdev_wait_allrefs_any(), repeated every 10 s while the leak lasts;
        # the device name differs between runs (veth12, bond3), so not in the title.
        kind="netdev_refcount",
        start=_re(
            r"unregister_netdevice: waiting for (?P<dev>\S+) to become free\."
            r" Usage count = (?P<count>-?\d+)"
        ),
        severity=Severity.ERROR,
        titles=("unregister_netdevice: waiting for DEV to become free",),
        end_rule=End.LINE,
    ),
    # --- memory ------------------------------------------------------------
    Pattern(
        kind="bad_page",
        start=_re(r"BUG: Bad page (?P<what>state|map) in process (?P<comm>.*?)\s+pfn:"),
        severity=Severity.ERROR,
        titles=("BUG: Bad page {what} in {fn}", "BUG: Bad page {what}"),
    ),
    Pattern(
        # What syzkaller's executor prints before the objects it read from
        # /sys/kernel/debug/kmemleak: the objects are this report's body.
        kind="memory_leak",
        start=_re(r"BUG: memory leak\s*$"),
        severity=Severity.WARNING,
        titles=("memory leak in {fn}", "memory leak"),
        end_rule=End.CONTINUATION,
        marker="",
        end=_re(r"(?:kmemleak: )?(?:\s|unreferenced object)"),
    ),
    Pattern(
        kind="memory_leak",
        start=_re(r"(?:kmemleak: )?unreferenced object 0x[0-9a-f]+"),
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
            "OOM kill: {vcomm}",
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
        alt_titles=("memcg OOM kill: {vcomm}",),
    ),
    Pattern(
        kind="memcg_oom_kill",
        start=_re(
            r"Memory cgroup out of memory: Killed process (?P<vpid>\d+) \((?P<vcomm>[^)]*)\)"
        ),
        severity=Severity.INFO,
        titles=("memcg OOM kill: {vcomm}",),
        end_rule=End.LINE,
    ),
    Pattern(
        kind="oom_kill",
        start=_re(r"Out of memory[^:]*: Killed process (?P<vpid>\d+) \((?P<vcomm>[^)]*)\)"),
        severity=Severity.WARNING,
        titles=("OOM kill: {vcomm}",),
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
    Pattern(
        kind="bug",
        start=_re(
            r"BUG: (?P<lock>spinlock|rwlock) (?P<what>lockup suspected|already unlocked"
            r"|recursion|bad magic|wrong owner|wrong CPU)"
        ),
        severity=Severity.ERROR,
        titles=("BUG: {lock} {what} in {fn}", "BUG: {lock} {what}"),
    ),
    Pattern(
        # show_workqueue_state() follows: pools, not a stack.
        kind="bug",
        start=_re(r"BUG: workqueue lockup - pool"),
        severity=Severity.ERROR,
        titles=("BUG: workqueue lockup",),
        end_rule=End.LINE,
    ),
    Pattern(
        kind="bug",
        start=_re(
            r"BUG: using (?P<what>__this_cpu_\w+\(\)|smp_processor_id\(\)) in preemptible"
        ),
        severity=Severity.ERROR,
        titles=(
            "BUG: using {what} in preemptible code in {fn}",
            "BUG: using {what} in preemptible code",
        ),
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
#: here`` line) contains.  The classifier searches for each of these over the
#: whole chunk (classifier._finder) and only looks at the lines they hit,
#: which is what makes clean console text cheap.
PREFILTER_WORDS: tuple[str, ...] = (
    # Long words where the rows allow: str.find skips ahead by the needle's
    # length, so "Kernel panic - not syncing" is found ~1.6x faster than
    # "Kernel panic", "Watchdog detected hard LOCKUP" 2x faster than "LOCKUP"
    # (which also hit every "Tainted: [L]=SOFTLOCKUP" line), "-[ cut here ]-"
    # (what _CUT_HERE needs) 1.5x faster than "cut here"
    # (bench/console_throughput.py).
    "Kernel panic - not syncing",
    "BUG",
    "UBSAN: ",
    "[#",
    "Watchdog detected hard LOCKUP",
    "PANIC: double fault",
    "INFO: ",
    "WARNING: ",
    "unreferenced object",
    "invoked oom-killer",
    "Killed process",
    "page allocation failure",
    "-[ cut here ]-",
    "Unable to handle kernel",
    "unregister_netdevice: waiting for",
)

#: Every kind a Finding can have.
KINDS: tuple[str, ...] = tuple(dict.fromkeys(p.kind for p in PATTERNS))
