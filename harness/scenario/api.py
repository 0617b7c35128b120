"""One call from options to a finished run directory: what the CLI and the VM tests use."""

from __future__ import annotations

from pathlib import Path

from harness.core.results import Status
from harness.errors import EXIT_CHECK_FAILED, EXIT_INFRA, EXIT_OK
from harness.kernel.build import BuildRequest
from harness.paths import PROJECT_ROOT
from harness.scenario import report
from harness.scenario.runner import RunOptions, RunOutcome, ScenarioRun
from harness.scenario.spec import Scenario

EXIT_FOR = {Status.PASS: EXIT_OK, Status.FAIL: EXIT_CHECK_FAILED, Status.ERROR: EXIT_INFRA}


def scenario_build_request(sc: Scenario, extra_series: tuple[Path, ...] = ()) -> BuildRequest:
    """The kernel a scenario asks for (paths in the file are relative to the project)."""
    series = tuple(PROJECT_ROOT / str(s) for s in sc.data.get("kernel", {}).get("series", []))
    frags = tuple(str(f) for f in sc.data.get("kernel", {}).get("fragments", []))
    return BuildRequest(series=series + extra_series, fragments=frags or BuildRequest().fragments)


def run_and_report(opts: RunOptions) -> tuple[RunOutcome, dict[str, object]]:
    """Execute the run, then write results.json, junit.xml and report.html into its directory."""
    run = ScenarioRun(opts)
    outcome = run.execute()
    doc = report.results_doc(opts.scenario.name, outcome.verdict, outcome.results, outcome.info,
                             outcome.timings, outcome.run_dir, outcome.infra_error)
    lines, requests = report.timeline_series(
        run.mem, run.stress_logs.get("stress"),
        int(opts.scenario.data.get("workload", {}).get("chunk_size", 1 << 20)), run.host_samples)
    svg = report.timeline_svg(lines, requests, run.markers)
    report.write_all(outcome.run_dir, doc,
                     report.junit_xml(opts.scenario.name, outcome.results, outcome.timings), svg)
    return outcome, doc
