"""harness.arch: the per-architecture records and what is derived from them."""

from __future__ import annotations

from pathlib import Path

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
    assert ARM64.cpu_for("tcg") == "max,pauth-impdef=on" and ARM64.cpu_for("kvm") == "host"
    assert X86_64.cpu_for("tcg") is None
