"""Titles in the field's conventions: one realistic excerpt per report format.

The reference is the title a long-running kernel dashboard (syzbot, through
syzkaller's public pkg/report table) gives each kind of report: "KASAN:
use-after-free Read in F", "WARNING: refcount bug in F", "possible deadlock
in F", "INFO: rcu detected stall in F"...  Each excerpt below is written here
from the kernel's own printk formats (values made up, nothing copied from a
report corpus) and names the title the classifier must give it: the kind in
the field's words, and the guilty frame past every helper on top of the stack.
The last tests check that every row of the pattern table, and every retitle
of a row, is exercised by an excerpt here or by a golden log.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.console import PATTERNS, classify_text
from harness.console.classifier import _strip

CORPUS = Path(__file__).resolve().parents[1] / "data" / "console"

_TS = "[  101.{:06d}][ T5012] "
_CTX = "CPU: 1 UID: 0 PID: 5012 Comm: syz-executor Not tainted 6.12.0-syzkaller #0"
_HW = "Hardware name: Google Compute Engine/Google Compute Engine, BIOS 09/13/2024"


def _log(*lines: str) -> str:
    """Lines with a timestamp and a printk caller id, as a syzbot console shows them."""
    return "".join(_TS.format(i) + line + "\n" for i, line in enumerate(lines))


def _trace(*frames: str, task: bool = True) -> tuple[str, ...]:
    body = tuple(f" {f}+0x{10 + i:x}/0x{200 + i:x}" for i, f in enumerate(frames))
    if task:
        return ("Call Trace:", " <TASK>", *body, " </TASK>")
    return ("Call Trace:", *body)


_SYSCALL = ("do_syscall_64", "entry_SYSCALL_64_after_hwframe")
_REGS = (
    "RSP: 0018:ffffc90003a5f8c8 EFLAGS: 00010246",
    "RAX: 0000000000000000 RBX: ffff88802a1c4000 RCX: ffffffff8a2b3c4d",
)

KASAN_UAF = _log(
    "==================================================================",
    "BUG: KASAN: slab-use-after-free in __list_del_entry_valid_or_report+0x1c/0x120",
    "Read of size 8 at addr ffff88802a1c4008 by task syz-executor/5012",
    "",
    _CTX, _HW,
    *_trace("__dump_stack", "dump_stack_lvl", "print_report", "kasan_report",
            "__list_del_entry_valid_or_report", "list_del", "tun_detach", "tun_chr_close",
            "__fput", *_SYSCALL),
    "",
    "Allocated by task 5011:",
    " kasan_save_stack+0x24/0x50",
    " __kasan_kmalloc+0x88/0xa0",
    " tun_set_iff+0x3ff/0xe20",
    "",
    "The buggy address belongs to the object at ffff88802a1c4000",
    "==================================================================",
)

KASAN_OOB_WRITE = _log(
    "==================================================================",
    "BUG: KASAN: slab-out-of-bounds in __asan_memcpy+0x40/0x70",
    "Write of size 64 at addr ffff888019a3e7c0 by task syz-executor/5012",
    _CTX,
    *_trace("dump_stack_lvl", "print_report", "kasan_report", "check_region_inline",
            "kasan_check_range", "__asan_memcpy", "__x86_indirect_thunk_rax",
            "hci_event_packet", "hci_rx_work", "process_one_work", "worker_thread",
            "kthread", "ret_from_fork"),
    "==================================================================",
)

KASAN_WILD = _log(
    "==================================================================",
    "BUG: KASAN: wild-memory-access in sg_read+0x1a2/0x1d30",
    "Read of size 8 at addr 0bad000000000000 by task syz-executor/5012",
    _CTX,
    *_trace("dump_stack_lvl", "kasan_report", "__asan_load8", "sg_read", "vfs_read",
            "ksys_read", *_SYSCALL),
    "==================================================================",
)

KASAN_INVALID_FREE = _log(
    "==================================================================",
    "BUG: KASAN: double-free or invalid-free in kfree+0xe5/0x2a0",
    _CTX,
    *_trace("dump_stack_lvl", "print_report", "kasan_report_invalid_free", "kfree",
            "nf_tables_newset", "nfnetlink_rcv_batch", *_SYSCALL),
    "==================================================================",
)

# v6.12 WARN with a KCOV-instrumented kernel: the trace starts in the sanitizer.
WARNING_PLAIN = _log(
    "------------[ cut here ]------------",
    "WARNING: CPU: 1 PID: 5012 at net/core/filter.c:8241 __sanitizer_cov_trace_pc+0x5/0x70",
    "Modules linked in:",
    _CTX, _HW,
    "RIP: 0010:__sanitizer_cov_trace_pc+0x5/0x70",
    *_REGS,
    *_trace("bpf_prog_test_run_skb", "__sys_bpf", "__x64_sys_bpf", *_SYSCALL),
    "---[ end trace 0000000000000000 ]---",
)

WARNING_REFCOUNT = _log(
    "------------[ cut here ]------------",
    "refcount_t: underflow; use-after-free.",
    "WARNING: CPU: 1 PID: 5012 at lib/refcount.c:28 refcount_warn_saturate+0x14e/0x210",
    _CTX,
    "RIP: 0010:refcount_warn_saturate+0x14e/0x210",
    *_trace("__refcount_sub_and_test", "__refcount_dec_and_test", "refcount_dec_and_test",
            "kobject_put", "bt_sock_release", "__sock_release", "sock_close", "__fput",
            *_SYSCALL),
    "---[ end trace 0000000000000000 ]---",
)

WARNING_ODEBUG = _log(
    "------------[ cut here ]------------",
    "ODEBUG: free active (active state 0) object: ffff88807d2c3a28 object type: timer_list"
    " hint: nfc_llcp_symm_timer+0x0/0x30",
    "WARNING: CPU: 1 PID: 5012 at lib/debugobjects.c:514 debug_print_object+0x1a3/0x2b0",
    _CTX,
    "RIP: 0010:debug_print_object+0x1a3/0x2b0",
    *_trace("__debug_check_no_obj_freed", "debug_check_no_obj_freed", "slab_free_hook",
            "kfree", "nfc_llcp_local_put", "nfc_unregister_device", *_SYSCALL),
    "---[ end trace 0000000000000000 ]---",
)

WARNING_LOCKING = _log(
    "------------[ cut here ]------------",
    "DEBUG_LOCKS_WARN_ON(1)",
    "WARNING: CPU: 1 PID: 5012 at kernel/locking/lockdep.c:232 hlock_class+0x10b/0x130",
    _CTX,
    "RIP: 0010:hlock_class+0x10b/0x130",
    *_trace("mark_lock", "__lock_acquire", "lock_acquire", "_raw_spin_lock_irqsave",
            "ieee80211_tx_status_irqsafe", "ath9k_htc_txstatus", *_SYSCALL),
    "---[ end trace 0000000000000000 ]---",
)

NULL_DEREF_V4 = _log(
    "BUG: unable to handle kernel NULL pointer dereference at 0000000000000010",
    "IP: sock_poll+0x4a/0x2a0",
    "PGD 1c8a3067 P4D 1c8a3067 PUD 1c8a4067 PMD 0 ",
    "Oops: 0000 [#1] SMP KASAN",
    _CTX,
    "RIP: 0010:sock_poll+0x4a/0x2a0",
    *_REGS,
    *_trace("do_select", "core_sys_select", "SyS_select", "entry_SYSCALL_64_fastpath",
            task=False),
    "Code: 48 89 de e8 0f 3a 5c fd 48 85 db",
    "---[ end trace 3b3a4d0e5c0b2a11 ]---",
)

NULL_DEREF_V6 = _log(
    "BUG: kernel NULL pointer dereference, address: 0000000000000010",
    "#PF: supervisor read access in kernel mode",
    "#PF: error_code(0x0000) - not-present page",
    "Oops: Oops: 0000 [#1] PREEMPT SMP KASAN NOPTI",
    _CTX,
    "RIP: 0010:memcpy_orig+0x31/0x140",
    *_REGS,
    *_trace("__x86_indirect_thunk_rax", "nilfs_segctor_do_construct", "nilfs_segctor_construct",
            "kthread", "ret_from_fork"),
    "---[ end trace 0000000000000000 ]---",
)

PAGE_FAULT = _log(
    "BUG: unable to handle page fault for address: ffffed100ffffff7",
    "#PF: supervisor read access in kernel mode",
    "Oops: Oops: 0000 [#1] PREEMPT SMP KASAN NOPTI",
    _CTX,
    "RIP: 0010:atomic_read+0x5/0x20",
    *_trace("ext4_xattr_block_set", "ext4_xattr_set_handle", *_SYSCALL),
    "---[ end trace 0000000000000000 ]---",
)

GPF = _log(
    "Oops: general protection fault, probably for non-canonical address 0xdffffc0000000002:"
    " 0000 [#1] PREEMPT SMP KASAN NOPTI",
    "KASAN: null-ptr-deref in range [0x0000000000000010-0x0000000000000017]",
    _CTX,
    "RIP: 0010:strlen+0x13/0x60",
    *_trace("string", "vsnprintf", "kvasprintf", "kobject_set_name_vargs", "dev_set_name",
            "hci_register_dev", *_SYSCALL),
    "---[ end trace 0000000000000000 ]---",
)

KERNEL_BUG = _log(
    "------------[ cut here ]------------",
    "kernel BUG at fs/ext4/inode.c:2721!",
    "Oops: invalid opcode: 0000 [#1] PREEMPT SMP KASAN NOPTI",
    _CTX,
    "RIP: 0010:ext4_writepages+0x2b5c/0x2bf0",
    *_trace("do_writepages", "filemap_fdatawrite_wbc", *_SYSCALL),
    "---[ end trace 0000000000000000 ]---",
)

USERCOPY = _log(
    "usercopy: Kernel memory exposure attempt detected from SLUB object 'skbuff_head_cache'"
    " (offset 118, size 8)!",
    "------------[ cut here ]------------",
    "kernel BUG at mm/usercopy.c:102!",
    "Oops: invalid opcode: 0000 [#1] PREEMPT SMP KASAN NOPTI",
    _CTX,
    "RIP: 0010:usercopy_abort+0xb7/0xd0",
    *_trace("__check_heap_object", "check_heap_object", "__check_object_size",
            "check_object_size", "simple_copy_to_iter", "__skb_datagram_iter",
            "skb_copy_datagram_iter", "netlink_recvmsg", *_SYSCALL),
    "---[ end trace 0000000000000000 ]---",
)

LIST_CORRUPTION = _log(
    "list_del corruption. prev->next should be ffff88807c2a1e28, but was ffff88807c2a1e00.",
    "------------[ cut here ]------------",
    "kernel BUG at lib/list_debug.c:62!",
    "Oops: invalid opcode: 0000 [#1] PREEMPT SMP KASAN NOPTI",
    _CTX,
    "RIP: 0010:__list_del_entry_valid_or_report+0x11f/0x1b0",
    *_trace("__list_del_entry_valid", "__list_del_entry", "list_del_init",
            "io_poll_remove_entries", "io_ring_exit_work", "process_one_work", "kthread"),
    "---[ end trace 0000000000000000 ]---",
)

CIRCULAR = _log(
    "======================================================",
    "WARNING: possible circular locking dependency detected",
    "6.12.0-syzkaller #0 Not tainted",
    "------------------------------------------------------",
    "syz-executor/5012 is trying to acquire lock:",
    "ffff88802b3c8a48 (&mm->mmap_lock){++++}-{3:3}, at: __might_fault+0xaa/0x120",
    "",
    "but task is already holding lock:",
    "ffff888021a4b0d8 (&pipe->mutex){+.+.}-{3:3}, at: pipe_lock+0x60/0x70",
    "",
    "other info that might help us debug this:",
    "stack backtrace:",
    _CTX,
    *_trace("dump_stack_lvl", "check_noncircular", "__lock_acquire", "lock_acquire",
            "__might_fault", "pipe_read", "vfs_read", *_SYSCALL),
)

INCONSISTENT = _log(
    "================================",
    "WARNING: inconsistent lock state",
    "6.12.0-syzkaller #0 Not tainted",
    "--------------------------------",
    "inconsistent {IN-SOFTIRQ-W} -> {SOFTIRQ-ON-W} usage.",
    "syz-executor/5012 [HC0[0]:SC0[0]:HE1:SE1] takes:",
    "ffff88801e2b9a18 (&local->lock){+.?.}-{2:2}, at: spin_lock include/linux/spinlock.h:351",
    "ffff88801e2b9a18 (&local->lock){+.?.}-{2:2}, at: nfc_llcp_sock_link+0x2a/0x180",
    "{IN-SOFTIRQ-W} state was registered at:",
    "  lock_acquire+0x1b1/0x560",
    "stack backtrace:",
    _CTX,
    *_trace("dump_stack_lvl", "mark_lock", "__lock_acquire", "lock_acquire", "_raw_spin_lock",
            "nfc_llcp_sock_link", *_SYSCALL),
)

SUSPICIOUS_RCU = _log(
    "=============================",
    "WARNING: suspicious RCU usage",
    "6.12.0-syzkaller #0 Not tainted",
    "-----------------------------",
    "net/mac80211/sta_info.c:1213 suspicious rcu_dereference_protected() usage!",
    "stack backtrace:",
    _CTX,
    *_trace("dump_stack_lvl", "lockdep_rcu_suspicious", "rcu_read_lock_held",
            "__sta_info_destroy_part2", "sta_info_destroy_addr", *_SYSCALL),
)

# v4.x console: rcu_sched flavour, apic timer entry, no <TASK> markers.
RCU_STALL_V4 = _log(
    "INFO: rcu_sched self-detected stall on CPU",
    "\t1-....: (124999 ticks this GP) idle=2a6/1/4611686018427387906 softirq=1234/1234 fqs=31240 ",
    "\t (t=125000 jiffies g=8123 c=8122 q=512)",
    "NMI backtrace for cpu 1",
    _CTX,
    "Call Trace:",
    " <IRQ>",
    " __dump_stack+0x10/0x20",
    " dump_stack+0x194/0x24d",
    " nmi_cpu_backtrace+0x1d2/0x210",
    " rcu_dump_cpu_stacks+0x186/0x1de",
    " rcu_check_callbacks+0x1b8c/0x1c50",
    " update_process_times+0x30/0x60",
    " tick_sched_timer+0x42/0x120",
    " __hrtimer_run_queues+0x358/0xe20",
    " hrtimer_interrupt+0x1c2/0x5e0",
    " smp_apic_timer_interrupt+0x14a/0x700",
    " apic_timer_interrupt+0x9d/0xb0",
    " </IRQ>",
    "RIP: 0010:__sanitizer_cov_trace_pc+0x3b/0x50",
    "RSP: 0018:ffff8801c0ad7498 EFLAGS: 00000216 ORIG_RAX: ffffffffffffff10",
    " tipc_nametbl_unsubscribe+0x2a0/0x7b0",
    " tipc_subscrp_delete+0x70/0xa0",
    " tipc_subscrb_release_cb+0x1a/0x20",
    " tipc_close_conn+0x1f6/0x2a0",
    "Code: 00 00 48 8b 75 08",
)

HUNG_TASK_HEAD = (
    "INFO: task syz-executor:5012 blocked for more than 143 seconds.",
    "      Not tainted 6.12.0-syzkaller #0",
    '"echo 0 > /proc/sys/kernel/hung_task_timeout_secs" disables this message.',
    "task:syz-executor    state:D stack:25600 pid:5012  tgid:5012  ppid:5008   flags:0x00004006",
)
HUNG_TASK = _log(
    *HUNG_TASK_HEAD,
    *_trace("context_switch", "__schedule", "schedule", "schedule_timeout",
            "do_wait_for_common", "__wait_for_common", "__wait_rcu_gp", "synchronize_rcu",
            "tun_detach", "tun_chr_close", "__fput", *_SYSCALL),
)

SOFT_LOCKUP = _log(
    "watchdog: BUG: soft lockup - CPU#1 stuck for 143s! [syz-executor:5012]",
    "Modules linked in:",
    _CTX,
    "RIP: 0010:__sanitizer_cov_trace_const_cmp4+0x8/0x20",
    *_REGS,
    *_trace("hash_netiface4_test", "ip_set_test", "nfnetlink_rcv_msg", *_SYSCALL),
)

SLEEPING = _log(
    "BUG: sleeping function called from invalid context at kernel/locking/mutex.c:585",
    "in_atomic(): 1, irqs_disabled(): 0, non_block: 0, pid: 5012, name: syz-executor",
    "preempt_count: 1, expected: 0",
    _CTX,
    *_trace("dump_stack_lvl", "__might_resched", "__mutex_lock", "mutex_lock_nested",
            "smc_switch_conns", "smc_conn_kill", *_SYSCALL),
)

UBSAN_SHIFT = _log(
    "------------[ cut here ]------------",
    "UBSAN: shift-out-of-bounds in net/sched/sch_taprio.c:1163:24",
    "shift exponent 64 is too large for 64-bit type 'u64'",
    _CTX,
    *_trace("dump_stack_lvl", "ubsan_epilogue", "__ubsan_handle_shift_out_of_bounds",
            "taprio_parse_clockid", "taprio_change", *_SYSCALL),
    "---[ end trace ]---",
)

UBSAN_INDEX = _log(
    "------------[ cut here ]------------",
    "UBSAN: array-index-out-of-bounds in fs/jfs/jfs_dmap.c:1462:6",
    "index 196 is out of range for type 's8[128]'",
    _CTX,
    *_trace("dump_stack_lvl", "__ubsan_handle_out_of_bounds", "dbAllocAG", "dbAlloc",
            *_SYSCALL),
    "---[ end trace ]---",
)

KFENCE = _log(
    "==================================================================",
    "BUG: KFENCE: use-after-free read in hfsplus_read_wrapper+0x1c/0x40",
    "",
    "Use-after-free read at 0x00000000bc56fddf (in kfence-#142):",
    " hfsplus_read_wrapper+0x1c/0x40",
    " hfsplus_fill_super+0x3a1/0x1b20",
    "",
    _CTX,
    "==================================================================",
)

DIVIDE = _log(
    "Oops: divide error: 0000 [#1] PREEMPT SMP KASAN NOPTI",
    _CTX,
    "RIP: 0010:tcp_rcv_space_adjust+0x2b4/0x6f0",
    *_trace("tcp_recvmsg_locked", "tcp_recvmsg", *_SYSCALL),
    "---[ end trace 0000000000000000 ]---",
)

STACK_SEGMENT = _log(
    "Oops: stack segment: 0000 [#1] PREEMPT SMP KASAN NOPTI",
    _CTX,
    "RIP: 0010:qdisc_reset+0x9f/0x1a0",
    *_trace("dev_deactivate_many", "__dev_close_many", *_SYSCALL),
    "---[ end trace 0000000000000000 ]---",
)

WORKQUEUE_LOCKUP = _log(
    "BUG: workqueue lockup - pool cpus=1 node=0 flags=0x0 nice=0 stuck for 37s!",
    "Showing busy workqueues and worker pools:",
    "workqueue events: flags=0x0",
)

SPINLOCK_MAGIC = _log(
    "BUG: spinlock bad magic on CPU#1, syz-executor/5012",
    " lock: 0xffff88802a1c4000, .magic: 00000000, .owner: <none>/-1, .owner_cpu: 0",
    _CTX,
    *_trace("dump_stack_lvl", "spin_bug", "do_raw_spin_lock", "_raw_spin_lock_irqsave",
            "__wake_up_common_lock", "hci_uart_tty_close", *_SYSCALL),
)

THIS_CPU = _log(
    "BUG: using __this_cpu_read() in preemptible [00000000] code: syz-executor/5012",
    "caller is __this_cpu_preempt_check+0x13/0x20",
    _CTX,
    *_trace("dump_stack_lvl", "check_preemption_disabled", "__this_cpu_preempt_check",
            "netif_rx_internal", "tun_get_user", *_SYSCALL),
)

MEMORY_LEAK = _log(
    "BUG: memory leak",
    "unreferenced object 0xffff888109f2a200 (size 512):",
    '  comm "syz-executor", pid 5012, jiffies 4294945000',
    "  backtrace (crc 6b1e0a9c):",
    "    kmemleak_alloc+0x4e/0x90",
    "    __kmalloc_noprof+0x2f4/0x3d0",
    "    kmalloc_array+0x30/0x50",
    "    hci_conn_add+0x5c/0x9a0",
    "    hci_connect_acl+0x1c0/0x2a0",
)

STACKPROTECTOR = _log(
    "Kernel panic - not syncing: stack-protector: Kernel stack is corrupted in:"
    " ieee80211_rx_list+0x1f4e/0x1f70",
)

DOUBLE_FAULT = _log(
    "traps: PANIC: double fault, error_code: 0x0",
    "Oops: double fault: 0000 [#1] PREEMPT SMP KASAN NOPTI",
    _CTX,
    "RIP: 0010:__sanitizer_cov_trace_pc+0x0/0x70",
    "RSP: 0018:ffffc90004a8ff78 EFLAGS: 00010046",
    *_trace("__x86_indirect_thunk_r11", "bpf_prog_run_fixture_loop", task=False),
    "Code: 48 8b 04 24",
    "---[ end trace 0000000000000000 ]---",
)

# arm64 v6.x: die_kernel_fault(), then __die(), "pc :" and "Call trace:".
ARM64_PAGING = _log(
    "Unable to handle kernel paging request at virtual address dfff800000000004",
    "Mem abort info:",
    "  ESR = 0x0000000096000005",
    "Internal error: Oops: 0000000096000005 [#1] PREEMPT SMP",
    _CTX,
    "pc : __memcpy+0x40/0x230",
    "lr : gfs2_dirent_find_space+0x58/0x1a0",
    "Call trace:",
    " __memcpy+0x40/0x230",
    " gfs2_dirent_find_space+0x58/0x1a0",
    " gfs2_add_entry+0x1b8/0x5b0",
    "Code: a9422428 a9432c2a",
    "---[ end trace 0000000000000000 ]---",
)

BAD_PAGE = _log(
    "BUG: Bad page state in process syz-executor  pfn:2a1c4",
    "page: refcount:0 mapcount:0 mapping:0000000000000000 index:0x0 pfn:0x2a1c4",
    "page dumped because: nonzero mapcount",
    _CTX,
    *_trace("dump_stack_lvl", "bad_page", "free_unref_page_prepare", "free_unref_page",
            "io_mem_free", "io_ring_ctx_free", *_SYSCALL),
)

HELD_LOCK_FREED = _log(
    "=========================",
    "WARNING: held lock freed!",
    "6.12.0-syzkaller #0 Not tainted",
    "-------------------------",
    "syz-executor/5012 is freeing memory ffff88802a1c4000-ffff88802a1c43ff, with a lock still"
    " held there!",
    "ffff88802a1c4130 (sk_lock-AF_INET){+.+.}-{0:0}, at: sctp_sendmsg+0x1f2/0x2c50",
    "stack backtrace:",
    _CTX,
    *_trace("dump_stack_lvl", "debug_check_no_locks_freed", "kfree", "sk_prot_free",
            "__sk_destruct", "sctp_sendmsg", *_SYSCALL),
)

BAD_UNLOCK = _log(
    "=====================================",
    "WARNING: bad unlock balance detected!",
    "6.12.0-syzkaller #0 Not tainted",
    "-------------------------------------",
    "syz-executor/5012 is trying to release lock (rtnl_mutex) at:",
    "[<ffffffff8a2b3c4d>] rtnl_unlock+0x9/0x20",
    "but there are no more locks to release!",
    "stack backtrace:",
    _CTX,
    *_trace("dump_stack_lvl", "print_unlock_imbalance_bug", "lock_release",
            "__mutex_unlock_slowpath", "rtnl_unlock", "bond_enslave_fixture", *_SYSCALL),
)

LOCKS_HELD = _log(
    "====================================",
    "WARNING: syz-executor/5012 still has locks held!",
    "6.12.0-syzkaller #0 Not tainted",
    "------------------------------------",
    "1 lock held by syz-executor/5012:",
    " #0: ffff88801e2b9a18 (&dmxdev->mutex){+.+.}-{3:3}, at: dvb_dmxdev_release+0x2a/0x180",
    "stack backtrace:",
    _CTX,
    *_trace("dump_stack_lvl", "debug_check_no_locks_held", "do_exit", "_dmxdev_lock_fixture",
            *_SYSCALL),
)

WARNING_KOBJECT = _log(
    "------------[ cut here ]------------",
    "kobject: '(null)' (ffff88802a1c4000): is not initialized, yet kobject_put() is being"
    " called.",
    "WARNING: CPU: 1 PID: 5012 at lib/kobject.c:734 kobject_put+0x1f0/0x260",
    _CTX,
    "RIP: 0010:kobject_put+0x1f0/0x260",
    *_trace("kobject_put", "put_device", "hci_free_dev", "vhci_release", "__fput", *_SYSCALL),
    "---[ end trace 0000000000000000 ]---",
)

WARNING_USERCOPY = _log(
    "------------[ cut here ]------------",
    "Bad or missing usercopy whitelist? Kernel memory exposure attempt detected from SLUB"
    " object 'sock_inode_cache' (offset 1189, size 1)!",
    "WARNING: CPU: 1 PID: 5012 at mm/usercopy.c:81 usercopy_warn+0xdb/0x100",
    _CTX,
    "RIP: 0010:usercopy_warn+0xdb/0x100",
    *_trace("__check_heap_object", "__check_object_size", "check_object_size",
            "sctp_getsockopt_fixture", "__sys_getsockopt", *_SYSCALL),
    "---[ end trace 0000000000000000 ]---",
)

# v4.x lockdep banner.
SUSPICIOUS_RCU_V4 = _log(
    "===============================",
    "[ INFO: suspicious RCU usage. ]",
    "4.14.0-rc5+ #1 Not tainted",
    "-------------------------------",
    "net/ipv6/addrconf.c:5640 suspicious rcu_dereference_check() usage!",
    "stack backtrace:",
    _CTX,
    *_trace("__dump_stack", "dump_stack", "lockdep_rcu_suspicious", "addrconf_sysctl_fixture",
            "proc_sys_call_handler", task=False),
    "RIP: 0033:0x452869",
)

KILL_INIT = _log("Kernel panic - not syncing: Attempted to kill init! exitcode=0x0000000b")

EXCERPTS: dict[str, tuple[str, str]] = {
    "kasan-uaf-read": (KASAN_UAF, "KASAN: slab-use-after-free Read in tun_detach"),
    "kasan-oob-write": (KASAN_OOB_WRITE, "KASAN: slab-out-of-bounds Write in hci_event_packet"),
    "kasan-wild": (KASAN_WILD, "KASAN: wild-memory-access in sg_read"),
    "kasan-invalid-free": (KASAN_INVALID_FREE, "KASAN: invalid-free in nf_tables_newset"),
    "warning": (WARNING_PLAIN, "WARNING in bpf_prog_test_run_skb"),
    "warning-refcount": (WARNING_REFCOUNT, "WARNING: refcount bug in bt_sock_release"),
    "warning-odebug": (WARNING_ODEBUG, "WARNING: ODEBUG bug in nfc_llcp_local_put"),
    "warning-locking": (WARNING_LOCKING, "WARNING: locking bug in hlock_class"),
    "null-deref-v4": (NULL_DEREF_V4, "BUG: unable to handle kernel NULL pointer dereference in"
                      " sock_poll"),
    "null-deref-v6": (NULL_DEREF_V6, "BUG: unable to handle kernel NULL pointer dereference in"
                      " nilfs_segctor_do_construct"),
    "page-fault": (PAGE_FAULT, "BUG: unable to handle kernel paging request in"
                   " ext4_xattr_block_set"),
    "gpf": (GPF, "general protection fault in kobject_set_name_vargs"),
    "kernel-bug": (KERNEL_BUG, "kernel BUG in ext4_writepages"),
    "usercopy": (USERCOPY, "BUG: bad usercopy in simple_copy_to_iter"),
    "list-corruption": (LIST_CORRUPTION, "BUG: corrupted list in io_poll_remove_entries"),
    "circular": (CIRCULAR, "possible deadlock in __might_fault"),
    "inconsistent": (INCONSISTENT, "inconsistent lock state in nfc_llcp_sock_link"),
    "suspicious-rcu": (SUSPICIOUS_RCU, "WARNING: suspicious RCU usage in __sta_info_destroy_part2"),
    "rcu-stall-v4": (RCU_STALL_V4, "INFO: rcu detected stall in tipc_nametbl_unsubscribe"),
    "hung-task": (HUNG_TASK, "INFO: task hung in synchronize_rcu"),
    "soft-lockup": (SOFT_LOCKUP, "BUG: soft lockup in ip_set_test"),
    "sleeping": (SLEEPING, "BUG: sleeping function called from invalid context in"
                 " smc_switch_conns"),
    "ubsan-shift": (UBSAN_SHIFT, "UBSAN: shift-out-of-bounds in taprio_parse_clockid"),
    "ubsan-index": (UBSAN_INDEX, "UBSAN: array-index-out-of-bounds in dbAllocAG"),
    "kfence": (KFENCE, "KFENCE: use-after-free read in hfsplus_read_wrapper"),
    "divide": (DIVIDE, "divide error in tcp_rcv_space_adjust"),
    "stack-segment": (STACK_SEGMENT, "stack segment fault in qdisc_reset"),
    "workqueue-lockup": (WORKQUEUE_LOCKUP, "BUG: workqueue lockup"),
    "spinlock-bad-magic": (SPINLOCK_MAGIC, "BUG: spinlock bad magic in hci_uart_tty_close"),
    "this-cpu": (THIS_CPU, "BUG: using __this_cpu_read() in preemptible code in"
                 " netif_rx_internal"),
    "memory-leak": (MEMORY_LEAK, "memory leak in hci_conn_add"),
    "stack-protector": (STACKPROTECTOR, "kernel panic: stack is corrupted in ieee80211_rx_list"),
    "kill-init": (KILL_INIT, "kernel panic: Attempted to kill init!"),
    "bad-page": (BAD_PAGE, "BUG: Bad page state in io_mem_free"),
    "held-lock-freed": (HELD_LOCK_FREED, "WARNING: held lock freed in sctp_sendmsg"),
    "bad-unlock": (BAD_UNLOCK, "WARNING: bad unlock balance in rtnl_unlock"),
    "locks-held": (LOCKS_HELD, "WARNING: still has locks held in dvb_dmxdev_release"),
    "warning-kobject": (WARNING_KOBJECT, "WARNING: kobject bug in put_device"),
    "warning-usercopy": (WARNING_USERCOPY, "WARNING: bad usercopy in sctp_getsockopt_fixture"),
    "suspicious-rcu-v4": (SUSPICIOUS_RCU_V4, "INFO: suspicious RCU usage in"
                          " addrconf_sysctl_fixture"),
    "double-fault": (DOUBLE_FAULT, "double fault in bpf_prog_run_fixture_loop"),
    "arm64-paging": (ARM64_PAGING, "unable to handle kernel paging request in"
                     " gfs2_dirent_find_space"),
}


@pytest.mark.parametrize("name", sorted(EXCERPTS))
def test_title_in_the_fields_conventions(name: str) -> None:
    text, title = EXCERPTS[name]
    findings = classify_text(text)
    assert findings, name
    first = findings[0]
    assert (first.title, first.corrupted) == (title, False), name
    # Streaming in small pieces gives the same title.
    from harness.console import ConsoleClassifier

    c = ConsoleClassifier()
    for i in range(0, len(text), 37):
        c.feed(text[i : i + 37])
    c.close()
    assert c.findings[0].title == title


def test_an_interleaved_line_of_another_task_changes_nothing() -> None:
    """syzbot consoles carry other tasks' lines inside a report (printk caller ids)."""
    lines = KASAN_UAF.splitlines(keepends=True)
    lines.insert(9, "[  101.000009][ T4999] audit: type=1400 audit(1.2:3): avc: denied\n")
    lines.insert(12, "[  101.000011][    C0]  other_cpu_fn+0x1/0x2\n")
    (f,) = classify_text("".join(lines))
    assert (f.title, f.corrupted) == ("KASAN: slab-use-after-free Read in tun_detach", False)


