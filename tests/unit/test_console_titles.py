"""Console classifier v2: guilty frames, stable titles, corruption, dedup.

The guilty frame skips helpers that only report or pass a bug on; each skip
rule is tested on its own, and each with a negative control (a function it
must not swallow).  Title stability is tested on the whole golden corpus by
rewriting every run-specific number (addresses, pids, CPUs, timestamps) and
requiring the same titles and signatures.
"""

from __future__ import annotations

import random
import re
import string
from pathlib import Path

import pytest

from harness.console import (
    PATTERNS,
    SKIP_RULES,
    Finding,
    Severity,
    classify_text,
    group_by_signature,
    guilty_frame,
    normalise_title,
    signature_of,
)
from harness.console.patterns import SKIP_FRAME, SkipRule, skip_regex

CORPUS = Path(__file__).resolve().parents[1] / "data" / "console"
LOGS = sorted(CORPUS.glob("*.log"))

# Per skip rule: helpers it must skip (kernel functions seen on top of real
# stacks), and its negative controls: kernel functions whose names look close
# but where bugs live (or ``*_fixture`` names shaped like them), never skipped.
SKIP_CASES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "report printing and the WARN/BUG/die machinery": (
        ("dump_stack_lvl", "__warn", "warn_slowpath_fmt", "report_bug", "vsnprintf",
         "kvasprintf", "_dev_warn"),
        ("dump_emit", "devres_release_all", "lkdtm_WARNING"),
    ),
    "exception, fault and interrupt entry": (
        ("asm_sysvec_apic_timer_interrupt", "sysvec_apic_timer_interrupt",
         "smp_apic_timer_interrupt", "apic_timer_interrupt", "smp_call_function_interrupt"),
        ("vp_interrupt", "exception_table_lookup_fn", "irqfd_wakeup"),
    ),
    "compiler thunks and stubs (retpolines, return thunks, CFI/patchable prefixes)": (
        ("__x86_indirect_thunk_rax", "__x86_indirect_thunk_r11", "__x86_return_thunk",
         "srso_return_thunk"),
        ("x86_emulate_insn", "thunk_create_fn", "__x64_sys_ioctl"),
    ),
    "sanitizers and coverage (KASAN, KMSAN, KCSAN, UBSAN, KFENCE, fortify, KCOV)": (
        ("__sanitizer_cov_trace_pc", "__sanitizer_cov_trace_const_cmp4", "write_comp_data",
         "__asan_load8", "kasan_report", "__kasan_check_write", "check_memory_region",
         "__ubsan_handle_shift_out_of_bounds", "kfence_handle_page_fault"),
        ("kcov_ioctl", "sanitize_boot_params", "asan_fixture_open"),
    ),
    "might_sleep and preemption checks": (
        ("__might_sleep", "___might_sleep", "__might_fault", "__might_resched"),
        ("preempt_notifier_register", "mightyfs_open"),
    ),
    "locking primitives and lockdep": (
        ("_raw_spin_lock_irqsave", "lock_acquire", "__mutex_lock", "mutex_lock_nested",
         "down_write", "check_noncircular", "print_circular_bug"),
        ("lock_mm_and_find_vma", "check_flush_dependency", "downgrade_write_foo",
         "spinand_probe"),
    ),
    "atomics and bitops": (
        ("atomic_read", "atomic_inc", "atomic_dec_and_test", "arch_atomic_try_cmpxchg",
         "atomic64_add", "atomic_long_read", "instrument_atomic_read_write", "set_bit",
         "test_and_set_bit"),
        ("atomic_open", "atomic_notifier_call_chain", "set_bitmap_fixture", "bitmap_parse"),
    ),
    "scheduling, sleeping and waiting": (
        ("schedule_timeout", "__schedule", "wait_for_completion", "__wake_up_common_lock"),
        ("sched_setaffinity", "update_curr", "wakeup_source_register"),
    ),
    "what a hung task waits in (hung-task reports)": (
        ("__wait_rcu_gp", "rt_mutex_slowlock", "__flush_work", "cancel_delayed_work_sync"),
        ("synchronize_rcu", "rtnl_lock", "flush_fixture"),
    ),
    "page and slab allocators, vmalloc, kmemleak": (
        ("__kmalloc_cache_noprof", "kmem_cache_free", "kfree", "kvfree", "__vmalloc_node"),
        ("kfree_skb_reason", "alloc_netdev_mqs", "kmem_leak_fixture"),
    ),
    "mem*, str* and user copies": (
        ("memcpy_orig", "__memcpy", "memset", "strcpy", "strncpy", "strlen", "string",
         "string_nocheck", "pointer", "_copy_from_user"),
        ("string_escape_mem", "strparser_init", "stream_open", "memcg_event_remove",
         "copy_strings"),
    ),
    "usercopy hardening checks (bad usercopy reports)": (
        ("__check_object_size", "check_heap_object", "usercopy_abort", "check_stack_object"),
        ("usercopy_fixture_ioctl", "check_sync_rss_stat"),
    ),
    "reference counting": (
        ("refcount_warn_saturate", "kref_put", "percpu_ref_put_many"),
        ("ext4_xattr_inode_update_ref", "refcounted_he_fetch"),
    ),
    "list debugging": (
        ("__list_add_valid_or_report", "__list_del_entry_valid", "list_del"),
        ("listen_sock", "list_lru_walk_fixture"),
    ),
    "watchdogs, timers, NMI and cross-CPU calls (lockup and stall reports)": (
        ("smp_call_function_single", "watchdog_timer_fn", "hrtimer_interrupt",
         "update_process_times"),
        ("tickle_fixture", "nmiwatch_fixture"),
    ),
    "RCU machinery (stall and suspicious-RCU reports)": (
        ("rcu_dump_cpu_stacks", "rcu_sched_clock_irq", "rcu_read_lock_held", "__rcu_read_lock"),
        ("rcuref_fixture", "synchronize_rcu"),
    ),
    "users of debug objects: timers, work, frees (ODEBUG reports)": (
        ("debug_check_no_obj_freed", "timer_delete", "__free_pages_ok"),
        ("debugfs_remove", "fs_timerfd_fixture"),
    ),
    "kobject helpers (kobject and refcount reports)": (
        ("kobject_put", "kobject_del"),
        ("kobj_map", "device_add"),
    ),
}
# Functions that look like helpers but are where bugs live: never skipped, in any report.
NOT_SKIPPED = sorted({c for _, controls in SKIP_CASES.values() for c in controls} | {
    "download_firmware", "vmpressure_notify", "shrink_node", "update_curr",
})
ALL_TAGS = frozenset(t for r in SKIP_RULES for t in r.tags)


