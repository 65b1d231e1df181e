"""The board's pages as HTML (pure: status rows and the catalogue in, a page out).

``/``: zones × indicators coloured by status, zones ranked by their share of evaluated
indicators achieved or on track, binding (约束性) indicators first. ``/zone/<id>``: every
indicator of one zone, this month's figures, required growth, out_of_reach, and a chart each.
"""

from __future__ import annotations

import html
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from parkpulse import explain
from parkpulse.board.chart import line_chart
from parkpulse.schemas.catalogue import Catalogue
from parkpulse.vocabulary import (
    STATUS_COLOUR,
    Lang,
    indicator_name,
    kind_label,
    status_label,
    text,
    unit_label,
    zone_name,
)

Row = Mapping[str, Any]
EVALUATED = ("achieved", "on_track", "at_risk", "behind")
GOOD = ("achieved", "on_track")
# Worst first: the cell of a zone × indicator with several plans shows its worst status.
SEVERITY = ("behind", "at_risk", "on_track", "achieved", "no_data", "not_evaluated")

CSS = """
body{font-family:system-ui,"Noto Sans CJK SC","WenQuanYi Micro Hei",sans-serif;margin:20px;
color:#1f2328}
h1{font-size:22px}h2{font-size:17px;margin-top:28px}
a{color:#0969da;text-decoration:none}
table{border-collapse:collapse;font-size:13px;margin:8px 0}
td,th{border:1px solid #d0d7de;padding:3px 7px;text-align:right}
th{background:#f6f8fa}
td.name,th.name{text-align:left}
.matrix td.name{white-space:nowrap}
.matrix td.cell{min-width:28px;text-align:center;color:#fff;font-weight:600}
.matrix th.ind{writing-mode:vertical-rl;text-align:left;max-height:190px;font-weight:500}
.status{color:#fff;border-radius:4px;padding:1px 6px;font-weight:600;white-space:nowrap}
.flag{color:#cf222e;font-weight:700}
.note{font-size:12px;color:#57606a;max-width:80em}
.legend span{margin-right:10px}
.charts{display:flex;flex-wrap:wrap;gap:12px}
figure{margin:0;border:1px solid #d0d7de;border-radius:6px;padding:6px}
figcaption{font-size:12px}
small{color:#57606a}
"""


def _page(title: str, body: str, lang: Lang) -> str:
    return (
        f"<!doctype html><html lang='{'zh-CN' if lang == 'zh' else 'en'}'><head>"
        f"<meta charset='utf-8'><title>{html.escape(title)}</title><style>{CSS}</style>"
        f"</head><body>{body}</body></html>"
    )


def badge(status: str, lang: Lang) -> str:
    """A status word on its colour (the board's, the report's and the brief's)."""
    colour = STATUS_COLOUR.get(status, "#8c959f")
    return (
        f'<span class="status" data-status="{html.escape(status)}" '
        f'style="background:{colour}">{html.escape(status_label(status, lang))}</span>'
    )


def fmt(value: Any, spec: str = "{:,.2f}") -> str:
    """``value`` in ``spec``; "" when unknown."""
    return "" if value is None else spec.format(value)


@dataclass(frozen=True, slots=True)
class ZoneRank:
    zone: str
    share_on_track: float | None  # achieved + on_track over the evaluated rows; None if none
    counts: dict[str, int]


def rank_zones(rows: Iterable[Row]) -> list[ZoneRank]:
    """Zones by their share of evaluated targets achieved or on track, best first."""
    counts: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(SEVERITY, 0))
    for row in rows:
        counts[row["zone"]][row["status"]] = counts[row["zone"]].get(row["status"], 0) + 1
    ranks = []
    for zone, c in counts.items():
        evaluated = sum(c[s] for s in EVALUATED)
        share = sum(c[s] for s in GOOD) / evaluated if evaluated else None
        ranks.append(ZoneRank(zone, share, dict(c)))
    return sorted(ranks, key=lambda r: (r.share_on_track is None, -(r.share_on_track or 0), r.zone))


def indicator_order(rows: Iterable[Row], catalogue: Catalogue) -> list[str]:
    """Indicators with a row: binding ones first, then in catalogue order."""
    binding: dict[str, bool] = {}
    for row in rows:
        binding[row["indicator"]] = binding.get(row["indicator"], False) or bool(row["binding"])
    position = {ind: i for i, ind in enumerate(catalogue.indicators)}
    return sorted(binding, key=lambda i: (not binding[i], position.get(i, len(position)), i))