RCU_STALL_V6 = _log(
    "rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:",
    "rcu: \t1-....: (10500 ticks this GP) idle=8f4c/1/0x4000000000000000 softirq=2412/2412",
    "rcu: \t(detected by 0, t=10502 jiffies, g=5673, q=601 ncpus=2)",
    "Sending NMI from CPU 0 to CPUs 1:",
    "NMI backtrace for cpu 1",
    _CTX,
    "RIP: 0010:__sanitizer_cov_trace_pc+0x8/0x70",
    *_REGS,
    *_trace("hash_ipport6_uadt", "ip_set_utest", "nfnetlink_rcv_msg", "netlink_rcv_skb",
            "netlink_unicast", "netlink_sendmsg", "____sys_sendmsg", "___sys_sendmsg",
            "__sys_sendmsg", "__do_sys_sendmsg", "__x64_sys_sendmsg", "x64_sys_call",
            "do_syscall_64", "entry_SYSCALL_64_after_hwframe"),
)


@pytest.mark.parametrize(("waits_in", "title"), [
    (["synchronize_net", "rollback_registered_many"], "INFO: task hung in synchronize_rcu"),
    (["synchronize_srcu", "kvm_mmu_fixture_unmap"], "INFO: task hung in synchronize_rcu"),
    (["__mutex_lock", "mutex_lock_nested", "rtnl_lock", "dev_ioctl"],
     "INFO: task hung in rtnl_lock"),
    (["rwsem_down_write_slowpath", "down_write", "filename_create"],
     "INFO: task hung in filename_create"),
])
def test_hung_tasks_are_bucketed_like_the_field(waits_in: list[str], title: str) -> None:
    text = _log(*HUNG_TASK_HEAD, *_trace("__schedule", "schedule", *waits_in, "vfs_fixture",
                                         *_SYSCALL))
    (f,) = classify_text(text)
    assert f.title == title


