"""A static HTML report for people without Grafana: per zone, actual vs plan path and statuses.

Self-contained (inline SVG and CSS, no scripts, nothing fetched), so it opens from disk anywhere.
"""

from __future__ import annotations

import asyncio
import html
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from parkpulse.schemas.catalogue import Catalogue
from parkpulse.sinks.clickhouse import ClickHouseStore

STATUS_COLOUR = {
    "achieved": "#1a7f37",
    "on_track": "#2da44e",
    "at_risk": "#bf8700",
    "behind": "#cf222e",
    "no_data": "#8c959f",
    "not_evaluated": "#8c959f",
}
CHART_W, CHART_H, PAD = 360, 150, 28
# A rewrite waits at least this many times as long as the last one took: at national scale the
# report costs the worker at most one part in REWRITE_SHARE of its time.
REWRITE_SHARE = 20

CSS = """
body{font-family:system-ui,"Noto Sans CJK SC",sans-serif;margin:24px;color:#1f2328}
h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #d0d7de}
table{border-collapse:collapse;font-size:13px;margin:8px 0}
td,th{border:1px solid #d0d7de;padding:3px 8px;text-align:right}
td:nth-child(-n+3),th{text-align:left}
.status{color:#fff;border-radius:4px;padding:1px 6px;font-weight:600}
.charts{display:flex;flex-wrap:wrap;gap:12px}
figure{margin:0;border:1px solid #d0d7de;border-radius:6px;padding:6px}
figcaption{font-size:12px}
.legend{font-size:12px;color:#57606a}
"""


def _fmt(value: Any, spec: str = "{:,.2f}") -> str:
    return "" if value is None else spec.format(value)


def _badge(status: str) -> str:
    colour = STATUS_COLOUR.get(status, "#8c959f")
    return f'<span class="status" style="background:{colour}">{html.escape(status)}</span>'


def _polyline(points: Sequence[tuple[float, float]], colour: str, dash: str = "") -> str:
    if not points:
        return ""
    coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    dashed = f' stroke-dasharray="{dash}"' if dash else ""
    return f'<polyline fill="none" stroke="{colour}" stroke-width="2"{dashed} points="{coords}"/>'


def chart(rows: Sequence[Mapping[str, Any]]) -> str:
    """An SVG line chart of actual (solid) vs expected on the plan path (dashed), by month."""
    rows = [r for r in rows if r.get("actual") is not None or r.get("expected") is not None]
    if not rows:
        return '<svg class="chart" width="360" height="40"><text x="8" y="24">no data</text></svg>'
    values = [v for r in rows for v in (r.get("actual"), r.get("expected")) if v is not None]
    low, high = min(values), max(values)
    span = (high - low) or abs(high) or 1.0
    low, high = low - 0.05 * span, high + 0.05 * span
    n = len(rows)

    def x(i: int) -> float:
        return PAD + (CHART_W - 2 * PAD) * (i / (n - 1) if n > 1 else 0.5)

    def y(v: float) -> float:
        return CHART_H - PAD + (CHART_H - 2 * PAD) * -(v - low) / (high - low)

    actual = [(x(i), y(r["actual"])) for i, r in enumerate(rows) if r.get("actual") is not None]
    expected = [
        (x(i), y(r["expected"])) for i, r in enumerate(rows) if r.get("expected") is not None
    ]
    dots = "".join(
        f'<circle cx="{x(i):.1f}" cy="{y(r["actual"]):.1f}" r="2.5" '
        f'fill="{STATUS_COLOUR.get(r.get("status", ""), "#8c959f")}"/>'
        for i, r in enumerate(rows)
        if r.get("actual") is not None
    )
    labels = (
        f'<text x="{PAD}" y="{CHART_H - 8}" font-size="10">{html.escape(rows[0]["period"])}</text>'
        f'<text x="{CHART_W - PAD}" y="{CHART_H - 8}" font-size="10" text-anchor="end">'
        f"{html.escape(rows[-1]['period'])}</text>"
        f'<text x="4" y="{PAD - 8}" font-size="10">{_fmt(high, "{:,.4g}")}</text>'
        f'<text x="4" y="{CHART_H - PAD + 12}" font-size="10">{_fmt(low, "{:,.4g}")}</text>'
    )
    return (
        f'<svg class="chart" width="{CHART_W}" height="{CHART_H}" role="img">'
        f'<rect x="{PAD}" y="{PAD}" width="{CHART_W - 2 * PAD}" height="{CHART_H - 2 * PAD}" '
        'fill="#f6f8fa"/>'
        f"{_polyline(expected, '#57606a', '5,4')}{_polyline(actual, '#0969da')}{dots}{labels}"
        "</svg>"
    )


