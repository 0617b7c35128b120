"""The guest image: a reproducible, cached initramfs built from host packages."""

from harness.image.build import READY_PREFIX, GuestImage, build_image
from harness.image.runfiles import RunKeys, combined_initrd, make_run_keys

__all__ = ["READY_PREFIX", "GuestImage", "RunKeys", "build_image", "combined_initrd",
           "make_run_keys"]