def test_a_stall_is_titled_by_the_frame_before_its_anchor() -> None:
    """The watchdog interrupts a loop anywhere: the field titles a stall by the
    frame just before the first dispatching frame (here nfnetlink_rcv_msg)."""
    (f,) = classify_text(RCU_STALL_V6)
    assert (f.title, f.guilty) == ("INFO: rcu detected stall in ip_set_utest", "ip_set_utest")
    # Caught one frame deeper, the same stall gets the same title.
    deeper = RCU_STALL_V6.replace(" hash_ipport6_uadt+", " ip_set_utest_fixture_helper+")
    assert classify_text(deeper)[0].title == f.title


@pytest.mark.parametrize(("frames", "fn"), [
    (["loop_fn", "__x64_sys_sendmmsg", "x64_sys_call", "do_syscall_64"], "sys_sendmmsg"),
    (["rcu_dump_cpu_stacks", "tick_sched_timer", "work_fn", "process_one_work", "kthread"],
     "work_fn"),
    (["busy_fn", "helper_fn"], "busy_fn"),  # no anchor: the first frame not skipped
    (["vfs_write", "ksys_write", "do_syscall_64"], "vfs_write"),  # nothing before the anchor
])
def test_stall_frame(frames: list[str], fn: str) -> None:
    from harness.console.classifier import stall_frame

    assert stall_frame(frames, ("stall",)) == fn


