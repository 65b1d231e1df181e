"""Figures read as columns, written as the JSON text they travel in (issue 14).

The columnar reader (producers/columnar.py) knows, per column, each distinct value as the
validator reads it and which one each row holds (``Field``), and the numbers as arrays
(``Numbers``). Here a file's accepted rows become their wire records' JSON text without a dict
per row: a distinct value's text is written once, the numbers by orjson in one list, and each
row is one pyarrow gather of its pieces into one buffer per file. ``ZoneFigures`` holds one
zone's slice of it; an envelope of a hundred figures is one slice more. The text is exactly what
``orjson.dumps`` writes for ``observation_envelope`` of the same records (tests/test_columnar.py).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pyarrow as pa

from parkpulse.schemas.wire import (
    OBSERVATION_WIRE_FIELDS,
    STRUCTURE,
    STRUCTURE_ID,
    observation_envelope_text,
)

__all__ = ["Field", "Numbers", "ZoneFigures", "objects", "repeats", "wire_texts"]


@dataclass(frozen=True, slots=True)
class ZoneFigures:
    """The accepted figures of one zone in a file, in line order, as the JSON text of their
    wire records (``observation_to_wire`` with ``origin`` and ``line``): each record's text
    follows a comma in ``text``, from ``bounds[i]`` to ``bounds[i + 1]``. One buffer per file,
    so an envelope of a hundred figures is one slice of it."""

    zone: str
    text: bytes
    bounds: list[int]

    @classmethod
    def of(cls, zone: str, rows: list[bytes]) -> ZoneFigures:
        """From each record's JSON text."""
        bounds = [0]
        for row in rows:
            bounds.append(bounds[-1] + 1 + len(row))
        return cls(zone, b"".join(b"," + row for row in rows), bounds)

    def __len__(self) -> int:
        return len(self.bounds) - 1

    @property
    def rows(self) -> list[bytes]:
        """Each record's JSON text."""
        text, bounds = self.text, self.bounds
        return [text[start + 1 : end] for start, end in itertools.pairwise(bounds)]

    @property
    def records(self) -> list[dict[str, Any]]:
        """The wire records, decoded (publishing sends ``envelopes``)."""
        return [orjson.loads(row) for row in self.rows]

    def envelopes(self, size: int) -> list[bytes]:
        """The messages carrying these figures, ``size`` to an envelope (1: bare records)."""
        if size == 1:
            return self.rows
        text, bounds, n = self.text, self.bounds, len(self)
        return [
            observation_envelope_text(text[bounds[at] + 1 : bounds[min(at + size, n)]])
            for at in range(0, n, size)
        ]


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
        floats, has = self.floats[rows].tolist(), self.has[rows].tolist()
        return [v if h else None for v, h in zip(floats, has, strict=True)]

    def texts(self, rows: np.ndarray) -> tuple[list[bytes], np.ndarray]:
        """The JSON texts of the numbers of ``rows`` as orjson writes them, then null; and per
        row, which one."""
        text = orjson.dumps(self.floats[rows].tolist())[1:-1]
        texts = [*(text.split(b",") if text else []), b"null"]
        codes = np.where(self.has[rows], np.arange(len(rows), dtype=np.int64), len(rows))
        return texts, codes


def wire_texts(
    fields: dict[str, Any], rows: np.ndarray, lines: np.ndarray, origin: str
) -> tuple[bytes, np.ndarray]:
    """The wire records of ``rows`` as JSON text in one buffer, each after a comma, and
    where each starts (then where the last ends). Fields in ``OBSERVATION_WIRE_FIELDS``
    order; a distinct value's text is written once (with its name), the numbers by orjson
    in one list; each row's text is then one gather of its pieces (pyarrow ``take``)."""
    n = len(rows)
    indicator = fields["indicator"]
    every = np.arange(n, dtype=np.int64)
    sources: dict[str, Any] = {
        "structure": STRUCTURE,
        "structure_id": STRUCTURE_ID,
        "action": (fields["action"], orjson.dumps),
        "zone": (fields["zone"], orjson.dumps),
        "indicator": (indicator, lambda i: orjson.dumps(i.id)),
        "time_period": (fields["period"], orjson.dumps),
        "basis": (fields["basis"], orjson.dumps),
        "obs_value": fields["value"],
        "unit_measure": (indicator, lambda i: orjson.dumps(i.unit)),
        "yoy_pct": fields["yoy"],
        "obs_status": (fields["obs_status"], orjson.dumps),
        "revision": (fields["revision"], orjson.dumps),
        "published_at": (fields["published_at"], orjson.dumps),
        "source": (fields["source"], orjson.dumps),
        "origin": origin,
        "line": lines,
    }
    pieces: list[Any] = []  # tables of texts, one after another
    picks: list[np.ndarray] = []  # per row, which text of all the tables
    size = 0

    def add(texts: Any, codes: np.ndarray) -> None:
        nonlocal size
        pieces.append(
            pa.array(texts, pa.large_binary())
            if isinstance(texts, list)
            else texts.cast(pa.large_binary())
        )
        picks.append(codes + size)
        size += len(texts)

    pending = b","
    for at, name in enumerate(OBSERVATION_WIRE_FIELDS):
        pending += (b"{" if at == 0 else b",") + orjson.dumps(name) + b":"
        source = sources[name]
        if isinstance(source, tuple):  # a Field: its distinct values, with the name
            field, encode = source
            texts = [b"" if v is None else pending + encode(v) for v in field.values]
            add(texts, field.codes[rows])  # (None: no row here holds it)
        elif isinstance(source, Numbers):
            add([pending], np.zeros(n, dtype=np.int64))
            texts, codes = source.texts(rows)
            add(texts, codes)
        elif isinstance(source, np.ndarray):  # the line numbers
            add([pending], np.zeros(n, dtype=np.int64))
            add(pa.array(source, pa.int64()).cast(pa.string()), every)
        else:  # a constant
            pending += orjson.dumps(source)
            continue
        pending = b""
    add([pending + b"}"], np.zeros(n, dtype=np.int64))
    gathered = pa.concat_arrays(pieces).take(pa.array(np.stack(picks, axis=1).ravel()))
    offsets = np.frombuffer(gathered.buffers()[1], dtype=np.int64)
    offsets = offsets[gathered.offset : gathered.offset + len(gathered) + 1]
    return gathered.buffers()[2].to_pybytes(), offsets[:: len(picks)]
