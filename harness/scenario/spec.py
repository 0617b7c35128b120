"""Scenario files: parameters as data (``scenarios/<name>.toml``), validated on load."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import UsageError
from harness.paths import PROJECT_ROOT

SCENARIO_DIR = PROJECT_ROOT / "scenarios"
KNOWN_CHECKS = ("notifications", "clamping", "oom_absence", "child_cgroup")


@dataclass(frozen=True)
class Scenario:
    name: str
    path: Path
    data: dict[str, Any]

    def get(self, section: str, key: str, kind: type = int) -> Any:
        """A required parameter; a missing or mistyped one names the file and key."""
        try:
            value = self.data[section][key]
        except KeyError:
            raise UsageError(f"{self.path} [{section}] {key}", "missing parameter") from None
        if kind is float and isinstance(value, int):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise UsageError(f"{self.path} [{section}] {key}",
                             f"expected {kind.__name__}, got {value!r}")
        return value

    @property
    def checks(self) -> list[str]:
        checks = self.data.get("checks", list(KNOWN_CHECKS))
        return [str(c) for c in checks]


def load_scenario(name_or_path: str) -> Scenario:
    """Load ``scenarios/<name>.toml`` or a path; errors name the file."""
    p = Path(name_or_path)
    path = p if p.suffix == ".toml" else SCENARIO_DIR / f"{name_or_path}.toml"
    if not path.is_file():
        known = ", ".join(sorted(x.stem for x in SCENARIO_DIR.glob("*.toml")))
        raise UsageError(str(path), f"scenario not found (known: {known})")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(str(path), f"not valid TOML: {exc}") from exc
    sc = Scenario(str(data.get("name", path.stem)), path, data)
    unknown = [c for c in sc.checks if c not in KNOWN_CHECKS]
    if unknown:
        raise UsageError(f"{path} checks", f"unknown check(s) {unknown}; known: {KNOWN_CHECKS}")
    return sc
