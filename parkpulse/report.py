"""A static HTML report for people without Grafana: per zone, actual vs plan path and statuses.

Self-contained (inline SVG and CSS, no scripts, nothing fetched), so it opens from disk anywhere.
"""

from __future__ import annotations

import asyncio
import html
import math
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from parkpulse.board.chart import line_chart
from parkpulse.board.pages import badge, fmt
from parkpulse.schemas.catalogue import Catalogue
from parkpulse.sinks.clickhouse import ClickHouseStore
from parkpulse.throttle import report_due
from parkpulse.vocabulary import (
    DEFAULT_LANG,
    Lang,
    indicator_name,
    indicator_unit,
    text,
    zone_name,
)

# A rewrite waits at least this many times as long as the last one took: at national scale the
# report costs the worker at most one part in REWRITE_SHARE of its time.
REWRITE_SHARE = 20
# While status rows keep changing between two checks (a backlog streaming in) the page is
# rewritten at most every REWRITE_BUSY_EVERY seconds and REWRITE_BUSY_SHARE times the last
# rewrite: a backfill is not slowed by pages nobody reads before it ends. Once the rows settle
# the page is rewritten at the next check.
REWRITE_BUSY_EVERY = 120.0
REWRITE_BUSY_SHARE = 100
SIGNALS_FIRST = 30.0  # seconds a starting worker's report waits for its gauges, at most

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


def _page_head(generated_at: datetime, title: str | None = None, lang: Lang = DEFAULT_LANG) -> str:
    """The page up to its first section: title, styles, and when it was made."""
    title = html.escape(title or f"parkpulse — {text('board_title', lang)}")
    return (
        f"<!doctype html><html lang='{'zh-CN' if lang == 'zh' else 'en'}'><head>"
        f"<meta charset='utf-8'><title>{title}</title>"
        f"<style>{CSS}</style></head><body>"
        f"<h1>{title}</h1>"
        f"<p class='legend'>{generated_at:%Y-%m-%d %H:%M} UTC</p>"
    )


