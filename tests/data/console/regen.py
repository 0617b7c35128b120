#!/usr/bin/env python3
"""Regenerate the console-classifier golden corpus from real kernels.

Every ``<name>.log`` here is the serial console of one of this project's own
kernels booted under QEMU (TCG) with a busybox initramfs whose /init runs one
scenario (LKDTM, sysrq, a memory hog...) and then ``reboot -f``.  The
``<name>.expected.json`` sidecars are NOT written by this script: they are
reviewed by hand against each log (``--draft`` prints the classifier's view
of a log as a starting point).

    python tests/data/console/regen.py --kernel RAW_BZIMAGE --debug-kernel DEBUG_BZIMAGE
    python tests/data/console/regen.py --debug-kernel X --only dbg-warning dbg-bug
    python tests/data/console/regen.py --draft tests/data/console/dbg-warning.log

``--kernel``: tinyconfig + kernel-config/guest.config + mempressure.config.
``--debug-kernel``: the same plus kernel-config/debug.config (LKDTM, lockdep,
lockup detectors, KFENCE, UBSAN bounds).  Regenerated logs differ in
timestamps and possibly line numbers: re-review the sidecars after a regen.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent

HOG_C = r"""
/* Allocate and touch memory in 8 MiB steps, saying so on stdout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
int main(int argc, char **argv) {
    long mb = argc > 1 ? atol(argv[1]) : 1024, done = 0;
    int hold = argc > 2 ? atoi(argv[2]) : 0;
    while (done < mb) {
        char *p = malloc(8 << 20);
        if (!p) { printf("hog: malloc failed at %ld MB\n", done); break; }
        memset(p, 0x5a, 8 << 20);
        done += 8;
        if (done % 32 == 0) { printf("hog: %ld MB\n", done); fflush(stdout); }
    }
    if (hold) sleep(hold);
    return 0;
}
"""

CRASH_C = r"""
/* Crash in user space in the way argv[1] says: the kernel logs these
 * ("traps: crash[N] general protection fault ...") but they are not kernel
 * bugs, so the classifier must not report them. */
