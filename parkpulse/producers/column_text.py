"""Figures read as columns, sent as columns (issue 14).

The columnar reader (producers/columnar.py) knows, per column, each distinct value as the
validator reads it and which one each row holds (``Field``), and the numbers as arrays
(``Numbers``). Here a file's accepted rows become wire columns without a dict per row
(``wire_columns``: per field a list, each distinct value one shared object, or the one value all
the rows hold); ``ZoneFigures`` holds one zone's, and each envelope of a hundred figures is a
slice of them, sent as a column envelope (``wire.observation_columns``) that the worker reads
back as the same records as the dict envelope of them (tests/test_columnar.py,
tests/test_envelope_columns.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from operator import attrgetter
from typing import Any

import numpy as np
import orjson

from parkpulse.schemas.envelope import records_of_columns
from parkpulse.schemas.wire import (
    OBSERVATION_WIRE_FIELDS,
    STRUCTURE,
    STRUCTURE_ID,
    observation_columns,
)

__all__ = ["Field", "Numbers", "ZoneFigures", "objects", "repeats", "wire_columns"]


@dataclass(frozen=True, slots=True)
class ZoneFigures:
    """The accepted figures of one zone in a file, in line order, as wire columns: per field of
    ``OBSERVATION_WIRE_FIELDS``, a list of one value per figure or the value all of them share
    (``wire.observation_columns``). An envelope of a hundred figures is a slice of each list."""

    zone: str
    columns: dict[str, Any]
    count: int

    @classmethod
    def of(cls, zone: str, records: list[dict[str, Any]]) -> ZoneFigures:
        """From wire records that all have the same fields."""
        names = list(records[0]) if records else list(OBSERVATION_WIRE_FIELDS)
        return cls(zone, {name: [r[name] for r in records] for name in names}, len(records))

    def __len__(self) -> int:
        return self.count

    @property
    def records(self) -> list[dict[str, Any]]:
        """The wire records (publishing sends ``envelopes``)."""
        return records_of_columns(self.columns, self.count)

    def envelopes(self, size: int) -> list[bytes]:
        """The messages carrying these figures, ``size`` to an envelope (1: bare records)."""
        if size == 1:
            return [orjson.dumps(record) for record in self.records]
        return [
            orjson.dumps(observation_columns(self.part(at, end), end - at))
            for at in range(0, self.count, size)
            for end in [min(at + size, self.count)]
        ]

    def part(self, start: int, end: int) -> dict[str, Any]:
        """The columns of figures ``start`` to ``end``."""
        return {k: v[start:end] if type(v) is list else v for k, v in self.columns.items()}


@dataclass(slots=True)
class Field:
    """One validated field of every row: its distinct values as the validator reads them (None:
    not as written) and, per row, which one (rows with equal values share a code)."""

    values: list[Any]
    codes: np.ndarray

    @classmethod
    def of(cls, per_text: Any, codes: np.ndarray, key: Any = None) -> Field:
        """From what each distinct text reads as and, per row, which text it holds."""
        index: dict[Any, int] = {}
        values: list[Any] = []
        remap = np.empty(len(per_text), dtype=np.int64)
        for at, value in enumerate(per_text):
            known = value if key is None or value is None else key(value)
            code = index.get(known)
            if code is None:
                code = index[known] = len(values)
                values.append(value)
            remap[at] = code
        return cls(values, remap[codes])

    def good(self) -> np.ndarray:
        """Per row, whether its value reads as written."""
        return np.array([v is not None for v in self.values], dtype=bool)[self.codes]

    def at(self, rows: np.ndarray) -> list[Any]:
        """The values of these rows."""
        return objects(self.values)[self.codes[rows]].tolist()


def objects(values: list[Any]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    for at, value in enumerate(values):
        out[at] = value
    return out


def repeats(fields: list[Field], rows: np.ndarray) -> bool:
    """Whether two of ``rows`` hold the same values in every one of ``fields``."""
    if len(rows) < 2:
        return False
    key, scale = np.zeros(len(rows), dtype=np.int64), 1
    for field in fields:  # the codes as the digits of one number, while it fits
        if scale * len(field.values) >= 1 << 62:
            codes = np.stack([field.codes[rows] for field in fields], axis=1)
            return len(np.unique(codes, axis=0)) != len(rows)
        key += field.codes[rows] * scale
        scale *= len(field.values)
    key.sort()
    return bool((key[1:] == key[:-1]).any())


@dataclass(slots=True)
class Numbers:
    """A number column as the validator reads it: the floats, and which rows have one."""

    floats: np.ndarray
    has: np.ndarray

    def at(self, rows: np.ndarray) -> list[float | None]:
        """The numbers of these rows (None: none)."""
        values: list[float | None] = self.floats[rows].tolist()
        for at in np.flatnonzero(~self.has[rows]).tolist():
            values[at] = None
        return values


def wire_columns(
    fields: dict[str, Any], rows: np.ndarray, lines: np.ndarray, origin: str
) -> dict[str, Any]:
    """The wire records of ``rows`` (in that order) as columns, fields in
    ``OBSERVATION_WIRE_FIELDS`` order: a list per field of what the validator read, each
    distinct value one object shared by its rows, or the one value all the rows hold."""
    indicator = fields["indicator"]

    def each(field: Field, read: Any = None) -> Any:
        values = (
            field.values if read is None else [None if v is None else read(v) for v in field.values]
        )
        codes = field.codes[rows]
        if len(codes) and (codes == codes[0]).all():
            return values[codes[0]]
        return objects(values)[codes].tolist()

    return {
        "structure": STRUCTURE,
        "structure_id": STRUCTURE_ID,
        "action": each(fields["action"]),
        "zone": each(fields["zone"]),
        "indicator": each(indicator, attrgetter("id")),
        "time_period": each(fields["period"]),
        "basis": each(fields["basis"]),
        "obs_value": fields["value"].at(rows),
        "unit_measure": each(indicator, attrgetter("unit")),
        "yoy_pct": fields["yoy"].at(rows),
        "obs_status": each(fields["obs_status"]),
        "revision": each(fields["revision"]),
        "published_at": each(fields["published_at"]),
        "source": each(fields["source"]),
        "origin": origin,
        "line": lines.tolist(),
    }