# -- the corrupted rule ---------------------------------------------------------


def test_cut_off_mid_trace_at_end_of_input_is_corrupted() -> None:
    text = "".join(KASAN_UAF.splitlines(keepends=True)[:11])  # inside the call trace
    (f,) = classify_text(text)
    assert f.corrupted and f.title == "corrupted report: KASAN: slab-use-after-free"


def test_complete_trace_without_the_end_separator_is_not_corrupted() -> None:
    """Used to be flagged: the log ends in "Allocated by", the stack is whole."""
    lines = KASAN_UAF.splitlines(keepends=True)
    text = "".join(lines[: next(i for i, x in enumerate(lines) if "__kasan_kmalloc" in x)])
    (f,) = classify_text(text)
    assert (f.corrupted, f.title) == (False, "KASAN: slab-use-after-free Read in tun_detach")


def test_complete_warning_then_another_report_is_not_corrupted() -> None:
    """Used to be flagged: "---[ end trace" lost, the next report's header follows."""
    text = WARNING_PLAIN.replace(_TS.format(len(WARNING_PLAIN.splitlines()) - 1)
                                 + "---[ end trace 0000000000000000 ]---\n", "") + DIVIDE
    warn, div = classify_text(text)
    assert (warn.corrupted, warn.title) == (False, "WARNING in bpf_prog_test_run_skb")
    assert div.title == "divide error in tcp_rcv_space_adjust"