#include <string.h>
int main(int argc, char **argv) {
    const char *how = argc > 1 ? argv[1] : "segv";
    volatile int zero = 0;
    if (!strcmp(how, "gpf")) __asm__ volatile("cli");
    if (!strcmp(how, "ud2")) __asm__ volatile("ud2");
    if (!strcmp(how, "div")) return 100 / zero;  /* not 1/x: gcc turns that into a compare */
    if (!strcmp(how, "int3")) __asm__ volatile("int3");
    *(volatile int *)0 = 1;
    return 0;
}
"""

INIT = """#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /tmp /bin /sbin /mnt
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mount -t debugfs none /sys/kernel/debug 2>/dev/null
mount -t tmpfs tmp /tmp
lk() { echo "init: lkdtm $1"; echo "$1" > /sys/kernel/debug/provoke-crash/DIRECT; }
memcg() {
    mkdir -p /sys/fs/cgroup/memory
    mount -t tmpfs cg /sys/fs/cgroup
    mkdir -p /sys/fs/cgroup/memory
    mount -t cgroup -o memory none /sys/fs/cgroup/memory
    mkdir /sys/fs/cgroup/memory/$1
    echo "$2" > /sys/fs/cgroup/memory/$1/memory.limit_in_bytes
}
swap() { mkswap /dev/vda >/dev/null && swapon /dev/vda && echo "init: swap on"; }
echo "init: scenario @NAME@"
. /scenario.sh
echo "init: scenario done"
sync
reboot -f
"""


@dataclass(frozen=True)
class Scenario:
    """One guest boot: which kernel, what /init runs, extra boot args."""

    name: str
    kernel: str  # "raw" or "debug"
    script: str
    append: str = ""
    timeout: float = 120.0
    smp: int = 2
    mem: int = 256
    swap_mib: int = 0
    #: qboot boots faster, but its MP table routes no PCI interrupt, so a
    #: virtio disk (swap) needs SeaBIOS on this ACPI-less, MSI-less kernel.
    bios: str = "qboot.rom"
    extra: dict[str, str] = field(default_factory=dict)


NOISE = """
echo "DEBUG: user space says hello, CONFIG_BUG=y is just text"
echo "BUG: this line is printed by user space, not the kernel"
echo "WARNING: CPU: 0 PID: 1 at user/space.c:1 not_a_kernel_warning+0x0/0x10"
echo "Kernel panic - not syncing: user space pretending"
echo "INFO: task fake:1 blocked for more than 120 seconds."
echo "ODEBUG: free active (active state 0) object type: timer_list hint: \\
harness_fake+0x0/0x10" > /dev/kmsg
echo "harness: DEBUG: CONFIG_DEBUG_BUGVERBOSE and CONFIG_BUG mention BUG: mid-line" > /dev/kmsg
"""

HOG = "/bin/hog"

RAW: list[Scenario] = [
    Scenario("raw-clean-boot", "raw", "uname -a; cat /proc/cmdline"),
    Scenario("raw-clean-boot-smp1", "raw", "uname -a; free", smp=1),
    Scenario("raw-clean-noise", "raw", NOISE + "dmesg | tail -3"),
    Scenario(
        "raw-clean-sysrq-show",
        "raw",
        "for k in m w t l; do echo $k > /proc/sysrq-trigger; sleep 1; done",
    ),
    Scenario("raw-sysrq-crash", "raw", "echo c > /proc/sysrq-trigger"),
    Scenario(
        "raw-sysrq-crash-noise",
        "raw",
        NOISE + "(while :; do echo 'user: tick'; sleep 0.2; done) & sleep 1;"
        " echo c > /proc/sysrq-trigger",
    ),
    Scenario(
        "raw-clean-userspace-crashes", "raw",
        "for how in gpf ud2 div int3 segv; do /bin/crash $how; echo \"crash $how: $?\"; done",
    ),
    Scenario("raw-init-exit", "raw", "echo 'init: exiting on purpose'; exit 3"),
    Scenario("raw-oom-global", "raw", f"{HOG} 400; echo hog exit $?"),
    Scenario(
        "raw-oom-global-swap", "raw", f"swap; {HOG} 600; echo hog exit $?", swap_mib=64,
        timeout=240,
    ),
    Scenario(
        "raw-oom-memcg", "raw", f"memcg g 32M; echo $$ > /sys/fs/cgroup/memory/g/tasks;"
        f" {HOG} 100; echo hog exit $?",
    ),
    Scenario(
        "raw-oom-memcg-swap", "raw", "swap; memcg g 32M; echo $$ > /sys/fs/cgroup/memory/g/tasks;"
        f" {HOG} 200; echo hog exit $?", swap_mib=64, timeout=240,
    ),
    Scenario(
        "raw-oom-two-hogs", "raw", f"{HOG} 300 & {HOG} 300 & wait; echo hogs done",
    ),
    Scenario(
        "raw-oom-memcg-then-global", "raw",
        f"memcg g 24M; sh -c 'echo $$ > /sys/fs/cgroup/memory/g/tasks; exec {HOG} 64';"
        f" {HOG} 400",
    ),
    Scenario(
        "raw-oom-panic", "raw", f"sysctl -w vm.panic_on_oom=1; {HOG} 400",
    ),
    Scenario(
        "raw-oom-no-killable", "raw",
        f"echo -1000 > /proc/self/oom_score_adj; {HOG} 400",
    ),
    Scenario("raw-dmesg-oom", "raw", f"{HOG} 400; dmesg", append="loglevel=1"),
    Scenario(
        "raw-sysrq-oom", "raw",
        f"echo -1000 > /proc/self/oom_score_adj;"
        f" (sh -c 'echo 0 > /proc/self/oom_score_adj; exec {HOG} 48 30' &); sleep 3;"
        " echo f > /proc/sysrq-trigger; sleep 1",
    ),
]

DBG: list[Scenario] = [
    Scenario("dbg-clean-boot", "debug", "uname -a; ls /sys/kernel/debug/provoke-crash"),
    Scenario(
        "dbg-clean-sysrq-show",
        "debug",
        "for k in m w l d; do echo $k > /proc/sysrq-trigger; sleep 1; done",
    ),
    Scenario(
        "dbg-clean-userspace-crashes", "debug",
        "for how in gpf ud2 div int3 segv; do /bin/crash $how; echo \"crash $how: $?\"; done",
    ),
    Scenario("dbg-clean-unaligned", "debug", "lk UNALIGNED_LOAD_STORE_WRITE"),
    Scenario("dbg-warning", "debug", "lk WARNING"),
    Scenario("dbg-warning-message", "debug", "lk WARNING_MESSAGE"),
    Scenario("dbg-warning-noise", "debug", NOISE + "lk WARNING; echo after; lk WARNING"),
    Scenario("dbg-panic-on-warn", "debug", "lk WARNING", append="panic_on_warn=1"),
    Scenario("dbg-refcount-overflow", "debug", "lk REFCOUNT_INC_OVERFLOW"),
    Scenario("dbg-refcount-dec-zero", "debug", "lk REFCOUNT_DEC_ZERO"),
    Scenario("dbg-bug", "debug", "(lk BUG); echo subshell gone"),
    Scenario("dbg-bug-oops-panic", "debug", "lk BUG", append="oops=panic"),
    Scenario("dbg-exception", "debug", "(lk EXCEPTION); echo subshell gone"),
    Scenario("dbg-access-null", "debug", "(lk ACCESS_NULL); echo subshell gone"),
    Scenario("dbg-exec-null", "debug", "(lk EXEC_NULL); echo subshell gone"),
    Scenario("dbg-write-ro", "debug", "(lk WRITE_RO); echo subshell gone"),
    Scenario("dbg-exec-data", "debug", "(lk EXEC_DATA); echo subshell gone"),
    Scenario("dbg-corrupt-list-add", "debug", "(lk CORRUPT_LIST_ADD); echo subshell gone"),
    Scenario("dbg-corrupt-list-del", "debug", "(lk CORRUPT_LIST_DEL); echo subshell gone"),
    # DOUBLE_FAULT is ia32-only: lkdtm says "XFAIL" and nothing happens.
    Scenario("dbg-clean-double-fault-xfail", "debug", "lk DOUBLE_FAULT"),
    Scenario("dbg-panic", "debug", "lk PANIC"),
    Scenario("dbg-array-bounds", "debug", "lk ARRAY_BOUNDS"),
    Scenario("dbg-kfence-uaf", "debug", "lk KFENCE_READ_AFTER_FREE"),
    Scenario(
        "dbg-softlockup", "debug", "(lk SOFTLOCKUP &); sleep 40",
        append="watchdog_thresh=5", timeout=150,
    ),
    Scenario(
        "dbg-softlockup-panic", "debug", "(lk SOFTLOCKUP &); sleep 60",
        append="watchdog_thresh=5 softlockup_panic=1", timeout=150,
    ),
    Scenario(
        "dbg-hardlockup", "debug", "(lk HARDLOCKUP &); sleep 40",
        append="watchdog_thresh=5", timeout=150,
    ),
    Scenario(
        "dbg-hardlockup-panic", "debug", "(lk HARDLOCKUP &); sleep 60",
        append="watchdog_thresh=5 nmi_watchdog=panic", timeout=150,
    ),
    Scenario(
        "dbg-hung-task", "debug", "(lk HUNG_TASK &); sleep 35", timeout=150,
    ),
    Scenario(
        "dbg-hung-task-panic", "debug", "(lk HUNG_TASK &); sleep 60",
        append="hung_task_panic=1", timeout=150,
    ),
    Scenario(
        "dbg-spinlockup", "debug", "(lk SPINLOCKUP); echo first done; (lk SPINLOCKUP &);"
        " sleep 40", append="watchdog_thresh=5", timeout=150,
    ),
    Scenario(
        "dbg-spinlockup-recursive", "debug", "(lk SPINLOCKUP; lk SPINLOCKUP) & sleep 30",
        append="watchdog_thresh=5", timeout=150,
    ),
    Scenario(
        "dbg-slab-double-free", "debug", "lk SLAB_FREE_DOUBLE", append="slub_debug=FZPU",
    ),
    # loglevel=1 keeps reports off the console; user space then prints the
    # kernel's log buffer: the classifier on dmesg output, as the scenario
    # runner uses it ("dmesg -r" keeps the <N> level prefixes).
    Scenario("dbg-dmesg-raw-warning", "debug", "lk WARNING; dmesg -r", append="loglevel=1"),
    Scenario("dbg-dmesg-bug", "debug", "(lk BUG); dmesg", append="loglevel=1"),
    Scenario("dbg-oom-global", "debug", f"{HOG} 400; echo hog exit $?", timeout=180),
    Scenario(
        "dbg-oom-memcg", "debug", f"memcg g 32M; echo $$ > /sys/fs/cgroup/memory/g/tasks;"
        f" {HOG} 100; echo hog exit $?", timeout=180,
    ),
]

SCENARIOS = {s.name: s for s in RAW + DBG}


def build_initramfs(scenario: Scenario, tools: Path, busybox: Path, work: Path) -> Path:
    """A newc cpio with busybox, the helper programs and an /init running the scenario."""
    root = work / "root"
    (root / "bin").mkdir(parents=True)
    shutil.copy2(busybox, root / "bin" / "busybox")
    for tool in ("hog", "crash"):
        shutil.copy2(tools / tool, root / "bin" / tool)
    init = root / "init"
    init.write_text(INIT.replace("@NAME@", scenario.name))
    init.chmod(0o755)
    (root / "scenario.sh").write_text(scenario.script + "\n")
    cpio = work / "initramfs.cpio"
    files = subprocess.run(
        ["find", ".", "-mindepth", "1"], cwd=root, check=True, capture_output=True, text=True
    ).stdout
    with cpio.open("wb") as out:
        subprocess.run(
            ["cpio", "-o", "-H", "newc", "--quiet"],
            cwd=root, input=files.encode(), stdout=out, check=True,
        )
    return cpio


def run(scenario: Scenario, kernel: Path, tools: Path, busybox: Path, outdir: Path) -> str:
    """Boot one scenario; write ``<name>.log``; return a one-line status."""
    with tempfile.TemporaryDirectory(prefix=f"console-{scenario.name}-") as tmp:
        work = Path(tmp)
        cpio = build_initramfs(scenario, tools, busybox, work)
        log = work / "console.log"
        append = f"console=ttyS0 panic=-1 rdinit=/init {scenario.append}".strip()
        cmd = [
            "qemu-system-x86_64", "-M", "q35", "-accel", "tcg",
            "-m", str(scenario.mem), "-smp", str(scenario.smp),
            "-display", "none", "-monitor", "none", "-no-reboot",
            "-kernel", str(kernel), "-initrd", str(cpio), "-append", append,
            "-serial", f"file:{log}",
        ]
        if scenario.bios and not scenario.swap_mib:
            cmd += ["-bios", scenario.bios]
        if scenario.swap_mib:
            disk = work / "swap.img"
            with disk.open("wb") as f:
                f.truncate(scenario.swap_mib << 20)
            cmd += ["-drive", f"file={disk},if=virtio,format=raw"]
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            _, err = proc.communicate(timeout=scenario.timeout)
            status = f"exit {proc.returncode}"
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
            status = "timeout (killed)"
        text = log.read_bytes().decode("utf-8", "replace") if log.exists() else ""
        (outdir / f"{scenario.name}.log").write_text(text)
        took = time.monotonic() - t0
        extra = f" stderr={err.decode(errors='replace').strip()[:200]!r}" if err.strip() else ""
        return f"{scenario.name}: {status} after {took:.0f}s, {text.count(chr(10))} lines{extra}"


def draft(log: Path) -> None:
    """Print the classifier's findings for a log, as a sidecar draft to review."""
    sys.path.insert(0, str(HERE.parents[2]))
    from harness.console import classify_text

    findings = [f.to_dict() for f in classify_text(log.read_text())]
    print(json.dumps(findings, indent=2))


