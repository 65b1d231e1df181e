"""A market-supervision register's export (新登记市场主体: xlsx, xls, or CSV in UTF-8 or GBK) as
registrations for ``parkpulse.registrations``.

The header (found within the first rows, under any title lines) is recognised by its column
names: 统一社会信用代码 (or 注册号: the registration id), 企业名称 (kept only in the dead letter's
text), 所属园区 or 登记机关 (the zone), 成立日期 / 登记日期 (the registration date; 成立日期 wins
when both are filled), 市场主体类型, 行业代码, 注册资本(万元). The zone is ``--zone`` when given
(it wins, as for bulletins), else the row's 所属园区 (a zone name or alias), else its 登记机关
with the bureau's suffix taken off (济南高新技术产业开发区市场监督管理局 → 济南高新技术产业开发区;
济南市市场监督管理局高新区分局 → 济南高新区). 市场主体类型 maps onto the registrations stage's
entity types: anything with 个体 → individual_business, with 合作社 → farmers_cooperative, any
公司 / 企业 / 合伙 / 全民所有制 / 集体所有制 → enterprise. A 行业代码 may be written without its
GB/T 4754 section letter (6510, or 0111 that a spreadsheet turned into 111): the letter is the
division's section (65 → I). Dates: 2024-03-05, 2024/3/5, 2024.3.5, 2024年3月5日, 20240305 and
spreadsheet date cells, read as Beijing time.

An entity is registered once, so a credit code counts once per file: an exact repeat of a row
is a duplicate (summarised, not published again); two rows giving one credit code different
details are a ``conflict`` — the earliest registration (then the smallest record) is kept, so
which row survives does not depend on row order, and the others are dead letters naming the line
kept. Across files and re-sends the worker counts each id once (streams/registrations.py).

A rejected row is a dead letter with its line, and for a workbook its cell (``登记!E7``). A
header without the columns every row needs is one dead letter for the file.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import orjson

from parkpulse.producers.feed import FeedRow
from parkpulse.producers.read_options import ReadOptions
from parkpulse.producers.sheets import (
    CellRejected,
    Sheet,
    cell_text,
    figure,
    is_footnote,
    is_workbook,
    read_sheets,
)
from parkpulse.schemas.catalogue import Catalogue, convert_unit
from parkpulse.schemas.errors import RejectedInput
from parkpulse.schemas.fields import show
from parkpulse.schemas.names import UnknownName, fold, lookup, resolve, resolve_option, unit_code
from parkpulse.schemas.periods import SHANGHAI
from parkpulse.schemas.records import Registration
from parkpulse.schemas.registration import CAPITAL_UNIT, validate_registration
from parkpulse.schemas.wire import registration_to_wire

__all__ = [
    "SECTIONS",
    "ExportLayout",
    "entity_type_of",
    "find_export_layout",
    "industry_code_of",
    "looks_like_export",
    "parse_date",
    "read_export",
    "zone_of_authority",
]

HEADER_SCAN_ROWS = 30
SNIFF_BYTES = 64 * 1024

_ID_NAMES = ("统一社会信用代码", "社会信用代码", "信用代码", "统一社会信用代码/注册号", "注册号")
_NAME_NAMES = ("企业名称", "市场主体名称", "主体名称", "名称")
_AUTHORITY_NAMES = ("登记机关", "登记机关名称", "管辖机关")
_ZONE_NAMES = ("所属园区", "园区", "所在园区")
_FOUNDED_NAMES = ("成立日期", "成立时间")
_REGISTERED_NAMES = ("登记日期", "注册日期", "登记时间")
_TYPE_NAMES = ("市场主体类型", "主体类型", "企业类型", "类型")
_INDUSTRY_NAMES = ("行业代码", "国民经济行业代码", "行业门类代码")
_CAPITAL = re.compile(r"^(?:注册资本|注册资金)(?:\((?P<unit>[^()]+)\))?$")

# What a row needs, and the header names that say so (for the file's one dead letter).
_REQUIRED = (
    ("credit_code", "统一社会信用代码"),
    ("date", "成立日期 or 登记日期"),
    ("entity_type", "市场主体类型"),
    ("industry", "行业代码"),
)

_AUTHORITY_SUFFIXES = (
    "市场监督管理局",
    "市场监管局",
    "工商行政管理局",
    "工商局",
    "行政审批服务局",
    "行政审批局",
)
_BRANCH = re.compile(
    r"^(?P<city>.+?)市?(?:市场监督管理局|市场监管局|工商行政管理局|工商局)(?P<branch>.+?)分局$"
)
_DATE = re.compile(
    r"^(?P<y>[0-9]{4})\s*[-/.年]\s*(?P<m>[0-9]{1,2})\s*[-/.月]\s*(?P<d>[0-9]{1,2})\s*日?"
    r"(?:[T\s]*(?P<H>[0-9]{1,2}):(?P<M>[0-9]{2})(?::(?P<S>[0-9]{2}))?)?$"
)
_COMPACT_DATE = re.compile(r"^(?P<y>[0-9]{4})(?P<m>[0-9]{2})(?P<d>[0-9]{2})$")
_INDUSTRY = re.compile(r"^(?P<letter>[A-Za-z])?(?P<digits>[0-9]{2,4})?(?P<rest>.*)$")
_CAPITAL_TEXT = re.compile(r"^(?P<number>[0-9][0-9,]*(?:\.[0-9]*)?)(?P<unit>[^0-9].*)$")

# GB/T 4754-2017: the divisions (first two digits) of each section.
SECTIONS = (
    ("A", 1, 5),
    ("B", 6, 12),
    ("C", 13, 43),
    ("D", 44, 46),
    ("E", 47, 50),
    ("F", 51, 52),
    ("G", 53, 60),
    ("H", 61, 62),
    ("I", 63, 65),
    ("J", 66, 69),
    ("K", 70, 70),
    ("L", 71, 72),
    ("M", 73, 75),
    ("N", 76, 79),
    ("O", 80, 82),
    ("P", 83, 83),
    ("Q", 84, 85),
    ("R", 86, 90),
    ("S", 91, 96),
    ("T", 97, 97),
)
_SECTION_OF = {d: letter for letter, lo, hi in SECTIONS for d in range(lo, hi + 1)}


@dataclass(frozen=True, slots=True)
class ExportLayout:
    """Where a register export's sheet keeps each thing (0-based columns)."""

    header_row: int
    credit_code: int
    name: int | None
    authority: int | None
    zone: int | None
    founded: int | None
    registered: int | None
    entity_type: int | None
    industry: int | None
    capital: int | None
    capital_unit: str  # a unit code: what the 注册资本 header says, else CNY_10K

    def missing(self) -> list[str]:
        """The header names of the columns every row needs that this sheet lacks."""
        have = {
            "credit_code": self.credit_code,
            "date": self.founded if self.founded is not None else self.registered,
            "entity_type": self.entity_type,
            "industry": self.industry,
        }
        return [label for key, label in _REQUIRED if have[key] is None]


