"""The mempressure run's picture: available memory, swap, chunks held and requests over time.

A dependency-free SVG (pure: data in, markup out) on the guest's uptime axis, with the
harness's actions (stress start, balloon squeeze, SIGTERM) as dashed markers.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness.core.plugin import SavedRun
from harness.scenarios.mempressure import reclaim
from harness.scenarios.mempressure.workload_output import (
    MemSample,
    StressLog,
    parse_mem_series,
    parse_stress,
)

CAPTION = ("<p>Guest-side samples (MemAvailable, swap) every 0.5 s; chunks held and requests "
           "from mpstress's event log; dashed lines are harness actions. Host-side balloon "
           'statistics from QMP: <a href="memory-host-qmp.json">memory-host-qmp.json</a>.</p>')


@dataclass(frozen=True)
class Series:
    label: str
    color: str
    points: list[tuple[float, float]]
    dashed: bool = False


def _steps(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """A value that only changes at events is drawn as a step, not a slope."""
    out: list[tuple[float, float]] = []
    for t, v in points:
        if out:
            out.append((t, out[-1][1]))
        out.append((t, v))
    return out


def timeline_series(mem: Sequence[MemSample], stress: StressLog | None, chunk_size: int,
                    host: Sequence[dict[str, Any]] = ()) -> tuple[list[Series],
                                                                   list[tuple[float, int]]]:
    """MiB-valued lines and request ticks (t, chunks), all on the guest's uptime axis.

    The QMP balloon line comes from the host side: it keeps going when a
    thrashing guest starves the in-guest sampler (the gaps in the solid line).
    """
    lines = [
        Series("MemAvailable (MiB)", "#1f77b4", [(s.t, s.mem_available / 1024) for s in mem]),
        Series("swap used (MiB)", "#d62728",
               [(s.t, (s.swap_total - s.swap_free) / 1024) for s in mem]),
    ]
    qmp = [(float(h["guest_t"]), h["stat-available-memory"] / 2**20) for h in host
           if "guest_t" in h and 0 <= h.get("stat-available-memory", -1) < 2**62]
    if qmp:
        lines.append(Series("available, QMP balloon stats (MiB)", "#9467bd", qmp, dashed=True))
    requests: list[tuple[float, int]] = []
    if stress is not None:
        held = [(e.t, e.int("held") * chunk_size / 2**20) for e in stress.events
                if e.kind in ("added", "freed") and "held" in e.fields]
        lines.append(Series("chunks held (MiB)", "#2ca02c", _steps(held)))
        requests = [(e.t, e.int("n")) for e in stress.of("asked")]
    return lines, requests


def _segments(points: Sequence[tuple[float, float]], gap: float) -> list[list[tuple[float, float]]]:
    """Split a sampled line where samples are missing, instead of drawing a false slope."""
    segs: list[list[tuple[float, float]]] = []
    for p in points:
        if not segs or p[0] - segs[-1][-1][0] > gap:
            segs.append([])
        segs[-1].append(p)
    return segs


def timeline_svg(lines: Sequence[Series], requests: Sequence[tuple[float, int]],
                 markers: Sequence[dict[str, Any]], width: int = 900, height: int = 340,
                 gap_s: float = 5.0, unit: str = "MiB", legend_label: str | None = None) -> str:
    """A dependency-free SVG line chart over guest uptime (pure: data in, markup out)."""
    pts = [p for s in lines for p in s.points]
    ts = [p[0] for p in pts] + [t for t, _ in requests] + [float(m["t"]) for m in markers]
    if not ts:
        return "<p>No time series was collected.</p>"
    t0, t1 = min(ts), max(ts)
    t1 = t1 if t1 > t0 else t0 + 1
    ymax = max([p[1] for p in pts] + [1.0]) * 1.1
    left, right, top, bottom = 55, 15, 40, 60
    pw, ph = width - left - right, height - top - bottom

    def x(t: float) -> float:
        return left + (t - t0) / (t1 - t0) * pw

    def y(v: float) -> float:
        return top + ph - v / ymax * ph

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="11">',
           f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>',
           f'<text x="{left - 45}" y="{top - 8}">{unit}</text>']
    for i in range(6):
        v = ymax * i / 5
        out.append(f'<text x="{left - 5}" y="{y(v) + 4:.1f}" text-anchor="end">{v:.0f}</text>')
        tv = t0 + (t1 - t0) * i / 5
        out.append(f'<text x="{x(tv):.1f}" y="{top + ph + 15}" text-anchor="middle">'
                   f'{tv - t0:.0f}s</text>')
    for i, m in enumerate(sorted(markers, key=lambda m: float(m["t"]))):
        mx = x(float(m["t"]))
        ly = top - 24 + 12 * (i % 2)  # alternate rows so neighbouring labels don't collide
        out.append(f'<line x1="{mx:.1f}" y1="{ly + 2}" x2="{mx:.1f}" y2="{top + ph}" '
                   f'stroke="#888" stroke-dasharray="4,3"/>')
        out.append(f'<text x="{mx + 3:.1f}" y="{ly}" fill="#555">{m["label"]}</text>')
    for t, n in requests:
        rx = x(t)
        out.append(f'<line x1="{rx:.1f}" y1="{top + ph}" x2="{rx:.1f}" y2="{top + ph - 10}" '
                   f'stroke="#ff7f0e" stroke-width="2"><title>request: {n} chunks at '
                   f'{t - t0:.2f}s</title></line>')
    for s in lines:
        dash = ' stroke-dasharray="5,3"' if s.dashed else ""
        for seg in _segments(s.points, gap_s if not s.label.startswith("chunks") else 1e9):
            if len(seg) < 2:
                continue
            path = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in seg)
            out.append(f'<polyline fill="none" stroke="{s.color}" stroke-width="1.5"{dash} '
                       f'points="{path}"/>')
    legend = [*((s.label, s.color) for s in lines)]
    if requests or legend_label is None:
        legend.append(("kernel requests (ticks)", "#ff7f0e"))
    for i, (label, color) in enumerate(legend):
        lx = left + (i % 3) * 280
        ly = height - 30 + 16 * (i // 3)
        out.append(f'<rect x="{lx}" y="{ly - 9}" width="10" height="10" fill="{color}"/>')
        out.append(f'<text x="{lx + 14}" y="{ly}">{label}</text>')
    out.append("</svg>")
    return "\n".join(out)


def run_svg(run: SavedRun) -> str:
    """The timeline of a saved run ("" when the run never reached the stress phase)."""
    if not run.has("memory-guest.tsv") and not run.has("mpstress.out"):
        return ""
    mem = parse_mem_series(run.text("memory-guest.tsv"))  # the header line is skipped
    stress = parse_stress(run.text("mpstress.out")) if run.has("mpstress.out") else None
    try:
        host = json.loads(run.text("memory-host-qmp.json") or "[]")
    except json.JSONDecodeError:
        host = []
    chunk = int(run.spec.data.get("workload", {}).get("chunk_size", 1 << 20))
    lines, requests = timeline_series(mem, stress, chunk, host)
    return (timeline_svg(lines, requests, run.observations.get("markers", [])) + CAPTION
            + deficit_html(run, mem, chunk))


def stress_passes(run: SavedRun, mem: Sequence[MemSample], chunk: int) -> list[reclaim.Pass]:
    """The run's stress pass and, where the scenario has one, its reference pass."""
    out = []
    # Runs saved before the page size was observed were all x86_64: 4 KiB.
    page = int(run.observations.get("page_size") or reclaim.PAGE_SIZE)
    ref_label = str(run.spec.data.get("reference", {}).get("label", "reference"))
    for obs_key, artifact, label in (("stress", "mpstress.out", "this run"),
                                     ("stress_reference", "mpstress-reference.out", ref_label)):
        obs = run.observations.get(obs_key)
        if not obs or not run.has(artifact) or obs.get("t_start") is None:
            continue
        out.append(reclaim.stress_pass(label, mem, parse_stress(run.text(artifact)),
                                       float(obs["t_start"]), chunk,
                                       reclaim.lru_gen_on(obs.get("lru_gen")), page))
    return out


