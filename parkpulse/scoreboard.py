"""Readable tables for people: the live scoreboard, ``status``, ``scorecard``, ``deadletter``,
``suspect``.

Headers, status words and names come from parkpulse.vocabulary in the configured language;
``--format json`` keeps the English keys and codes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from rich.table import Table

from parkpulse.schemas.catalogue import Catalogue
from parkpulse.schemas.records import STATUSES
from parkpulse.sinks.tables import STATUS_COLUMNS, STATUS_INTERNAL_COLUMNS
from parkpulse.vocabulary import (
    DEFAULT_LANG,
    Lang,
    indicator_name,
    indicator_unit,
    status_label,
    suspect_label,
    text,
    zone_name,
)

STATUS_STYLE = {
    "achieved": "bold green",
    "on_track": "green",
    "at_risk": "yellow",
    "behind": "bold red",
    "no_data": "dim",
    "not_evaluated": "dim",
}

# The keys of one `parkpulse status --format json` object, in order.
# The documented keys of a status row in JSON (/api/status, the CLI): the stored columns
# without the internal ones, in the stored order.
STATUS_JSON_KEYS = tuple(c for c in STATUS_COLUMNS if c not in STATUS_INTERNAL_COLUMNS)


def status_json(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Status rows reduced to exactly the documented JSON keys."""
    return [{k: row.get(k) for k in STATUS_JSON_KEYS} for row in rows]


SORTS = ("key", "attainment")


def select_status(
    rows: Iterable[Mapping[str, Any]],
    statuses: Iterable[str] | None = None,
    binding: bool = False,
    sort: str = "key",
) -> list[Mapping[str, Any]]:
    """Rows with one of ``statuses`` (all when None), only binding ones if asked, sorted by key
    or by attainment (lowest first, rows without one last)."""
    wanted = set(statuses) if statuses else None
    kept = [
        r
        for r in rows
        if (wanted is None or r.get("status") in wanted) and (not binding or r.get("binding"))
    ]
    if sort == "attainment":
        return sorted(
            kept,
            key=lambda r: (
                r.get("attainment") is None,
                r.get("attainment") or 0.0,
                r.get("zone", ""),
                r.get("indicator", ""),
            ),
        )
    return kept


def _num(value: Any, fmt: str = "{:,.2f}") -> str:
    return "" if value is None else fmt.format(value)


def _named(name: str, ident: str) -> str:
    """A name with its id beneath (ids are what --zone/--indicator take)."""
    return ident if name == ident else f"{name}\n[dim]{ident}[/]"


def status_cell(status: str, lang: Lang) -> str:
    return f"[{STATUS_STYLE.get(status, '')}]{status_label(status, lang)}[/]"


def status_table(
    rows: Iterable[Mapping[str, Any]],
    title: str | None = None,
    lang: Lang = DEFAULT_LANG,
    catalogue: Catalogue | None = None,
) -> Table:
    """Zone × indicator × plan → status, attainment and the numbers behind it."""
    table = Table(title=title or text("status_title", lang), header_style="bold")
    for key, justify in (
        ("zone", "left"),
        ("indicator", "left"),
        ("plan", "left"),
        ("period", "left"),
        ("status", "left"),
        ("attainment", "right"),
        ("actual", "right"),
        ("expected", "right"),
        ("annual_target", "right"),
        ("unit", "left"),
        ("gap_pp", "right"),
        ("required_growth", "right"),
    ):
        table.add_column(text(key, lang), justify=justify)  # type: ignore[arg-type]
    rows = list(rows)
    if any(row.get("kind") == "growth" for row in rows):  # how to read a growth target's row
        table.caption = text("status_growth_note", lang)
    for row in rows:
        zone, indicator = row.get("zone", ""), row.get("indicator", "")
        needs = _num(row.get("required_growth_pct"), "{:+.1f}")
        if row.get("out_of_reach"):  # needs more than the best rest of a year on record
            needs += f" [bold red]⚠ {text('out_of_reach', lang)}[/]"
        # A status resting on an implausible figure is marked, with why.
        mark = (
            f" [bold magenta]⚠ {text('suspect_mark', lang)}: "
            f"{suspect_label(row['suspect'], lang)}[/]"
            if row.get("suspect")
            else ""
        )
        table.add_row(
            _named(zone_name(zone, catalogue, lang), zone),
            _named(indicator_name(indicator, catalogue, lang), indicator),
            row.get("plan", ""),
            row.get("period", ""),
            status_cell(row.get("status") or "", lang) + mark,
            _num(row.get("attainment"), "{:.1%}"),
            _num(row.get("actual")),
            _num(row.get("expected")),
            _num(row.get("annual_target")),
            # A growth target's actual and expected are growth rates, in % whatever the unit.
            "%" if row.get("kind") == "growth" else indicator_unit(indicator, catalogue, lang),
            _num(row.get("gap_pp"), "{:+.1f}"),
            needs,
        )
    return table