def update_sidecars(logs: list[Path]) -> None:
    """Rewrite sidecars from the classifier; print every change to review.

    For a classifier change that adds fields or retitles findings: read
    the printed changes against the logs before committing.
    """
    sys.path.insert(0, str(HERE.parents[2]))
    from harness.console import classify_text

    for log in logs:
        sidecar = log.with_suffix(".expected.json")
        old = json.loads(sidecar.read_text()) if sidecar.exists() else []
        new = [f.to_dict() for f in classify_text(log.read_text())]
        if old == new and sidecar.exists():
            continue
        sidecar.write_text(json.dumps(new, indent=2) + "\n")
        keyed = {(d["kind"], d["line"]): d for d in old}
        for d in new:
            before = keyed.get((d["kind"], d["line"]))
            if before is None:
                print(f"{log.stem}: + {d['kind']} line {d['line']}: {d['title']}")
            elif before.get("title") != d["title"]:
                print(f"{log.stem}: ~ line {d['line']}: {before['title']!r} -> {d['title']!r}")
        gone = {(d["kind"], d["line"]) for d in new}
        for key, d in keyed.items():
            if key not in gone:
                print(f"{log.stem}: - {d['kind']} line {d['line']}: {d['title']}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kernel", type=Path, help="unpatched guest bzImage (raw-* logs)")
    ap.add_argument("--debug-kernel", type=Path, help="debug.config bzImage (dbg-* logs)")
    ap.add_argument("--only", nargs="*", default=None, help="scenario names")
    ap.add_argument("--out", type=Path, default=HERE)
    ap.add_argument("--busybox", type=Path, default=Path("/bin/busybox"))
    ap.add_argument("--jobs", type=int, default=1, help="QEMUs at once")
    ap.add_argument("--list", action="store_true", help="list scenarios and exit")
    ap.add_argument("--draft", type=Path, help="print a sidecar draft for this log and exit")
    ap.add_argument(
        "--update-sidecars", nargs="*", type=Path, default=None, metavar="LOG",
        help="rewrite the sidecars of these logs (default: all) from the classifier, "
        "print what changed, and exit",
    )
    args = ap.parse_args(argv)
    if args.update_sidecars is not None:
        update_sidecars(args.update_sidecars or sorted(HERE.glob("*.log")))
        return 0
    if args.list:
        for s in SCENARIOS.values():
            print(f"{s.name:32} {s.kernel:6} {s.append}")
        return 0
    if args.draft:
        draft(args.draft)
        return 0
    kernels = {"raw": args.kernel, "debug": args.debug_kernel}
    chosen = [SCENARIOS[n] for n in args.only] if args.only else list(SCENARIOS.values())
    chosen = [s for s in chosen if kernels[s.kernel] is not None]
    if not chosen:
        ap.error("no scenario to run: give --kernel and/or --debug-kernel")
    with tempfile.TemporaryDirectory(prefix="console-tools-") as tmp:
        tools = Path(tmp)
        for name, source in (("hog", HOG_C), ("crash", CRASH_C)):
            (tools / f"{name}.c").write_text(source)
            subprocess.run(
                ["gcc", "-static", "-O2", "-o", str(tools / name), str(tools / f"{name}.c")],
                check=True,
            )
        with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
            futures = [
                pool.submit(run, s, kernels[s.kernel], tools, args.busybox, args.out)
                for s in chosen
            ]
            for fut in concurrent.futures.as_completed(futures):
                print(fut.result(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
