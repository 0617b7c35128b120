"""kpharness: build a kernel with a patch series, boot it under QEMU, stress it, assert on it."""

__version__ = "0.1.0"
