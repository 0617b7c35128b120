"""``harness run --repeat N``: N run dirs of one request -> one combined verdict (pure).

Per check: passes/total, the pass rate with its 95 % Wilson interval, and a verdict --
pass (every repeat passed), fail (every repeat failed), flaky (some of each), error (any
repeat could not judge it, or it is missing). Per measurement: n, median, min, max, values.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from typing import Any

from harness.core.measure import of_results_doc
from harness.core.stats import median, wilson
from harness.errors import EXIT_CHECK_FAILED, EXIT_INFRA, EXIT_OK

REPEAT_SCHEMA = 1
FLAKY = "flaky"


def check_verdict(statuses: Sequence[str]) -> str:
    if not statuses or any(s == "error" for s in statuses):
        return "error"
    judged = [s for s in statuses if s != "skip"]
    if not judged:
        return "skip"
    if all(s == "pass" for s in judged):
        return "pass"
    if all(s == "fail" for s in judged):
        return "fail"
    return FLAKY


def overall_verdict(verdicts: Sequence[str]) -> str:
    for v in ("error", "fail", FLAKY):
        if v in verdicts:
            return v
    if verdicts and all(v == "skip" for v in verdicts):
        return "skip"
    return "pass"


def exit_for(verdict: str) -> int:
    """0 all pass, 1 any fail or flaky, 3 infra."""
    return {"error": EXIT_INFRA, "fail": EXIT_CHECK_FAILED, FLAKY: EXIT_CHECK_FAILED}.get(
        verdict, EXIT_OK)


def aggregate(docs: Sequence[Mapping[str, Any] | None], names: Sequence[str] = (),
              run_dirs: Sequence[str] = ()) -> dict[str, Any]:
    """The combined results.json of repeats (a None doc: that repeat left no results)."""
    order: list[str] = list(names)
    titles: dict[str, str] = {}
    for d in docs:
        for c in (d or {}).get("checks", []):
            if c["name"] not in order:
                order.append(c["name"])
            titles.setdefault(c["name"], c.get("title", ""))
    checks = []
    for name in order:
        statuses = []
        for d in docs:
            found = [c["status"] for c in (d or {}).get("checks", []) if c["name"] == name]
            statuses.append(found[0] if found else "error")
        passes = statuses.count("pass")
        total = sum(s in ("pass", "fail") for s in statuses)
        lo, hi = wilson(passes, total)
        checks.append({"name": name, "title": titles.get(name, ""),
                       "verdict": check_verdict(statuses), "statuses": statuses,
                       "passes": passes, "total": total,
                       "pass_rate": round(passes / total, 4) if total else None,
                       "wilson95": [round(lo, 4), round(hi, 4)]})
    values: dict[str, dict[str, Any]] = {}
    for d in docs:
        for m in of_results_doc(d or {}):
            row = values.setdefault(m.key, {"check": m.check, "name": m.name, "unit": m.unit,
                                            "direction": m.direction, "values": []})
            row["values"].append(m.value)
    measurements = [{**r, "n": len(r["values"]), "median": median(r["values"]),
                     "min": min(r["values"]), "max": max(r["values"])}
                    for r in values.values()]
    verdict = overall_verdict([str(c["verdict"]) for c in checks]) if checks else "error"
    if any(d is None for d in docs):
        verdict = "error" if verdict in ("pass", "skip") else verdict
    return {"schema": REPEAT_SCHEMA, "kind": "repeat", "repeats": len(docs),
            "verdict": verdict, "run_dirs": list(run_dirs),
            "scenario": next((d.get("scenario") for d in docs if d), None),
            "checks": checks, "measurements": measurements}


def rate_text(c: Mapping[str, Any]) -> str:
    """``7/10 passed (70%, 95% Wilson [0.397, 0.892])`` for one check of a repeat doc."""
    if c["pass_rate"] is None:
        return f"{c['passes']}/{c['total']} passed"
    return (f"{c['passes']}/{c['total']} passed ({c['pass_rate']:.0%}, 95% Wilson "
            f"[{c['wilson95'][0]:.3f}, {c['wilson95'][1]:.3f}])")


def junit_xml(doc: Mapping[str, Any]) -> str:
    """The repeat set as JUnit: one testcase per check with its combined verdict.

    fail and flaky are failures (``type`` says which: a flaky check fails the set, as its
    exit status does), error an error; each testcase carries its pass rate, interval and
    per-repeat statuses as properties, the suite the repeats, verdict and every
    measurement's median and range.
    """
    scen = str(doc.get("scenario") or "scenario")
    checks = doc["checks"]
    suite = ET.Element("testsuite", {
        "name": f"{scen} (repeat {doc['repeats']})", "tests": str(len(checks)),
        "failures": str(sum(c["verdict"] in ("fail", FLAKY) for c in checks)),
        "errors": str(sum(c["verdict"] == "error" for c in checks)),
        "skipped": str(sum(c["verdict"] == "skip" for c in checks)),
        "time": f"{float(doc.get('seconds') or 0.0):.2f}"})
    props = ET.SubElement(suite, "properties")
    for k, v in (("repeats", doc["repeats"]), ("verdict", doc["verdict"])):
        ET.SubElement(props, "property", {"name": k, "value": str(v)})
    for m in doc.get("measurements", []):
        ET.SubElement(props, "property", {
            "name": f"measurement.{m['check']}.{m['name']}",
            "value": f"median {m['median']:g}{' ' + m['unit'] if m['unit'] else ''} "
                     f"[{m['min']:g}..{m['max']:g}] n={m['n']}"})
    for c in checks:
        case = ET.SubElement(suite, "testcase", {"classname": scen, "name": c["name"]})
        cp = ET.SubElement(case, "properties")
        for k, v in (("verdict", c["verdict"]), ("passes", c["passes"]),
                     ("total", c["total"]), ("pass_rate", c["pass_rate"]),
                     ("wilson95_low", c["wilson95"][0]), ("wilson95_high", c["wilson95"][1]),
                     ("statuses", " ".join(c["statuses"]))):
            ET.SubElement(cp, "property", {"name": k, "value": "" if v is None else str(v)})
        msg = f"{c['verdict']}: {rate_text(c)}"
        if c["verdict"] in ("fail", FLAKY):
            ET.SubElement(case, "failure", {"message": msg, "type": c["verdict"]}).text = (
                "per repeat: " + " ".join(c["statuses"]))
        elif c["verdict"] == "error":
            ET.SubElement(case, "error", {"message": msg}).text = (
                "infrastructure error in some repeat, not a kernel failure\nper repeat: "
                + " ".join(c["statuses"]))
        elif c["verdict"] == "skip":
            ET.SubElement(case, "skipped", {"message": msg})
        else:
            ET.SubElement(case, "system-out").text = msg
    return ET.tostring(suite, encoding="unicode", xml_declaration=True)


def summary_table(doc: Mapping[str, Any]) -> str:
    width = max([16] + [len(c["name"]) + 1 for c in doc["checks"]])
    rows = [f"{'check':<{width}} {'verdict':<7} {'passes':<7} pass rate (95% Wilson)"]
    for c in doc["checks"]:
        rate = "n/a" if c["pass_rate"] is None else (
            f"{c['pass_rate']:.0%} [{c['wilson95'][0]:.3f}, {c['wilson95'][1]:.3f}]")
        rows.append(f"{c['name']:<{width}} {c['verdict'].upper():<7} "
                    f"{c['passes']}/{c['total']:<5} {rate}")
    for m in doc["measurements"]:
        unit = f" {m['unit']}" if m["unit"] else ""
        rows.append(f"  {m['check']}.{m['name']}: n={m['n']} median={m['median']:g}{unit} "
                    f"[{m['min']:g}..{m['max']:g}]")
    rows.append(f"verdict: {doc['verdict'].upper()} ({doc['repeats']} repeats)")
    return "\n".join(rows)


def dot_plot_svg(groups: Sequence[tuple[str, Sequence[float]]], width: int = 320) -> str:
    """A tiny inline SVG: one row of dots per group on a shared axis."""
    allv = [v for _, vs in groups for v in vs]
    if not allv:
        return ""
    lo, hi = min(allv), max(allv)
    span = (hi - lo) or 1.0
    rowh, left = 18, 70
    h = rowh * len(groups) + 16
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width + left + 10}" '
             f'height="{h}" font-size="10">']
    for i, (label, vs) in enumerate(groups):
        y = rowh * i + rowh // 2 + 2
        parts.append(f'<text x="2" y="{y + 3}">{_esc(label)}</text>')
        parts.append(f'<line x1="{left}" y1="{y}" x2="{left + width}" y2="{y}" stroke="#ddd"/>')
        for v in vs:
            x = left + (v - lo) / span * width
            parts.append(f'<circle cx="{x:.1f}" cy="{y}" r="3" fill="#36c" '
                         f'fill-opacity="0.6"><title>{v:g}</title></circle>')
    yb = h - 3
    parts.append(f'<text x="{left}" y="{yb}">{lo:g}</text>')
    parts.append(f'<text x="{left + width}" y="{yb}" text-anchor="end">{hi:g}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def summary_html(doc: Mapping[str, Any]) -> str:
    """A self-contained page: the checks table, then each measurement with its dot plot."""
    rows = "".join(
        f"<tr><td>{_esc(c['name'])}</td><td class='{c['verdict']}'>{c['verdict']}</td>"
        f"<td>{c['passes']}/{c['total']}</td><td>"
        + ("n/a" if c["pass_rate"] is None else
           f"{c['pass_rate']:.0%} [{c['wilson95'][0]:.3f}, {c['wilson95'][1]:.3f}]")
        + "</td></tr>" for c in doc["checks"])
    mrows = "".join(
        f"<tr><td>{_esc(m['check'])}.{_esc(m['name'])}</td><td>{_esc(m['unit'] or '')}</td>"
        f"<td>{m['n']}</td><td>{m['median']:g}</td><td>{m['min']:g}</td><td>{m['max']:g}</td>"
        f"<td>{dot_plot_svg([('', m['values'])], 200)}</td></tr>" for m in doc["measurements"])
    links = "".join(f"<li><a href='{_esc(d)}/report.html'>{_esc(d)}</a></li>"
                    for d in doc.get("run_dirs", []))
    return ("<!doctype html><html><head><meta charset='utf-8'><title>repeat: "
            f"{_esc(str(doc.get('scenario')))}</title><style>body{{font-family:sans-serif}}"
            "td,th{padding:2px 8px;border-bottom:1px solid #eee}.pass{color:#080}"
            ".fail,.error{color:#c00}.flaky{color:#c60}</style></head><body>"
            f"<h1>{_esc(str(doc.get('scenario')))}: {doc['verdict']} "
            f"({doc['repeats']} repeats)</h1><table><tr><th>check</th><th>verdict</th>"
            f"<th>passes</th><th>pass rate (95% Wilson)</th></tr>{rows}</table>"
            "<h2>measurements</h2><table><tr><th>measurement</th><th>unit</th><th>n</th>"
            "<th>median</th><th>min</th><th>max</th><th>values</th></tr>"
            f"{mrows}</table><h2>repeats</h2><ul>{links}</ul></body></html>\n")