def find_export_layout(sheet: Sheet) -> ExportLayout | None:
    """The header of a register export in ``sheet``: a row naming a credit-code column and a
    date column; None when the sheet holds none."""
    for at, row in enumerate(sheet.rows[:HEADER_SCAN_ROWS]):
        texts = [cell_text(v) for v in row]
        credit_code = _column(texts, _ID_NAMES)
        founded, registered = _column(texts, _FOUNDED_NAMES), _column(texts, _REGISTERED_NAMES)
        if credit_code is None or (founded is None and registered is None):
            continue
        capital, capital_unit = None, CAPITAL_UNIT
        for col, text in enumerate(texts):
            match = _CAPITAL.match(text)
            if match is not None:
                capital = col
                capital_unit = (unit_code(match["unit"]) if match["unit"] else None) or (
                    match["unit"] or CAPITAL_UNIT
                )
                break
        return ExportLayout(
            header_row=at,
            credit_code=credit_code,
            name=_column(texts, _NAME_NAMES),
            authority=_column(texts, _AUTHORITY_NAMES),
            zone=_column(texts, _ZONE_NAMES),
            founded=founded,
            registered=registered,
            entity_type=_column(texts, _TYPE_NAMES),
            industry=_column(texts, _INDUSTRY_NAMES),
            capital=capital,
            capital_unit=capital_unit,
        )
    return None


def _column(texts: list[str], names: tuple[str, ...]) -> int | None:
    return next((i for i, t in enumerate(texts) if t in names), None)


