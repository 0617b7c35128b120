"""Where the harness keeps its caches and run directories.

One root (``$HARNESS_CACHE``, default ``~/.cache/kpharness``) so that a user can
see, size and delete everything the harness owns with one command, and CI can
point it at a scratch disk.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def cache_root() -> Path:
    """The root of every cache the harness writes (created on demand)."""
    env = os.environ.get("HARNESS_CACHE")
    root = Path(env) if env else Path.home() / ".cache" / "kpharness"
    root.mkdir(parents=True, exist_ok=True)
    return root


def runs_root() -> Path:
    """Where per-run result directories go (``$HARNESS_RUNS``, default ``./runs``)."""
    env = os.environ.get("HARNESS_RUNS")
    root = Path(env) if env else Path.cwd() / "runs"
    root.mkdir(parents=True, exist_ok=True)
    return root
