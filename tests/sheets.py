"""Bureau tables as the tests write them: a workbook sheet (xlsx by openpyxl, xls by xlwt) or a
CSV, line by line."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import openpyxl
import xlwt


def write_sheet(path: Path, lines: Iterable[Sequence[Any]], *, sheet: str) -> Path:
    """One sheet named ``sheet`` holding ``lines``; an empty string is an empty cell."""
    book = openpyxl.Workbook()
    ws = book.active
    assert ws is not None
    ws.title = sheet
    for line in lines:
        ws.append([None if v == "" else v for v in line])
    book.save(path)
    return path


def write_table_csv(path: Path, lines: Iterable[Sequence[Any]], encoding: str) -> Path:
    """``lines`` as CSV in ``encoding`` (a None cell is empty)."""
    with path.open("w", encoding=encoding, newline="") as fh:
        csv.writer(fh).writerows(["" if v is None else v for v in line] for line in lines)
    return path


def write_xls(path: Path, lines: Iterable[Sequence[Any]], *, sheet: str) -> Path:
    """As :func:`write_sheet`, in the Excel 97-2003 format (.xls); dates as date cells."""
    book = xlwt.Workbook(encoding="utf-8")
    ws = book.add_sheet(sheet)
    day = xlwt.easyxf(num_format_str="YYYY-MM-DD")
    for r, line in enumerate(lines):
        for c, value in enumerate(line):
            if value is None or value == "":
                continue
            if isinstance(value, date):
                ws.write(r, c, value, day)
            else:
                ws.write(r, c, value)
    book.save(str(path))
    return path
