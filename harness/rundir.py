"""The names of a run directory's files: defined once, read by everything that writes or
reads a run dir (the VM, the core, the scenarios, the matrix, bisect, KCIDB).

A run dir holds everything needed to judge it again without a VM (``harness judge``). At the
bottom of the package (no harness imports), so that ``vm`` can name its console log too.
"""

from __future__ import annotations

CONSOLE = "console.log"          # the guest's serial console, classified live
RUN_META = "run.json"            # planned checks, options, VM shape, timings, errors
SPEC_COPY = "scenario.toml"      # the scenario as it ran, variants merged
OBSERVATIONS = "observations.json"  # each phase's numbers and console marks
RESULTS = "results.json"         # the verdict: checks, expectations, cases, findings
JUNIT = "junit.xml"
REPORT = "report.html"
INFRA = "infra-error.txt"        # why the rig failed, when it did
KNOWN_ISSUES = "known-issues.toml"  # the user's --known-issues file, as the run used it
