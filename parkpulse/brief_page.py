"""The monthly brief as a page: a written paragraph and lists per zone, then a table to check.

Rendering only; the content comes from :func:`parkpulse.brief.build_brief`. The page reuses the
static report's head, styles and status badges (parkpulse/report.py), is self-contained (no
scripts, nothing fetched) and prints to PDF through headless Chromium (parkpulse/chromium.py).
"""

from __future__ import annotations

import html
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from parkpulse.board.pages import badge, fmt
from parkpulse.brief import BriefError, Change, MonthlyBrief, ZoneBrief, build_brief, parse_month
from parkpulse.chromium import find_chromium, print_pdf
from parkpulse.report import _page_head
from parkpulse.schemas.catalogue import Catalogue
from parkpulse.vocabulary import (
    Lang,
    indicator_name,
    indicator_unit,
    status_label,
    text,
    zone_name,
)

BRIEF_CSS = """
.summary{font-size:15px;line-height:1.7;max-width:60em}
h3{font-size:15px;margin:18px 0 4px}
ul.changes{margin:4px 0;padding-left:22px;line-height:1.7;font-size:14px}
.none{color:#57606a;font-size:14px}
.flag{color:#cf222e;font-weight:700}
@media print{body{margin:0}section.zone+section.zone{break-before:page}}
"""
# The lists a zone's brief shows, in order; each names the changes it holds.
LISTS: tuple[tuple[str, Callable[[ZoneBrief], list[Change]]], ...] = (
    ("fell_behind", lambda z: z.moved("fell_behind")),
    ("recovered", lambda z: z.moved("recovered")),
    ("improved", lambda z: z.moved("improved")),
    ("still_lagging", lambda z: z.moved("still_lagging")),
    ("out_of_reach", lambda z: z.out_of_reach),
)


def _pct(value: float | None) -> str:
    return fmt(value, "{:.1%}")


def _signed(value: float | None) -> str:
    return fmt(value, "{:+.1f}")


def sentence(change: Change, catalogue: Catalogue | None, lang: Lang) -> str:
    """One change in words: the move, attainment (or gap) and its change, the growth needed."""
    now = status_label(change.status, lang)
    if change.previous_status is None:
        parts = [text("brief_new", lang).format(status=now)]
    elif change.previous_status == change.status:
        parts = [text("brief_stayed", lang).format(status=now)]
    else:
        previous = status_label(change.previous_status, lang)
        parts = [text("brief_moved", lang).format(previous=previous, status=now)]
    if change.kind == "growth" and change.gap_pp is not None:
        parts.append(
            text("brief_gap", lang).format(
                actual=fmt(change.actual, "{:.1f}") or "—",
                target=fmt(change.expected, "{:.1f}") or "—",
                value=_signed(change.gap_pp),
                change=_signed(change.gap_change_pp) or "—",
            )
        )
    elif change.attainment is not None:
        if change.attainment_change_pp is None:
            parts.append(text("brief_attainment_new", lang).format(value=_pct(change.attainment)))
        else:
            parts.append(
                text("brief_attainment", lang).format(
                    value=_pct(change.attainment), change=_signed(change.attainment_change_pp)
                )
            )
    if change.kind != "growth" and change.actual is not None and change.expected is not None:
        parts.append(
            text("brief_actual", lang).format(
                actual=fmt(change.actual),
                expected=fmt(change.expected),
                unit=indicator_unit(change.indicator, catalogue, lang),
            )
        )
    if change.required_growth_pct is not None:
        parts.append(text("brief_required", lang).format(value=_signed(change.required_growth_pct)))
    separator, colon = ("，", "：") if lang == "zh" else (", ", ": ")
    name = indicator_name(change.indicator, catalogue, lang)
    star = "★ " if change.binding else ""
    return (
        f"<b>{star}{html.escape(name)}</b> <small>{html.escape(change.plan)} · "
        f"{html.escape(change.period)}</small>{colon}{html.escape(separator.join(parts))}"
    )


def _reach_sentence(change: Change, catalogue: Catalogue | None, lang: Lang) -> str:
    name = indicator_name(change.indicator, catalogue, lang)
    words = text("brief_reach", lang).format(
        required=_signed(change.required_growth_pct), best=_signed(change.best_rest_growth_pct)
    )
    colon = "：" if lang == "zh" else ": "
    return (
        f"<span class='flag'>⚠</span> <b>{html.escape(name)}</b> "
        f"<small>{html.escape(change.plan)}</small>{colon}{html.escape(words)}"
    )


def summary(zone: ZoneBrief, brief: MonthlyBrief, lang: Lang) -> str:
    """The zone's paragraph: counts as of the month and how many moved since the last."""
    c = zone.counts
    evaluated = sum(c.get(s, 0) for s in ("achieved", "on_track", "at_risk", "behind"))
    share = zone.share_on_track
    return text("brief_summary", lang).format(
        month=brief.month,
        evaluated=evaluated,
        good=c.get("achieved", 0) + c.get("on_track", 0),
        share="—" if share is None else f"{share:.0%}",
        at_risk=c.get("at_risk", 0),
        behind=c.get("behind", 0),
        fell=len(zone.moved("fell_behind")),
        recovered=len(zone.moved("recovered")),
        reach=len(zone.out_of_reach),
    )


