"""The matrix's combined report: results.json, junit.xml, matrix.html, kcidb.json.

Pure emitters of the job results (plus one ``write_all`` shell). The verdict
keeps the harness's split: any job that *failed* makes the matrix fail (exit 1,
the kernel misbehaved); otherwise any infrastructure error is exit 3; a job that
could not start for bad input (a kernel that does not build) is exit 2.
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jinja2

from harness import kcidb, rundir
from harness.core.results import Status
from harness.errors import EXIT_CHECK_FAILED, EXIT_INFRA, EXIT_OK, EXIT_USAGE
from harness.matrix.builds import KernelBuild
from harness.matrix.job import JobResult

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates"


def exit_status(results: Iterable[JobResult]) -> int:
    """Fail beats infra beats usage beats pass (what a CI job should report first)."""
    res = list(results)
    if any(r.status == Status.FAIL for r in res):
        return EXIT_CHECK_FAILED
    errs = [r for r in res if r.status == Status.ERROR]
    if any(not is_usage_error(r) for r in errs):
        return EXIT_INFRA
    return EXIT_USAGE if errs else EXIT_OK


def is_usage_error(r: JobResult) -> bool:
    """Bad input (exit 2, or its kernel did not build), as opposed to the rig failing."""
    return r.exit_code == EXIT_USAGE or (r.exit_code is None and bool(r.kernel.get("error")))


def verdict(results: Iterable[JobResult]) -> Status:
    return {EXIT_OK: Status.PASS, EXIT_CHECK_FAILED: Status.FAIL}.get(exit_status(results),
                                                                      Status.ERROR)


def findings_by_signature(results: Sequence[JobResult]) -> list[dict[str, Any]]:
    """Console findings across jobs, one row per signature (the classifier's dedup key): its
    title, kind, known issue if any, how many jobs showed it and the first, in plan order."""
    rows: dict[str, dict[str, Any]] = {}
    for r in results:
        try:
            doc = json.loads((Path(r.run_dir) / rundir.RESULTS).read_text())
        except (OSError, ValueError):
            continue
        seen_here: set[str] = set()
        for f in doc.get("findings", []):
            sig = str(f.get("signature") or f.get("title"))
            if sig in seen_here:
                continue
            seen_here.add(sig)
            row = rows.setdefault(sig, {"signature": sig, "title": f.get("title", ""),
                                        "kind": f.get("kind", ""), "jobs": 0,
                                        "first_job": r.job_id,
                                        "known_issue": (f.get("known_issue") or {}).get("id")})
            row["jobs"] += 1
    return sorted(rows.values(), key=lambda x: -int(x["jobs"]))


def matrix_doc(plan: str, results: Sequence[JobResult], kernels: Mapping[str, KernelBuild],
               engine: str, wall_s: float, shard: str = "") -> dict[str, Any]:
    counts = {s.value: sum(r.status == s for r in results) for s in Status}
    return {"plan": plan, "verdict": verdict(results).value, "exit_status": exit_status(results),
            "engine": engine, "shard": shard, "wall_s": round(wall_s, 1), "counts": counts,
            "kernels": [k.to_json() for k in kernels.values()],
            "jobs": [r.to_json() for r in results],
            "findings": findings_by_signature(results)}


def junit_xml(plan: str, results: Sequence[JobResult]) -> str:
    """One testsuite per job, one testcase per check (job-level case when it had none)."""
    root = ET.Element("testsuites", {"name": f"matrix {plan}"})
    for r in results:
        cases = r.checks or [{"name": "run", "status": r.status.value, "summary": r.detail}]
        suite = ET.SubElement(root, "testsuite", {
            "name": r.job_id, "tests": str(len(cases)),
            "failures": str(sum(c.get("status") == "fail" for c in cases)),
            "errors": str(sum(c.get("status") == "error" for c in cases)),
            "skipped": str(sum(c.get("status") == "skip" for c in cases)),
            "time": f"{r.seconds:.1f}"})
        for c in cases:
            case = ET.SubElement(suite, "testcase", {"classname": r.job_id, "name": c["name"]})
            st, msg = c.get("status"), str(c.get("summary") or r.detail)
            if st == "fail":
                ET.SubElement(case, "failure", {"message": msg}).text = f"run dir: {r.run_dir}"
            elif st == "error":
                ET.SubElement(case, "error", {"message": msg}).text = (
                    f"infrastructure or setup error, not a kernel failure\nrun dir: {r.run_dir}")
            elif st == "skip":
                ET.SubElement(case, "skipped", {"message": msg})
    return ET.tostring(root, encoding="unicode", xml_declaration=True)


def render_html(doc: Mapping[str, Any], out_dir: Path) -> str:
    names: list[str] = []
    rows = []
    for j in doc["jobs"]:
        for c in j["checks"]:
            if c["name"] not in names:
                names.append(c["name"])
        rep = Path(j["run_dir"]) / rundir.REPORT
        rows.append({**j, "by_check": {c["name"]: c["status"] for c in j["checks"]},
                     "report": os.path.relpath(rep, out_dir) if rep.is_file() else ""})
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
                             autoescape=jinja2.select_autoescape(["html", "j2"]),
                             undefined=jinja2.StrictUndefined)
    return env.get_template("matrix.html.j2").render(doc={**doc, "jobs": rows},
                                                     check_names=names)


def kcidb_doc(results: Sequence[JobResult], kernels: Mapping[str, KernelBuild]) -> dict[str, Any]:
    """Every job that left a results.json, plus a FAIL build for each kernel that did not build."""
    docs = [kcidb.failed_build(k.name, k.key, k.error) for k in kernels.values() if k.error]
    docs += [r.kcidb for r in results if r.kcidb]
    return kcidb.merge(docs)


def write_all(out_dir: Path, doc: Mapping[str, Any], results: Sequence[JobResult],
              kernels: Mapping[str, KernelBuild]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / rundir.RESULTS).write_text(json.dumps(doc, indent=2) + "\n")
    (out_dir / rundir.JUNIT).write_text(junit_xml(str(doc["plan"]), results))
    (out_dir / "matrix.html").write_text(render_html(doc, out_dir))
    kcidb.write(out_dir / "kcidb.json", kcidb_doc(results, kernels))


def summary_text(doc: Mapping[str, Any]) -> str:
    lines = [f"matrix {doc['plan']}: {doc['verdict'].upper()}  ({doc['counts']['pass']} pass, "
             f"{doc['counts']['fail']} fail, {doc['counts']['error']} error; "
             f"{doc['engine']}, wall {doc['wall_s']:.0f}s)"]
    for j in doc["jobs"]:
        lines.append(f"  {j['status'].upper():5}  {j['job_id']:50}  {j['seconds']:>5.0f}s"
                     + (f"  {j['detail']}" if j["detail"] else ""))
    return "\n".join(lines) + "\n"
