"""Tables people hand over: workbooks (xlsx, xls, ods via python-calamine) and CSV files
(UTF-8 or GBK), as sheets of cells addressed the way a clerk finds them (``1-6月!D7``).

A sheet keeps its empty leading rows and columns, so a cell's place is its place in the file.
Nothing in a file's content raises here: an unreadable workbook is a :class:`Sheets` with a
``problem``, which the readers turn into one dead letter for the file.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from python_calamine import CalamineError, CalamineWorkbook

from parkpulse.schemas.errors import RejectedInput

WORKBOOK_SUFFIXES = frozenset({".xlsx", ".xlsm", ".xlsb", ".xls", ".ods"})
MAX_CELLS = 2_000_000  # a bulletin has hundreds; a bigger sheet is an accident
NO_FIGURE = frozenset({"", "-", "--", "—", "——", "–", "…", "……", "...", "/", "—-", "-—", "无"})
_FOOTNOTE = re.compile(r"^注(?:$|[:：0-9.、,，(（*])")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")


class CellRejected(Exception):
    """A table row rejected for one of its cells: the reason and the (0-based) column at fault,
    which a reader turns into the rejected row's place (None: the reader's default column)."""

    def __init__(self, error: RejectedInput, col: int | None) -> None:
        super().__init__(str(error))
        self.error, self.col = error, col


@dataclass(frozen=True, slots=True)
class Sheet:
    """One sheet's cells, row by row from A1 (str stripped, float, int, date, bool; "" empty)."""

    name: str
    rows: list[list[Any]]

    def place(self, row: int, col: int) -> str:
        """A cell's address as a clerk reads it, from 0-based indexes: ``表2!C5``."""
        return f"{self.name}!{column_letters(col)}{row + 1}"

    def cell(self, row: int, col: int | None) -> Any:
        """The value at (row, col), "" when outside the sheet or no column."""
        if col is None or row >= len(self.rows) or col >= len(self.rows[row]):
            return ""
        return self.rows[row][col]


@dataclass(frozen=True, slots=True)
class Sheets:
    """The sheets of one file, or why it could not be read."""

    path: Path
    sheets: list[Sheet] = field(default_factory=list)
    problem: str | None = None


def column_letters(col: int) -> str:
    """0 → A, 25 → Z, 26 → AA."""
    letters = ""
    col += 1
    while col:
        col, rest = divmod(col - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def is_workbook(path: Path) -> bool:
    return path.suffix.lower() in WORKBOOK_SUFFIXES


def read_sheets(path: Path, nrows: int | None = None) -> Sheets:
    """Every sheet of a workbook, or a CSV file as one sheet named after the file (of a
    workbook, only the first ``nrows`` rows when given: enough to find a header)."""
    if is_workbook(path):
        return _workbook(path, nrows)
    return _csv(path)


def _workbook(path: Path, nrows: int | None = None) -> Sheets:
    try:
        book = CalamineWorkbook.from_path(str(path))
        sheets = []
        for name in book.sheet_names:
            rows = book.get_sheet_by_name(name).to_python(skip_empty_area=False, nrows=nrows)
            if sum(len(r) for r in rows) > MAX_CELLS:
                return Sheets(path, problem=f"sheet {name} has over {MAX_CELLS} cells")
            sheets.append(Sheet(name, [[_clean(v) for v in row] for row in rows]))
    except (CalamineError, OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return Sheets(path, problem=f"not a readable workbook ({reason[:200]})")
    return Sheets(path, sheets)


def _csv(path: Path) -> Sheets:
    data = path.read_bytes()
    for encoding in ("utf-8-sig", "gb18030"):  # GB18030 is a superset of GBK
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        return Sheets(path, problem="neither UTF-8 nor GB18030 (GBK) text")
    try:
        rows = [[_clean(v) for v in row] for row in csv.reader(io.StringIO(text, newline=""))]
    except csv.Error as exc:
        return Sheets(path, problem=f"not valid CSV ({exc})")
    return Sheets(path, [Sheet(path.stem, rows)])


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\u00a0", " ").strip()
    return value


def cell_text(value: Any) -> str:
    """A cell as text (numbers without a spurious ``.0``), NFKC-folded, spaces removed."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        value = int(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return "".join(unicodedata.normalize("NFKC", str(value)).split())


def is_footnote(texts: list[str]) -> bool:
    """Whether a row (its cells as :func:`cell_text`) is a footnote: its first text is 注, 注:…,
    注1… (注① folds to 注1) — not a name that starts with 注 (注册企业数 is a row to read)."""
    first = next((t for t in texts if t), "")
    return _FOOTNOTE.match(first) is not None


def figure(value: Any) -> float | str | None:
    """A cell as a figure: None for no figure (empty, —, -, …), a float for a number (also
    ``1,234.5`` and ``12%``), else the text as written (for validation to refuse)."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        return float(value)
    text = cell_text(value)
    if text in NO_FIGURE:
        return None
    plain = text.replace(",", "").removesuffix("%")
    if _NUMBER.fullmatch(plain):
        return float(plain)
    return text
