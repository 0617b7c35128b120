"""The CLI's contract: subcommands listed, one-line errors, distinct exit statuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli import build_parser, main
from harness.kernel.progress import BuildProgress, ProgressTracker


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
