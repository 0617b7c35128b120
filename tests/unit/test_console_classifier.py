"""Unit tests of the console classifier on small, focused snippets.

The golden corpus (test_console_golden.py) checks real kernels' output; these
tests pin the behaviours the corpus cannot show on its own: streaming edge
cases, prefixes, false-positive traps, and report kinds no corpus kernel
could be made to print (bad page state, kmemleak, KASAN).
"""

from __future__ import annotations

import re

import pytest

from harness.console import (
    KINDS,
    PATTERNS,
    ConsoleClassifier,
    Finding,
    Severity,
    classify_text,
)
from harness.console.patterns import PREFILTER_WORDS

WARN = """\
[   10.000001] lkdtm: Performing direct entry WARNING
[   10.000002] ------------[ cut here ]------------
[   10.000003] WARNING: CPU: 1 PID: 1 at drivers/misc/lkdtm/bugs.c:110 lkdtm_WARNING+0x10/0x20
[   10.000004] Modules linked in:
[   10.000005] CPU: 1 UID: 0 PID: 1 Comm: sh Not tainted 6.12.117 #1
[   10.000006] RIP: 0010:lkdtm_WARNING+0x10/0x20
[   10.000007] Call Trace:
[   10.000008]  <TASK>
[   10.000009]  lkdtm_do_action+0x13/0x20
[   10.000010]  </TASK>
[   10.000011] ---[ end trace 0000000000000000 ]---
[   10.000012] after the warning
"""

NULL_DEREF = """\
[    5.1] BUG: kernel NULL pointer dereference, address: 0000000000000000
[    5.1] #PF: supervisor write access in kernel mode
[    5.1] Oops: Oops: 0002 [#1] PREEMPT SMP
[    5.1] RIP: 0010:lkdtm_EXCEPTION+0x5/0x10
[    5.1] Call Trace:
[    5.1]  <TASK>
[    5.1]  lkdtm_do_action+0x13/0x20
[    5.1]  </TASK>
[    5.1] ---[ end trace 0000000000000000 ]---
[    5.2] Kernel panic - not syncing: Fatal exception
"""

OOM = """\
[   20.0] hog invoked oom-killer: gfp_mask=0x140dca(GFP_HIGHUSER_MOVABLE|__GFP_COMP), order=0
[   20.0] CPU: 0 UID: 0 PID: 70 Comm: hog Not tainted 6.12.117 #1
[   20.0] Call Trace:
[   20.0]  <TASK>
[   20.0]  dump_stack_lvl+0x10/0x20
[   20.0]  </TASK>
[   20.0] Mem-Info:
[   20.0] Tasks state (memory values in pages):
[   20.0] [  pid  ]   uid  tgid total_vm      rss rss_anon name
[   20.0] [     70]     0    70    60000    59000    59000 hog
[   20.0] oom-kill:constraint={constraint},nodemask=(null),cpuset=/,mems_allowed=0
[   20.0] {killer}: Killed process 70 (hog) total-vm:240000kB, anon-rss:236000kB, UID:0
"""


def _kinds(findings: list[Finding]) -> list[tuple[str, str, Severity, int]]:
    return [(f.kind, f.title, f.severity, f.line) for f in findings]


def test_clean_text_has_no_finding() -> None:
    text = "[    0.000000] Linux version 6.12.117\n[    0.1] Run /init as init process\n"
    assert classify_text(text) == []


def test_warning_block_from_cut_here_to_end_trace() -> None:
    (f,) = classify_text(WARN)
    assert (f.kind, f.title, f.severity, f.line) == (
        "warning",
        "WARNING in lkdtm_WARNING",
        Severity.WARNING,
        2,
    )
    assert f.block.splitlines()[0].endswith("[ cut here ]------------")
    assert f.block.splitlines()[-1].endswith("---[ end trace 0000000000000000 ]---")
    assert "after the warning" not in f.block


def test_warning_reported_as_soon_as_end_trace_is_fed() -> None:
    c = ConsoleClassifier()
    lines = WARN.splitlines(keepends=True)
    assert c.feed("".join(lines[:-2])) == []
    (f,) = c.feed(lines[-2])
    assert f.kind == "warning"
    assert c.close() == []


