"""Benchmarks: `python -m bench all` measures every figure of the README's Performance table,
side by side."""
