"""A plan's main-indicator table (主要指标表, like 表2 of the Jinan 14th Five-Year Plan) as
plan targets.

The layout, found by keywords in a header row (the first row naming an indicator column and a
target-year column; a header split over two rows is joined):

- 指标体系 / category rows (经济高质量, 一、经济发展): a row without figures, skipped;
- 序号; the indicator (主要指标 / 指标名称 / 指标) with its unit in its own column (单位 /
  计量单位) or in parentheses after the name (``一般公共预算收入(亿元)``); a label row without
  figures and no 属性 (``亩产效益`` above its two indicators) is a group heading, skipped;
- a base-year column (``2020年``, ``2020年完成``, ``2023年基数``) and a target-year column
  (``2025年目标``), 年均增长(%), 属性 (预期性 = expected, 约束性 = binding);
- footnote rows (注:…) are skipped.

Decisions per row: a name ending in 增速/增长/增长率 with unit % is a ``growth`` target on the
indicator it names (the base column is that year's growth, the 年均增长 the target rate);
``[125]`` is ``cumulative``; ``完成市下达指标`` (完成…下达…) is ``qualitative``; ``--`` is no
value; otherwise a ``ratio`` indicator gets a ``share`` target and the rest a ``level`` target.
A target year without a value keeps none: the engine takes it from the growth (streams/plan.py).
Every row is validated by ``validate_target`` like a plan_targets.csv row, so the two layouts
give the same targets; a rejected row's dead letter names its cell (``表2!C9``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from parkpulse.producers.feed import FeedRow, check_conflicts
from parkpulse.producers.sheets import Sheet, cell_text, figure, is_footnote, read_sheets
from parkpulse.schemas.catalogue import Catalogue
from parkpulse.schemas.errors import RejectedInput
from parkpulse.schemas.names import (
    PLAN_NAMES,
    UnknownName,
    lookup,
    plan_id,
    resolve,
    unit_code,
    zone_in,
)
from parkpulse.schemas.targets import validate_target

HEADER_SCAN_ROWS = 30
_YEAR = re.compile(r"((?:19|20)[0-9]{2})年?")
_UNIT_SUFFIX = re.compile(r"^(?P<name>.+?)\((?P<unit>[^()]+)\)$")
_GROWTH_SUFFIXES = ("增长率", "增速", "增长")
_CUMULATIVE = re.compile(r"^\[([^\[\]]+)\]$")
_QUALITATIVE = re.compile(r"完成.*下达")
_BINDING = {"约束性": True, "预期性": False}


@dataclass(frozen=True, slots=True)
class Columns:
    """Where a plan table keeps each thing (0-based columns), and its years."""

    header_rows: int  # index of the last header row
    indicator: int
    base: int
    target: int
    base_year: int
    target_year: int
    unit: int | None = None
    growth: int | None = None
    attribute: int | None = None
    seq: int | None = None


def read_plan_table(
    path: Path, catalogue: Catalogue, *, plan: str | None = None, zone: str | None = None
) -> Iterator[FeedRow]:
    """The targets of every sheet of ``path`` that holds a plan table, validated.

    ``plan`` and ``zone`` (ids or names) win over what a title line says (济南高新区“十四五”…)."""
    book = read_sheets(path)
    if book.problem:
        yield _file_error(path, book.problem)
        return
    found = False
    rows: list[FeedRow] = []
    for sheet in book.sheets:
        columns = find_columns(sheet)
        if columns is None:
            continue
        found = True
        rows += _sheet_targets(sheet, columns, catalogue, path, plan, zone)
    if not found:
        yield _file_error(
            path,
            "no plan table found: no header row names an indicator column (主要指标/指标名称)"
            " and a target-year column (2025年目标)",
        )
        return
    yield from check_conflicts(rows)


def find_columns(sheet: Sheet) -> Columns | None:
    """The header of a plan table in ``sheet``, or None when it holds none."""
    for at, row in enumerate(sheet.rows[:HEADER_SCAN_ROWS]):
        texts = [cell_text(v) for v in row]
        if at + 1 < len(sheet.rows) and _is_header_rest(sheet.rows[at + 1]):
            below = [cell_text(v) for v in sheet.rows[at + 1]]
            joined = [a + b for a, b in zip(texts, below + [""] * len(texts), strict=False)]
            columns = _columns(joined, at + 1)
            if columns is not None:
                return columns
        columns = _columns(texts, at)
        if columns is not None:
            return columns
    return None


def _is_header_rest(row: list[Any]) -> bool:
    """A row of short header words only (完成, 目标): the second line of a split header."""
    texts = [cell_text(v) for v in row if cell_text(v)]
    return bool(texts) and all(
        t in ("完成", "目标", "属性", "完成值", "目标值", "基数", "实际") for t in texts
    )


def _columns(texts: list[str], at: int) -> Columns | None:
    indicator = _first(texts, lambda t: t in ("主要指标", "指标名称", "指标", "指标名"))
    if indicator is None:
        indicator = _first(
            texts, lambda t: "指标" in t and not any(w in t for w in ("属性", "体系", "类别"))
        )
    years = [(i, int(m[1]), t) for i, t in enumerate(texts) if (m := _YEAR.match(t))]
    target = next(((i, y) for i, y, t in years if "目标" in t), None)
    if target is None and len(years) >= 2:
        target = (years[-1][0], years[-1][1])
    other = [(i, y) for i, y, t in years if "目标" not in t and target and i != target[0]]
    base = other[0] if other else None
    if indicator is None or target is None or base is None:
        return None
    return Columns(
        header_rows=at,
        indicator=indicator,
        base=base[0],
        target=target[0],
        base_year=base[1],
        target_year=target[1],
        unit=_first(texts, lambda t: t in ("单位", "计量单位")),
        growth=_first(texts, lambda t: t.startswith("年均增")),
        attribute=_first(texts, lambda t: "属性" in t),
        seq=_first(texts, lambda t: t == "序号"),
    )


def _first(texts: list[str], test: Any) -> int | None:
    return next((i for i, t in enumerate(texts) if t and test(t)), None)


def _sheet_targets(
    sheet: Sheet,
    cols: Columns,
    catalogue: Catalogue,
    path: Path,
    plan: str | None,
    zone: str | None,
) -> list[FeedRow]:
    title = " ".join(cell_text(v) for row in sheet.rows[: cols.header_rows] for v in row if v)
    plan = plan_id(plan) if plan else next((p for w, p in PLAN_NAMES.items() if w in title), None)
    zone_id = _zone_of(zone, title, catalogue)
    out: list[FeedRow] = []
    for at in range(cols.header_rows + 1, len(sheet.rows)):
        row = sheet.rows[at]
        texts = [cell_text(v) for v in row]
        if not any(texts):
            continue
        if is_footnote(texts):
            continue  # a footnote
        name = texts[cols.indicator] if cols.indicator < len(texts) else ""
        values = [sheet.cell(at, c) for c in (cols.base, cols.target, cols.growth)]
        attribute = cell_text(sheet.cell(at, cols.attribute))
        if not name or (all(figure(v) is None for v in values) and not attribute):
            continue  # a category row or a group heading
        text = ",".join(texts)
        try:
            if plan is None:
                raise RejectedInput("malformed", "no plan: give --plan (e.g. 14th-fyp)")
            if isinstance(zone_id, RejectedInput):
                raise zone_id
            raw = _target_row(sheet, at, cols, catalogue, plan, zone_id, name, path)
            record = validate_target(raw, catalogue)
        except RejectedInput as exc:
            out.append(FeedRow(at + 1, text, None, exc.detached(), _place_of(exc, sheet, at, cols)))
            continue
        out.append(FeedRow(at + 1, text, record, None, sheet.place(at, cols.indicator)))
    return out


# The cell a rejection is about, by the field its detail starts with (else the indicator's).
_FIELD_COLUMNS = (
    ("base_value", "base"),
    ("target_value", "target"),
    ("annual_growth_pct", "growth"),
    ("属性", "attribute"),
    ("unit", "unit"),
)


def _place_of(exc: RejectedInput, sheet: Sheet, at: int, cols: Columns) -> str:
    for field, attr in _FIELD_COLUMNS:
        col = getattr(cols, attr)
        if exc.detail.startswith(field) and col is not None:
            return sheet.place(at, col)
    return sheet.place(at, cols.indicator)


def _zone_of(zone: str | None, title: str, catalogue: Catalogue) -> str | RejectedInput:
    """The zone id: ``zone`` resolved, else the zone a title names, else why there is none."""
    if zone is not None:
        try:
            return resolve("zone", zone, catalogue)
        except UnknownName as exc:
            return RejectedInput(exc.reason, f"--zone {exc.detail}")
    named = zone_in(title, catalogue)
    if named is not None:
        return named
    return RejectedInput("malformed", "no zone: give --zone (the title names none)")


def _target_row(
    sheet: Sheet,
    at: int,
    cols: Columns,
    catalogue: Catalogue,
    plan: str,
    zone: str,
    name: str,
    path: Path,
) -> dict[str, Any]:
    """The plan_targets.csv row of a table row (validate_target reads both the same way)."""
    unit_written = cell_text(sheet.cell(at, cols.unit))
    match = _UNIT_SUFFIX.match(unicodedata.normalize("NFKC", name))
    if match and unit_code(match["unit"]) is not None:
        name, unit_written = match["name"], unit_written or match["unit"]
    indicator, kind = _indicator_named(name, unit_written, catalogue)
    base = figure(sheet.cell(at, cols.base))
    target_cell = cell_text(sheet.cell(at, cols.target))
    target: Any = figure(sheet.cell(at, cols.target))
    growth = figure(sheet.cell(at, cols.growth))
    if kind is None:
        kind, target = _kind_of(target_cell, target, catalogue.indicators[indicator].kind)
    attribute = cell_text(sheet.cell(at, cols.attribute))
    if attribute and attribute not in _BINDING:
        raise RejectedInput("malformed", f"属性 {attribute!r} is not 预期性 or 约束性")
    unit = "PCT" if kind == "growth" else unit_written or catalogue.indicators[indicator].unit
    raw = {
        "plan": plan,
        "zone": zone,
        "indicator": indicator,
        "kind": kind,
        "base_year": cols.base_year,
        "base_value": base,
        "target_year": cols.target_year,
        "target_value": target,
        "annual_growth_pct": growth,
        "binding": _BINDING.get(attribute, False),
        "unit": unit,
        "source": f"{path.name} {sheet.place(at, cols.indicator)} {name}",
    }
    return raw


def _indicator_named(name: str, unit: str, catalogue: Catalogue) -> tuple[str, str | None]:
    """(indicator id, "growth" or None): a name in % that is an indicator's name with a growth
    suffix (…增速) is a growth target of that indicator; an unknown name raises UnknownName
    with the nearest names."""
    if (indicator := lookup("indicator", name, catalogue)) is not None:
        return indicator, None
    if unit_code(unit) == "PCT":
        for suffix in _GROWTH_SUFFIXES:
            stem = name.removesuffix(suffix)
            if stem != name and (found := lookup("indicator", stem, catalogue)) is not None:
                return found, "growth"
    return resolve("indicator", name, catalogue), None


def _kind_of(target_cell: str, target: Any, indicator_kind: str) -> tuple[str, Any]:
    """(target kind, target value) of a row that is no growth target: [100] is cumulative,
    words (完成省下达任务) qualitative, a ratio's target a share, any other a level."""
    if (bracket := _CUMULATIVE.match(target_cell)) is not None:
        return "cumulative", figure(bracket[1])
    if isinstance(target, str) and _QUALITATIVE.search(target):
        return "qualitative", None
    if indicator_kind == "ratio":
        return "share", target
    return "level", target


def _file_error(path: Path, problem: str) -> FeedRow:
    return FeedRow(0, path.name, None, RejectedInput("malformed", problem), path.name)
