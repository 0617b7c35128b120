"""The CLI's contract: subcommands listed, one-line errors, distinct exit statuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli import build_parser, main
from harness.commands import doctor
from harness.kernel.progress import BuildProgress, ProgressTracker
from harness.vm import accel


def test_help_lists_every_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for name in ("doctor", "build", "boot", "shell", "run"):
        assert name in out


def test_usage_error_is_one_line_and_exit_2(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["build", "--source", str(tmp_path / "missing"), "--patches", "none"])
    err = capsys.readouterr().err
    assert rc == 2
    first = err.splitlines()[0]
    assert first.startswith("harness: error: ") and str(tmp_path / "missing") in first


def test_missing_series_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["build", "--patches", str(tmp_path / "nope")])
    assert rc == 2 and str(tmp_path / "nope") in capsys.readouterr().err


def test_unknown_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["run", "--scenario", "does-not-exist"])
    assert rc == 2 and "scenario not found" in capsys.readouterr().err


def test_parser_defaults() -> None:
    args = build_parser().parse_args(["run"])
    assert args.scenario == "mempressure" and args.accel == "auto" and not args.no_reclaim


def test_progress_counts_objects() -> None:
    seen: list[BuildProgress] = []
    t = ProgressTracker(seen.append, estimate=10, min_interval=0)
    for line in ["  CC      mm/a.o", "  LD      vmlinux", "  CC      mm/b.o", "  AR      x.a"]:
        t.feed(line)
    assert t.compiled == 2 and seen[-1].line().startswith("[build] compile: 2/~10 objects")


def _kvm_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, verdict: bool | None,
             kernel: Path | None) -> list[Path]:
    """A usable /dev/kvm with the given remembered verdict and cached kernel; probes logged."""
    probed: list[Path] = []
    dev = tmp_path / "kvm"
    dev.write_text("")
    monkeypatch.setattr(accel, "kvm_usable", lambda *a: True)
    monkeypatch.setattr(accel, "verdict_key", lambda *a: "K")
    monkeypatch.setattr(accel, "load_verdict", lambda *a: verdict)
    monkeypatch.setattr(accel, "save_verdict", lambda *a: None)
    monkeypatch.setattr(doctor, "_any_kernel", lambda: kernel)

    def probe(k: Path, *a: object) -> str | None:
        probed.append(k)
        return "no kernel console output within 6 s under KVM"

    monkeypatch.setattr(accel, "probe_kvm", probe)
    return probed


def test_doctor_kvm_not_probed_is_info_not_fail(monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    probed = _kvm_env(monkeypatch, tmp_path, verdict=None, kernel=None)
    line = doctor.kvm_check(tmp_path / "kvm").line()
    assert line.startswith("[INFO] kvm:") and "harness build" in line and "FAIL" not in line
    assert probed == []


def test_doctor_kvm_probes_with_a_cached_kernel(monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    bz = tmp_path / "bzImage"
    probed = _kvm_env(monkeypatch, tmp_path, verdict=None, kernel=bz)
    line = doctor.kvm_check(tmp_path / "kvm").line()
    assert probed == [bz]
    assert line.startswith("[FAIL] kvm:") and "does NOT boot" in line and str(bz) in line


def test_doctor_kvm_remembered_verdict(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _kvm_env(monkeypatch, tmp_path, verdict=True, kernel=None)
    assert doctor.kvm_check(tmp_path / "kvm").line().startswith("[ok] kvm:")
    assert doctor.kvm_check(tmp_path / "absent").line().startswith("[FAIL] kvm: /dev/kvm absent")


@pytest.mark.parametrize("argv,culprit,why", [
    (["boot", "--ram", "99999999"], "--ram", "more than this host's RAM"),
    (["boot", "--kernel", "/etc/passwd"], "--kernel /etc/passwd", "not a bzImage"),
    (["boot", "--ram", "8", "--kernel", "/etc/passwd"], "--ram", "too small"),
])
def test_boot_bad_input_is_exit_2_before_anything_runs(
        argv: list[str], culprit: str, why: str, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    import harness.commands.vm_options as cs

    def no_build(*a: object) -> None:
        raise AssertionError("built an image for a command that must fail first")

    monkeypatch.setattr(cs, "build_image", no_build)
    assert main(argv) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith(f"harness: error: {culprit}: ") and why in line