def _warn(trace: list[str], top: str = "helper_top") -> str:
    frames = "".join(f"[ 1.0]  {fn}+0x10/0x20\n" for fn in trace)
    return (
        "[ 1.0] ------------[ cut here ]------------\n"
        f"[ 1.0] WARNING: CPU: 0 PID: 1 at a/b.c:1 {top}+0x1/0x2\n"
        f"[ 1.0] CPU: 0 UID: 0 PID: 1 Comm: sh Not tainted 6.12.117 #1\n"
        f"[ 1.0] RIP: 0010:{top}+0x1/0x2\n"
        "[ 1.0] Call Trace:\n[ 1.0]  <TASK>\n" + frames + "[ 1.0]  </TASK>\n"
        "[ 1.0] ---[ end trace 0000000000000000 ]---\n"
    )


# -- guilty frame -------------------------------------------------------------


def test_every_skip_rule_has_examples_and_negative_controls() -> None:
    assert set(SKIP_CASES) == {r.why for r in SKIP_RULES}
    assert all(helpers and controls for helpers, controls in SKIP_CASES.values())


@pytest.mark.parametrize("why", sorted(SKIP_CASES))
def test_skip_rule_passes_blame_to_the_caller(why: str) -> None:
    helpers, controls = SKIP_CASES[why]
    (rule,) = [r for r in SKIP_RULES if r.why == why]
    tags = rule.tags[:1]
    for helper in helpers:
        assert any(re.fullmatch(f, helper) for f in rule.frames), (why, helper)
        assert guilty_frame([helper, "victim_fn"], tags) == "victim_fn", helper
    for control in controls:
        # The negative control: this rule does not take it, nor does any other.
        assert not any(re.fullmatch(f, control) for f in rule.frames), (why, control)
        assert guilty_frame(["dump_stack_lvl", control], tags) == control, control
    if not rule.tags:
        (f,) = classify_text(_warn(["victim_fn", "vfs_write"], top=helpers[0]))
        assert (f.title, f.guilty, f.corrupted) == ("WARNING in victim_fn", "victim_fn", False)


