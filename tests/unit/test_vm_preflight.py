"""Pre-launch checks and QEMU start-up error mapping: the user's mistakes are exit 2."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from harness.errors import InfraError, UsageError
from harness.vm import preflight as pf
from harness.vm.config import VMConfig
from harness.vm.qemu_errors import classify_startup, qemu_lines

KERNEL = "/k/bzImage"


def bzimage_header(version: int = 0x020F, magic: bytes = b"HdrS", flag: int = 0xAA55,
                   initrd_max: int = 0x7FFFFFFF) -> bytes:
    h = bytearray(0x400)
    struct.pack_into("<H", h, 0x1FE, flag)
    h[0x202:0x206] = magic
    struct.pack_into("<H", h, 0x206, version)
    struct.pack_into("<I", h, 0x22C, initrd_max)
    return bytes(h)


# -- RAM ----------------------------------------------------------------------
def test_memtotal_parsed() -> None:
    text = "MemTotal:       24590436 kB\nMemFree:  1 kB\n"
    assert pf.memtotal_mib(text) == 24590436 // 1024
    assert pf.memtotal_mib("MemFree: 1 kB\n") is None


def test_ram_within_host_passes() -> None:
    pf.check_ram(256, 24000)
    pf.check_ram(256, None)  # unknown host: nothing to compare with


def test_ram_below_floor_names_option() -> None:
    with pytest.raises(UsageError, match="too small") as ei:
        pf.check_ram(8, 24000)
    assert ei.value.culprit == "--ram"


def test_ram_above_host_names_option() -> None:
    with pytest.raises(UsageError) as ei:
        pf.check_ram(99999999, 24000)
    assert ei.value.culprit == "--ram"
    assert "99999999 MiB" in ei.value.message and "24000 MiB" in ei.value.message


# -- bzImage header -----------------------------------------------------------
def test_real_looking_bzimage_passes() -> None:
    pf.check_bzimage(bzimage_header(), Path(KERNEL))
    pf.check_bzimage(bzimage_header(version=0x0206), Path(KERNEL))


@pytest.mark.parametrize("data,why", [
    (b"root:x:0:0:root:/root:/bin/bash\n" * 40, "HdrS"),
    (b"", "too short"),
    (b"\x7fELF\x02\x01\x01" + bytes(0x300), "ELF"),
    (bzimage_header(magic=b"HdrX"), "HdrS"),
    (bzimage_header(flag=0), "boot flag"),
    (bzimage_header(version=0x0204), "2.04"),
    (bzimage_header(initrd_max=0), "initrd_addr_max"),
])
def test_not_a_kernel_names_option_and_reason(data: bytes, why: str) -> None:
    with pytest.raises(UsageError) as ei:
        pf.check_bzimage(data, Path(KERNEL))
    assert ei.value.culprit == f"--kernel {KERNEL}"
    assert why in ei.value.message


def test_preflight_reads_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "passwd"
    bad.write_text("root:x:0:0\n" * 100)
    good = tmp_path / "bzImage"
    good.write_bytes(bzimage_header())
    init = tmp_path / "init.cpio"
    init.write_bytes(b"x")
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal: 1048576 kB\n")
    monkeypatch.setattr(pf, "MEMINFO", meminfo)
    pf.preflight(VMConfig(kernel=good, initramfs=init, ram_mib=512))
    with pytest.raises(UsageError, match="HdrS"):
        pf.preflight(VMConfig(kernel=bad, initramfs=init, ram_mib=512))
    with pytest.raises(UsageError, match="1024 MiB MemTotal"):
        pf.preflight(VMConfig(kernel=good, initramfs=init, ram_mib=2048))


# -- QEMU's start-up messages (QEMU 7.2, captured on this project's machines) --
QEMU_SAYS = {
    "ram": "qemu-system-x86_64: cannot set up guest memory 'pc.ram': Cannot allocate memory\n",
    "header": "qemu: invalid kernel header\n",
    "missing": "qemu: could not open kernel file '/nonexist': No such file or directory\n",
    "elf": "qemu-system-x86_64: Error loading uncompressed kernel without PVH ELF Note\n",
    "old": "qemu: linux kernel too old to load a ram disk\n",
    "initrd_max": "qemu: initrd is too large, cannot support.(max: 0, need 1221)\n",
    "smp": "qemu-system-x86_64: Invalid SMP CPUs 999. The max CPUs supported by machine "
           "'pc-q35-7.2' is 288\n",
    "drive": "qemu-system-x86_64: -drive file=/r/kvm-runs/swap.img,if=virtio,format=raw,"
             "cache=unsafe: Could not open '/r/kvm-runs/swap.img': Permission denied\n",
    "hostfwd": "qemu-system-x86_64: -netdev user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:"
               "2222-:22: could not set up host forwarding rule 'tcp:127.0.0.1:2222-:22'\n",
    "kvm": "Could not access KVM kernel module: No such file or directory\n"
           "qemu-system-x86_64: -accel kvm: failed to initialize kvm: No such file or directory\n",
}


@pytest.mark.parametrize("case,kind,culprit", [
    ("ram", UsageError, "--ram"),
    ("header", UsageError, f"--kernel {KERNEL}"),
    ("missing", UsageError, f"--kernel {KERNEL}"),
    ("elf", UsageError, f"--kernel {KERNEL}"),
    ("old", UsageError, f"--kernel {KERNEL}"),
    ("initrd_max", UsageError, f"--kernel {KERNEL}"),
    ("smp", UsageError, "--smp"),
    ("drive", InfraError, "swap disk"),  # the harness made it; "kvm" in the path must not fool
    ("hostfwd", InfraError, "ssh port"),
    ("kvm", InfraError, "--accel"),
])
def test_startup_errors_mapped(case: str, kind: type, culprit: str) -> None:
    err = classify_startup(QEMU_SAYS[case], kernel=KERNEL, ram_mib=99999999, smp=999)
    assert type(err) is kind
    assert err.culprit == culprit
    assert any(own in err.message for own in qemu_lines(QEMU_SAYS[case]))  # QEMU's words kept


def test_ram_message_names_the_value() -> None:
    err = classify_startup(QEMU_SAYS["ram"], ram_mib=99999999)
    assert err.one_line().startswith("--ram: ") and "99999999 MiB" in err.message


def test_warnings_do_not_decide() -> None:
    out = ("qemu-system-x86_64: warning: host doesn't support requested feature: kvm\n"
           + QEMU_SAYS["ram"])
    assert classify_startup(out).culprit == "--ram"


def test_unknown_startup_error_is_infra_with_qemus_words() -> None:
    err = classify_startup("qemu-system-x86_64: something odd happened\n", status=1)
    assert isinstance(err, InfraError) and err.culprit == "qemu"
    assert "something odd happened" in err.message and "status 1" in err.message
    assert "without a word" in classify_startup("", status=-9).message
