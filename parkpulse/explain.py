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
from parkpulse.schemas.names import UnknownName, resolve
from parkpulse.sinks.clickhouse import ClickHouseStore
from parkpulse.streams.plan import Explanation, explain, num, plans_of
from parkpulse.vocabulary import (
    STATUS_LABELS,
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


def check_request(
    catalogue: Catalogue, zone: str, indicator: str, period: str | None
) -> tuple[str, str]:
    """The ids of ``zone`` and ``indicator``, each given by id or by name (济南高新区,
    一般公共预算收入, as ``status --zone`` takes them); ExplainError (with the nearest names)
    when one names nothing, or when ``period`` is not YYYY-MM."""
    ids = []
    for kind, value in (("zone", zone), ("indicator", indicator)):
        try:
            ids.append(resolve(kind, value.strip(), catalogue))
        except UnknownName as exc:
            raise ExplainError(f"unknown {kind}: {exc.detail}") from None
    if period is not None and not MONTH.match(period):
        raise ExplainError(f"period must be YYYY-MM, got {period!r}")
    return ids[0], ids[1]


def explanation_doc(
    catalogue: Catalogue,
    store: ClickHouseStore,
    zone: str,
    indicator: str,
    plan: str | None = None,
    period: str | None = None,
) -> dict[str, Any] | None:
    """The explanation of one row as JSON-ready data (English keys), or None when no row."""
    zone, indicator = check_request(catalogue, zone, indicator, period)
    observations, targets = store.zones_state([zone])[zone][:2]
    plans = plans_of(zone, indicator, targets)
    if plan is None and len(plans) > 1:
        raise ExplainError(
            f"{indicator} has {len(plans)} plans in {zone}: {', '.join(plans)}; name one"
        )
    if plan is not None and plans and plan not in plans:
        raise ExplainError(
            f"no plan {plan!r} for {indicator} in {zone}; its plans: {', '.join(plans)}"
        )
    found = explain(zone, catalogue.indicators[indicator], observations, targets, plan, period)
    return None if found is None else as_doc(found)


def as_doc(found: Explanation) -> dict[str, Any]:
    """An explanation as JSON-ready data (English keys): what /api/explain serves."""
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


# The columns of an explanation, as vocabulary keys: step, formula, numbers filled in, result.
COLUMNS = ("step", "formula", "numbers", "result")


def title(doc: Mapping[str, Any], lang: Lang, catalogue: Catalogue) -> str:
    """Zone · indicator (unit) · plan · period — what the explanation is of."""
    row, target = doc["row"], doc["target"]
    found = catalogue.indicators.get(row["indicator"])
    # A growth target's numbers are percentages, whatever the indicator's own unit.
    unit = "%" if row["kind"] == "growth" else unit_label(found.unit if found else "", lang)
    return (
        f"{zone_name(row['zone'], catalogue, lang)} · "
        f"{indicator_name(row['indicator'], catalogue, lang)} ({unit}) · "
        f"{target['plan']} · {row['period']} — {text('explain_title', lang)}"
    )


def inputs_line(doc: Mapping[str, Any]) -> str:
    """The row's inputs in the formulas' notation (B, V0, T, VT, g_pct, actual, …)."""
    return ", ".join(f"{k}={v}" for k, v in doc["inputs"].items() if v is not None)


# Words in the engine's formulas (status rules, where a figure came from) and what a reader
# sees for them; status codes and step names come from the vocabulary.
PHRASES: dict[Lang, dict[str, str]] = {
    "zh": {
        "target met": "年度目标已达到",
        "else": "否则",
        "met": "已达到",
        "bureau YoY": "统计局公布的同比",
        "computed": "由上年同期计算",
    },
    "en": {"target met": "year's target met", "bureau YoY": "the bureau's YoY"},
}
WORDS_IN_FORMULAS = (
    "required_growth_pct", "best_rest_growth_pct", "gap_pp", "attainment", "actual", "expected",
)  # fmt: skip


def _words(formula: str, lang: Lang) -> str:
    """``formula`` with the codes in it (on_track, gap_pp, …) as the words of ``lang``."""
    words = {
        **{code: status_label(code, lang) for code in STATUS_LABELS[lang]},
        **{name: text(name, lang) for name in WORDS_IN_FORMULAS},
        **PHRASES[lang],
    }
    pattern = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
    return re.sub(rf"(?<!\w)(?:{pattern})(?!\w)", lambda m: words[m.group(0)], formula)


def rows(doc: Mapping[str, Any], lang: Lang) -> list[tuple[str, str, str, str]]:
    """One (step, formula, numbers, result) per step, in ``lang``: the step, the words in the
    formula (status rules, gap_pp, …) and the result; the notation (A(y), s(m), YTD) stays."""
    return [
        (
            TEXT[lang].get(STEP_TEXT.get(step["name"], step["name"]), step["name"]),
            _words(step["formula"], lang),
            _words(step["numbers"], lang),
            _value(step["value"], lang),
        )
        for step in doc["steps"]
    ]


def render(doc: Mapping[str, Any], lang: Lang, catalogue: Catalogue) -> Table:
    """The explanation as a table: name, formula, numbers filled in, result."""
    caption = f"{text('inputs', lang)}: {inputs_line(doc)}"
    table = Table(title=title(doc, lang, catalogue), caption=caption, show_lines=False)
    for header in COLUMNS:
        table.add_column(text(header, lang))
    for row in rows(doc, lang):
        table.add_row(*row)
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