def test_panic_reported_on_its_first_line_and_block_grows() -> None:
    c = ConsoleClassifier()
    (f,) = c.feed("[ 1.0] Kernel panic - not syncing: sysrq triggered crash\n")
    assert (f.kind, f.title, f.severity) == ("panic", "kernel panic: sysrq triggered crash",
                                           Severity.FATAL)
    c.feed("[ 1.0] CPU: 0 PID: 1\n[ 1.0] ---[ end Kernel panic - not syncing: sysrq ]---\n")
    assert f.block.count("\n") == 2
    assert c.close() == []
    assert c.findings == [f]


def test_bug_then_oops_is_one_report_and_panic_follows() -> None:
    findings = classify_text(NULL_DEREF)
    assert _kinds(findings) == [
        ("oops", "BUG: unable to handle kernel NULL pointer dereference in lkdtm_EXCEPTION",
         Severity.ERROR, 1),
        ("panic", "kernel panic: Fatal exception", Severity.FATAL, 10),
    ]


def test_split_lines_match_at_every_split_point() -> None:
    whole = _kinds(classify_text(NULL_DEREF + WARN))
    text = NULL_DEREF + WARN
    for cut in range(1, len(text), 7):
        c = ConsoleClassifier()
        c.feed(text[:cut])
        c.feed(text[cut:])
        c.close()
        assert _kinds(c.findings) == whole, cut


def test_one_character_at_a_time() -> None:
    c = ConsoleClassifier()
    for ch in WARN:
        c.feed(ch)
    c.close()
    assert _kinds(c.findings) == _kinds(classify_text(WARN))


def test_unterminated_last_line_is_classified_by_close() -> None:
    c = ConsoleClassifier()
    assert c.feed("[ 1.0] Kernel panic - not syncing: no newline") == []
    (f,) = c.close()
    assert f.kind == "panic"


def test_open_block_flushed_by_close() -> None:
    """A guest that dies mid-report still yields it, flagged as cut off."""
    text = "".join(WARN.splitlines(keepends=True)[:6])
    c = ConsoleClassifier()
    assert c.feed(text) == []
    (f,) = c.close()
    assert (f.kind, f.corrupted) == ("warning", True)
    assert f.title == "corrupted report: WARNING in lkdtm_WARNING"


@pytest.mark.parametrize(
    "prefix",
    ["", "[   12.345678] ", "<4>[   12.345678] ", "[   12.345678][    T1] ",
     "[   12.345678][    C0] ", "<4>"],
)
def test_console_prefixes_are_stripped(prefix: str) -> None:
    text = (
        f"{prefix}BUG: soft lockup - CPU#0 stuck for 22s! [sh:1]\n"
        f"{prefix}RIP: 0010:spin+0x1/0x2\n"
        f"{prefix}Call Trace:\n{prefix} <TASK>\n{prefix} do_spin+0x1/0x2\n{prefix} </TASK>\n"
    )
    (f,) = classify_text(text)
    assert (f.kind, f.title) == ("soft_lockup", "BUG: soft lockup in spin")


@pytest.mark.parametrize(
    "line",
    [
        "[    3.0] ODEBUG: free active (active state 0) object type: timer_list hint: x+0x0/0x1",
        "[    3.0] DEBUG: BUG: not at line start",
        "[    3.0] CONFIG_BUG=y",
        "[    3.0] harness: WARNING: CPU: 0 PID: 1 at x.c:1 f+0x0/0x1",
        "[    3.0] INFO: lockdep is turned off.",
        "[    3.0] NMI backtrace for cpu 0",
        "[    3.0] Mem-Info:",
        "[    3.0] ---[ end Kernel panic - not syncing: x ]---",
    ],
)
def test_false_positive_traps(line: str) -> None:
    assert classify_text(line + "\n") == []


def test_user_space_lines_cannot_fake_reports_once_timestamps_are_seen() -> None:
    text = (
        "[    0.000000] Linux version 6.12\n"
        "BUG: printed by user space\n"
        "Kernel panic - not syncing: user space again\n"
        "WARNING: CPU: 0 PID: 1 at a.c:1 f+0x0/0x1\n"
    )
    assert classify_text(text) == []


def test_kernel_line_glued_to_user_space_text_still_matches() -> None:
    text = "[    0.0] boot\nuser says hi[    1.000000] Kernel panic - not syncing: glued\n"
    (f,) = classify_text(text)
    assert f.title == "kernel panic: glued"