@pytest.mark.parametrize("rule", [r for r in SKIP_RULES if r.tags], ids=lambda r: r.why[:30])
def test_tagged_rules_apply_only_to_their_reports(rule: object) -> None:
    """RCU frames are the stall machinery in a stall, a possible culprit in a WARNING."""
    assert isinstance(rule, SkipRule)
    helper = SKIP_CASES[rule.why][0][0]
    assert guilty_frame([helper, "victim_fn"], rule.tags) == "victim_fn"
    if SKIP_FRAME.match(helper) is None:
        assert guilty_frame([helper, "victim_fn"]) == helper


def test_negative_control_a_non_helper_top_frame_is_blamed_itself() -> None:
    (f,) = classify_text(_warn(["victim_fn"], top="lkdtm_WARNING"))
    assert (f.title, f.guilty) == ("WARNING in lkdtm_WARNING", "lkdtm_WARNING")


@pytest.mark.parametrize("fn", NOT_SKIPPED)
def test_skip_rules_do_not_swallow_ordinary_functions(fn: str) -> None:
    assert SKIP_FRAME.match(fn) is None, fn
    assert skip_regex(ALL_TAGS).match(fn) is None, fn
    assert guilty_frame(["dump_stack_lvl", fn], ALL_TAGS) == fn


def test_suffixes_and_unreliable_frames() -> None:
    text = _warn(["? bogus_guess", "victim_fn.constprop.0"], top="refcount_warn_saturate")
    (f,) = classify_text(text)
    assert f.title == "WARNING in victim_fn"


def test_only_helpers_falls_back_to_the_title_without_a_function() -> None:
    (f,) = classify_text(_warn(["mutex_lock_nested", "kthread"], top="__mutex_lock"))
    assert (f.title, f.guilty) == ("WARNING at a/b.c", "")


def test_kasan_top_frame_in_a_lock_blames_the_locker() -> None:
    (f,) = classify_text((CORPUS / "fmt-kasan-mutex-uaf.log").read_text())
    assert "in __mutex_lock+" in f.block.splitlines()[0]
    assert f.title == "KASAN: slab-use-after-free Read in vmpressure_unregister_event"


def test_arm_backtrace_frames() -> None:
    text = (
        "[ 1.0] Internal error: Oops - BUG: 0 [#1] SMP ARM\n"
        "[ 1.0] PC is at __list_del_entry_valid+0x10/0x1c\n"
        "[ 1.0] Backtrace: \n"
        "[ 1.0] [<c06a1e00>] (__list_del_entry_valid) from [<c06a1b4c>] (evict_one+0x1c/0x24)\n"
        "[ 1.0] [<c06a1b30>] (evict_one) from [<c06a1d7c>] (worker+0x118/0x158)\n"
        "[ 1.0] ---[ end trace 5b2d1c4a11f0e9a2 ]---\n"
    )
    (f,) = classify_text(text)
    assert (f.kind, f.title) == ("oops", "Oops - BUG in evict_one")


def test_every_rows_last_title_needs_only_its_first_line() -> None:
    """A corrupted report trusts its first line only: it must still get a title."""
    for p in PATTERNS:
        fields = {g: "x" for g in p.start.groupindex}
        fields.pop("fn", None)
        p.titles[-1].format_map(fields)  # no KeyError


# -- stable titles ------------------------------------------------------------


def _rerun(text: str, seed: int) -> str:
    """The same console as another run would print it: new addresses, pids,
    CPU numbers, caller ids and timestamps, same bug."""
    rng = random.Random(seed)

    def hexdigits(m: re.Match[str]) -> str:
        return "".join(rng.choice("0123456789abcdef") for _ in m.group(0))

    renumbered: dict[str, int] = {}

    def num(m: re.Match[str]) -> str:
        # One new number per old one: pid 1 stays one task, on one CPU.
        key = m.group(0)
        if key not in renumbered:
            renumbered[key] = rng.randint(2, 30000)
        return f"{m.group(1)}{renumbered[key]}"

    text = re.sub(r"(?<=\[)\s*\d+\.\d+(?=\])", lambda m: f"{rng.uniform(0, 9999):12.6f}", text)
    text = re.sub(r"(?<![0-9a-fx])[0-9a-f]{12,16}\b", hexdigits, text)
    text = re.sub(r"(?<=\+0x)[0-9a-f]+(?=/0x)", hexdigits, text)
    text = re.sub(r"(\[\s*[TC])\d+(?=\])", num, text)
    for prefix in (r"PID: ", r"pid ", r"pid:", r"CPU: ", r"CPU#", r"cpu ", r"Killed process ",
                   r"task \w+:", r"\[\w+:", r" [a-z]+/"):
        text = re.sub(f"({prefix})\\d+", num, text)
    return text


