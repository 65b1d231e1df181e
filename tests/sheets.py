"""Bureau tables as the tests write them: a workbook sheet or a CSV, line by line (openpyxl)."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import openpyxl


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
