"""A minimal TOML writer for the data scenario files hold (tables, arrays, scalars).

The stdlib reads TOML but does not write it. A run dir keeps the scenario as it ran -- a
variant merged over the scenario it ``extends`` -- so that ``harness judge`` needs no other
file; this turns that merged data back into TOML that ``tomllib`` reads to the same dict.
"""

from __future__ import annotations

import json
from typing import Any


def _scalar(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # a TOML basic string is a JSON string
    if isinstance(v, list):
        return "[" + ", ".join(_scalar(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_scalar(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"cannot write {type(v).__name__} as TOML")


def dumps(data: dict[str, Any], _prefix: str = "") -> str:
    """Scalars first, then one ``[table]`` per nested dict (recursively)."""
    lines = [f"{json.dumps(k)} = {_scalar(v)}" for k, v in data.items()
             if not isinstance(v, dict)]
    for k, v in data.items():
        if isinstance(v, dict):
            name = f"{_prefix}{json.dumps(k)}"
            lines += ["", f"[{name}]", dumps(v, name + ".").rstrip("\n")]
    return "\n".join(lines).strip("\n") + "\n"