@pytest.mark.parametrize("log", LOGS, ids=lambda p: p.stem)
def test_same_bug_on_another_run_gets_the_same_title_and_signature(log: Path) -> None:
    text = log.read_text()
    again = _rerun(text, seed=len(text))
    assert again != text or not classify_text(text)
    before = [(f.kind, f.title, f.signature, f.corrupted) for f in classify_text(text)]
    after = [(f.kind, f.title, f.signature, f.corrupted) for f in classify_text(again)]
    assert after == before


def test_titles_hold_no_run_specific_numbers() -> None:
    for log in LOGS:
        for f in classify_text(log.read_text()):
            assert not re.search(r"pid \d|PID|CPU#?\d|0x[0-9a-f]{9}|\+0x", f.title), f.title


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("kernel panic: stack-protector: Kernel stack is corrupted in: foo+0x1a/0x30",
         "kernel panic: stack-protector: Kernel stack is corrupted in: foo"),
        ("kernel panic: bad page ffff888006b2c4a0", "kernel panic: bad page ADDR"),
        ("kernel panic: Attempted to kill init! exitcode=0x00000300",
         "kernel panic: Attempted to kill init! exitcode=0x00000300"),
        ("watchdog: hard LOCKUP on cpu 3", "watchdog: hard LOCKUP on cpu"),
        ("OOM kill: hog (pid 42)", "OOM kill: hog (pid)"),
        ("task kworker/u8:3/812 hung", "task kworker/u8:3 hung"),
        ("a  b\tc", "a b c"),
    ],
)
def test_normalise_title(raw: str, normal: str) -> None:
    assert normalise_title(raw) == normal
    assert normalise_title(normal) == normal
    assert signature_of("panic", raw) == signature_of("panic", normal)


def test_signature_depends_on_kind_and_title_only() -> None:
    a = Finding("warning", "WARNING in f", Severity.WARNING, 1, "x")
    b = Finding("warning", "WARNING in f", Severity.ERROR, 99, "y")
    assert a.signature == b.signature
    assert a.signature != Finding("bug", "WARNING in f", Severity.WARNING, 1, "x").signature
    assert a.signature != Finding("warning", "WARNING in g", Severity.WARNING, 1, "x").signature


# -- corruption ---------------------------------------------------------------

KASAN_HEAD = (
    "[ 1.0] ==================================================================\n"
    "[ 1.0] BUG: KASAN: slab-out-of-bounds in __memcpy+0x1/0x2\n"
    "[ 1.0] Write of size 8 at addr ffff888000000000 by task sh/1\n"
    "[ 1.0] CPU: 0 UID: 0 PID: 1 Comm: sh Not tainted 6.12.117 #1\n"
    "[ 1.0] Call Trace:\n[ 1.0]  <TASK>\n[ 1.0]  kasan_report+0x1/0x2\n"
    "[ 1.0]  __memcpy+0x1/0x2\n"
)


def test_truncated_by_another_report_is_corrupted_and_blames_nothing() -> None:
    text = KASAN_HEAD + "[ 1.1] BUG: soft lockup - CPU#0 stuck for 22s! [sh:1]\n"
    kasan, lockup = classify_text(text)
    assert (kasan.kind, kasan.corrupted, kasan.guilty) == ("kasan", True, "")
    # Its top frame (__memcpy) is a helper, and the access line is not its first line.
    assert kasan.title == "corrupted report: KASAN: slab-out-of-bounds"
    assert lockup.kind == "soft_lockup"


def test_negative_control_the_same_report_complete_is_not_corrupted() -> None:
    text = (
        KASAN_HEAD + "[ 1.0]  victim_fn+0x1/0x2\n[ 1.0]  </TASK>\n"
        "[ 1.0] ==================================================================\n"
    )
    (f,) = classify_text(text)
    assert (f.corrupted, f.title) == (False, "KASAN: slab-out-of-bounds Write in victim_fn")


def test_truncated_by_end_of_input_is_corrupted() -> None:
    (f,) = classify_text((CORPUS / "fmt-corrupted-truncated.log").read_text())
    assert f.corrupted
    assert f.title == "corrupted report: BUG: unable to handle kernel NULL pointer dereference"
    # The RIP names the list helper, the trace never reached the caller: no guess.
    assert f.guilty == ""


