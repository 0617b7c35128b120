"""Every benchmark module still imports (they are outside mypy's files and run rarely)."""

from __future__ import annotations

import importlib

import pytest

from harness.paths import PROJECT_ROOT

MODULES = sorted(p.stem for p in (PROJECT_ROOT / "bench").glob("*.py"))


@pytest.mark.parametrize("name", MODULES)
def test_bench_module_imports(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(PROJECT_ROOT))  # `pytest` alone does not put it there
    importlib.import_module(f"bench.{name}")
