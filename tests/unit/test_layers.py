"""The layer lint catches an import that runs back up (scripts/check-layers)."""

from __future__ import annotations

import importlib.machinery
import importlib.util
from pathlib import Path
from types import ModuleType

from harness.paths import PROJECT_ROOT


def _checker() -> ModuleType:
    path = PROJECT_ROOT / "scripts" / "check-layers"
    loader = importlib.machinery.SourceFileLoader("check_layers", str(path))
    spec = importlib.util.spec_from_loader("check_layers", loader)
    assert spec is not None
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


def test_the_tree_is_layered() -> None:
    assert _checker().main(PROJECT_ROOT) == 0


def test_an_upward_import_and_an_unplaced_module_are_caught(tmp_path: Path) -> None:
    pkg = tmp_path / "harness"
    (pkg / "vm").mkdir(parents=True)
    (pkg / "vm" / "machine.py").write_text("def f():\n    from harness.core.spec import X\n")
    (pkg / "newthing.py").write_text("import os\n")
    (pkg / "kernel.py").write_text("from harness import errors\n")
    assert _checker().main(tmp_path) == 1