def test_two_interleaved_warnings_are_both_corrupted() -> None:
    a, b = classify_text((CORPUS / "fmt-corrupted-interleaved.log").read_text())
    assert a.corrupted and b.corrupted
    assert a.title == "corrupted report: WARNING in vmpressure_notify"
    assert b.title == "corrupted report: WARNING: refcount bug"  # its own fn is a helper


def test_lines_of_another_printk_caller_are_left_out_not_corruption() -> None:
    """Another task logging during a report (CONFIG_PRINTK_CALLER) is not interleaving:
    its lines are skipped by the stack walk, the report stays whole."""
    own = "[    1.000000][   T12] "
    other = "[    1.000001][   T34] "
    lines = _warn(["victim_fn"], top="refcount_warn_saturate").replace("[ 1.0] ", own)
    parts = lines.splitlines(keepends=True)
    at = next(i for i, x in enumerate(parts) if "<TASK>" in x) + 1
    parts[at:at] = [other + " other_task_fn+0x1/0x2\n", other + "audit: type=1400 x\n"]
    (f,) = classify_text("".join(parts))
    assert (f.corrupted, f.title) == (False, "WARNING in victim_fn")


def test_another_tasks_context_header_inside_a_report_is_corruption() -> None:
    own = "[    1.000000][   T12] "
    parts = _warn(["victim_fn"]).replace("[ 1.0] ", own).splitlines(keepends=True)
    parts.insert(3, "[    1.000001][   T34] CPU: 1 UID: 0 PID: 34 Comm: other Not tainted\n")
    (f,) = classify_text("".join(parts))
    assert f.corrupted


def test_a_panic_cutting_a_report_is_not_corruption() -> None:
    text = (
        "[ 1.0] ------------[ cut here ]------------\n"
        "[ 1.0] WARNING: CPU: 0 PID: 1 at a/b.c:1 lkdtm_WARNING+0x1/0x2\n"
        "[ 1.0] Kernel panic - not syncing: kernel: panic_on_warn set ...\n"
    )
    warning, panic = classify_text(text)
    assert (warning.corrupted, warning.title) == (False, "WARNING in lkdtm_WARNING")
    assert (panic.kind, panic.corrupted) == ("panic", False)


def test_reports_of_kernels_without_task_markers_end_without_corruption() -> None:
    (f,) = classify_text((CORPUS / "fmt-lockdep-v4-circular.log").read_text())
    assert not f.corrupted


def test_nmi_backtraces_of_other_cpus_are_not_interleaving() -> None:
    findings = classify_text((CORPUS / "dbg-hardlockup.log").read_text())
    assert findings and not any(f.corrupted for f in findings)


# -- new formats --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "title"),
    [
        ("WARNING: kernel/foo.c:9 at foo_fn+0x1/0x2, CPU#3: sh/77", "warning",
         "WARNING in foo_fn"),
        ("INFO: task sh:7 blocked in I/O wait for more than 30 seconds.", "hung_task",
         "INFO: task sh blocked"),
        ("UBSAN: Undefined behaviour in mm/x.c:1:2", "ubsan",
         "UBSAN: Undefined behaviour in mm/x.c"),
        ("[ INFO: possible recursive locking detected ]", "lockdep", "possible deadlock"),
        ("[ BUG: bad unlock balance detected! ]", "lockdep", "WARNING: bad unlock balance"),
        ("[ INFO: suspicious RCU usage. ]", "lockdep", "INFO: suspicious RCU usage"),
        ("[ BUG: lock held when returning to user space! ]", "lockdep",
         "lock held when returning to user space!"),
        ("INFO: trying to register non-static key.", "lockdep",
         "INFO: trying to register non-static key"),
        ("Unable to handle kernel paging request at virtual address ffff000000000010", "oops",
         "unable to handle kernel paging request"),
        ("Internal error: Oops: 0000000096000005 [#1] PREEMPT SMP", "oops", "Oops"),
        ("Internal error: : 1b [#1] SMP ARM", "oops", "Oops"),
        ("BUG: KCSAN: data-race in a_fn / b_fn", "kcsan", "KCSAN: data-race in a_fn / b_fn"),
        ("BUG: KCSAN: assert: race in c_fn+0x1/0x2", "bug", "BUG: KCSAN"),
        ("BUG: KMSAN: uninit-value in d_fn+0x1/0x2", "kmsan", "KMSAN: uninit-value in d_fn"),
        ("unregister_netdevice: waiting for bond0 to become free. Usage count = -1",
         "netdev_refcount", "unregister_netdevice: waiting for DEV to become free"),
        ("Oops: divide error: 0000 [#1] PREEMPT SMP NOPTI", "divide_error", "divide error"),
        ("divide error: 0000 [#1] SMP", "divide_error", "divide error"),
    ],
)
def test_new_format_first_lines(text: str, kind: str, title: str) -> None:
    (f,) = classify_text(f"[   12.345678] {text}\n")
    assert (f.kind, f.title.removeprefix("corrupted report: ")) == (kind, title)