def test_log_without_timestamps_is_classified() -> None:
    bare = re.sub(r"^\[[ .0-9]+\] ", "", WARN, flags=re.M)
    assert "[" not in bare.splitlines()[2]
    (f,) = classify_text(bare)
    assert f.kind == "warning"


@pytest.mark.parametrize(
    ("killer", "constraint", "kind", "title", "severity"),
    [
        ("Out of memory", "CONSTRAINT_NONE", "oom_kill", "OOM kill: hog", Severity.WARNING),
        ("Memory cgroup out of memory", "CONSTRAINT_MEMCG", "memcg_oom_kill",
         "memcg OOM kill: hog", Severity.INFO),
    ],
)
def test_oom_kinds(killer: str, constraint: str, kind: str, title: str, severity: Severity) -> None:
    (f,) = classify_text(OOM.format(killer=killer, constraint=constraint))
    assert (f.kind, f.title, f.severity, f.line) == (kind, title, severity, 1)
    assert f.block.splitlines()[-1].endswith("UID:0")


def test_bare_oom_kill_line() -> None:
    (f,) = classify_text("[ 1.0] Out of memory: Killed process 9 (a b) total-vm:1kB\n")
    assert (f.kind, f.title) == ("oom_kill", "OOM kill: a b")


SYNTHETIC = {
    # Formats copied from the v6.12 sources (no corpus kernel prints these).
    "kasan": (
        "[ 1.0] ==================================================================\n"
        "[ 1.0] BUG: KASAN: slab-out-of-bounds in foo_read+0x1/0x2\n"
        "[ 1.0] Read of size 8 at addr ffff888000000000 by task sh/1\n"
        "[ 1.0] ==================================================================\n",
        "KASAN: slab-out-of-bounds Read in foo_read",
    ),
    "bad_page": (
        "[ 1.0] BUG: Bad page state in process sh  pfn:01234\n"
        "[ 1.0] page dumped because: nonzero mapcount\n"
        "[ 1.0] Call Trace:\n[ 1.0]  <TASK>\n[ 1.0]  dump_stack_lvl+0x1/0x2\n"
        "[ 1.0]  bad_page+0x1/0x2\n[ 1.0]  free_pages_prepare+0x1/0x2\n"
        "[ 1.0]  release_pages+0x1/0x2\n[ 1.0]  </TASK>\n",
        "BUG: Bad page state in release_pages",
    ),
    "memory_leak": (
        "[ 1.0] kmemleak: unreferenced object 0xffff888003f1c000 (size 32):\n"
        '[ 1.0] kmemleak:   comm "sh", pid 1, jiffies 4294937296\n'
        "[ 1.0] kmemleak:   backtrace (crc 0):\n"
        "[ 1.0] kmemleak:     [<ffffffff81000000>] kmalloc_trace+0x1/0x2\n"
        "[ 1.0] kmemleak:     [<ffffffff81000001>] leaky_init+0x1/0x2\n"
        "[ 1.0] next line\n",
        "memory leak in leaky_init",
    ),
    "alloc_failure": (
        "[ 1.0] sh: page allocation failure: order:10, mode:0xcc0(GFP_KERNEL), nodemask=(null)\n"
        "[ 1.0] Call Trace:\n[ 1.0]  <TASK>\n[ 1.0]  warn_alloc+0x1/0x2\n"
        "[ 1.0]  __alloc_pages_noprof+0x1/0x2\n[ 1.0]  pipe_write+0x1/0x2\n[ 1.0]  </TASK>\n"
        "[ 1.0] Mem-Info:\n[ 1.0] 65536 pages RAM\n[ 1.0] 1234 pages reserved\n",
        "page allocation failure: order:10 in pipe_write",
    ),
    "lockdep": (
        "[ 1.0] ======================================================\n"
        "[ 1.0] WARNING: possible circular locking dependency detected\n"
        "[ 1.0] stack backtrace:\n[ 1.0] Call Trace:\n[ 1.0]  <TASK>\n"
        "[ 1.0]  dump_stack_lvl+0x1/0x2\n[ 1.0]  print_circular_bug+0x1/0x2\n"
        "[ 1.0]  __lock_acquire+0x1/0x2\n[ 1.0]  lock_acquire+0x1/0x2\n"
        "[ 1.0]  _raw_spin_lock+0x1/0x2\n[ 1.0]  vmpressure_work_fn+0x1/0x2\n[ 1.0]  </TASK>\n",
        "possible deadlock in vmpressure_work_fn",
    ),
    "gpf": (
        "[ 1.0] Oops: general protection fault, probably for non-canonical address "
        "0xdead000000000100: 0000 [#1] PREEMPT SMP\n"
        "[ 1.0] RIP: 0010:list_del+0x1/0x2\n[ 1.0] Call Trace:\n[ 1.0]  <TASK>\n"
        "[ 1.0]  shrinker_unregister+0x1/0x2\n[ 1.0]  </TASK>\n"
        "[ 1.0] ---[ end trace 0000000000000000 ]---\n",
        "general protection fault in shrinker_unregister",
    ),
    "trap": (
        "[ 1.0] Oops: invalid opcode: 0000 [#1] SMP\n[ 1.0] RIP: 0010:calc+0x1/0x2\n"
        "[ 1.0] ---[ end trace 0000000000000000 ]---\n",
        "invalid opcode in calc",
    ),
    "divide_error": (
        "[ 1.0] divide error: 0000 [#1] SMP\n[ 1.0] RIP: 0010:calc+0x1/0x2\n"
        "[ 1.0] ---[ end trace 0000000000000000 ]---\n",
        "divide error in calc",
    ),
}