def scorecard_table(
    rows: Iterable[Mapping[str, Any]],
    lang: Lang = DEFAULT_LANG,
    catalogue: Catalogue | None = None,
) -> Table:
    table = Table(title=text("scorecard_title", lang), header_style="bold")
    table.add_column(text("zone", lang))
    table.add_column(text("period", lang))
    for status in STATUSES:
        table.add_column(status_label(status, lang), justify="right", style=STATUS_STYLE[status])
    table.add_column(text("worst_binding", lang))
    table.add_column(text("median_attainment", lang), justify="right")
    for row in rows:
        worst = row.get("worst_binding_indicator") or ""
        if worst:
            worst = indicator_name(worst, catalogue, lang)
        if worst and row.get("worst_binding_attainment") is not None:
            worst += f" ({row['worst_binding_attainment']:.1%})"
        table.add_row(
            _named(zone_name(row["zone"], catalogue, lang), row["zone"]),
            row.get("period", ""),
            *(str(row.get(s, 0)) for s in STATUSES),
            worst,
            _num(row.get("median_attainment"), "{:.1%}"),
        )
    return table


def suspect_table(
    rows: Iterable[Mapping[str, Any]],
    lang: Lang = DEFAULT_LANG,
    catalogue: Catalogue | None = None,
) -> Table:
    """Figures accepted but flagged implausible: the figure, what it was compared with, why."""
    table = Table(title=text("suspect_title", lang), header_style="bold")
    for key, justify in (
        ("zone", "left"),
        ("indicator", "left"),
        ("period", "left"),
        ("value", "right"),
        ("previous", "right"),
        ("previous_period", "left"),
        ("reason", "left"),
    ):
        table.add_column(text(key, lang), justify=justify)  # type: ignore[arg-type]
    for row in rows:
        zone, indicator = row.get("zone", ""), row.get("indicator", "")
        table.add_row(
            _named(zone_name(zone, catalogue, lang), zone),
            _named(indicator_name(indicator, catalogue, lang), indicator),
            row.get("period", ""),
            _num(row.get("value")),
            _num(row.get("previous")),
            row.get("previous_period", ""),
            f"[bold magenta]{suspect_label(row.get('reason', ''), lang)}[/]",
        )
    return table


def deadletter_table(rows: Iterable[Mapping[str, Any]], lang: Lang = DEFAULT_LANG) -> Table:
    table = Table(title=text("deadletter_title", lang), header_style="bold")
    for key in ("received", "topic", "origin", "line", "reason", "detail"):
        table.add_column(text(key, lang))
    for row in rows:
        table.add_row(
            str(row.get("received_at", ""))[:19],
            row.get("source_topic", ""),
            row.get("origin", ""),
            str(row.get("line") or ""),
            f"[red]{row.get('reason', '')}[/]",
            str(row.get("detail", ""))[:100],
        )
    return table