def test_old_ubsan_gets_todays_title_for_the_same_bug() -> None:
    """v4.x "Undefined behaviour in" + reason line == v6.x "shift-out-of-bounds in"."""
    (old,) = classify_text((CORPUS / "fmt-ubsan-v4.log").read_text())
    new_format = (
        "[ 3.1] ------------[ cut here ]------------\n"
        "[ 3.1] UBSAN: shift-out-of-bounds in net/ipv4/tcp_input.c:3521:13\n"
        "[ 3.1] shift exponent 32 is too large for 32-bit type 'int'\n"
        "[ 3.1] CPU: 1 UID: 0 PID: 1 Comm: init Not tainted 6.12.117 #1\n"
        "[ 3.1] Call Trace:\n[ 3.1]  <IRQ>\n[ 3.1]  dump_stack_lvl+0x1/0x2\n"
        "[ 3.1]  __ubsan_handle_shift_out_of_bounds+0x1/0x2\n"
        "[ 3.1]  tcp_ack_update_rtt+0x1/0x2\n[ 3.1]  </IRQ>\n"
        "[ 3.1] ---[ end trace ]---\n"
    )
    (new,) = classify_text(new_format)
    assert old.title == new.title == "UBSAN: shift-out-of-bounds in tcp_ack_update_rtt"
    assert old.signature == new.signature
    unknown = (CORPUS / "fmt-ubsan-v4.log").read_text().replace("shift exponent", "weird thing")
    (f,) = classify_text(unknown)
    assert f.title == "UBSAN: Undefined behaviour in tcp_ack_update_rtt"


@pytest.mark.parametrize(
    "line",
    [
        "traps: crash[77] trap divide error ip:401136 sp:7ffd5e6c7e30 error:0",
        "netconsole: unregister_netdevice notifier registered",
        "ubsan: UBSAN: Undefined behaviour sanitizer built in",
        "INFO: lockdep is turned off.",
        "NMI backtrace for cpu 0",
        "harness: Unable to handle kernel text mid-line",
    ],
)
def test_new_trigger_words_in_ordinary_kernel_lines(line: str) -> None:
    assert classify_text(f"[    3.000000] {line}\n") == []


@pytest.mark.parametrize("log", [p for p in LOGS if "clean" in p.name], ids=lambda p: p.stem)
def test_clean_logs_stay_clean_on_another_run(log: Path) -> None:
    assert classify_text(_rerun(log.read_text(), seed=7)) == []


# -- deduplication ------------------------------------------------------------


def test_group_by_signature_counts_repeats_in_first_seen_order() -> None:
    findings = classify_text((CORPUS / "dbg-spinlockup.log").read_text())
    groups = group_by_signature(findings)
    assert sum(g.count for g in groups) == len(findings)
    assert len({g.signature for g in groups}) == len(groups)
    firsts = [g.first for g in groups]
    assert firsts == sorted(firsts, key=findings.index)
    by_title = {g.title: g.count for g in groups}
    assert by_title["BUG: soft lockup in full_proxy_write"] == 9
    assert groups[0].to_dict()["first"] == groups[0].first.to_dict()


def test_groups_are_the_same_across_runs() -> None:
    names = ("dbg-spinlockup.log", "fmt-netdev-refcount.log")
    text = "".join((CORPUS / n).read_text() for n in names)
    one = [(g.signature, g.count) for g in group_by_signature(classify_text(text))]
    two = [(g.signature, g.count) for g in group_by_signature(classify_text(_rerun(text, 3)))]
    assert one == two
    assert group_by_signature([]) == []


def test_rerun_helper_changes_what_it_must() -> None:
    """The stability test is only as strong as the rewrite: check that it bites."""
    text = (CORPUS / "dbg-warning.log").read_text()
    again = _rerun(text, 1)
    for needle in ("PID: 1 ", "[    T1]", "ffff88800021fe08", "lkdtm_WARNING+0x8/0xb"):
        assert needle in text and needle not in again, needle
    assert set(string.ascii_letters) & set(again)
