"""Fixtures for VM tests: a kernel, the guest image, and a booted guest.

``HARNESS_TEST_KERNEL=<bzImage>`` skips the (slow) default kernel build while
developing. Every guest is a :class:`Machine` context manager, so QEMU, its
sockets and temp files go away however the test ends.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness.image import GuestImage, build_image
from harness.vm import Machine, VMConfig


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that need the debug kernel configuration run last: switching the build dir's
    configuration costs a full rebuild each way, so it happens once, at the end."""
    items.sort(key=lambda item: item.get_closest_marker("debug_kernel") is not None)


@pytest.fixture(scope="session")
def kernel() -> Path:
    env = os.environ.get("HARNESS_TEST_KERNEL")
    if env:
        path = Path(env)
        if not path.is_file():
            pytest.fail(f"HARNESS_TEST_KERNEL={env} is not a file")
        return path
    from harness.kernel.build import BuildRequest, build_kernel

    return Path(build_kernel(BuildRequest()).bzimage)


@pytest.fixture(scope="session")
def image() -> GuestImage:
    return build_image()


def make_config(kernel: Path, image: GuestImage, **kw: object) -> VMConfig:
    params: dict[str, object] = {
        "kernel": kernel, "initramfs": image.initramfs, "ram_mib": 256, "swap_mib": 64,
        "smp": 1, "accel": os.environ.get("HARNESS_TEST_ACCEL", "tcg"), "boot_timeout": 120.0,
    }
    params.update(kw)
    return VMConfig(**params)  # type: ignore[arg-type]


@pytest.fixture
def make_vm_config(kernel: Path, image: GuestImage) -> Callable[..., VMConfig]:
    """``make_vm_config(ram_mib=..., swap_mib=...)``: a VMConfig for the test kernel."""
    return functools.partial(make_config, kernel, image)


@pytest.fixture
def vm_config(kernel: Path, image: GuestImage) -> VMConfig:
    return make_config(kernel, image)


@pytest.fixture
def vm(vm_config: VMConfig, tmp_path: Path) -> Iterator[Machine]:
    with Machine(vm_config, run_dir=tmp_path / "run") as m:
        yield m
    assert m.pid is None or not _alive(m.pid), "QEMU outlived its Machine"


guest = vm


def _alive(pid: int) -> bool:
    from harness.vm import pid_alive

    return pid_alive(pid)
