"""The QEMU argv builder, the swap header and port allocation (no QEMU run)."""

from __future__ import annotations

import socket
import struct
from pathlib import Path

import pytest

from harness.errors import UsageError
from harness.vm.argv import RunPaths, build_argv, kernel_cmdline
from harness.vm.config import VMConfig
from harness.vm.ports import free_port, port_is_free
from harness.vm.swap import SIGNATURE, make_swap_image, swap_header


def cfg(tmp_path: Path, **kw: object) -> VMConfig:
    k = tmp_path / "bzImage"
    i = tmp_path / "initramfs.cpio"
    k.write_bytes(b"k")
    i.write_bytes(b"i")
    return VMConfig(kernel=k, initramfs=i, **kw)  # type: ignore[arg-type]


def opt(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == flag]


def test_argv_basics(tmp_path: Path) -> None:
    c = cfg(tmp_path, ram_mib=384, swap_mib=128, smp=2)
    paths = RunPaths.in_dir(tmp_path, swap=True)
    argv = build_argv(c, paths, accel="tcg", ssh_port=2222, nonce="abc",
                      bios=Path("/usr/share/qemu/qboot.rom"))
    assert argv[0] == "qemu-system-x86_64"
    assert opt(argv, "-m") == ["384M"]
    assert opt(argv, "-smp") == ["2"]
    assert opt(argv, "-accel") == ["tcg"]
    assert opt(argv, "-bios") == ["/usr/share/qemu/qboot.rom"]
    assert "-no-reboot" in argv
    assert opt(argv, "-kernel") == [str(c.kernel)]
    assert opt(argv, "-initrd") == [str(tmp_path / "initrd.cpio")]
    append = opt(argv, "-append")[0]
    assert "console=ttyS0" in append and "panic=-1" in append and "harness.nonce=abc" in append
    assert opt(argv, "-serial") == [f"file:{tmp_path / 'console.log'}"]
    assert opt(argv, "-qmp") == [f"unix:{tmp_path / 'qmp.sock'},server=on,wait=off"]
    devices = opt(argv, "-device")
    assert "pvpanic-pci" in devices
    assert "virtio-balloon-pci,id=balloon0" in devices
    assert "virtio-net-pci,netdev=n0" in devices
    netdev = opt(argv, "-netdev")[0]
    assert "restrict=on" in netdev
    assert "hostfwd=tcp:127.0.0.1:2222-:22" in netdev
    drives = opt(argv, "-drive")
    assert drives == [f"file={tmp_path / 'swap.img'},if=virtio,format=raw,cache=unsafe"]


def test_argv_no_swap_no_bios(tmp_path: Path) -> None:
    c = cfg(tmp_path, swap_mib=0)
    argv = build_argv(c, RunPaths.in_dir(tmp_path, swap=False), accel="kvm", ssh_port=1,
                      nonce="n")
    assert "-drive" not in argv
    assert "-bios" not in argv
    assert opt(argv, "-accel") == ["kvm"]


def test_argv_is_pure(tmp_path: Path) -> None:
    c = cfg(tmp_path)
    p = RunPaths.in_dir(tmp_path, swap=False)
    a = build_argv(c, p, accel="tcg", ssh_port=5, nonce="x")
    assert a == build_argv(c, p, accel="tcg", ssh_port=5, nonce="x")


def test_argv_rejects_unresolved_accel(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        build_argv(cfg(tmp_path), RunPaths.in_dir(tmp_path, False), accel="auto",
                   ssh_port=1, nonce="x")


def test_cmdline_extra(tmp_path: Path) -> None:
    c = cfg(tmp_path, cmdline_extra="  oops=panic  ")
    assert kernel_cmdline(c, "n").endswith("harness.nonce=n oops=panic")


@pytest.mark.parametrize("kw,culprit", [
    ({"accel": "xen"}, "--accel"), ({"ram_mib": 8}, "--ram"), ({"swap_mib": -1}, "--swap"),
    ({"smp": 0}, "--smp"),
])
def test_config_validation(tmp_path: Path, kw: dict[str, object], culprit: str) -> None:
    with pytest.raises(UsageError) as ei:
        cfg(tmp_path, **kw).validate()
    assert ei.value.culprit == culprit


def test_config_missing_kernel(tmp_path: Path) -> None:
    c = VMConfig(kernel=tmp_path / "nope", initramfs=tmp_path / "nope2")
    with pytest.raises(UsageError):
        c.validate()


def test_swap_header() -> None:
    hdr = swap_header(64 * 1024 * 1024)
    assert len(hdr) == 4096
    assert hdr.endswith(SIGNATURE)
    version, last_page, bad = struct.unpack_from("<III", hdr, 1024)
    assert (version, last_page, bad) == (1, 64 * 256 - 1, 0)


def test_swap_image_is_sparse(tmp_path: Path) -> None:
    p = tmp_path / "swap.img"
    make_swap_image(p, 256)
    st = p.stat()
    assert st.st_size == 256 * 1024 * 1024
    assert st.st_blocks * 512 < 1024 * 1024


def test_free_port() -> None:
    port = free_port()
    assert 1024 < port < 65536
    assert port_is_free(port)
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
        s.listen()
        assert not port_is_free(port)


def test_host_rootfs_is_a_read_only_9p_share_at_its_own_slot(tmp_path: Path) -> None:
    from harness.image.rootfs import HOST_PARAM, HOST_TAG
    from harness.vm.argv import HOST_SHARE_SLOT, ROOT_DISK_SLOT

    argv = build_argv(cfg(tmp_path, host_root=True), RunPaths.in_dir(tmp_path, swap=True),
                      accel="tcg", ssh_port=2222, nonce="abc")
    assert opt(argv, "-fsdev") == [f"local,id={HOST_TAG},path=/,security_model=none,readonly=on"]
    share = [d for d in opt(argv, "-device") if d.startswith("virtio-9p-pci,")]
    assert share == [f"virtio-9p-pci,fsdev={HOST_TAG},mount_tag={HOST_TAG},"
                     f"addr={HOST_SHARE_SLOT}"]
    assert HOST_SHARE_SLOT != ROOT_DISK_SLOT
    assert HOST_PARAM in opt(argv, "-append")[0].split()
    assert opt(argv, "-drive") == [f"file={tmp_path / 'swap.img'},if=virtio,format=raw,"
                                   "cache=unsafe"]  # no root disk
    plain = build_argv(cfg(tmp_path), RunPaths.in_dir(tmp_path, swap=False), accel="tcg",
                       ssh_port=2222, nonce="abc")
    assert "-fsdev" not in plain and HOST_PARAM not in opt(plain, "-append")[0]


def test_host_rootfs_and_a_root_image_are_exclusive(tmp_path: Path) -> None:
    img = tmp_path / "rootfs.img"
    img.write_bytes(b"r")
    with pytest.raises(UsageError, match="one root filesystem"):
        cfg(tmp_path, host_root=True, rootfs_image=img).validate()


def test_host_rootfs_is_exec_only() -> None:
    from harness.image.rootfs import check_kind

    assert check_kind("host", "--rootfs", "exec") == "host"
    with pytest.raises(UsageError, match="exec only"):
        check_kind("host", "scenario.toml [vm] rootfs")
