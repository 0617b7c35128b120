"""harness.arch: the per-architecture records and what is derived from them."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pytest

from harness.arch import ARCHES, ARM64, X86_64, get_arch, page_bytes
from harness.errors import UsageError
from harness.kernel.build import CONFIG_DIR


def test_every_fragment_of_every_arch_exists() -> None:
    for arch in ARCHES.values():
        for frag in (*arch.fragments, *(f for f in arch.page_fragments.values() if f)):
            assert (CONFIG_DIR / f"{frag}.config").is_file(), (arch.name, frag)


def test_unknown_arch_names_the_option() -> None:
    with pytest.raises(UsageError) as ei:
        get_arch("riscv64")
    assert ei.value.culprit == "--arch riscv64" and "x86_64, arm64" in ei.value.message
    assert get_arch(None) is X86_64 and get_arch("arm64") is ARM64


def test_page_size_fragments() -> None:
    assert X86_64.page_fragment(None) == () and X86_64.page_fragment("4k") == ()
    assert ARM64.page_fragment(None) == ("arch-arm64-4k",)
    assert ARM64.page_fragment("64k") == ("arch-arm64-64k",)
    with pytest.raises(UsageError) as ei:
        X86_64.page_fragment("64k")
    assert ei.value.culprit == "--page-size 64k" and "4k" in ei.value.message
    with pytest.raises(UsageError):
        ARM64.page_fragment("8k")
    assert page_bytes("64k") == 65536 and page_bytes(None) == 4096


def test_page_fragments_select_one_size_each() -> None:
    """Each arm64 page-size fragment turns its size on and the two others off."""
    for size, frag in ARM64.page_fragments.items():
        assert frag is not None
        text = (CONFIG_DIR / f"{frag}.config").read_text()
        on = size.upper().removesuffix("K")
        assert f"CONFIG_ARM64_{on}K_PAGES=y" in text
        assert text.count("is not set") == 2


def test_userland_paths() -> None:
    assert X86_64.userland("/usr/sbin/dropbear") == Path("/usr/sbin/dropbear")
    assert ARM64.userland("/bin/busybox") == ARM64.userland_root / "bin/busybox"
    assert ARM64.lib_dirs[:2] == ("/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu")
    assert ARM64.cc == "aarch64-linux-gnu-gcc" and X86_64.cc == "gcc"
    assert ARM64.cpu_for("tcg") == "neoverse-n1" and ARM64.cpu_for("kvm") == "host"
    assert X86_64.cpu_for("tcg") is None


# --- the arm64 guest: argv, image checks, ELF, busybox applets ------------------------------

def _vm(tmp_path: Path, arch: str) -> Any:
    from harness.vm.config import VMConfig

    (tmp_path / "k").write_bytes(b"k")
    (tmp_path / "i").write_bytes(b"i")
    return VMConfig(kernel=tmp_path / "k", initramfs=tmp_path / "i", arch=arch)


def test_arm64_argv(tmp_path: Path) -> None:
    from harness.vm.argv import RunPaths, build_argv, firmware

    cfg = _vm(tmp_path, "arm64")
    argv = build_argv(cfg, RunPaths.in_dir(tmp_path, swap=True), accel="tcg", ssh_port=2,
                      nonce="n", bios=firmware(ARM64))
    s = " ".join(argv)
    assert argv[0] == "qemu-system-aarch64" and "-M virt -cpu neoverse-n1" in s
    assert "-bios" not in argv and firmware(ARM64) is None
    append = argv[argv.index("-append") + 1]
    assert append.startswith("console=ttyAMA0 panic=-1 ") and "no_timer_check" not in append
    for dev in ("pvpanic-pci", "virtio-balloon-pci,id=balloon0", "virtio-serial-pci,id=vser0"):
        assert dev in argv
    assert any(a.endswith("if=virtio,format=raw,cache=unsafe") for a in argv)
    kvm = build_argv(cfg, RunPaths.in_dir(tmp_path, swap=False), accel="kvm", ssh_port=2,
                     nonce="n")
    assert kvm[kvm.index("-cpu") + 1] == "host"
    x86 = build_argv(_vm(tmp_path, "x86_64"), RunPaths.in_dir(tmp_path, swap=False),
                     accel="tcg", ssh_port=2, nonce="n")
    assert x86[:3] == ["qemu-system-x86_64", "-M", "q35"] and "-cpu" not in x86


def test_arm64_guest_never_uses_kvm_on_this_host(monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.vm import accel

    monkeypatch.setattr("platform.machine", lambda: "x86_64")
    assert accel.resolve_accel("auto", Path("Image"), arch=ARM64) == "tcg"
    with pytest.raises(UsageError) as ei:
        accel.resolve_accel("kvm", Path("Image"), arch=ARM64)
    assert ei.value.culprit == "--accel kvm"


def _arm64_header(page_bits: int = 1) -> bytes:
    h = bytearray(64)
    struct.pack_into("<Q", h, 24, page_bits << 1)
    h[56:60] = b"ARM\x64"
    return bytes(h)


def test_arm64_image_checks(tmp_path: Path) -> None:
    from harness.vm import preflight as pf

    img = tmp_path / "Image"
    img.write_bytes(_arm64_header(3) + b"\0" * 1024)
    pf.check_kernel_file(img, ARM64)
    pf.check_kernel_file(img, ARM64, "64k")
    assert pf.arm64_page_size(_arm64_header(1)) == "4k"
    with pytest.raises(UsageError) as ei:
        pf.check_kernel_file(img, ARM64, "4k")
    assert ei.value.culprit == "--page-size 4k" and "64k pages" in ei.value.message
    with pytest.raises(UsageError) as ei:
        pf.check_kernel_file(img, X86_64)
    assert "--arch arm64" in ei.value.message
    bz = bytearray(0x230)
    bz[0x202:0x206] = b"HdrS"
    with pytest.raises(UsageError) as ei:
        pf.check_arm64_image(bytes(bz), img)
    assert "x86 bzImage" in ei.value.message and "--arch x86_64" in ei.value.message
    for bad, why in ((b"\x1f\x8b" + b"\0" * 100, "gzip"), (b"\x7fELF" + b"\0" * 100, "ELF"),
                     (b"\0" * 100, "no 'ARM")):
        with pytest.raises(UsageError) as ei:
            pf.check_arm64_image(bad, img)
        assert why in ei.value.message


def _elf(machine: int, interp: str | None, needed: list[str]) -> bytes:
    """A minimal ELF64 LE with one PT_LOAD covering everything, PT_INTERP and PT_DYNAMIC."""
    strtab = b"\0" + b"".join(n.encode() + b"\0" for n in needed)
    interp_b = (interp.encode() + b"\0") if interp else b""
    phnum = 3 if interp else 2
    ph_off, data_off = 64, 64 + 56 * phnum
    interp_off = data_off
    str_off = interp_off + len(interp_b)
    dyn_off = str_off + len(strtab)
    dyn = b""
    pos = 1
    for n in needed:
        dyn += struct.pack("<qQ", 1, pos)
        pos += len(n) + 1
    dyn += struct.pack("<qQ", 5, str_off) + struct.pack("<qQ", 0, 0)
    total = dyn_off + len(dyn)
    hdr = bytearray(64)
    hdr[:6] = b"\x7fELF\x02\x01"
    struct.pack_into("<H", hdr, 18, machine)
    struct.pack_into("<Q", hdr, 32, ph_off)
    struct.pack_into("<HH", hdr, 54, 56, phnum)
    phs = struct.pack("<IIQQQQQQ", 1, 5, 0, 0, 0, total, total, 0x1000)
    if interp:
        phs += struct.pack("<IIQQQQQQ", 3, 4, interp_off, interp_off, 0, len(interp_b),
                           len(interp_b), 1)
    phs += struct.pack("<IIQQQQQQ", 2, 6, dyn_off, dyn_off, 0, len(dyn), len(dyn), 8)
    return bytes(hdr) + phs + interp_b + strtab + dyn


def test_elf_reader_and_multiarch_resolution() -> None:
    from harness.errors import SetupError
    from harness.image import elf

    prog = _elf(183, "/lib/ld-linux-aarch64.so.1", ["libz.so.1", "libc.so.6"])
    info = elf.parse_elf(prog)
    assert info == elf.ElfInfo(183, "/lib/ld-linux-aarch64.so.1", ("libz.so.1", "libc.so.6"))
    files = {"/bin/p": prog, "/lib/ld-linux-aarch64.so.1": b"",
             "/usr/lib/aarch64-linux-gnu/libz.so.1": _elf(183, None, ["libc.so.6"]),
             "/lib/aarch64-linux-gnu/libc.so.6": _elf(183, None,
                                                     ["ld-linux-aarch64.so.1"])}
    libs = elf.resolve_libs(Path("/bin/p"), ARM64.lib_dirs, read=lambda p: files[str(p)],
                            exists=lambda p: str(p) in files, realpath=str)
    assert libs == ["/lib/aarch64-linux-gnu/libc.so.6", "/lib/ld-linux-aarch64.so.1",
                    "/usr/lib/aarch64-linux-gnu/libz.so.1"]
    del files["/usr/lib/aarch64-linux-gnu/libz.so.1"]
    with pytest.raises(SetupError) as ei:
        elf.resolve_libs(Path("/bin/p"), ARM64.lib_dirs, read=lambda p: files[str(p)],
                         exists=lambda p: str(p) in files, realpath=str)
    assert "libz.so.1" in ei.value.message
    assert elf.resolve_libs(Path("/s"), ARM64.lib_dirs, read=lambda p: _elf(183, None, []),
                            exists=lambda p: False) == []


def test_shipping_a_program_of_another_arch_is_exit_2(tmp_path: Path) -> None:
    from harness.image.build import with_shared_libs

    prog = tmp_path / "tool"
    prog.write_bytes(_elf(62, None, []))
    with pytest.raises(UsageError) as ei:
        with_shared_libs({"/root/tool": prog}, "--ship", ARM64)
    assert ei.value.culprit.startswith("--ship ") and "x86_64 program" in ei.value.message


def test_busybox_applets_read_from_the_binary() -> None:
    from harness.errors import SetupError
    from harness.image.build import applets_from_binary

    data = b"\x00junk[\x00[[\x00ash\x00busybox\x00ls\x00zcat\x00\x00\x01more"
    assert applets_from_binary(data, "bb") == ["[", "[[", "ash", "ls", "zcat"]
    with pytest.raises(SetupError):
        applets_from_binary(b"no table", "bb")


# --- the options and the plan ----------------------------------------------------------------

def test_page_size_on_x86_64_is_exit_2_naming_the_option(
        capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli import main

    assert main(["build", "--page-size", "64k"]) == 2
    err = capsys.readouterr().err
    assert "harness: error: --page-size 64k: x86_64 supports 4k pages" in err


def test_arch_options_reach_the_build_request() -> None:
    import argparse

    from harness.commands.build import add_build_options, request_from_args

    p = argparse.ArgumentParser()
    add_build_options(p)
    req = request_from_args(p.parse_args(["--arch", "arm64", "--page-size", "64k"]))
    assert (req.arch, req.page_size) == ("arm64", "64k")
    assert request_from_args(p.parse_args([])).arch == "x86_64"


def test_plan_kernels_carry_arch_and_page_size() -> None:
    from harness.matrix.job import build_request, job_argv
    from harness.matrix.plan import parse_plan

    plan = parse_plan({"kernel": [{"name": "x"}, {"name": "a64k", "arch": "arm64",
                                                  "page_size": "64k"}],
                       "scenario": ["mempressure"]}, Path("/p/p.toml"))
    x, a = plan.jobs
    assert (a.kernel.arch, a.kernel.page_size) == ("arm64", "64k")
    assert build_request(a).arch == "arm64" and build_request(a).page_size == "64k"
    argv = " ".join(job_argv(a, None, Path("/r"), python="py"))
    assert "--arch arm64 --page-size 64k" in argv
    assert "--arch" not in job_argv(x, None, Path("/r"), python="py")
    for bad, key in (({"arch": "sparc"}, "arch"), ({"page_size": "64k"}, "page_size")):
        with pytest.raises(UsageError) as ei:
            parse_plan({"kernel": [{"name": "k", **bad}], "scenario": ["mempressure"]},
                       Path("/p/p.toml"))
        assert ei.value.culprit == f"/p/p.toml: [[kernel]] k {key}"


# --- the mempressure judge counts pages in the guest's page size -----------------------------

def test_page_size_from_auxv() -> None:
    from harness.scenarios.mempressure.workload_output import parse_auxv_page_size

    # busybox od on an arm64 64k guest (two entries a line, as od prints /proc/self/auxv)
    od = ("                   33      281473264095232\n                   51     4720\n"
          "                   16           1035993083\n                    6    65536\n"
          "                   17                  100\n")
    assert parse_auxv_page_size(od) == 65536
    assert parse_auxv_page_size("33 1 16 2\n") is None


def test_stress_pass_deficit_in_the_guests_pages() -> None:
    from harness.scenarios.mempressure.reclaim import stress_pass
    from harness.scenarios.mempressure.workload_output import parse_mem_series, parse_stress

    series = ("uptime_s ...\n10.0 1 1 1 0 0 0 0 0 0\n10.5 1 1 1 100 0 60 0 0 0\n")
    stress = "EV 10.2 added n=1 held=1 advertised=1\n"
    p4 = stress_pass("x", parse_mem_series(series), parse_stress(stress), 10.0, 1 << 20, False)
    p64 = stress_pass("x", parse_mem_series(series), parse_stress(stress), 10.0, 1 << 20,
                      False, 65536)
    assert p4.summary["deficit_bytes"] == 40 * 4096 and p4.page_size == 4096
    assert p64.summary["deficit_bytes"] == 40 * 65536 and p64.page_size == 65536


def test_kcidb_builds_carry_the_architecture(tmp_path: Path) -> None:
    from harness import kcidb

    meta = {"key": "k" * 64, "arch": "arm64", "page_size": "64k", "base": "tinyconfig",
            "fragments": [{"path": "/k/guest.config"}, {"path": "/k/arch-arm64-64k.config"}]}
    b = kcidb.build_of(meta, tmp_path, "kpharness:checkout:x")
    assert b["architecture"] == "arm64" and b["misc"]["page_size"] == "64k"
    assert b["config_name"] == "tinyconfig+guest+arch-arm64-64k"
    old = kcidb.build_of({"key": "k" * 64}, tmp_path, "kpharness:checkout:x")
    assert old["architecture"] == "x86_64" and old["misc"]["page_size"] == "4k"
