"""A statistics bureau's monthly bulletin (统计月报: xlsx, xls, or CSV in UTF-8 or GBK) as
observations.

A sheet is one zone and period, named by a title line above its header ("烟台高新区2024年1-6月
主要经济指标"; periods 1-6月, 1—2月, 一季度, 上半年, 前三季度, 1-12月, 全年) or by ``--zone`` /
``--period``, which win; a multi-zone sheet has a 园区/区域 column naming each row's zone. The
header is recognised by keywords: 指标/指标名称 (indicator), 单位/计量单位 (unit), 本月/当月/N月
(the MONTH figure), 1-N月/累计/本年累计 (the YTD figure), 同比/同比增长(%)/增长% (the bureau's
YoY of the YTD figure; 本月同比 of the MONTH figure). A unit may also follow the name in
parentheses (``进出口总额(亿元)``).

Empty cells and —, -, … are no figure; footnote rows (注:…) are skipped; a 其中 sub-row is read
when its indicator is known and skipped otherwise (a bulletin breaks figures down further than
the catalogue). A stock or ratio indicator's figure is a LEVEL at the period's end. Each figure
is validated as the SDMX feed row it stands for, so both layouts give the same records; a
rejected cell's dead letter names it (``1-6月!D7``).

Bulletins carry no revision numbers. The ledger (DATA_DIR/bulletins/revisions.json) remembers,
per figure, the latest value and which file gave which revision: a figure seen first is revision
0, the same file again gets the revisions it got before (re-publishing changes nothing), and a
changed value from another file becomes the next revision (``FeedRow.revised``).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from parkpulse.atomic_file import write_atomically
from parkpulse.producers.feed import FeedRow, check_conflicts
from parkpulse.producers.read_options import ReadOptions
from parkpulse.producers.sheets import (
    CellRejected,
    Sheet,
    cell_text,
    figure,
    is_footnote,
    read_sheets,
)
from parkpulse.schemas.catalogue import Catalogue
from parkpulse.schemas.errors import RejectedInput
from parkpulse.schemas.names import (
    UnknownName,
    lookup,
    resolve,
    resolve_option,
    unit_code,
    zone_in,
)
from parkpulse.schemas.records import Observation
from parkpulse.schemas.validation import validate_observation

HEADER_SCAN_ROWS = 30
LEDGER_FILE = "revisions.json"
_YEAR = re.compile(r"((?:19|20)[0-9]{2})\s*年")
_ISO_MONTH = re.compile(r"^((?:19|20)[0-9]{2})-([0-9]{2})$")
_RANGE = re.compile(r"1\s*[-—–~～至]+\s*([0-9]{1,2})\s*月")
_MONTH = re.compile(r"(?<![0-9])([0-9]{1,2})\s*月")
_WORDS = (
    ("前三季度", 9),
    ("三季度", 9),
    ("上半年", 6),
    ("二季度", 6),
    ("一季度", 3),
    ("第一季度", 3),
    ("全年", 12),
    ("四季度", 12),
)
_UNIT_SUFFIX = re.compile(r"^(?P<name>.+?)\((?P<unit>[^()]+)\)$")
_YEAR_PREFIX = re.compile(r"^(?:19|20)[0-9]{2}年")
# Sub-headers under a period label that mean "the figure of that period".
_VALUE_WORDS = frozenset(
    ("绝对值", "绝对数", "数值", "数额", "本期", "当期", "实绩", "完成", "总量")
)
_SUB_ROW = re.compile(r"^(?:其中[:：]?|#|[-—·•]+)")
_NUMBERING = re.compile(r"^(?:[0-9]+[.、)]|\([0-9]+\)|[一二三四五六七八九十]+、)")


@dataclass(frozen=True, slots=True)
class Layout:
    """Where a bulletin sheet keeps each thing (0-based columns)."""

    header_row: int
    indicator: int
    unit: int | None
    zone: int | None
    month: int | None
    ytd: int | None
    yoy: int | None  # the YoY of the YTD figure (of the MONTH one when there is no YTD column)
    month_yoy: int | None


def find_layout(sheet: Sheet) -> Layout | None:
    """The header of a bulletin in ``sheet``, or None when it holds none.

    A header may take two rows: a period row (1-6月, 6月, 本月, 累计, spanning columns) above
    sub-headers (本月 / 累计, or 绝对值 / 同比增长%, under each period); the row below the
    indicator row is read as sub-headers when it holds any. Its period labels then stand with
    the title (they name the period when the title does not)."""
    for at, row in enumerate(sheet.rows[:HEADER_SCAN_ROWS]):
        texts = [cell_text(v) for v in row]
        indicator = _first(texts, lambda t: t in ("指标", "指标名称", "主要指标", "项目", "指标名"))
        if indicator is None:
            continue
        below = [cell_text(v) for v in sheet.rows[at + 1]] if at + 1 < len(sheet.rows) else []
        two_rows = _sub_header_roles(texts, below, indicator)
        roles: dict[str, int] = {}
        if two_rows is not None:
            roles, at = two_rows, at + 1  # figures start under the sub-headers
        else:
            for col, text in enumerate(texts):
                role = _role(text)
                if role is not None and role not in roles:
                    roles[role] = col
        if "month" not in roles and "ytd" not in roles:
            continue
        yoy = roles.get("yoy")
        month_yoy = roles.get("month_yoy")
        if "ytd" not in roles and yoy is not None and month_yoy is None:
            month_yoy, yoy = yoy, None
        return Layout(
            header_row=at,
            indicator=indicator,
            unit=_first(texts, lambda t: t in ("单位", "计量单位")),
            zone=_first(texts, lambda t: t in ("园区", "区域", "地区", "开发区", "高新区")),
            month=roles.get("month"),
            ytd=roles.get("ytd"),
            yoy=yoy,
            month_yoy=month_yoy,
        )
    return None


def _role(text: str) -> str | None:
    if not text:
        return None
    if "同比" in text or text.startswith("增长") or text.startswith("增减"):
        return "month_yoy" if text.startswith(("本月", "当月")) else "yoy"
    if text.startswith(("本月", "当月")) or re.fullmatch(r"[0-9]{1,2}月份?", text):
        return "month"
    if "累计" in text or _RANGE.search(text) or text in ("全年", "上半年", "一季度", "前三季度"):
        return "ytd"
    return None


def _sub_header_roles(upper: list[str], lower: list[str], indicator: int) -> dict[str, int] | None:
    """The figure columns of a two-row header (period row ``upper`` spanning columns above the
    sub-headers ``lower``); None when ``lower`` holds no sub-header (it is then a data row).

    A merged cell is read in its first column only, so a period label covers the columns to
    its right up to the next label. A sub-header with a role of its own (本月, 累计) keeps it;
    同比 is the YoY of its period (本月 / 6月: the MONTH figure's); 绝对值, 数值, 本期 … are
    the figure of their period."""
    roles: dict[str, int] = {}
    group_role: str | None = None
    found = False
    for col in range(len(lower)):
        top = upper[col] if col < len(upper) else ""
        if top:
            group_role = _role(_YEAR_PREFIX.sub("", top))
        sub = lower[col]
        if col == indicator or not sub:
            continue
        own = _role(sub)
        if own in ("month", "ytd"):
            role: str | None = own
        elif own in ("yoy", "month_yoy"):
            role = "month_yoy" if own == "month_yoy" or group_role == "month" else "yoy"
        elif sub in _VALUE_WORDS and group_role in ("month", "ytd"):
            role = group_role
        else:
            continue
        found = True
        if role is not None and role not in roles:
            roles[role] = col
    return roles if found else None


def _first(texts: list[str], test: Any) -> int | None:
    return next((i for i, t in enumerate(texts) if t and test(t)), None)


def parse_period(text: str, year: int | None = None) -> str | None:
    """``YYYY-MM`` of the last month a bulletin period covers (1-6月 → 06, 上半年 → 06, 1—2月
    → 02), its year from ``text`` (2024年) or ``year``; None when it names no period."""
    text = unicodedata.normalize("NFKC", text)
    if (iso := _ISO_MONTH.match(text.strip())) is not None:
        return text.strip() if 1 <= int(iso[2]) <= 12 else None
    found = _YEAR.search(text)
    year = int(found[1]) if found else year
    rest = text[found.end() :] if found else text
    month = None
    if (span := _RANGE.search(rest)) is not None:
        month = int(span[1])
    else:
        month = next((m for word, m in _WORDS if word in rest), None)
        if month is None and (single := _MONTH.search(rest)) is not None:
            month = int(single[1])
    if year is None or month is None or not 1 <= month <= 12:
        return None
    return f"{year}-{month:02d}"


@dataclass(slots=True)
class _Context:
    """What every row of a sheet shares."""

    zone: str | RejectedInput | None  # None: a zone column names each row's
    period: str | RejectedInput


def read_bulletin(
    path: Path, catalogue: Catalogue, *, now: datetime, options: ReadOptions | None = None
) -> Iterator[FeedRow]:
    """The figures of every bulletin sheet of ``path``, validated, with their revisions."""
    options = options or ReadOptions()
    book = read_sheets(path)
    if book.problem:
        yield _file_error(path, book.problem)
        return
    rows: list[FeedRow] = []
    for sheet in book.sheets:
        layout = find_layout(sheet)
        if layout is not None:
            rows += _sheet_rows(sheet, layout, catalogue, now, options)
    if not any(find_layout(s) is not None for s in book.sheets):
        yield _file_error(
            path,
            "no bulletin found: no header row names an indicator column (指标/指标名称) and a"
            " figure column (本月, 1-N月, 累计); an SDMX feed needs its English header",
        )
        return
    ledger = Ledger.load(options.ledger)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    rows = [ledger.assign(row, digest) for row in rows]
    yield from check_conflicts(rows)
    ledger.save()


def _context(sheet: Sheet, layout: Layout, catalogue: Catalogue, options: ReadOptions) -> _Context:
    title = " ".join(cell_text(v) for row in sheet.rows[: layout.header_row] for v in row if v)
    zone = resolve_option("zone", options.zone, catalogue)
    if zone is None and layout.zone is None:
        zone = zone_in(title, catalogue) or RejectedInput(
            "malformed", "no zone: give --zone or a title naming it (烟台高新区2024年1-6月…)"
        )
    year_in_title = _YEAR.search(title)
    year = int(year_in_title[1]) if year_in_title else None
    period = None
    if options.period is not None:
        period = parse_period(options.period, year)
        if period is None:
            return _Context(zone, RejectedInput("bad_period", f"--period {options.period!r}"))
    period = period or parse_period(title) or parse_period(sheet.name, year)
    if period is None:
        what = "no period: give --period or a title naming it (2024年1-6月, 上半年)"
        return _Context(zone, RejectedInput("bad_period", what))
    return _Context(zone, period)


def _sheet_rows(
    sheet: Sheet, layout: Layout, catalogue: Catalogue, now: datetime, options: ReadOptions
) -> list[FeedRow]:
    context = _context(sheet, layout, catalogue, options)
    out: list[FeedRow] = []
    for at in range(layout.header_row + 1, len(sheet.rows)):
        texts = [cell_text(v) for v in sheet.rows[at]]
        if not any(texts) or is_footnote(texts):
            continue
        written = texts[layout.indicator] if layout.indicator < len(texts) else ""
        sub_row = _SUB_ROW.match(written) is not None
        name = _NUMBERING.sub("", _SUB_ROW.sub("", written))
        if not name:
            continue
        out += _row_figures(sheet, at, layout, context, catalogue, now, name, sub_row)
    return out


def _row_figures(
    sheet: Sheet,
    at: int,
    layout: Layout,
    context: _Context,
    catalogue: Catalogue,
    now: datetime,
    name: str,
    sub_row: bool,
) -> list[FeedRow]:
    """A table row's figures (its year-to-date and month columns) as feed rows; a row whose
    indicator, zone or period is wrong is one rejected feed row pointing at that cell."""
    text = ",".join(cell_text(v) for v in sheet.rows[at])
    try:
        found = _row_indicator(sheet, at, layout, catalogue, name, sub_row)
        if found is None:
            return []  # a breakdown the catalogue does not carry
        indicator, unit = found
        zone, period = _row_zone_period(sheet, at, layout, context, catalogue)
    except CellRejected as bad:
        place = sheet.place(at, layout.indicator if bad.col is None else bad.col)
        return [FeedRow(at + 1, text, None, bad.error.detached(), place)]
    flow = catalogue.indicators[indicator].kind == "flow"
    figures = [("YTD", layout.ytd, layout.yoy), ("MONTH", layout.month, layout.month_yoy)]
    out: list[FeedRow] = []
    for basis, col, yoy_col in figures:
        value, yoy = figure(sheet.cell(at, col)), figure(sheet.cell(at, yoy_col))
        if col is None or (value is None and yoy is None):
            continue
        if not flow:  # a stock or a ratio: the level at the period's end, once
            if any(r.record is not None or r.error is not None for r in out):
                continue
            basis, yoy = "LEVEL", yoy if basis == "YTD" else None
        raw = {
            "zone": zone,
            "indicator": indicator,
            "time_period": period,
            "basis": basis,
            "obs_value": value,
            "unit_measure": unit
            or (None if value is None else catalogue.indicators[indicator].unit),
            "yoy_pct": yoy,
        }
        out.append(_observation_row(raw, sheet, at, layout, (col, yoy_col), text, catalogue, now))
    return out


def _row_indicator(
    sheet: Sheet, at: int, layout: Layout, catalogue: Catalogue, name: str, sub_row: bool
) -> tuple[str, str] | None:
    """(indicator id, unit written) of a row: the unit from its column, else from the name's
    suffix (工业总产值(亿元)). An unknown name: None on a sub-row, else CellRejected."""
    unit = cell_text(sheet.cell(at, layout.unit))
    match = _UNIT_SUFFIX.match(name)
    if match and unit_code(match["unit"]) is not None:
        name, unit = match["name"], unit or match["unit"]
    indicator = lookup("indicator", name, catalogue)
    if indicator is None:
        if sub_row:
            return None
        try:
            resolve("indicator", name, catalogue)
        except UnknownName as exc:
            error = RejectedInput(exc.reason, f"indicator {exc.detail}")
            raise CellRejected(error, layout.indicator) from None
    assert indicator is not None
    return indicator, unit


def _row_zone_period(
    sheet: Sheet, at: int, layout: Layout, context: _Context, catalogue: Catalogue
) -> tuple[str, str]:
    """The row's zone (the sheet's, else its zone column's) and the sheet's period, or
    CellRejected when either is wrong."""
    zone = context.zone
    if zone is None:
        zone_text = cell_text(sheet.cell(at, layout.zone))
        try:
            zone = resolve("zone", zone_text, catalogue)
        except UnknownName as exc:
            error = RejectedInput(exc.reason, f"zone {exc.detail}")
            raise CellRejected(error, layout.zone or 0) from None
    if isinstance(zone, RejectedInput):
        raise CellRejected(zone, layout.indicator)
    if isinstance(context.period, RejectedInput):
        raise CellRejected(context.period, layout.indicator)
    return zone, context.period


def _observation_row(
    raw: dict[str, Any],
    sheet: Sheet,
    at: int,
    layout: Layout,
    columns: tuple[int, int | None],
    text: str,
    catalogue: Catalogue,
    now: datetime,
) -> FeedRow:
    """One figure validated; a reject points at the cell at fault (the figure's, its yoy's or
    the unit's)."""
    col, yoy_col = columns
    place = sheet.place(at, col)
    try:
        record = validate_observation(raw, catalogue, now=now)
    except RejectedInput as exc:
        if exc.detail.startswith("yoy_pct") and yoy_col is not None:
            place = sheet.place(at, yoy_col)
        elif exc.detail.startswith("unit_measure") and layout.unit is not None:
            place = sheet.place(at, layout.unit)
        return FeedRow(at + 1, text, None, exc.detached(), place)
    return FeedRow(at + 1, text, record, None, place)


class Ledger:
    """The revision each published bulletin figure has, and which file gave it (see above)."""

    def __init__(self, path: Path | None, entries: dict[str, Any]) -> None:
        self.path = path
        self.entries = entries

    @classmethod
    def load(cls, folder: Path | None) -> Ledger:
        if folder is None:
            return cls(None, {})
        path = folder / LEDGER_FILE
        try:
            entries = orjson.loads(path.read_bytes())
        except (FileNotFoundError, orjson.JSONDecodeError):
            entries = {}
        return cls(path, entries if isinstance(entries, dict) else {})

    def assign(self, row: FeedRow, digest: str) -> FeedRow:
        """``row`` with its figure's revision (a changed value from a new file: the next)."""
        obs = row.record
        if not isinstance(obs, Observation):
            return row
        key = "|".join(obs.key)
        seen = [obs.value, obs.yoy_pct, obs.obs_status]
        entry = self.entries.get(key)
        if entry is None:
            self.entries[key] = {"revision": 0, "figure": seen, "files": {digest: 0}}
            return row
        files = entry["files"]
        if digest in files:
            revision = files[digest]
        elif entry["figure"] == seen:
            revision = files[digest] = entry["revision"]
        else:
            revision = entry["revision"] + 1
            entry.update(revision=revision, figure=seen)
            files[digest] = revision
            return replace(row, record=replace(obs, revision=revision), revised=True)
        return replace(row, record=replace(obs, revision=revision))

    def save(self) -> None:
        if self.path is None:
            return
        write_atomically(self.path, orjson.dumps(self.entries))


def _file_error(path: Path, problem: str) -> FeedRow:
    return FeedRow(0, path.name, None, RejectedInput("malformed", problem), path.name)
