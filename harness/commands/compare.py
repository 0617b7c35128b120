"""``harness compare A B``: did a measurement move between two run dirs or repeat dirs?

Per measurement present in both: the medians, B/A, a two-sided Mann-Whitney U test at
``--alpha`` and a call ("changed" / "unchanged" / "too few samples"). ``--guard NAME`` makes
a change in a measurement's worse direction exit 1.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

NAME = "compare"
HELP = "compare the measurements of two run dirs or repeat dirs (Mann-Whitney U, medians)"
MIN_SAMPLES = 3  # below this per side no test can reach alpha 0.05 (3 vs 3: p >= 0.1)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("a", type=Path, metavar="A", help="baseline: a run dir or a --repeat dir")
    p.add_argument("b", type=Path, metavar="B", help="candidate: a run dir or a --repeat dir")
    p.add_argument("--alpha", type=float, default=0.05,
                   help="significance level of the two-sided test (default 0.05)")
    p.add_argument("--guard", action="append", default=[], metavar="NAME",
                   help="exit 1 when this measurement (check.name or name) changed in its "
                   "worse direction; repeatable")
    p.add_argument("--json", action="store_true", help="print the comparison as JSON")
    p.add_argument("--html", type=Path, metavar="FILE", help="also write an HTML page")


def samples(path: Path) -> tuple[dict[str, dict[str, Any]], str]:
    """key -> {check, name, unit, direction, values} of a run dir or a repeat dir."""
    from harness import rundir
    from harness.core.measure import of_results_doc
    from harness.errors import UsageError

    f = path / rundir.RESULTS
    try:
        doc = json.loads(f.read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(str(path), f"not a run directory (no readable {rundir.RESULTS}: "
                         f"{exc})") from exc
    if not isinstance(doc, dict):
        raise UsageError(str(path), f"not a run directory ({rundir.RESULTS} is not an object)")
    out: dict[str, dict[str, Any]] = {}
    if doc.get("kind") == "repeat":
        for m in doc.get("measurements", []):
            out[f"{m['check']}.{m['name']}"] = {k: m[k] for k in
                                                 ("check", "name", "unit", "direction")} | {
                "values": [float(v) for v in m["values"]]}
        return out, "repeat"
    if "checks" not in doc:
        raise UsageError(str(path), "not a run directory (its results.json has no checks)")
    for m in of_results_doc(doc):
        out.setdefault(m.key, {"check": m.check, "name": m.name, "unit": m.unit,
                               "direction": m.direction, "values": []})["values"].append(m.value)
    return out, "run"


def compare(a: dict[str, dict[str, Any]], b: dict[str, dict[str, Any]],
            alpha: float = 0.05) -> list[dict[str, Any]]:
    """One row per measurement present in both (pure)."""
    from harness.core.measure import worse
    from harness.core.stats import mann_whitney, median

    rows = []
    for key in [k for k in a if k in b]:
        va, vb = a[key]["values"], b[key]["values"]
        ma, mb = median(va), median(vb)
        ratio = (mb / ma) if ma else (None if mb else 1.0)
        row: dict[str, Any] = {"key": key, **{k: a[key][k] for k in ("check", "name", "unit",
                                                                       "direction")},
                               "n_a": len(va), "n_b": len(vb), "median_a": ma, "median_b": mb,
                               "ratio": ratio, "u": None, "p": None, "method": None,
                               "values_a": va, "values_b": vb}
        if min(len(va), len(vb)) < MIN_SAMPLES:
            row["call"] = "too few samples"
            row["note"] = (f"n={len(va)} vs n={len(vb)}: a single run dir is one sample; "
                           f"use --repeat N (N >= {MIN_SAMPLES}, better 7) on both sides")
        else:
            t = mann_whitney(vb, va)
            row.update(u=t.u, p=t.p, method=t.method)
            row["call"] = "changed" if t.p < alpha else "unchanged"
            row["note"] = ""
        changed = row["call"] == "changed"
        row["worse"] = bool(changed and row["direction"] and (
            (ratio is None and row["direction"] == "lower")
            or (ratio is not None and worse(row["direction"], ratio))))
        rows.append(row)
    return rows


def guard_hits(rows: list[dict[str, Any]], guards: list[str]) -> list[str]:
    """The guarded measurements (by ``check.name`` or bare name) that got worse."""
    return [r["key"] for r in rows if r["worse"] and (r["key"] in guards or r["name"] in guards)]


def table(rows: list[dict[str, Any]], alpha: float) -> str:
    width = max([12] + [len(r["key"]) + 1 for r in rows])
    out = [f"{'measurement':<{width}} {'n':>5} {'median A':>10} {'median B':>10} {'B/A':>6} "
           f"{'p':>7}  call (alpha {alpha:g})"]
    for r in rows:
        ratio = "n/a" if r["ratio"] is None else f"{r['ratio']:.3f}"
        p = "-" if r["p"] is None else f"{r['p']:.4f}"
        call = r["call"] + (" (worse)" if r["worse"] else "")
        out.append(f"{r['key']:<{width}} {r['n_a']:>2}/{r['n_b']:<2} {r['median_a']:>10.4g} "
                   f"{r['median_b']:>10.4g} {ratio:>6} {p:>7}  {call}")
    notes = sorted({r["note"] for r in rows if r["note"]})
    out += [f"note: {n}" for n in notes]
    if not rows:
        out.append("no measurement present in both")
    return "\n".join(out)


def html(rows: list[dict[str, Any]], a: Path, b: Path, alpha: float) -> str:
    from harness.core.repeat import _esc, dot_plot_svg

    body = "".join(
        f"<tr><td>{_esc(r['key'])}</td><td>{_esc(r['unit'] or '')}</td>"
        f"<td>{r['n_a']}/{r['n_b']}</td><td>{r['median_a']:g}</td><td>{r['median_b']:g}</td>"
        f"<td>{'n/a' if r['ratio'] is None else format(r['ratio'], '.3f')}</td>"
        f"<td>{'-' if r['p'] is None else format(r['p'], '.4f')}</td>"
        f"<td>{_esc(r['call'])}{' (worse)' if r['worse'] else ''}</td>"
        f"<td>{dot_plot_svg([('A', r['values_a']), ('B', r['values_b'])], 220)}</td></tr>"
        for r in rows)
    return ("<!doctype html><html><head><meta charset='utf-8'><title>compare</title><style>"
            "body{font-family:sans-serif}td,th{padding:2px 8px;border-bottom:1px solid #eee}"
            f"</style></head><body><h1>compare</h1><p>A = {_esc(str(a))}<br>B = "
            f"{_esc(str(b))}<br>two-sided Mann-Whitney U, alpha {alpha:g}</p><table><tr>"
            "<th>measurement</th><th>unit</th><th>n A/B</th><th>median A</th><th>median B</th>"
            "<th>B/A</th><th>p</th><th>call</th><th>values</th></tr>"
            f"{body}</table></body></html>\n")


def run(args: argparse.Namespace) -> int:
    from harness.errors import UsageError

    if not 0 < args.alpha < 1:
        raise UsageError(f"--alpha {args.alpha}", "must be between 0 and 1")
    a, _ = samples(args.a)
    b, _ = samples(args.b)
    rows = compare(a, b, args.alpha)
    hits = guard_hits(rows, args.guard)
    if args.json:
        print(json.dumps({"a": str(args.a), "b": str(args.b), "alpha": args.alpha,
                          "measurements": rows, "guard_failed": hits}, indent=2))
    else:
        print(table(rows, args.alpha))
        for h in hits:
            print(f"guard: {h} got worse")
    if args.html:
        args.html.write_text(html(rows, args.a, args.b, args.alpha))
    return 1 if hits else 0
