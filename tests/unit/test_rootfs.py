"""The debian rootfs recipe, its cache entry, the root disk on QEMU's command line, and the
[vm] rootfs / --rootfs options (no QEMU run; mmdebstrap faked where a build is exercised)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest

from harness.core.spec import spec_from_text
from harness.errors import InfraError, UsageError
from harness.image import rootfs
from harness.vm.argv import ROOT_DISK_SLOT, RunPaths, build_argv, kernel_cmdline
from harness.vm.config import VMConfig


def _recipe(**kw: object) -> rootfs.DebianRecipe:
    base: dict[str, object] = {"suite": "bookworm", "packages": rootfs.package_set(()),
                               "sources": (("/etc/apt/sources.list", "deb http://x b main\n"),),
                               "tool": "mmdebstrap 1.3.5"}
    base.update(kw)
    return rootfs.DebianRecipe(**base)  # type: ignore[arg-type]


def test_package_set_adds_the_base_and_defaults() -> None:
    assert rootfs.package_set(()) == ("dropbear-bin", "openssh-sftp-server", "python3",
                                      "stress-ng")
    assert rootfs.package_set(("fio",)) == ("dropbear-bin", "fio", "openssh-sftp-server")


def test_bad_names_are_usage_errors() -> None:
    with pytest.raises(UsageError) as ei:
        rootfs.check_packages(["python3", "rm -rf"], "[vm] packages")
    assert ei.value.culprit == "[vm] packages"
    with pytest.raises(UsageError):
        rootfs.check_kind("host", "--rootfs")
    assert rootfs.check_packages(["libc6:amd64", "g++"], "x") == ("libc6:amd64", "g++")


def test_key_follows_packages_sources_and_tool() -> None:
    k = _recipe().key()
    assert k == _recipe().key() and len(k) == 24
    assert _recipe(packages=rootfs.package_set(("fio",))).key() != k
    assert _recipe(sources=(("/etc/apt/sources.list", "deb http://y b main\n"),)).key() != k
    assert _recipe(tool="mmdebstrap 1.4").key() != k
    assert _recipe(suite="trixie").key() != k


def test_host_sources_keep_files_with_entries(tmp_path: Path) -> None:
    d = tmp_path / "sources.list.d"
    d.mkdir()
    (tmp_path / "sources.list").write_text("# nothing here\n\n")
    (d / "debian.sources").write_text("Types: deb\nURIs: http://deb.debian.org/debian\n")
    (d / "other.list").write_text("deb http://x bookworm main\n")
    (d / "README").write_text("not a sources file\n")
    got = rootfs.host_sources((tmp_path / "sources.list", d))
    assert [Path(p).name for p, _ in got] == ["debian.sources", "other.list"]


def test_mmdebstrap_and_mkfs_argv(tmp_path: Path) -> None:
    argv = rootfs.mmdebstrap_argv(_recipe(), tmp_path / "root")
    assert argv[0] == "mmdebstrap" and "--mode=root" in argv and "--variant=essential" in argv
    assert "--include=dropbear-bin,openssh-sftp-server,python3,stress-ng" in argv
    assert argv[-3:] == ["bookworm", str(tmp_path / "root"), "/etc/apt/sources.list"]
    assert any(a.startswith("--customize-hook=") and "sftp-server" in a for a in argv)
    mk = rootfs.mkfs_argv(tmp_path / "root", tmp_path / "img", 700)
    assert mk[:2] == ["mke2fs", "-q"] and "-d" in mk and mk[-1] == "700M" and "ext2" in mk
    assert rootfs.overlay_argv(Path("/c/rootfs.img"), Path("/r/root.qcow2")) == [
        "qemu-img", "create", "-q", "-f", "qcow2", "-b", "/c/rootfs.img", "-F", "raw",
        "/r/root.qcow2"]
    assert rootfs.image_size_mib(300 << 20) == 912


def _cfg(tmp_path: Path, **kw: object) -> VMConfig:
    for n in ("bzImage", "initramfs.cpio", "rootfs.img"):
        (tmp_path / n).write_bytes(b"x")
    return VMConfig(kernel=tmp_path / "bzImage", initramfs=tmp_path / "initramfs.cpio",
                    **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("swap, dev", [(64, "/dev/vdb"), (0, "/dev/vda")])
def test_root_disk_on_the_command_line(tmp_path: Path, swap: int, dev: str) -> None:
    c = _cfg(tmp_path, swap_mib=swap, rootfs_image=tmp_path / "rootfs.img")
    c.validate()
    paths = RunPaths.in_dir(tmp_path, swap=swap > 0, root=True)
    argv = build_argv(c, paths, accel="tcg", ssh_port=1, nonce="n")
    drives = [argv[i + 1] for i, a in enumerate(argv) if a == "-drive"]
    assert drives[-1] == f"file={tmp_path / 'root.qcow2'},if=none,id=root,format=qcow2," \
                         "cache=unsafe"
    assert f"virtio-blk-pci,drive=root,addr={ROOT_DISK_SLOT}" in argv
    assert kernel_cmdline(c, "n").endswith(f"{rootfs.ROOT_PARAM}={dev}")
    if swap:  # the swap disk stays the first virtio disk, where the guest's init looks
        assert drives[0].startswith(f"file={tmp_path / 'swap.img'}")


def test_no_root_disk_for_the_initramfs(tmp_path: Path) -> None:
    c = _cfg(tmp_path)
    argv = build_argv(c, RunPaths.in_dir(tmp_path, swap=True), accel="tcg", ssh_port=1,
                      nonce="n")
    assert not any("root.qcow2" in a for a in argv)
    assert rootfs.ROOT_PARAM not in kernel_cmdline(c, "n")
    with pytest.raises(UsageError):
        _cfg(tmp_path, rootfs_image=tmp_path / "missing.img").validate()


def test_init_switches_root_only_with_a_disk() -> None:
    from harness.image.build import render_init

    init = render_init()
    assert f"{rootfs.ROOT_PARAM}=*) root_dev=" in init
    assert "exec switch_root /newroot /harness/init" in init
    assert f"mount -t {rootfs.FSTYPE} \"$root_dev\" /newroot" in init
    # the swap check never formats the root disk (no swap: the root disk is /dev/vda)
    assert '[ "$root_dev" != /dev/vda ]' in init


def test_scenario_vm_rootfs_and_packages(tmp_path: Path) -> None:
    base = 'type = "usertest"\n[vm]\n%s\n[[step]]\nname = "a"\nrun = "true"\n'
    spec = spec_from_text(base % 'rootfs = "debian"\npackages = ["fio"]', tmp_path / "t.toml")
    assert spec.vm.rootfs == "debian" and spec.vm.packages == ("fio",)
    assert spec_from_text(base % "", tmp_path / "t.toml").vm.rootfs == "initramfs"
    for bad, key in (('rootfs = "host"', "rootfs"), ('rootfs = "debian"\npackages = "fio"',
                                                      "packages"),
                     ('packages = ["fio"]', "packages"),
                     ('rootfs = "debian"\npackages = ["a b"]', "packages")):
        with pytest.raises(UsageError) as ei:
            spec_from_text(base % bad, tmp_path / "t.toml")
        assert ei.value.culprit.endswith(f"[vm] {key}"), (bad, ei.value.culprit)


def test_cli_rootfs_options() -> None:
    from harness.commands.vm_options import add_vm_arguments, vm_settings_from_args

    p = argparse.ArgumentParser()
    add_vm_arguments(p)
    vm = vm_settings_from_args(p.parse_args(["--rootfs", "debian", "--package", "fio"]))
    assert vm.rootfs == "debian" and vm.packages == ("fio",)
    assert vm_settings_from_args(p.parse_args([])).rootfs == "initramfs"
    with pytest.raises(UsageError) as ei:
        vm_settings_from_args(p.parse_args(["--package", "fio"]))
    assert ei.value.culprit == "--package"
    host = p.parse_args(["--rootfs", "host"])
    assert vm_settings_from_args(host, command="exec").rootfs == "host"
    with pytest.raises(UsageError) as ei:  # boot, shell, run: no chroot into it
        vm_settings_from_args(host)
    assert ei.value.culprit == "--rootfs" and "exec only" in str(ei.value)
    with pytest.raises(SystemExit):
        p.parse_args(["--rootfs", "nosuch"])


FAKE = """#!/bin/sh
[ "$1" = --version ] && { echo "mmdebstrap 0.0-test"; exit 0; }
echo "tmp: $TMPDIR" > "$FAKE_LOG"
case "$*" in *nosuch*) echo "E: Unable to locate package nosuch"; exit 100 ;; esac
case "$*" in *brokenmirror*) echo "E: Failed to fetch http://x"; exit 1 ;; esac
# the target directory is the argument ending in /root
for a; do case "$a" in */root) mkdir -p "$a/usr/bin" && echo hi > "$a/usr/bin/hello" ;; esac; done
mkdir -p "$TMPDIR/mmdebstrap.leftover"
"""


@pytest.fixture
def fake_mmdebstrap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "mmdebstrap").write_text(FAKE)
    (bindir / "mmdebstrap").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_LOG", str(tmp_path / "fake.log"))
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "rootfs"


def test_build_is_cached_sealed_and_leaves_no_temp(fake_mmdebstrap: Path) -> None:
    img = rootfs.build_debian(("fio",))
    assert img.image.is_file() and img.image.parent.parent == fake_mmdebstrap
    assert img.packages == ("dropbear-bin", "fio", "openssh-sftp-server")
    assert sorted(p.name for p in img.image.parent.iterdir()) == [
        "build.log", "cache-manifest.json", "recipe.json", "rootfs.img"]
    assert [p.name for p in fake_mmdebstrap.iterdir()] == [img.key]  # no temp dir left
    mtime = img.image.stat().st_mtime_ns
    assert rootfs.build_debian(("fio",)).image.stat().st_mtime_ns == mtime  # a cache hit
    assert rootfs.resolve("initramfs", ()) is None


@pytest.mark.parametrize("pkg, err", [("nosuch", UsageError), ("brokenmirror", InfraError)])
def test_failed_build_names_the_cause_and_leaves_nothing(fake_mmdebstrap: Path, pkg: str,
                                                         err: type[Exception]) -> None:
    with pytest.raises(err) as ei:
        rootfs.build_debian((pkg,))
    assert ("Unable to locate package" if pkg == "nosuch" else "Failed to fetch") in str(ei.value)
    assert list(fake_mmdebstrap.iterdir()) == []


def test_other_architectures_have_no_debian_rootfs() -> None:
    with pytest.raises(UsageError):
        rootfs.resolve("debian", (), "--rootfs", "arm64")
