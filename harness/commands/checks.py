"""``harness checks [--scenario S]``: the checks a scenario reports, and what makes each fail.

Read from the scenario package's registry, the same definitions run, bisect and the reports use.
"""

from __future__ import annotations

import argparse

NAME = "checks"
HELP = "list a scenario's checks with their titles and negative controls"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from harness.commands.run import DEFAULT_SCENARIO

    p.add_argument("--scenario", default=DEFAULT_SCENARIO, help="scenario name or .toml path")


def run(args: argparse.Namespace) -> int:
    from harness.core.registry import checks_for
    from harness.core.spec import load_spec

    spec = load_spec(args.scenario)
    defs = checks_for(spec)
    width = max(len(c.name) for c in defs) + 1 if defs else 8
    print(f"{'check':<{width}} title  [negative control]")
    for c in defs:
        print(f"{c.name:<{width}} {c.title}" + (f"  [{c.control}]" if c.control else ""))
    return 0
