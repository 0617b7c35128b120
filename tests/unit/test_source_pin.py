"""The kernel source's identity: its Makefile version, and a --source that pins it."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import UsageError
from harness.kernel.source import Source, check_pin, makefile_version, split_pin

MAKEFILE = b"# SPDX\nVERSION = 6\nPATCHLEVEL = 12\nSUBLEVEL = 117\nEXTRAVERSION =\nNAME = Baby\n"


def test_makefile_version() -> None:
    assert makefile_version(MAKEFILE) == "6.12.117"
    assert makefile_version(MAKEFILE.replace(b"SUBLEVEL = 117", b"SUBLEVEL = 0")
                            .replace(b"EXTRAVERSION =", b"EXTRAVERSION = -rc3")) == "6.12-rc3"
    assert makefile_version(b"all:\n") == ""


def test_split_pin_forms(tmp_path: Path) -> None:
    assert split_pin(None) == (None, None)
    assert split_pin("6.12.117") == (None, "6.12.117")
    assert split_pin("sha256:abcdef012345") == (None, "sha256:abcdef012345")
    assert split_pin("/srv/linux.tar.xz@6.12.118") == ("/srv/linux.tar.xz", "6.12.118")
    real = tmp_path / "a@b"
    real.mkdir()
    assert split_pin(str(real)) == (str(real), None)  # a path that exists is a path


def _tar(tmp_path: Path) -> Source:
    base = tmp_path / "base"
    base.mkdir(exist_ok=True)
    (base / "Makefile").write_bytes(MAKEFILE)
    return Source("tarball", tmp_path / "t.tar.xz", "tar:" + "ab" * 32, "tar-x", None, base)


def test_a_pin_that_holds_passes_and_one_that_does_not_is_exit_2(tmp_path: Path) -> None:
    src = _tar(tmp_path)
    check_pin(src, "6.12.117", "6.12.117")
    check_pin(src, "sha256:" + "ab" * 8, "x")
    with pytest.raises(UsageError) as ei:
        check_pin(src, "6.12.118", "6.12.118")
    assert ei.value.culprit == "--source 6.12.118" and "is 6.12.117" in ei.value.message
    with pytest.raises(UsageError):
        check_pin(src, "sha256:" + "cd" * 8, "x")
    with pytest.raises(UsageError):
        check_pin(src, "sha256:ab", "x")  # too short to mean anything


def test_a_resumed_series_bisect_refuses_a_source_that_moved(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    from harness.bisect.step import BisectConfig
    from harness.commands.bisect import same_source
    from harness.kernel.build import source_record
    from harness.kernel.source import resolve_source

    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    tree = tmp_path / "linux"
    tree.mkdir()
    (tree / "Makefile").write_bytes(MAKEFILE)
    (tree / "Kconfig").write_text("")
    cfg = BisectConfig(mode="series", run_dir=str(tmp_path), scenario="mempressure",
                       checks=[], source=str(tree),
                       source_record=source_record(resolve_source(str(tree))))
    assert cfg.source_record["version"] == "6.12.117"
    same_source(cfg)  # unchanged: fine
    (tree / "Makefile").write_bytes(MAKEFILE.replace(b"117", b"118"))
    with pytest.raises(UsageError) as ei:
        same_source(cfg)
    assert ei.value.culprit == "--resume" and "started on 6.12.117" in ei.value.message
    assert "now 6.12.118" in ei.value.message
