"""Benchmarks: `python -m bench all` measures every figure of issue 12 side by side."""
