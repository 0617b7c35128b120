"""arm64 consoles from real runs (tests/data/console/arm64-*.log) are classified like x86_64's.

Both logs come from this project's arm64 kernel with 64 KiB pages under QEMU -M virt (TCG):
``harness exec --arch arm64 --page-size 64k -- 'echo c > /proc/sysrq-trigger'`` (the whole
console, which ends where the harness stopped QEMU at the panic), and the contract check on
the ``warn-on-request`` TEST-ONLY kernel (its first three warnings; the run printed 20).
"""

from __future__ import annotations

from pathlib import Path

from harness.console import ConsoleClassifier, Severity, classify_text

CORPUS = Path(__file__).resolve().parents[1] / "data" / "console"


def test_arm64_logs_are_arm64() -> None:
    for name in ("arm64-sysrq-crash", "arm64-warn-on-request"):
        text = (CORPUS / f"{name}.log").read_text()
        assert "Hardware name: linux,dummy-virt (DT)" in text and "Call trace:" in text
        assert "console=ttyAMA0" in text and "Machine model: linux,dummy-virt" in text


def test_arm64_sysrq_panic_is_fatal_and_named_on_its_line() -> None:
    text = (CORPUS / "arm64-sysrq-crash.log").read_text()
    (f,) = classify_text(text)
    assert (f.kind, f.severity, f.title) == ("panic", Severity.FATAL,
                                              "kernel panic: sysrq triggered crash")
    lines = text.splitlines(keepends=True)
    assert "Kernel panic - not syncing" in lines[f.line - 1]
    live = ConsoleClassifier()  # the VM stops on the panic line itself, as on x86_64
    live.feed("".join(lines[:f.line]))
    assert any(x.severity is Severity.FATAL for x in live.findings)


def test_arm64_warning_names_the_function_not_the_register_dump() -> None:
    """arm64's WARN prints pstate/pc/lr/sp and x0..x29 before its Call trace: the title and the
    guilty frame come from the WARNING line and the trace, never a register line."""
    fs = classify_text((CORPUS / "arm64-warn-on-request.log").read_text())
    assert [(f.kind, f.title, f.guilty) for f in fs] == \
        [("warning", "WARNING in vmpressure_work_fn", "vmpressure_work_fn")] * 3
    assert len({f.signature for f in fs}) == 1
