"""Readable tables for people: the live scoreboard, ``status``, ``scorecard``, ``deadletter``,
``suspect``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from rich.table import Table

from parkpulse.schemas.records import STATUSES

STATUS_STYLE = {
    "achieved": "bold green",
    "on_track": "green",
    "at_risk": "yellow",
    "behind": "bold red",
    "no_data": "dim",
    "not_evaluated": "dim",
}

# The keys of one `parkpulse status --format json` object, in order.
STATUS_JSON_KEYS = (
    "zone",
    "indicator",
    "plan",
    "period",
    "kind",
    "actual",
    "expected",
    "annual_target",
    "attainment",
    "gap_pp",
    "projected_year_end",
    "required_growth_pct",
    "status",
    "suspect",
)


def status_json(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Status rows reduced to exactly the documented JSON keys."""
    return [{k: row.get(k) for k in STATUS_JSON_KEYS} for row in rows]


def _num(value: Any, fmt: str = "{:,.2f}") -> str:
    return "" if value is None else fmt.format(value)


def status_table(rows: Iterable[Mapping[str, Any]], title: str = "parkpulse status") -> Table:
    """Zone × indicator × plan → status, attainment and the numbers behind it."""
    table = Table(title=title, header_style="bold", show_lines=False)
    for col, justify in (
        ("zone", "left"),
        ("indicator", "left"),
        ("plan", "left"),
        ("period", "left"),
        ("status", "left"),
        ("attainment", "right"),
        ("actual", "right"),
        ("expected", "right"),
        ("annual target", "right"),
        ("gap pp", "right"),
        ("needs growth %", "right"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for row in rows:
        status = row.get("status") or ""
        # A status resting on an implausible figure is marked, with why.
        mark = f" [bold magenta]⚠ suspect: {row['suspect']}[/]" if row.get("suspect") else ""
        table.add_row(
            row.get("zone", ""),
            row.get("indicator", ""),
            row.get("plan", ""),
            row.get("period", ""),
            f"[{STATUS_STYLE.get(status, '')}]{status}[/]{mark}",
            _num(row.get("attainment"), "{:.1%}"),
            _num(row.get("actual")),
            _num(row.get("expected")),
            _num(row.get("annual_target")),
            _num(row.get("gap_pp"), "{:+.1f}"),
            _num(row.get("required_growth_pct"), "{:+.1f}"),
        )
    return table


def scorecard_table(rows: Iterable[Mapping[str, Any]]) -> Table:
    table = Table(title="zone scorecards", header_style="bold")
    table.add_column("zone")
    table.add_column("period")
    for status in STATUSES:
        table.add_column(status.replace("_", " "), justify="right", style=STATUS_STYLE[status])
    table.add_column("worst binding")
    table.add_column("median attainment", justify="right")
    for row in rows:
        worst = row.get("worst_binding_indicator") or ""
        if worst and row.get("worst_binding_attainment") is not None:
            worst += f" ({row['worst_binding_attainment']:.1%})"
        table.add_row(
            row["zone"],
            row.get("period", ""),
            *(str(row.get(s, 0)) for s in STATUSES),
            worst,
            _num(row.get("median_attainment"), "{:.1%}"),
        )
    return table


def suspect_table(rows: Iterable[Mapping[str, Any]]) -> Table:
    """Figures accepted but flagged implausible: the figure, what it was compared with, why."""
    table = Table(title="suspect figures", header_style="bold")
    for col, justify in (
        ("zone", "left"),
        ("indicator", "left"),
        ("period", "left"),
        ("value", "right"),
        ("previous", "right"),
        ("previous period", "left"),
        ("reason", "left"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for row in rows:
        table.add_row(
            row.get("zone", ""),
            row.get("indicator", ""),
            row.get("period", ""),
            _num(row.get("value")),
            _num(row.get("previous")),
            row.get("previous_period", ""),
            f"[bold magenta]{row.get('reason', '')}[/]",
        )
    return table


def deadletter_table(rows: Iterable[Mapping[str, Any]]) -> Table:
    table = Table(title="dead letters", header_style="bold")
    for col in ("received", "topic", "origin", "line", "reason", "detail"):
        table.add_column(col)
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
