"""The pattern table against the kernel's own format strings.

Each case names a printk format string as it appears in the Linux 6.12
source tree that the harness extracts into its cache, renders it with sample
values and requires the classifier to report the right kind.  If a kernel
changes a format, the literal is no longer in its file and the test fails
loudly instead of the classifier going quietly blind.  Skipped when no
source tree has been extracted (a fresh CI runner): the golden corpus in
tests/data/console covers the same rows from rendered logs.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from harness.console import classify_text

CACHE = Path(os.environ.get("HARNESS_CACHE", Path.home() / ".cache" / "kpharness"))


def _source_tree() -> Path | None:
    for tree in sorted((CACHE / "src").glob("*")):
        if (tree / "kernel" / "panic.c").is_file():
            return tree
    return None


TREE = _source_tree()

# (file, format literal as in the source, values for its conversions, kind)
CASES: list[tuple[str, str, tuple[str, ...], str]] = [
    ("kernel/panic.c", "Kernel panic - not syncing: %s\\n", ("Fatal exception",), "panic"),
    ("kernel/panic.c", "WARNING: CPU: %d PID: %d at %s:%d %pS\\n",
     ("0", "1", "mm/vmpressure.c", "412", "vmpressure_notify+0x1a4/0x1c0"), "warning"),
    ("kernel/hung_task.c", "INFO: task %s:%d blocked for more than %ld seconds.\\n",
     ("sh", "77", "122"), "hung_task"),
    ("kernel/watchdog.c", "BUG: soft lockup - CPU#%d stuck for %us! [%s:%d]\\n",
     ("0", "22", "sh", "77"), "soft_lockup"),
    ("lib/ubsan.c", "UBSAN: %s in %s:%d:%d\\n",
     ("shift-out-of-bounds", "net/ipv4/tcp_input.c", "3521", "13"), "ubsan"),
    ("lib/bug.c", "kernel BUG at %s:%u!\\n", ("mm/slub.c", "1152"), "bug"),
    ("mm/kasan/report.c", "BUG: KASAN: %s in %pS\\n",
     ("slab-use-after-free", "__mutex_lock+0x1b2/0x1010"), "kasan"),
    ("mm/kmsan/report.c", "BUG: KMSAN: %s in %pSb\\n",
     ("uninit-value", "foo_fn+0x1/0x2"), "kmsan"),
    ("kernel/kcsan/report.c", "BUG: KCSAN: %s in %ps / %ps\\n",
     ("data-race", "vmpressure_notify", "vmpressure_work_fn"), "kcsan"),
    ("kernel/locking/lockdep.c", "WARNING: possible circular locking dependency detected\\n",
     (), "lockdep"),
    ("kernel/locking/lockdep.c", "INFO: trying to register non-static key.\\n", (), "lockdep"),
    ("mm/oom_kill.c",
     "%s invoked oom-killer: gfp_mask=%#x(%pGg), order=%d, oom_score_adj=%hd\\n",
     ("hog", "0x140dca", "GFP_HIGHUSER_MOVABLE", "0", "0"), "oom_kill"),
    ("arch/x86/kernel/dumpstack.c", "Oops: %s: %04lx [#%d]%s%s%s%s%s\\n",
     ("divide error", "0000", "1", " PREEMPT", " SMP", "", "", ""), "divide_error"),
    ("arch/x86/kernel/dumpstack.c", "Oops: %s: %04lx [#%d]%s%s%s%s%s\\n",
     ("general protection fault, probably for non-canonical address 0xdead000000000100",
      "0000", "1", " PREEMPT", " SMP", "", "", ""), "gpf"),
    ("arch/arm64/mm/fault.c", "Unable to handle kernel %s at virtual address %016lx\\n",
     ("NULL pointer dereference", "0000000000000000"), "oops"),
    ("arch/arm64/kernel/traps.c", "Internal error: %s: %016lx [#%d]",
     ("Oops", "0000000096000005", "1"), "oops"),
    ("net/core/dev.c",
     "unregister_netdevice: waiting for %s to become free. Usage count = %d\\n",
     ("veth3", "2"), "netdev_refcount"),
]

_CONVERSION = re.compile(r"%[-#0-9.]*(?:hh|h|ll|l|z)?(?:p[A-Za-z]+|[a-zA-Z])")


def _render(fmt: str, values: tuple[str, ...]) -> str:
    specs = _CONVERSION.findall(fmt)
    assert len(specs) == len(values), (fmt, specs)
    it = iter(values)
    return _CONVERSION.sub(lambda _m: next(it), fmt).replace("\\n", "")


@pytest.mark.skipif(TREE is None, reason="no extracted kernel source under the harness cache")
@pytest.mark.parametrize(("path", "fmt", "values", "kind"), CASES, ids=lambda c: str(c)[:40])
def test_kernel_format_string_is_classified(
    path: str, fmt: str, values: tuple[str, ...], kind: str
) -> None:
    assert TREE is not None
    source = (TREE / path).read_text(errors="replace")
    assert f'"{fmt}' in source or fmt in source, f"{path}: format changed: {fmt!r}"
    line = _render(fmt, values)
    findings = classify_text(f"[   12.345678] {line}\n")
    assert [f.kind for f in findings] == [kind], line