@pytest.mark.parametrize("kind", sorted(SYNTHETIC))
def test_synthetic_reports(kind: str) -> None:
    text, title = SYNTHETIC[kind]
    (f,) = classify_text(text)
    assert (f.kind, f.title) == (kind, title)


def test_every_pattern_start_contains_a_prefilter_word() -> None:
    samples = {
        "panic": "Kernel panic - not syncing: x",
        "kasan": "BUG: KASAN: use-after-free in f+0x1/0x2",
        "kfence": "BUG: KFENCE: out-of-bounds write in f+0x1/0x2",
        "ubsan": "UBSAN: array-index-out-of-bounds in a.c:1:2",
        "oops": "BUG: unable to handle page fault for address: 0",
        "bug": "kernel BUG at mm/x.c:1!",
        "trap": "traps: PANIC: double fault, error_code: 0x0",
        "gpf": "general protection fault: 0000 [#1] SMP",
        "soft_lockup": "watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [sh:1]",
        "hard_lockup": "watchdog: CPU1: Watchdog detected hard LOCKUP on cpu 0",
        "rcu_stall": "rcu: INFO: rcu_sched self-detected stall on CPU",
        "hung_task": "INFO: task sh:1 blocked for more than 10 seconds.",
        "atomic_sleep": "BUG: scheduling while atomic: sh/1/0x00000002",
        "lockdep": "WARNING: possible recursive locking detected",
        "warning": "WARNING: CPU: 0 PID: 1 at a.c:1 f+0x1/0x2",
        "bad_page": "BUG: Bad page state in process sh  pfn:01",
        "memory_leak": "unreferenced object 0xffff (size 8):",
        "oom_kill": "sh invoked oom-killer: gfp_mask=0x0(), order=0",
        "memcg_oom_kill": "Memory cgroup out of memory: Killed process 1 (sh)",
        "alloc_failure": "sh: page allocation failure: order:0, mode:0x0",
        "kmsan": "BUG: KMSAN: uninit-value in f+0x1/0x2",
        "kcsan": "BUG: KCSAN: data-race in a / b",
        "divide_error": "Oops: divide error: 0000 [#1] PREEMPT SMP",
        "netdev_refcount": "unregister_netdevice: waiting for lo to become free. Usage count = 2",
    }
    assert set(samples) == set(KINDS)
    for kind, line in samples.items():
        assert any(w in line for w in PREFILTER_WORDS), kind
        matched = [p.kind for p in PATTERNS if p.start.match(line)]
        assert matched and matched[0] == kind, (kind, matched)


def test_finding_to_dict() -> None:
    (f,) = classify_text(WARN)
    assert f.to_dict() == {
        "kind": "warning", "title": "WARNING in lkdtm_WARNING", "severity": "warning", "line": 2,
        "guilty": "lkdtm_WARNING", "corrupted": False, "signature": f.signature,
    }
    assert re.fullmatch(r"[0-9a-f]{16}", f.signature)


