"""``parkpulse explain``: one status row, its inputs, and every formula with its numbers.

The steps come from ``streams.plan.explain`` (the engine's own functions); this module fetches
the figures and targets (the running stack's ``/api/explain`` or the store) and prints them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from rich.console import Console
from rich.table import Table

from parkpulse.schemas.catalogue import Catalogue
from parkpulse.schemas.names import names_of
from parkpulse.sinks.clickhouse import ClickHouseStore
from parkpulse.streams.plan import explain, num
from parkpulse.vocabulary import (
    TEXT,
    Lang,
    indicator_name,
    status_label,
    text,
    unit_label,
    zone_name,
)

MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
# Step codes → vocabulary keys (where they differ).
STEP_TEXT = {"projected_year_end": "projected", "status": "status"}


class ExplainError(ValueError):
    """A request that cannot be explained (unknown zone or indicator, bad period)."""


def check_request(catalogue: Catalogue, zone: str, indicator: str, period: str | None) -> None:
    """Raise ExplainError for an unknown zone or indicator id (with the nearest known names) or
    a period that is not ``YYYY-MM``."""
    if zone not in catalogue.zones:
        raise ExplainError(f"unknown zone {zone!r}{_nearest('zone', zone, catalogue)}")
    if indicator not in catalogue.indicators:
        raise ExplainError(
            f"unknown indicator {indicator!r}{_nearest('indicator', indicator, catalogue)}"
        )
    if period is not None and not MONTH.match(period):
        raise ExplainError(f"period must be YYYY-MM, got {period!r}")


def _nearest(kind: str, text: str, catalogue: Catalogue) -> str:
    """``; nearest: id (name), …`` for an unknown name, or "" when none is near."""
    names = names_of(catalogue)
    labels = [names.labels[kind].get(i, i) for i in names.suggest(kind, text)]
    return "; nearest: " + ", ".join(labels) if labels else ""


def explanation_doc(
    catalogue: Catalogue,
    store: ClickHouseStore,
    zone: str,
    indicator: str,
    plan: str | None = None,
    period: str | None = None,
) -> dict[str, Any] | None:
    """The explanation of one row as JSON-ready data (English keys), or None when no row."""
    check_request(catalogue, zone, indicator, period)
    observations, targets = store.zones_state([zone])[zone][:2]
    found = explain(zone, catalogue.indicators[indicator], observations, targets, plan, period)
    if found is None:
        return None
    return {
        "row": found.row.to_dict(),
        "target": found.target.to_dict(),
        "inputs": found.inputs,
        "steps": [
            {"name": s.name, "formula": s.formula, "numbers": s.numbers, "value": s.value}
            for s in found.steps
        ],
    }


def _value(value: Any, lang: Lang) -> str:
    if isinstance(value, bool):
        return text("yes" if value else "no", lang)
    if isinstance(value, str):
        return status_label(value, lang)
    return num(value)


def render(doc: Mapping[str, Any], lang: Lang, catalogue: Catalogue) -> Table:
    """The explanation as a table: name, formula, numbers filled in, result."""
    row, target = doc["row"], doc["target"]
    unit = (
        catalogue.indicators[row["indicator"]].unit
        if row["indicator"] in catalogue.indicators
        else ""
    )
    title = (
        f"{zone_name(row['zone'], catalogue, lang)} · "
        f"{indicator_name(row['indicator'], catalogue, lang)} ({unit_label(unit, lang)}) · "
        f"{target['plan']} · {row['period']} — {text('explain_title', lang)}"
    )
    inputs = ", ".join(f"{k}={v}" for k, v in doc["inputs"].items() if v is not None)
    table = Table(title=title, caption=f"{text('inputs', lang)}: {inputs}", show_lines=False)
    for header in ("", "formula", "=", "="):
        table.add_column(header)
    for step in doc["steps"]:
        label = TEXT[lang].get(STEP_TEXT.get(step["name"], step["name"]), step["name"])
        table.add_row(label, step["formula"], step["numbers"], _value(step["value"], lang))
    return table


def run_explain(
    fetch: Callable[[], Any],
    fmt: str,
    lang: Lang,
    catalogue: Catalogue,
    console: Console,
) -> tuple[int, str | None]:
    """Print the explanation ``fetch`` gives; (exit code, error line)."""
    doc = fetch()
    if doc is None or (isinstance(doc, dict) and "error" in doc):
        return 1, (doc or {}).get("error") or text("no_row", lang)
    if fmt == "json":
        import orjson

        console.file.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        console.print(render(doc, lang, catalogue))
    return 0, None