def _table(zone: ZoneBrief, catalogue: Catalogue | None, lang: Lang) -> str:
    headers = (
        "indicator", "plan", "brief_of_month", "previous_status", "status", "attainment",
        "attainment_change", "gap_pp", "gap_change", "required_growth", "out_of_reach",
    )  # fmt: skip
    head = "".join(f"<th>{html.escape(text(h, lang))}</th>" for h in headers)
    rows = []
    for c in zone.changes:
        before = badge(c.previous_status, lang) if c.previous_status else ""
        rows.append(
            f'<tr data-indicator="{html.escape(c.indicator)}" data-plan="{html.escape(c.plan)}"'
            f' data-movement="{c.movement}">'
            f"<td>{html.escape(indicator_name(c.indicator, catalogue, lang))}</td>"
            f"<td>{html.escape(c.plan)}</td><td>{html.escape(c.period)}</td>"
            f"<td>{before}</td><td>{badge(c.status, lang)}</td>"
            f"<td>{_pct(c.attainment)}</td><td>{_signed(c.attainment_change_pp)}</td>"
            f"<td>{_signed(c.gap_pp)}</td><td>{_signed(c.gap_change_pp)}</td>"
            f"<td>{_signed(c.required_growth_pct)}</td>"
            f"<td>{'⚠' if c.out_of_reach else ''}</td></tr>"
        )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def render_zone_brief(
    zone: ZoneBrief, brief: MonthlyBrief, catalogue: Catalogue | None, lang: Lang
) -> str:
    """One zone's section: its paragraph, a list per kind of change, the table of every key."""
    name = zone_name(zone.zone, catalogue, lang)
    parts = [
        f'<section class="zone" data-zone="{html.escape(zone.zone)}">'
        f"<h2>{html.escape(name)} <small>{html.escape(zone.zone)}</small></h2>"
        f'<p class="summary">{html.escape(summary(zone, brief, lang))}</p>'
    ]
    for key, pick in LISTS:
        changes = pick(zone)
        parts.append(f'<h3 data-list="{key}">{html.escape(text(key, lang))}</h3>')
        if not changes:
            parts.append(f'<p class="none">{html.escape(text("brief_none", lang))}</p>')
            continue
        make = _reach_sentence if key == "out_of_reach" else sentence
        items = "".join(
            f'<li data-indicator="{html.escape(c.indicator)}" data-plan="{html.escape(c.plan)}">'
            f"{make(c, catalogue, lang)}</li>"
            for c in changes
        )
        parts.append(f'<ul class="changes" data-list="{key}">{items}</ul>')
    parts.append(_table(zone, catalogue, lang) + "</section>")
    return "".join(parts)


def render_brief(
    brief: MonthlyBrief,
    catalogue: Catalogue | None,
    lang: Lang,
    generated_at: datetime | None = None,
) -> str:
    """The whole brief as one self-contained HTML page."""
    title = f"parkpulse — {text('brief_title', lang).format(month=brief.month)}"
    head = _page_head(generated_at or datetime.now(UTC), title, lang)
    head = head.replace("</style>", BRIEF_CSS + "</style>", 1)
    compared = text("brief_compared", lang).format(previous=brief.previous_month)
    body = "".join(render_zone_brief(z, brief, catalogue, lang) for z in brief.zones)
    return f"{head}<p class='legend'>{html.escape(compared)}</p>{body}</body></html>"


def write_brief(page: str, out: Path, fmt: str) -> Path:
    """Write ``page`` to ``out`` as HTML, or print it to PDF there (through a sibling .html)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "html":
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(page, encoding="utf-8")
        tmp.replace(out)
        return out
    with tempfile.TemporaryDirectory(prefix="parkpulse-brief-") as work:
        source = Path(work) / "brief.html"
        source.write_text(page, encoding="utf-8")
        return print_pdf(source, out)


def default_out(data_dir: Path, month: str, zone: str | None, fmt: str) -> Path:
    """DATA_DIR/briefs/brief-YYYY-MM[-zone].html|pdf"""
    return data_dir / "briefs" / f"brief-{month}{'-' + zone if zone else ''}.{fmt}"


def make_brief(
    fetch: Callable[[str | None], list[dict[str, Any]]],
    month: str,
    zone: str | None,
    fmt: str,
    out: Path,
    catalogue: Catalogue | None,
    lang: Lang,
) -> Path:
    """Fetch the status history (one zone or all), build the brief for ``month``, write it.

    Checks what it can before fetching (the month, Chromium for a PDF); BriefError,
    ChromiumMissing or ChromiumFailed carry one line for the user.
    """
    parse_month(month)
    if fmt == "pdf":
        find_chromium()
    brief = build_brief(fetch(zone), month, zone)
    if not brief.zones:
        where = f" for zone {zone}" if zone else ""
        raise BriefError(f"no status rows at or before {month}{where}")
    return write_brief(render_brief(brief, catalogue, lang), out, fmt)