def test_feed_after_close_is_an_error() -> None:
    c = ConsoleClassifier()
    c.close()
    with pytest.raises(ValueError):
        c.feed("x\n")


def test_same_chunk_object_fed_twice() -> None:
    chunk = "[ 1.0] Kernel panic - not syncing: again\n"
    c = ConsoleClassifier()
    assert len(c.feed(chunk)) == 1
    assert len(c.feed(chunk)) == 1


def test_cut_here_only_prefixes_reports_printed_after_it() -> None:
    text = (
        "[ 1.0] ------------[ cut here ]------------\n"
        "[ 1.0] some message\n"
        "[ 1.0] Kernel panic - not syncing: unrelated\n"
    )
    (f,) = classify_text(text)
    assert (f.kind, f.line) == ("panic", 3)


def test_kinds_match_the_interface_contract() -> None:
    contract = (
        "panic oops bug kasan kfence ubsan gpf trap warning soft_lockup hard_lockup rcu_stall "
        "hung_task atomic_sleep lockdep bad_page oom_kill memcg_oom_kill alloc_failure memory_leak"
        " kmsan kcsan divide_error netdev_refcount"
    )
    assert sorted(KINDS) == sorted(contract.split())
    assert [s.value for s in Severity] == ["fatal", "error", "warning", "info"]


def test_runaway_block_is_cut_and_later_reports_still_found() -> None:
    from harness.console.classifier import MAX_BLOCK_LINES

    text = (
        "[ 1.0] INFO: task sh:1 blocked for more than 10 seconds.\n"
        + "[ 1.0]  filler line\n" * (MAX_BLOCK_LINES + 50)
        + WARN
    )
    findings = classify_text(text)
    assert [f.kind for f in findings] == ["hung_task", "warning"]
    assert findings[0].block.count("\n") == MAX_BLOCK_LINES - 1


def test_garbage_does_not_break_the_classifier() -> None:
    import random

    rng = random.Random(5)
    alphabet = "BUG: WARNING [#1] cut here\n\r\x00<4>[ 1.0] </TASK> ---[ end trace ]--- Oops: é"
    c = ConsoleClassifier()
    for _ in range(300):
        c.feed("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 200))))
    c.feed(WARN)
    c.close()
    assert all(isinstance(f, Finding) for f in c.findings)


def test_very_long_line_without_newline_is_bounded() -> None:
    c = ConsoleClassifier()
    c.feed("x" * (2 << 20))
    assert c.feed("\n" + WARN)[0].kind == "warning"


def test_word_finders_agree_with_str_find() -> None:
    """Every trigger word's and end marker's finder (memchr on a rare
    character, str.find or a regex scan) answers what str.find does, also
    past the point where a run of false hits makes it fall back to a regex."""
    import random

    from harness.console.classifier import _MAX_FALSE_HITS, _finder

    words = {*PREFILTER_WORDS, *(p.marker for p in PATTERNS if p.marker)}
    rng = random.Random(7)
    for word in sorted(words):
        pieces = [word, word[: len(word) // 2], word[1:], "#", "W", "<", "G", "F", "[", "-", "\n",
                  "x" * 30]
        text = "".join(rng.choice(pieces) for _ in range(400))
        # a run of the word's rare characters with no word in it, then the word
        run = len(text)
        text += "".join(c for c in word if c in "#W<GF") * (2 * _MAX_FALSE_HITS) + " " + word
        find = _finder(word)
        for pos in [0, 1, run, *rng.sample(range(len(text)), 60), len(text) - 1, len(text)]:
            assert find(text, pos) == text.find(word, pos), (word, pos)


def test_prefilter_answers_the_first_trigger_word() -> None:
    import random

    from harness.console.classifier import _Prefilter

    rng = random.Random(11)
    pieces = [*PREFILTER_WORDS, "filler text\n", "[ 1.0] ", "G", "W"]
    text = "".join(rng.choice(pieces) for _ in range(300))
    prefilter = _Prefilter()
    prefilter.reset(text)
    pos = 0
    while pos <= len(text):
        hits = [at for at in (text.find(w, pos) for w in PREFILTER_WORDS) if at >= 0]
        assert prefilter.search(text, pos) == (min(hits) if hits else -1), pos
        pos += rng.randint(0, 40)