def test_another_report_header_mid_trace_is_corrupted() -> None:
    lines = WARNING_PLAIN.splitlines(keepends=True)
    at = next(i for i, x in enumerate(lines) if "bpf_prog_test_run_skb" in x)
    text = "".join(lines[:at]) + DIVIDE
    warn, div = classify_text(text)
    assert warn.corrupted and not div.corrupted
    # Its own function is a helper, the body is not trusted: the file names it.
    assert warn.title == "corrupted report: WARNING at net/core/filter.c"


def test_old_kernel_trace_without_task_markers() -> None:
    lines = NULL_DEREF_V4.splitlines(keepends=True)
    whole = "".join(lines[:-1])  # "Code:" after the frames: the trace ended
    cut = "".join(lines[: next(i for i, x in enumerate(lines) if "core_sys_select" in x)])
    assert classify_text(whole)[0].corrupted is False
    assert classify_text(cut)[0].corrupted is True


# -- coverage of the table --------------------------------------------------------


def _lines() -> list[str]:
    texts = [t for t, _ in EXCERPTS.values()] + [p.read_text() for p in CORPUS.glob("*.log")]
    return [_strip(raw)[0] for t in texts for raw in t.splitlines()]


def test_every_row_of_the_table_is_exercised() -> None:
    lines = _lines()
    # Rows only the first-line tests cover (test_console_titles.test_new_format_first_lines).
    first_line_only = {"kmsan", "lockdep"}
    for p in PATTERNS:
        if p.kind in first_line_only:
            continue
        assert any(p.start.match(line) for line in lines), p.start.pattern


def test_every_retitle_is_exercised() -> None:
    titles = {t for _, t in EXCERPTS.values()}
    for log in CORPUS.glob("*.expected.json"):
        titles |= set(re.findall(r'"title": "([^"]*)"', log.read_text()))
    for p in PATTERNS:
        for rt in p.retitles:
            stems = {t.split("{", 1)[0].rstrip() for t in rt.titles}
            assert any(any(t.removeprefix("corrupted report: ").startswith(s) for s in stems)
                       for t in titles), rt.titles