def render_zone(
    zone: str,
    rows: Iterable[Mapping[str, Any]],
    catalogue: Catalogue,
    lang: Lang = DEFAULT_LANG,
) -> str:
    """One zone's section: its status table and a chart per (indicator, plan), in ``lang``."""
    series: dict[tuple[str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for row in rows:
        series[(row["indicator"], row["plan"])].append(row)
    name = zone_name(zone, catalogue, lang)
    parts = [
        f"<section id='{html.escape(zone)}'><h2>{html.escape(name)} ({html.escape(zone)})</h2>",
        "<table><thead><tr>"
        + "".join(
            f"<th>{html.escape(text(key, lang))}</th>"
            for key in (
                "indicator",
                "plan",
                "period",
                "status",
                "attainment",
                "actual",
                "expected",
                "annual_target",
                "gap_pp",
                "required_growth",
            )
        )
        + "</tr></thead><tbody>",
    ]
    charts = []
    for (indicator, plan), history in sorted(series.items()):
        tr, figure = _indicator_entry(indicator, plan, history, catalogue, lang)
        parts.append(tr)
        charts.append(figure)
    parts.append("</tbody></table><div class='charts'>" + "".join(charts) + "</div></section>")
    return "".join(parts)


def _indicator_entry(
    indicator: str,
    plan: str,
    history: Sequence[Mapping[str, Any]],
    catalogue: Catalogue,
    lang: Lang = DEFAULT_LANG,
) -> tuple[str, str]:
    """One (indicator, plan) of a zone: its table row (the latest month) and its chart."""
    rows = sorted(history, key=lambda r: r["period"])
    last = rows[-1]
    label = indicator_name(indicator, catalogue, lang)
    unit = "%" if last["kind"] == "growth" else indicator_unit(indicator, catalogue, lang)
    tr = (
        f"<tr><td>{html.escape(label)} <small>{html.escape(indicator)}</small></td>"
        f"<td>{html.escape(plan)}</td><td>{html.escape(last['period'])}</td>"
        f"<td>{badge(last['status'], lang)}</td>"
        f"<td>{fmt(last.get('attainment'), '{:.1%}')}</td>"
        f"<td>{fmt(last.get('actual'))} <small>{html.escape(unit)}</small></td>"
        f"<td>{fmt(last.get('expected'))}</td>"
        f"<td>{fmt(last.get('annual_target'))}</td>"
        f"<td>{fmt(last.get('gap_pp'), '{:+.1f}')}</td>"
        f"<td>{fmt(last.get('required_growth_pct'), '{:+.1f}')}</td></tr>"
    )
    svg = line_chart(rows, unit, lang, nonnegative=last["kind"] != "growth")
    figure = (
        f"<figure>{svg}<figcaption>{html.escape(label)} · {html.escape(plan)}</figcaption></figure>"
    )
    return tr, figure


async def write_report(
    store: ClickHouseStore, catalogue: Catalogue, path: Path, lang: Lang = DEFAULT_LANG
) -> Path:
    """Write the report from the store zone by zone, atomically (a browser never sees half a
    file). One zone's rows are held at a time, and the worker's own writes go between them;
    after each zone it rests as long as the zone took to render, so the worker's loop and the
    metrics endpoint keep at least half the interpreter (a national page is seconds of CPU).

    The temporary file is this write's own: replicas sharing a DATA_DIR (``docker compose up
    --scale worker=3`` with one volume) each write the page, and none renames another's half."""
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(name)
    try:
        zones = await store.arun(store.status_zones)
        with open(handle, "w", encoding="utf-8") as fh:
            fh.write(_page_head(datetime.now(UTC), lang=lang))
            for zone in zones:
                rows = await store.arun(store.status_rows, zone)
                started = time.monotonic()
                fh.write(render_zone(zone, rows, catalogue, lang))
                await asyncio.sleep(time.monotonic() - started)
            fh.write("</body></html>")
        tmp.chmod(0o644)  # mkstemp's 0600 would hide the page from a web server's user
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


async def keep_report_fresh(
    store: ClickHouseStore,
    catalogue: Catalogue,
    path: Path,
    every: float = 2.0,
    lang: Lang = DEFAULT_LANG,
    after: threading.Event | None = None,
) -> None:
    """Rewrite the report (in ``lang``) whenever the status rows change (runs until cancelled).

    ``after``: the first check waits for it (at most SIGNALS_FIRST seconds): a restarted worker
    exports its gauges before it spends seconds of the interpreter on the page.

    A cheap fingerprint of the table (its newest version), checked every ``every`` seconds,
    decides (``throttle.report_due``): rewrites are at least REWRITE_SHARE times the last one's
    duration apart; while the fingerprint keeps changing between checks, at least
    REWRITE_BUSY_EVERY seconds and REWRITE_BUSY_SHARE times; once it settles, at the next check.
    """
    # The fingerprint the page on disk was written from: a restarted worker does not rewrite an
    # up-to-date report (at national scale that is seconds of the store's one thread, which the
    # restarted worker's gauges and zone reloads are waiting for).
    mark = path.with_name(path.name + ".fingerprint")
    last = _read_fingerprint(mark) if path.exists() else None
    seen: int | None = None
    written_at, took = -math.inf, 0.0
    waited = time.monotonic() + SIGNALS_FIRST
    while after is not None and not after.is_set() and time.monotonic() < waited:
        await asyncio.sleep(every / 10)
    while True:
        fingerprint = await store.arun(store.status_fingerprint)
        now = time.monotonic()
        busy_gap = max(REWRITE_BUSY_EVERY, REWRITE_BUSY_SHARE * took)
        if report_due(fingerprint, last, seen, now - written_at, REWRITE_SHARE * took, busy_gap):
            await write_report(store, catalogue, path, lang)
            last = fingerprint
            mark.write_text(str(fingerprint))
            written_at = time.monotonic()
            took = written_at - now
            fingerprint = await store.arun(store.status_fingerprint)  # as of the page's end
        seen = fingerprint
        await asyncio.sleep(every)


def _read_fingerprint(mark: Path) -> int | None:
    try:
        return int(mark.read_text())
    except (OSError, ValueError):
        return None
