"""The bisect's results: ``results.json`` for machines, ``summary.txt`` for people."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness import rundir


def summary_text(doc: dict[str, Any]) -> str:
    """One screen: the culprit and whether it was verified, then one line per step."""
    lines = []
    if doc["mode"] == "git":
        lines.append(f"harness bisect: {doc['repo']}  good {doc['good'][:12]}  "
                     f"bad {doc['bad'][:12]}")
    else:
        lines.append(f"harness bisect: series {', '.join(doc['series'])} "
                     f"({len(doc['patches'])} patches) on {doc['source'] or 'default source'}")
    ad = doc.get("adaptive")
    if ad:
        what = (f"metric {ad['metric']}, threshold {ad['threshold']}"
                + (f" (bad when {ad['cut']['text']})" if ad.get("cut") else "")
                if ad["kind"] == "metric" else "flake-aware check rule")
        lines.append(f"scenario {doc['scenario']}, checks {', '.join(doc['checks'])}; {what}; "
                     f"{ad['min_runs']}..{ad['max_runs']} runs per revision, target "
                     f"confidence {ad['confidence_target']:g} (per step "
                     f"{ad['step_target']:.4f}); {ad['runs']} runs in all")
    else:
        lines.append(f"scenario {doc['scenario']}, checks {', '.join(doc['checks'])}, "
                     f"retries {doc['retries']}")
    fb = doc.get("first_bad")
    ver = doc.get("verification", {})
    if ad:
        lines.append(doc["message"])
        if fb:
            lines.append(f"first bad {'commit' if doc['mode'] == 'git' else 'patch'}: "
                         + (f"{fb['commit']} {fb['subject']}" if doc["mode"] == "git"
                            else f"patch {fb['index']}: {fb['patch']}"))
    elif fb:
        what = (f"{fb['commit']} {fb['subject']}" if doc["mode"] == "git"
                else f"patch {fb['index']}: {fb['patch']}")
        lines.append(f"first bad {'commit' if doc['mode'] == 'git' else 'patch'}: {what}")
        if ver.get("ok"):
            lines.append("verified: parent good, culprit bad (re-run)")
        else:
            lines.append(f"NOT verified: parent {ver.get('parent_verdict')}, culprit "
                         f"{ver.get('first_bad_verdict')} on re-run")
    else:
        lines.append("no single culprit: only skipped targets left; the first bad one is among:")
        lines += [f"  {c}" for c in doc.get("candidates", [])]
    lines.append("")
    lines.append(f"{'#':>3}  {'phase':6}  {'target':12}  {'verdict':7}  {'time':>6}  "
                 f"{'build':>6}  label / detail")
    for i, s in enumerate(doc.get("steps", []), start=1):
        build = sum(a.get("build_s", 0.0) for a in s["attempts"])
        detail = "; ".join(a["detail"] for a in s["attempts"] if a.get("detail"))
        note = f" [{s['note']}]" if s.get("note") else ""
        if s.get("confidence") is not None:
            note += f" p={s['confidence']:.4f}"
        lines.append(f"{i:>3}  {s['phase']:6}  {s['target'][:12]:12}  {s['verdict']:7}  "
                     f"{s['seconds']:>5.0f}s  {build:>5.0f}s  {s['label'][:50]}{note}"
                     + (f"  ({detail[:80]})" if detail and not ad else ""))
    n = len(doc.get("steps", []))
    total = sum(s["seconds"] for s in doc.get("steps", []))
    lines.append("")
    lines.append(f"wall time {doc['wall_s']:.0f}s; {n} steps, "
                 f"{(total / n if n else 0):.0f}s per step on average")
    if doc["mode"] == "git":
        lines.append("bisect log: bisect.log")
    return "\n".join(lines) + "\n"


def write_results(run_dir: Path, doc: dict[str, Any]) -> None:
    (run_dir / rundir.RESULTS).write_text(json.dumps(doc, indent=2) + "\n")
    (run_dir / "summary.txt").write_text(summary_text(doc))