def looks_like_export(path: Path) -> bool:
    """Whether ``path`` holds a register export (by its header), without reading it all."""
    if is_workbook(path):
        book = read_sheets(path, nrows=HEADER_SCAN_ROWS)
        return any(find_export_layout(s) is not None for s in book.sheets)
    try:
        with path.open("rb") as fh:
            head = fh.read(SNIFF_BYTES)
    except OSError:
        return False
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = head.decode("gb18030", "ignore")
    lines = text.splitlines()[:HEADER_SCAN_ROWS]
    rows = [[cell.strip().strip('"') for cell in line.split(",")] for line in lines]
    return find_export_layout(Sheet("sniff", rows)) is not None


def parse_date(value: Any) -> datetime | None:
    """A registration date (a date cell, 2024-03-05, 2024/3/5, 2024年3月5日, 20240305, with an
    optional time) as a Beijing-time datetime; None when it is not one."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=SHANGHAI) if value.tzinfo is None else value
    if isinstance(value, date):
        return datetime.combine(value, time(), SHANGHAI)
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # 20240305 in a number cell
    text = unicodedata.normalize("NFKC", str(value)).strip()  # spaces part a date from its time
    match = _DATE.match(text) or _COMPACT_DATE.match(text)
    if match is None:
        return None
    parts = match.groupdict()
    try:
        return datetime(
            int(parts["y"]),
            int(parts["m"]),
            int(parts["d"]),
            int(parts.get("H") or 0),
            int(parts.get("M") or 0),
            int(parts.get("S") or 0),
            tzinfo=SHANGHAI,
        )
    except ValueError:  # 2024-02-30, 25:00
        return None


def entity_type_of(text: str) -> str | None:
    """The registrations stage's entity type for a 市场主体类型, or None when it names none."""
    folded = fold(text)
    if folded in ("enterprise", "individual_business", "farmers_cooperative"):
        return folded
    if "个体" in folded:
        return "individual_business"
    if "合作社" in folded:
        return "farmers_cooperative"
    if any(word in folded for word in ("公司", "企业", "合伙", "全民所有制", "集体所有制")):
        return "enterprise"
    return None


