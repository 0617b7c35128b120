"""Run results for machines (results.json, junit.xml) and for people (report.html, terminal).

Emitters are separate pure functions of one results document, as in KUnit's tool; the HTML is
a jinja2 template with the scenario's own picture (an inline SVG) when it has one, so the report
is one self-contained file a developer can open from a CI artifact.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jinja2
import markupsafe

from harness import rundir
from harness.core.measure import of_run
from harness.core.results import CheckResult, Status

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates"
RESULTS_SCHEMA = 2  # bump when a consumer-visible key changes meaning


def results_doc(scenario: str, verdict: Status, results: Sequence[CheckResult],
                info: dict[str, Any], timings: dict[str, float], run_dir: Path,
                infra_error: str = "", findings: Sequence[dict[str, Any]] = (),
                interrupted: str = "") -> rundir.ResultsDoc:
    """The machine-readable verdict: every check, its expectations, test cases and findings."""
    return {
        "schema": RESULTS_SCHEMA,
        "scenario": scenario,
        "verdict": verdict.value,
        "run_dir": str(run_dir),
        "infra_error": infra_error or None,
        "interrupted": interrupted or None,
        "checks": [{
            "name": r.name, "title": r.title, "status": r.status.value,
            "summary": r.summary(), "artifact": r.artifact, "measurements": r.measurements,
            "expectations": [{"what": e.what, "expected": e.expected, "observed": e.observed,
                              "ok": e.ok} for e in r.expectations],
            "cases": [{"name": c.name, "status": c.status.value, "message": c.message}
                      for c in r.cases],
        } for r in results],
        "findings": list(findings),
        "info": info,
        "timings_s": timings,
        "measurements": [m.to_dict() for m in of_run(((r.name, r.measurements)
                                                        for r in results), timings)],
    }


def _case_text(r: CheckResult) -> str:
    return "\n".join(f"[{'ok' if e.ok else 'FAIL'}] {e.what}: expected {e.expected}, "
                     f"observed {e.observed}" for e in r.expectations)


def junit_xml(scenario: str, results: Sequence[CheckResult], timings: dict[str, float]) -> str:
    """One testcase per check, plus one per reported test case (``check.case``).

    failure = the kernel misbehaved, error = the rig failed, skipped = not applicable.
    """
    cases: list[tuple[str, str, Status, str, str]] = []  # classname, name, status, msg, body
    for r in results:
        cases.append((scenario, r.name, r.status, r.summary(),
                      _case_text(r) + (f"\nartifact: {r.artifact}" if r.artifact else "")))
        for c in r.cases:
            cases.append((f"{scenario}.{r.name}", c.name, c.status, c.message or c.status.value,
                          c.log))
    suite = ET.Element("testsuite", {
        "name": scenario, "tests": str(len(cases)),
        "failures": str(sum(c[2] == Status.FAIL for c in cases)),
        "errors": str(sum(c[2] == Status.ERROR for c in cases)),
        "skipped": str(sum(c[2] == Status.SKIP for c in cases)),
        "time": f"{sum(timings.values()):.2f}",
    })
    for classname, name, status, msg, body in cases:
        case = ET.SubElement(suite, "testcase", {"classname": classname, "name": name})
        if status == Status.FAIL:
            ET.SubElement(case, "failure", {"message": msg}).text = body
        elif status == Status.ERROR:
            el = ET.SubElement(case, "error", {"message": msg})
            el.text = "infrastructure error, not a kernel failure\n" + body
        elif status == Status.SKIP:
            ET.SubElement(case, "skipped", {"message": msg})
        elif body:
            ET.SubElement(case, "system-out").text = body
    return ET.tostring(suite, encoding="unicode", xml_declaration=True)


def render_html(doc: rundir.ResultsDoc, chart_svg: str, artifacts: Sequence[str]) -> str:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
                             autoescape=jinja2.select_autoescape(["html", "j2"]),
                             undefined=jinja2.StrictUndefined)
    return env.get_template("report.html.j2").render(
        doc=doc, chart=markupsafe.Markup(chart_svg), artifacts=list(artifacts))


def write_all(run_dir: Path, doc: rundir.ResultsDoc, junit: str, chart_svg: str) -> None:
    """results.json, junit.xml and report.html, each written whole then renamed into place."""
    arts = sorted(p.name for p in run_dir.iterdir()
                  if p.is_file() and p.name not in (rundir.REPORT,) and not p.name.startswith("."))
    for name, text in ((rundir.RESULTS, json.dumps(doc, indent=2, default=str) + "\n"),
                       (rundir.JUNIT, junit + "\n"),
                       (rundir.REPORT, render_html(doc, chart_svg, arts))):
        tmp = run_dir / f".{name}.tmp"
        tmp.write_text(text)
        tmp.replace(run_dir / name)


def verdict_table(doc: rundir.ResultsDoc | dict[str, Any]) -> str:
    """The terminal's view: one row per check, then the verdict."""
    width = max([16] + [len(c["name"]) + 1 for c in doc["checks"]])
    rows = [f"{'check':<{width}} {'status':<6} summary"]
    for c in doc["checks"]:
        rows.append(f"{c['name']:<{width}} {c['status'].upper():<6} {c['summary']}")
    if doc.get("interrupted"):
        rows.append(f"interrupted: {doc['interrupted']}")
    rows.append(f"verdict: {doc['verdict'].upper()}")
    return "\n".join(rows)
