"""QEMU's start-up errors, mapped to whose fault they are.

When QEMU exits before the guest runs, its stderr says why in its own words.
Some reasons are the user's input (too much ``--ram``, a ``--kernel`` that is
not one, an impossible ``--smp``): those are usage errors naming the option,
exit 2. The rest (the swap image or initrd the harness made, the SSH port
forward, the accelerator) are the rig's: infrastructure errors, exit 3.
Either way QEMU's own line is kept in the message: it is the most precise
reason there is. Pure functions over the captured text; the unit tests use
QEMU 7.2's real messages and tests/vm/test_runtime.py checks this QEMU still
says them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from harness.errors import HarnessError, InfraError, UsageError

_PROGRAM = re.compile(r"^qemu(?:-system-[\w-]+)?: ")
#: "-drive file=/x/swap.img,if=virtio: Could not open ...": QEMU names the option at fault.
_OPTION_LINE = re.compile(r"^(-[a-z][\w-]*) (.+?): ")


@dataclass(frozen=True)
class StartupRule:
    """A QEMU error about ``qemu_option`` (or matching ``pattern``) is ``culprit``'s fault.

    ``user`` says whether that is the user's input (UsageError) or the rig (InfraError).
    """

    qemu_option: str
    pattern: re.Pattern[str]
    culprit: str
    what: str
    user: bool


RULES: tuple[StartupRule, ...] = (
    StartupRule("-m", re.compile(r"cannot set up guest memory|ram size", re.I),
                "--ram", "QEMU cannot give the guest that much memory", user=True),
    StartupRule("-kernel", re.compile(r"invalid kernel header|could not (?:open|load) kernel|"
                                      r"kernel too old|PVH ELF Note|initrd is too large",
                                      re.I),
                "--kernel", "QEMU cannot boot this file as a kernel", user=True),
    StartupRule("-smp", re.compile(r"SMP CPUs|max(?:imum)? (?:number of )?CPUs", re.I),
                "--smp", "QEMU refuses this CPU count", user=True),
    StartupRule("-accel", re.compile(r"\bkvm\b|accelerator", re.I),
                "--accel", "QEMU cannot use this accelerator here", user=False),
    StartupRule("-drive", re.compile(r"swap\.img", re.I),
                "swap disk", "QEMU cannot open the swap image the harness made", user=False),
    StartupRule("-initrd", re.compile(r"initrd|initial ram ?disk", re.I),
                "initrd", "QEMU cannot load the guest image the harness made", user=False),
    StartupRule("-netdev", re.compile(r"host forwarding", re.I),
                "ssh port", "QEMU cannot set up the SSH port forward", user=False),
)


def qemu_lines(output: str) -> list[str]:
    """QEMU's own lines from its captured output, program-name prefix removed."""
    return [_PROGRAM.sub("", ln.strip()) for ln in output.splitlines() if ln.strip()]


def rule_for(line: str) -> StartupRule | None:
    """The rule for one error line: by the option QEMU names, else by its words."""
    m = _OPTION_LINE.match(line)
    if m:
        return next((r for r in RULES if r.qemu_option == m.group(1)), None)
    return next((r for r in RULES if r.pattern.search(line)), None)


def classify_startup(output: str, *, kernel: str = "", ram_mib: int | None = None,
                     smp: int | None = None, status: int | None = None) -> HarnessError:
    """The error for a QEMU that exited at start-up with ``output`` on stderr.

    The culprit names the option (``--kernel FILE``, ``--ram``, ``--smp``), the
    message says what is wrong with which value, then QEMU's own line.
    """
    lines = qemu_lines(output)
    errors = [ln for ln in lines if not ln.lower().startswith("warning:")]
    for line in errors:
        rule = rule_for(line)
        if rule is None:
            continue
        culprit, what = rule.culprit, rule.what
        if culprit == "--kernel" and kernel:
            culprit = f"--kernel {kernel}"
        elif culprit == "--ram" and ram_mib is not None:
            what = f"{what} ({ram_mib} MiB)"
        elif culprit == "--smp" and smp is not None:
            what = f"{what} ({smp})"
        cls = UsageError if rule.user else InfraError
        return cls(culprit, f"{what}: QEMU says {line!r}")
    said = f": QEMU says {(errors or lines)[-1]!r}" if lines else " without a word on stderr"
    return InfraError("qemu", f"QEMU exited at start-up (status {status}){said}")