def industry_code_of(value: Any) -> str | None:
    """A GB/T 4754 code with its section letter (6510 → I6510, I65 软件… → I65); None when the
    cell is no code, or its letter is not its division's section."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not float(value).is_integer() or value < 0:
            return None
        digits = str(int(value))
        # A spreadsheet drops leading zeros: 111 was 0111, 5 was 05.
        text = digits.zfill(4) if len(digits) == 3 else digits.zfill(2)
    else:
        text = cell_text(value)
    match = _INDUSTRY.match(text)
    if match is None or not (match["letter"] or match["digits"]):
        return None
    rest = match["rest"]
    if rest and (rest[0].isascii() and rest[0].isalnum()):
        return None  # I65x, 65101: not a code
    letter, digits = (match["letter"] or "").upper(), match["digits"] or ""
    if len(digits) == 3 and not letter:
        return None  # a group code without its division is ambiguous
    section = _SECTION_OF.get(int(digits[:2])) if digits else letter
    if section is None or (letter and letter != section):
        return None
    return section + digits


def zone_of_authority(text: str, catalogue: Catalogue) -> str | None:
    """The zone a 登记机关 stands for (its name without the bureau's suffix), or None."""
    for candidate in _authority_names(text):
        zone = lookup("zone", candidate, catalogue)
        if zone is not None:
            return zone
    return None


def _authority_names(text: str) -> list[str]:
    folded = fold(text)
    out = []
    branch = _BRANCH.match(folded)
    if branch is not None:
        name = branch["branch"]
        out += [branch["city"] + name, name]
    for suffix in _AUTHORITY_SUFFIXES:
        if folded.endswith(suffix) and len(folded) > len(suffix):
            out.append(folded[: -len(suffix)])
            break
    return out or [folded]


# -- reading a file -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Read:
    """One data row after reading: its FeedRow and, when accepted, its registration's wire form."""

    row: FeedRow
    wire: bytes = b""


def read_export(
    path: Path, catalogue: Catalogue, *, now: datetime, options: ReadOptions | None = None
) -> Iterator[FeedRow]:
    """The registrations of every export sheet of ``path``, validated and de-duplicated by
    credit code (see the module docstring)."""
    options = options or ReadOptions()
    book = read_sheets(path)
    if book.problem:
        yield _file_error(path, book.problem)
        return
    zone_option = resolve_option("zone", options.zone, catalogue)
    workbook = is_workbook(path)
    read: list[_Read] = []
    found = False
    for sheet in book.sheets:
        layout = find_export_layout(sheet)
        if layout is None:
            continue
        found = True
        missing = layout.missing()
        if layout.zone is None and layout.authority is None and zone_option is None:
            missing.append("所属园区 or 登记机关 (or give --zone)")
        if missing:
            detail = "the register export's header lacks " + ", ".join(missing)
            place = sheet.place(layout.header_row, 0) if workbook else ""
            text = ",".join(cell_text(v) for v in sheet.rows[layout.header_row])
            exc = RejectedInput("malformed", detail)
            read.append(_Read(FeedRow(layout.header_row + 1, text, None, exc, place)))
            continue
        for at in range(layout.header_row + 1, len(sheet.rows)):
            texts = [cell_text(v) for v in sheet.rows[at]]
            if any(texts) and not is_footnote(texts):
                read.append(_row(sheet, at, layout, catalogue, now, zone_option, workbook))
    if not found:
        yield _file_error(
            path,
            "no register export found: no header row names a 统一社会信用代码 column and a date"
            " column (成立日期 or 登记日期)",
        )
        return
    yield from _deduplicated(read)


def _row(
    sheet: Sheet,
    at: int,
    layout: ExportLayout,
    catalogue: Catalogue,
    now: datetime,
    zone_option: str | RejectedInput | None,
    workbook: bool,
) -> _Read:
    """One row of an export: its registration and wire bytes, or the reject naming the cell at
    fault (a CSV's rejects name only the line)."""
    text = ",".join(cell_text(v) for v in sheet.rows[at])

    def place(col: int | None) -> str:
        return sheet.place(at, col if col is not None else layout.credit_code) if workbook else ""

    try:
        record = _registration(sheet, at, layout, catalogue, now, zone_option)
    except CellRejected as bad:
        return _Read(FeedRow(at + 1, text, None, bad.error.detached(), place(bad.col)))
    wire = orjson.dumps(registration_to_wire(record))
    return _Read(FeedRow(at + 1, text, record, None, place(layout.credit_code)), wire)


def _registration(
    sheet: Sheet,
    at: int,
    layout: ExportLayout,
    catalogue: Catalogue,
    now: datetime,
    zone_option: str | RejectedInput | None,
) -> Registration:
    """The row's registration, its cells checked in the export's column order; CellRejected."""
    code = cell_text(sheet.cell(at, layout.credit_code)).upper()
    if not code:
        raise CellRejected(RejectedInput("malformed", "统一社会信用代码 is empty"), None)
    zone, zone_col = _zone(sheet, at, layout, catalogue, zone_option)
    if isinstance(zone, RejectedInput):
        raise CellRejected(zone, zone_col)
    when, date_col = _registered_at(sheet, at, layout)
    kind = _entity_type(sheet, at, layout)
    industry = _industry(sheet, at, layout)
    try:
        capital = _capital(sheet.cell(at, layout.capital), layout.capital_unit)
        return validate_registration(
            {
                "zone": zone,
                "registration_id": code,
                "registered_at": when.astimezone(SHANGHAI).isoformat(),
                "entity_type": kind,
                "industry_code": industry,
                "registered_capital": capital,
            },
            catalogue,
            now=now,
        )
    except RejectedInput as exc:
        col = {
            "registered_capital": layout.capital,
            "registered_at": date_col,
            "zone": zone_col,
        }.get(exc.detail.split(" ", 1)[0], layout.credit_code)
        if exc.reason in ("future_period", "bad_period"):
            col = date_col
        raise CellRejected(exc, col) from None


def _registered_at(sheet: Sheet, at: int, layout: ExportLayout) -> tuple[datetime, int | None]:
    """The registration's date (成立日期, else 登记日期 when that is empty) and its column."""
    date_col = layout.founded
    if date_col is None or not cell_text(sheet.cell(at, date_col)):
        date_col = layout.registered if layout.registered is not None else date_col
    written = sheet.cell(at, date_col)
    when = parse_date(written)
    if when is None:
        what = "is empty" if not cell_text(written) else f"{show(cell_text(written))} is not a date"
        detail = f"registration date {what} (e.g. 2024-03-05, 2024/3/5, 2024年3月5日)"
        raise CellRejected(RejectedInput("bad_period", detail), date_col)
    return when, date_col


def _entity_type(sheet: Sheet, at: int, layout: ExportLayout) -> str:
    """The 市场主体类型 as the record's entity type."""
    kind_text = cell_text(sheet.cell(at, layout.entity_type))
    kind = entity_type_of(kind_text)
    if kind is None:
        detail = (
            f"市场主体类型 {show(kind_text)} is not a known type"
            " (…公司/…企业 → enterprise, 个体工商户, 农民专业合作社)"
        )
        raise CellRejected(RejectedInput("malformed", detail), layout.entity_type)
    return kind


def _industry(sheet: Sheet, at: int, layout: ExportLayout) -> str:
    """The 行业代码 as a GB/T 4754 code."""
    industry_cell = sheet.cell(at, layout.industry)
    industry = industry_code_of(industry_cell)
    if industry is None:
        detail = (
            f"行业代码 {show(cell_text(industry_cell))} is not a GB/T 4754 code"
            " (a section letter and/or 2–4 digits of its division, e.g. I6510 or 6510)"
        )
        raise CellRejected(RejectedInput("bad_value", detail), layout.industry)
    return industry


def _zone(
    sheet: Sheet,
    at: int,
    layout: ExportLayout,
    catalogue: Catalogue,
    zone_option: str | RejectedInput | None,
) -> tuple[str | RejectedInput, int | None]:
    """The row's zone (or why not) and the column it came from."""
    if zone_option is not None:
        return zone_option, None
    named = cell_text(sheet.cell(at, layout.zone))
    if named:
        try:
            return resolve("zone", named, catalogue), layout.zone
        except UnknownName as exc:
            return RejectedInput(exc.reason, f"所属园区 {exc.detail}"), layout.zone
    authority = cell_text(sheet.cell(at, layout.authority))
    if authority:
        zone = zone_of_authority(authority, catalogue)
        if zone is not None:
            return zone, layout.authority
        try:
            resolve("zone", _authority_names(authority)[0], catalogue)
        except UnknownName as exc:
            detail = f"登记机关 {show(authority)} names no known zone ({exc.detail})"
            return RejectedInput(exc.reason, detail), layout.authority
    col = layout.zone if layout.zone is not None else layout.authority
    return RejectedInput("unknown_zone", "no zone: 所属园区 and 登记机关 are empty"), col


def _capital(value: Any, unit: str) -> float | None:
    """注册资本 in 万元 (the header's unit, or one written after the number: 50万美元)."""
    amount = figure(value)
    if amount is None or isinstance(amount, float):
        number = amount
    else:
        match = _CAPITAL_TEXT.match(amount)
        code = unit_code(match["unit"]) if match is not None else None
        if match is None or code is None:
            raise RejectedInput("bad_value", f"registered_capital {show(amount)} is not an amount")
        number, unit = float(match["number"].replace(",", "")), code
    if number is None or unit == CAPITAL_UNIT:
        return number
    converted = convert_unit(number, unit, CAPITAL_UNIT)
    if converted is None:
        raise RejectedInput(
            "unit_mismatch",
            f"registered_capital in {unit} does not convert to 万元 ({CAPITAL_UNIT})",
        )
    return converted


def _deduplicated(read: list[_Read]) -> Iterator[FeedRow]:
    """Each credit code once: the earliest registration (then the smallest record) is kept,
    its exact repeats are duplicates, and rows giving the code other details are conflicts."""
    kept: dict[str, _Read] = {}
    for item in read:
        record = item.row.record
        if isinstance(record, Registration):
            held = kept.get(record.registration_id)
            if held is None or _rank(item) < _rank(held):
                kept[record.registration_id] = item
    published: set[str] = set()
    for item in read:
        record = item.row.record
        if not isinstance(record, Registration):
            yield item.row
            continue
        winner = kept[record.registration_id]
        if item.wire != winner.wire:
            detail = (
                f"统一社会信用代码 {record.registration_id} is on line {winner.row.line} too,"
                " with other details; the earliest registration is kept"
            )
            yield replace(item.row, record=None, error=RejectedInput("conflict", detail))
        elif record.registration_id in published:
            yield replace(item.row, record=None, duplicate=True)
        else:
            published.add(record.registration_id)
            yield item.row


def _rank(item: _Read) -> tuple[str, bytes]:
    record = item.row.record
    assert isinstance(record, Registration)
    return record.registered_at, item.wire


def _file_error(path: Path, problem: str) -> FeedRow:
    return FeedRow(0, path.name, None, RejectedInput("malformed", problem), path.name)
