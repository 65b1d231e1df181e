"""Registration columns packed to cross a process boundary cheaply (streams/batch_reader.py).

A batch read in the reader process comes back to the worker through a pipe. Pickled as they
are, its 40,000 registrations × 9 columns of Python strings cost the worker ~1 µs a
registration to unpickle, and the reader ~2.5 µs to pickle. Packed, each text column travels
as one text, its values joined by a separator none of them holds (checked; a column with one
that does travels as the list it is), and capitals as their list: joining and splitting are one
C call a column. (Dictionary codes for the columns of few values were measured dearer: every
fresh text had to be hashed.)
Pure: ``unpack(pack(columns)) == columns`` for any columns (tests/test_packed.py).
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from parkpulse.schemas.registration import RegistrationColumns

SEPARATOR = "\x1f"  # ASCII unit separator: no plain id or time holds it (checked, not assumed)
_FIELDS = tuple(f.name for f in fields(RegistrationColumns))

Packed = tuple[int, dict[str, Any]]  # rows, and each column's packed form


def pack(columns: RegistrationColumns) -> Packed:
    """``columns`` in the packed form ``unpack`` reads."""
    n = len(columns)
    out: dict[str, Any] = {}
    for name in _FIELDS:
        values = getattr(columns, name)
        out[name] = values if name == "registered_capital" else _pack_texts(values, n)
    return n, out


def unpack(packed: Packed) -> RegistrationColumns:
    """The columns ``pack`` packed."""
    n, columns = packed
    return RegistrationColumns(
        **{
            name: value if name == "registered_capital" else _unpack_texts(value, n)
            for name, value in columns.items()
        }
    )


def _pack_texts(values: list[str], n: int) -> tuple[str, Any]:
    joined = SEPARATOR.join(values)
    if joined.count(SEPARATOR) == n - 1:  # no value holds the separator
        return ("joined", joined)
    return ("list", values)


def _unpack_texts(packed: tuple[str, Any], n: int) -> list[str]:
    form, values = packed
    if form == "joined":
        return values.split(SEPARATOR) if n else []
    return list(values)
