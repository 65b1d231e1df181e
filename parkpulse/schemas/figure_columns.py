"""A column envelope's figures validated as columns (issue 14).

``validate_observation`` reads one record: a dict per figure, its dozen fields looked up one by
one. A column envelope (schemas/envelope.py) holds up to a hundred figures of one zone whose
zone, source, status, action, publication date and revision are most often one value each, sent
once. ``read_figure_columns`` reads each of those once and only the fields that vary per figure,
and gives exactly the Observations ``validate_observation`` gives the envelope's records, when
every figure takes the reader's plain path (names and texts it has met before, plain numbers, a
past month). Otherwise it gives None and the caller reads the records one by one, each reject
with its own reason and line (tests/test_figure_columns.py holds the two to each other).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from itertools import repeat
from typing import Any

from parkpulse.schemas.fields import MAX_FIELD_CHARS
from parkpulse.schemas.records import Observation
from parkpulse.schemas.validation import (
    ACTION_SPELLINGS,
    BASIS_SPELLINGS,
    SOURCE_SPELLINGS,
    STATUS_SPELLINGS,
    ObservationReader,
    plain_choice,
    plain_revision,
)

__all__ = ["read_figure_columns"]


class _NotPlain(Exception):
    """A figure that needs the record-by-record reader."""


def read_figure_columns(
    reader: ObservationReader, columns: dict[str, Any], count: int, now: datetime
) -> list[Observation] | None:
    """The ``count`` figures of a column envelope's ``columns`` (a list: one value per figure;
    any other value: every figure's), as ``reader.read`` gives each record; None when one of
    them is not plain."""
    keys = tuple(columns)
    layout = reader.layouts.get(keys) or reader.layout(keys)
    if layout is None:  # odd or repeated names: Fields reads them
        return None
    values = (*columns.values(), None)  # an absent field: None (the layout's -1)
    if any(_long_text(values[at]) for at in layout.others):
        return None  # a huge field the reader does not read is still refused
    zone, name, text, basis, number, unit, yoy, status, revision, published, action, source = (
        layout.fields(values)
    )
    try:
        zones = _each(zone, count, _text_in(reader.zones))
        indicators = _each(name, count, _text_in(reader.indicators))
        bases = _each(basis, count, _text_in(BASIS_SPELLINGS))
        actions = _each(action, count, _plain_action)
        sources = _each(source, count, lambda v: plain_choice(SOURCE_SPELLINGS, v))
        statuses = _each(status, count, lambda v: plain_choice(STATUS_SPELLINGS, v))
        revisions = _each(revision, count, plain_revision)
        published_at = _each(published, count, reader.plain_published)
        periods = _periods(reader, _values(text, count), bases, now.year * 12 + now.month)
        figures = list(
            map(
                lambda n, u, y, i: _figure(reader, n, u, y, i),
                _values(number, count),
                _values(unit, count),
                _values(yoy, count),
                indicators,
            )
        )
    except _NotPlain:
        return None
    return [
        Observation(z, i.id, p, b, f[0], i.unit, f[1], st, r, a, pub, src)
        for z, i, p, b, f, st, r, a, pub, src in zip(
            zones,
            indicators,
            periods,
            bases,
            figures,
            statuses,
            revisions,
            actions,
            published_at,
            sources,
            strict=True,
        )
    ]


def _values(column: Any, count: int) -> Iterable[Any]:
    return column if type(column) is list else repeat(column, count)


def _each(column: Any, count: int, read: Callable[[Any], Any]) -> list[Any]:
    """What ``read`` makes of each figure's value (a shared value read once); _NotPlain when it
    makes None of one."""
    if type(column) is not list:
        value = read(column)
        if value is None:
            raise _NotPlain
        return [value] * count
    out = list(map(read, column))
    if None in out:
        raise _NotPlain
    return out


def _text_in(known: dict[Any, Any]) -> Callable[[Any], Any]:
    """What ``known`` holds for a text (None: another value, or a text not met before)."""
    return lambda value: known.get(value) if value.__class__ is str else None


def _long_text(column: Any) -> bool:
    if type(column) is list:
        return any(v.__class__ is str and len(v) > MAX_FIELD_CHARS for v in column)
    return column.__class__ is str and len(column) > MAX_FIELD_CHARS


def _plain_action(value: Any) -> str | None:
    """ACTION as the reader takes it plainly; a delete (a tombstone) is read record by record."""
    action = plain_choice(ACTION_SPELLINGS, value)
    return None if action == "D" else action


def _periods(
    reader: ObservationReader, texts: Iterable[Any], bases: list[str], limit: int
) -> list[str]:
    """Each figure's period as met before, none starting after the month ``limit``."""
    out: list[str] = []
    for text, basis in zip(texts, bases, strict=False):  # texts: a list or a repeat
        known = reader.periods.get((text, basis)) if text.__class__ is str else None
        if known is None or known[1] > limit:
            raise _NotPlain
        out.append(known[0])
    return out


def _figure(
    reader: ObservationReader, number: Any, unit: Any, yoy: Any, indicator: Any
) -> tuple[float | None, float | None]:
    figure = reader.plain_figure(number, unit, yoy, indicator)
    if figure is None:
        raise _NotPlain
    return figure
