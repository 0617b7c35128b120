"""``harness judge RUN_DIR``: re-judge a saved run without a VM (like ``kunit.py parse``).

Reads the run dir's scenario copy, metadata, observations and raw artifacts, judges them with
today's checks, rewrites results.json / junit.xml / report.html and exits like ``run`` would.
Useful after changing a check, or to read a CI artifact locally.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

NAME = "judge"
HELP = "re-judge a saved run directory without a VM; rewrite its reports; exit like run"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a run directory of harness run")
    p.add_argument("--json", action="store_true", help="print results.json instead of the table")


def run(args: argparse.Namespace) -> int:
    from harness.core import report
    from harness.core.runner import judge_run_dir
    from harness.errors import exit_for_verdict

    outcome = judge_run_dir(args.run_dir)
    if args.json:
        print(json.dumps(outcome.doc, indent=2, default=str))
    else:
        print(report.verdict_table(outcome.doc))
    return exit_for_verdict(outcome.verdict.value)