def _cumulative(p: reclaim.Pass, attr: str) -> list[tuple[float, float]]:
    total, pts = 0, []
    for iv in p.intervals:
        total += getattr(iv, attr)
        pts.append((iv.t1 - p.t_start, total / 2**20))
    return pts


def deficit_html(run: SavedRun, mem: Sequence[MemSample], chunk: int) -> str:
    """Reclaim's deficit beside what was asked, per pass (and per LRU, with a reference)."""
    passes = [p for p in stress_passes(run, mem, chunk) if p.intervals]
    if not passes:
        return ""
    colors = [("#d62728", "#1f77b4", "#2ca02c"), ("#ff9896", "#aec7e8", "#98df8a")]
    cum: list[Series] = []
    held: list[Series] = []
    for i, p in enumerate(passes):
        c = colors[i % 2]
        dashed = i > 0
        cum.append(Series(f"deficit, {p.label} (MiB, cumulative)", c[0],
                          _cumulative(p, "deficit_bytes"), dashed))
        cum.append(Series(f"asked, {p.label} (MiB, cumulative)", c[1],
                          _cumulative(p, "asked_bytes"), dashed))
        held.append(Series(f"chunks held, {p.label} (MiB)", c[2],
                           [(iv.t1 - p.t_start, iv.held_bytes / 2**20) for iv in p.intervals],
                           dashed))
    rows = "".join(
        f"<tr><td>{p.label}</td><td>{p.summary['scanned_pages']}</td>"
        f"<td>{p.summary['reclaimed_pages']}</td><td>{p.summary['scanned_direct_pages']}</td>"
        f"<td>{p.summary['deficit_bytes'] / 2**20:.1f}</td>"
        f"<td>{p.summary['asked_bytes'] / 2**20:.1f}</td>"
        f"<td>{p.summary['asked_per_deficit']}</td><td>{p.summary['requests']}</td>"
        f"<td>{'-' if p.summary['t_oom_s'] is None else p.summary['t_oom_s']}</td></tr>"
        for p in passes)
    return ("<h3>Reclaim's deficit and what the shrinker was asked</h3>"
            + timeline_svg(cum, [], [], unit="MiB", legend_label="")
            + timeline_svg(held, [], [], height=260, unit="MiB", legend_label="")
            + "<table><tr><th>pass</th><th>pages scanned</th><th>reclaimed</th>"
              "<th>of them scanned by direct reclaim</th><th>deficit (MiB)</th>"
              "<th>asked (MiB)</th><th>asked per deficit byte</th><th>requests</th>"
              "<th>OOM kill after (s)</th></tr>" + rows + "</table>"
            + "<p>Per 0.5 s sample: deficit = (pgscan - pgsteal) x page size from "
              "/proc/vmstat (kswapd + direct), asked = chunks requested x chunk size; the x "
              "axis is seconds since each pass's start. A dashed line is the reference pass "
              "(the same workload in the same boot under the scenario's [reference] setup).</p>")
