"""harness.kselftest without building a kernel tree: target validation, the content key, the
ship map, and a failing build named by its target (make replaced by a fake)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from harness import kselftest
from harness.errors import BuildError, UsageError
from harness.kselftest import (
    GUEST_ROOT,
    KselftestBuild,
    cache_key,
    split_program,
    validate_targets,
)


def fake_tree(root: Path) -> Path:
    st = root / "tools" / "testing" / "selftests"
    for t in ("cgroup", "mm"):
        (st / t).mkdir(parents=True)
        (st / t / f"{t}.c").write_text("int main(void) { return 0; }\n")
    (st / "cgroup" / "Makefile").write_text("include ../lib.mk\n")
    (st / "mm" / "Makefile").write_text("LOCAL_HDRS += $(top_srcdir)/mm/gup_test.h\n")
    (st / "lib.mk").write_text("# lib\n")
    (st / "kselftest").mkdir()
    (st / "kselftest" / "runner.sh").write_text("#!/bin/sh\n")
    (root / "mm").mkdir()
    (root / "mm" / "gup_test.h").write_text("/* uapi of gup_test */\n")
    (root / "mm" / "vmscan.c").write_text("/* kernel code, not a kselftest input */\n")
    (root / "include" / "uapi" / "linux").mkdir(parents=True)
    (root / "include" / "uapi" / "linux" / "mman.h").write_text("#define X 1\n")
    return root


def test_validate_targets(tmp_path: Path) -> None:
    tree = fake_tree(tmp_path)
    validate_targets(tree, ["cgroup"], "w", ["mm/mlock2-tests"])
    with pytest.raises(UsageError, match="does not exist"):
        validate_targets(tree, ["nosuch"], "w")
    with pytest.raises(UsageError, match="not a kselftest target name"):
        validate_targets(tree, ["../etc"], "w")
    with pytest.raises(UsageError, match="at least one"):
        validate_targets(tree, [], "w")
    assert split_program("mm/mlock2-tests") == ("mm", "mlock2-tests")


def test_cache_key_follows_inputs_only(tmp_path: Path) -> None:
    tree = fake_tree(tmp_path)
    k = cache_key(tree, ["mm/x"], "gcc 12", ["mm"])
    assert k == cache_key(tree, ["mm/x"], "gcc 12", ["mm"])
    (tree / "mm" / "vmscan.c").write_text("/* changed kernel code */\n")
    assert cache_key(tree, ["mm/x"], "gcc 12", ["mm"]) == k  # not an input
    (tree / "mm" / "gup_test.h").write_text("/* changed */\n")  # named by the Makefile
    k2 = cache_key(tree, ["mm/x"], "gcc 12", ["mm"])
    assert k2 != k
    (tree / "include" / "uapi" / "linux" / "mman.h").write_text("#define X 2\n")
    k3 = cache_key(tree, ["mm/x"], "gcc 12", ["mm"])
    assert k3 != k2
    assert cache_key(tree, ["mm/x"], "gcc 13", ["mm"]) != k3
    assert cache_key(tree, ["mm/y"], "gcc 12", ["mm"]) != k3


def test_ship_map(tmp_path: Path) -> None:
    b = KselftestBuild(tmp_path, ("cgroup",), ("/lib/x86_64-linux-gnu/libc.so.6",))
    assert b.ship() == {GUEST_ROOT: tmp_path / "install",
                        "/lib/x86_64-linux-gnu/libc.so.6": Path("/lib/x86_64-linux-gnu/libc.so.6")}


def test_failing_target_is_a_build_error_naming_it(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    tree = fake_tree(tmp_path / "tree")
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(kselftest, "_stage", lambda tree, work, jobs, log, arch: work / "hdr")

    def fake_make(args: list[str], log_file: Path) -> subprocess.CompletedProcess[str]:
        if "TARGETS=mm" in args:
            return subprocess.CompletedProcess(args, 2, "", "mm.c:3:1: error: 'X' undeclared\n")
        return subprocess.CompletedProcess(args, 0, "", "")

    monkeypatch.setattr(kselftest, "_make", fake_make)
    (tmp_path / "tree" / "src").mkdir()
    with pytest.raises(BuildError) as ei:
        kselftest.build_kselftests(tree, ["mm"])
    assert ei.value.culprit == "kselftest target mm"
    assert "'X' undeclared" in ei.value.message
    cache = tmp_path / "cache" / "kselftests"
    assert not any(cache.iterdir())  # nothing half-written left behind


def test_cached_build_is_returned_without_make(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    tree = fake_tree(tmp_path / "tree")
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    calls: list[Any] = []

    def stage(tree: Path, work: Path, jobs: int, log: Path, arch: object = None) -> Path:
        (work / "src").mkdir()
        (work / "hdr").mkdir()
        return work / "hdr"

    def fake_make(args: list[str], log_file: Path) -> subprocess.CompletedProcess[str]:
        calls.append(args)
        if "install" in args:
            inst = Path(next(a for a in args if a.startswith("INSTALL_PATH="))[13:])
            (inst / "cgroup").mkdir(parents=True)
            (inst / "cgroup" / "test_x").write_text("#!/bin/sh\n")
        return subprocess.CompletedProcess(args, 0, "", "")

    monkeypatch.setattr(kselftest, "_stage", stage)
    monkeypatch.setattr(kselftest, "_make", fake_make)
    monkeypatch.setattr(kselftest.shutil, "which", lambda name: "/usr/bin/" + name)
    b1 = kselftest.build_kselftests(tree, ["cgroup"])
    n = len(calls)
    assert (b1.install_dir / "cgroup" / "test_x").is_file()
    assert any("USERLDFLAGS=-static" in a for a in calls[0])
    b2 = kselftest.build_kselftests(tree, ["cgroup"])
    assert b2.dir == b1.dir and len(calls) == n