def zone_link(zone: str, lang: Lang, default_lang: Lang) -> str:
    suffix = "" if lang == default_lang else f"?lang={lang}"
    return f"/zone/{quote(zone)}{suffix}"


def explain_link(zone: str, indicator: str, plan: str, lang: Lang, default_lang: Lang) -> str:
    """The page with one (indicator, plan)'s latest row worked out, formula by formula."""
    query = {"plan": plan, **({} if lang == default_lang else {"lang": lang})}
    return f"/zone/{quote(zone)}/explain/{quote(indicator)}?{urlencode(query)}"


def overview(rows: Sequence[Row], catalogue: Catalogue, lang: Lang, default_lang: Lang) -> str:
    """The overview matrix of the latest row per (zone, indicator, plan)."""
    indicators = indicator_order(rows, catalogue)
    cells: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for row in rows:
        cells[(row["zone"], row["indicator"])].append(row)
    binding = {r["indicator"] for r in rows if r["binding"]}
    head = "".join(
        f'<th class="ind" data-indicator="{html.escape(i)}">'
        f"{'★ ' if i in binding else ''}{html.escape(indicator_name(i, catalogue, lang))}</th>"
        for i in indicators
    )
    body = []
    for place, rank in enumerate(rank_zones(rows), 1):
        link = zone_link(rank.zone, lang, default_lang)
        tds = [_matrix_cell(cells.get((rank.zone, ind), []), link, lang) for ind in indicators]
        share = "—" if rank.share_on_track is None else f"{rank.share_on_track:.0%}"
        body.append(
            f'<tr class="zone" data-zone="{html.escape(rank.zone)}"><td>{place}</td>'
            f'<td class="name"><a href="{link}">'
            f"{html.escape(zone_name(rank.zone, catalogue, lang))}</a></td>"
            f'<td class="share">{share}</td>{"".join(tds)}</tr>'
        )
    legend = (
        "".join(
            f"<span>{badge(s, lang)}</span>" for s in ("achieved", "on_track", "at_risk", "behind")
        )
        + f"<span>★ {html.escape(text('binding', lang))}</span>"
    )
    title = text("board_title", lang)
    content = (
        f"<h1>{html.escape(title)}</h1><p class='legend'>{legend}</p>"
        f"<table class='matrix'><thead><tr><th>#</th><th class='name'>"
        f"{html.escape(text('zone', lang))}</th><th>{html.escape(text('share_on_track', lang))}"
        f"</th>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )
    return _page(title, content, lang)


def _matrix_cell(rows: Sequence[Row], link: str, lang: Lang) -> str:
    """One zone × indicator cell: the worst status of its plans, each plan's in the tooltip."""
    if not rows:
        return '<td class="cell empty"></td>'
    worst = min(rows, key=lambda r: SEVERITY.index(r["status"]))
    tip = "; ".join(
        f"{r['plan']} {r['period']}: {status_label(r['status'], lang)}"
        + (f" {r['attainment']:.1%}" if r.get("attainment") is not None else "")
        for r in rows
    )
    return (
        f'<td class="cell" data-status="{worst["status"]}" title="{html.escape(tip)}" '
        f'style="background:{STATUS_COLOUR.get(worst["status"], "#8c959f")}">'
        f'<a style="color:#fff" href="{link}">'
        f"{html.escape(status_label(worst['status'], lang)[:1])}</a></td>"
    )


def zone_page(
    zone: str, history: Sequence[Row], catalogue: Catalogue, lang: Lang, default_lang: Lang
) -> str:
    """One zone: a row per (indicator, plan) with this month's figures, and its chart."""
    series: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for row in history:
        series[(row["indicator"], row["plan"])].append(row)
    order = indicator_order(history, catalogue)
    keys = sorted(series, key=lambda k: (order.index(k[0]), k[1]))
    name = zone_name(zone, catalogue, lang)
    headers = (
        "indicator", "plan", "kind", "period", "status", "actual", "expected",
        "annual_target", "attainment", "gap_pp", "required_growth", "best_rest_growth",
        "out_of_reach", "explain_link",
    )  # fmt: skip
    head = "".join(f"<th>{html.escape(text(h, lang))}</th>" for h in headers)
    trs, figures = [], []
    for indicator, plan in keys:
        link = explain_link(zone, indicator, plan, lang, default_lang)
        tr, figure = _indicator_entry(
            indicator, plan, series[(indicator, plan)], catalogue, lang, link
        )
        trs.append(tr)
        figures.append(figure)
    back = "/" if lang == default_lang else f"/?lang={lang}"
    content = (
        f"<p><a href='{back}'>← {html.escape(text('overview', lang))}</a></p>"
        f"<h1>{html.escape(name)} <small>{html.escape(zone)}</small></h1>"
        f"<table class='indicators'><thead><tr>{head}</tr></thead><tbody>{''.join(trs)}"
        f"</tbody></table><p class='note'>{html.escape(text('gap_note', lang))}</p>"
        f"<div class='charts'>{''.join(figures)}</div>"
    )
    return _page(f"{name} — {text('board_title', lang)}", content, lang)


def _indicator_entry(
    indicator: str,
    plan: str,
    history: Sequence[Row],
    catalogue: Catalogue,
    lang: Lang,
    link: str,
) -> tuple[str, str]:
    """One (indicator, plan) of a zone: its table row (the latest month) and its chart."""
    rows = sorted(history, key=lambda r: r["period"])
    last = rows[-1]
    ind = catalogue.indicators.get(indicator)
    unit = unit_label(ind.unit, lang) if ind else ""
    label = indicator_name(indicator, catalogue, lang)
    star = "★ " if last["binding"] else ""
    flag = (
        f'<span class="flag">⚠ {html.escape(text("out_of_reach", lang))}</span>'
        if last.get("out_of_reach")
        else ""
    )
    value_unit = "%" if last["kind"] == "growth" else unit
    tr = (
        f'<tr data-indicator="{html.escape(indicator)}" data-plan="{html.escape(plan)}">'
        f'<td class="name">{star}{html.escape(label)} <small>{html.escape(indicator)}</small>'
        f"</td><td class='name'>{html.escape(plan)}</td>"
        f"<td class='name'>{html.escape(kind_label(last['kind'], lang))}</td>"
        f"<td>{html.escape(last['period'])}</td><td>{badge(last['status'], lang)}</td>"
        f"<td>{fmt(last.get('actual'))} <small>{html.escape(value_unit)}</small></td>"
        f"<td>{fmt(last.get('expected'))}</td><td>{fmt(last.get('annual_target'))}</td>"
        f"<td class='attainment'>{fmt(last.get('attainment'), '{:.1%}')}</td>"
        f"<td class='gap'>{fmt(last.get('gap_pp'), '{:+.1f}')}</td>"
        f"<td>{fmt(last.get('required_growth_pct'), '{:+.1f}')}</td>"
        f"<td>{fmt(last.get('best_rest_growth_pct'), '{:+.1f}')}</td>"
        f'<td class="name">{flag}</td>'
        f'<td class="name"><a class="explain" href="{html.escape(link)}">'
        f"{html.escape(text('explain_link', lang))}</a></td></tr>"
    )
    chart = line_chart(rows, value_unit, lang, nonnegative=last["kind"] != "growth")
    figure = (
        f"<figure data-indicator='{html.escape(indicator)}'>{chart}<figcaption>"
        f"{star}{html.escape(label)} · {html.escape(plan)} · "
        f"{badge(last['status'], lang)} {flag}</figcaption></figure>"
    )
    return tr, figure


def explain_page(
    doc: Mapping[str, Any], catalogue: Catalogue, lang: Lang, default_lang: Lang
) -> str:
    """One row worked out: its inputs, then each formula with its numbers and result (what
    ``parkpulse explain`` prints), linked back to its zone."""
    zone = doc["row"]["zone"]
    head = "".join(f"<th class='name'>{html.escape(text(c, lang))}</th>" for c in explain.COLUMNS)
    trs = "".join(
        f"<tr data-step='{html.escape(step['name'])}'>"
        + "".join(f"<td class='name'>{html.escape(cell)}</td>" for cell in cells)
        + "</tr>"
        for step, cells in zip(doc["steps"], explain.rows(doc, lang), strict=True)
    )
    heading = explain.title(doc, lang, catalogue)
    content = (
        f"<p><a href='{zone_link(zone, lang, default_lang)}'>← "
        f"{html.escape(zone_name(zone, catalogue, lang))}</a></p>"
        f"<h1>{html.escape(heading)}</h1><p>{html.escape(text('inputs', lang))}: "
        f"<code>{html.escape(explain.inputs_line(doc))}</code></p>"
        f"<table class='explain'><thead><tr>{head}</tr></thead><tbody>{trs}</tbody></table>"
        f"<p class='note'>{html.escape(text('gap_note', lang))}</p>"
    )
    return _page(heading, content, lang)