def _page_head(generated_at: datetime) -> str:
    return (
        "<!doctype html><html lang='zh-CN'><head><meta charset='utf-8'>"
        "<title>parkpulse report</title>"
        f"<style>{CSS}</style></head><body>"
        "<h1>parkpulse — high-tech zones against their plans</h1>"
        f"<p class='legend'>Generated {generated_at:%Y-%m-%d %H:%M} UTC. Solid blue: actual; "
        "dashed grey: expected on the plan path; dots coloured by status.</p>"
    )


def render_zone(zone: str, rows: Iterable[Mapping[str, Any]], catalogue: Catalogue) -> str:
    """One zone's section: its status table and a chart per (indicator, plan)."""
    series: dict[tuple[str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for row in rows:
        series[(row["indicator"], row["plan"])].append(row)
    name = catalogue.zones[zone].name_zh if zone in catalogue.zones else zone
    parts = [
        f"<section id='{html.escape(zone)}'><h2>{html.escape(name)} ({html.escape(zone)})</h2>",
        "<table><thead><tr><th>indicator</th><th>plan</th><th>period</th><th>status</th>"
        "<th>attainment</th><th>actual</th><th>expected</th><th>annual target</th>"
        "<th>needs growth %</th></tr></thead><tbody>",
    ]
    charts = []
    for (indicator, plan), rows_of in sorted(series.items()):
        rows_of = sorted(rows_of, key=lambda r: r["period"])
        last = rows_of[-1]
        label = (
            catalogue.indicators[indicator].name_zh
            if indicator in catalogue.indicators
            else indicator
        )
        parts.append(
            f"<tr><td>{html.escape(label)} <small>{html.escape(indicator)}</small></td>"
            f"<td>{html.escape(plan)}</td><td>{html.escape(last['period'])}</td>"
            f"<td>{_badge(last['status'])}</td>"
            f"<td>{_fmt(last.get('attainment'), '{:.1%}')}</td>"
            f"<td>{_fmt(last.get('actual'))}</td><td>{_fmt(last.get('expected'))}</td>"
            f"<td>{_fmt(last.get('annual_target'))}</td>"
            f"<td>{_fmt(last.get('required_growth_pct'), '{:+.1f}')}</td></tr>"
        )
        charts.append(
            f"<figure>{chart(rows_of)}<figcaption>{html.escape(label)} · {html.escape(plan)}"
            f"</figcaption></figure>"
        )
    parts.append("</tbody></table><div class='charts'>" + "".join(charts) + "</div></section>")
    return "".join(parts)


async def write_report(store: ClickHouseStore, catalogue: Catalogue, path: Path) -> Path:
    """Write the report from the store zone by zone, atomically (a browser never sees half a
    file). One zone's rows are held at a time, and the worker's own writes go between them."""
    tmp = path.with_suffix(".html.tmp")
    zones = await store.arun(store.status_zones)
    with tmp.open("w", encoding="utf-8") as fh:
        fh.write(_page_head(datetime.now(UTC)))
        for zone in zones:
            rows = await store.arun(store.status_rows, zone)
            fh.write(render_zone(zone, rows, catalogue))
        fh.write("</body></html>")
    tmp.replace(path)
    return path


async def keep_report_fresh(
    store: ClickHouseStore, catalogue: Catalogue, path: Path, every: float = 2.0
) -> None:
    """Rewrite the report whenever the status rows change (runs until cancelled).

    A cheap fingerprint of the table decides; the next check waits at least REWRITE_SHARE times
    as long as the last rewrite took.
    """
    last: tuple[int, int] | None = None
    while True:
        fingerprint = await store.arun(store.status_fingerprint)
        wait = every
        if fingerprint != last:
            started = time.monotonic()
            await write_report(store, catalogue, path)
            last = fingerprint
            wait = max(every, REWRITE_SHARE * (time.monotonic() - started))
        await asyncio.sleep(wait)
