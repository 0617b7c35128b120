"""Scenario types and their checks: the one place every consumer asks.

The CLI (``run --check``), ``bisect --check``, the reports and ``judge`` all get check names
and titles from :func:`checks_for`, which asks the scenario's own package: a check is defined
once, where it is judged.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

from harness.core.plugin import CheckDef, ScenarioType
from harness.core.spec import ScenarioSpec
from harness.errors import UsageError

#: type name (``type = ...`` in a scenario file) -> module exposing ``SCENARIO``
TYPES = {
    "mempressure": "harness.scenarios.mempressure",
    "usertest": "harness.scenarios.usertest",
}


def scenario_type(spec: ScenarioSpec) -> ScenarioType:
    """The package that runs ``spec``, after it validated the spec's own sections."""
    mod_name = TYPES.get(spec.type_name)
    if mod_name is None:
        raise UsageError(f"{spec.path} type",
                         f"unknown scenario type {spec.type_name!r} (known: {', '.join(TYPES)})")
    st: ScenarioType = importlib.import_module(mod_name).SCENARIO
    st.validate(spec)
    return st


def checks_for(spec: ScenarioSpec) -> Sequence[CheckDef]:
    """The checks a run of ``spec`` reports, in order (a spec's ``checks`` list selects)."""
    every = list(scenario_type(spec).checks(spec))
    wanted = spec.data.get("checks")
    if wanted is None:
        return every
    by_name = {c.name: c for c in every}
    if not isinstance(wanted, list) or not all(isinstance(w, str) for w in wanted):
        raise UsageError(f"{spec.path} checks", "must be a list of check names")
    unknown = [w for w in wanted if w not in by_name]
    if unknown:
        raise UsageError(f"{spec.path} checks",
                         f"unknown check(s) {unknown}; known: {sorted(by_name)}")
    return [by_name[w] for w in wanted]


def select(checks: Sequence[CheckDef], names: Sequence[str], option: str) -> list[CheckDef]:
    """Restrict to ``names`` (from ``--check``); an unknown name is the option's fault."""
    by_name = {c.name: c for c in checks}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise UsageError(option, f"unknown check(s) {unknown}; known: {sorted(by_name)}")
    return [by_name[n] for n in names]
