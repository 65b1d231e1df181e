"""The batch envelope of the observations topic: many figures of one zone in one message.

Faust costs ~90 µs per Kafka message, so a backfill of 640k figures sent one per message would
spend about a minute in Faust alone. A producer sends a zone's figures (the message key) up to
ENVELOPE_MAX at a time::

    {"observations": [{"zone": "jinan-hitech", "indicator": …, "origin": "feed.csv", "line": 2},
                      {…}, …]}

or, the form ``produce`` sends (a tenth of the bytes: each name once, a value all the figures
share once), the same records as columns::

    {"observation_columns": {"zone": "jinan-hitech", "time_period": ["2026-01", "2026-02"],
                             "obs_value": [12.5, 25.1], …, "origin": "feed.csv", "line": [2, 3]}}

where a list holds one value per figure and any other value is every figure's. A bare
observation object is still a message of its own. Each record of an envelope is validated (and,
when rejected, dead-lettered) on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import repeat
from typing import Any

from parkpulse.schemas.errors import RejectedInput
from parkpulse.schemas.wire import COLUMNS_FIELD, ENVELOPE_FIELD

ENVELOPE_MAX = 100  # figures per message a producer sends: ~1 µs of Faust per figure
MAX_COLUMNS = 64  # fields of a column envelope's figures (a figure has sixteen)


def envelope_records(doc: Any) -> list[Any] | None:
    """The records of an envelope, or None when ``doc`` is a bare record.

    Raises RejectedInput("malformed") for an envelope whose records are not a list, or whose
    columns are not an object of equally long lists and shared values."""
    found = envelope_of(doc)
    return found.records() if isinstance(found, ColumnEnvelope) else found


def envelope_of(doc: Any) -> list[Any] | ColumnEnvelope | None:
    """A dict envelope's records, a column envelope's columns, or None for a bare record (the
    same RejectedInput as ``envelope_records``)."""
    if type(doc) is not dict:
        return None
    if ENVELOPE_FIELD in doc:
        records = doc[ENVELOPE_FIELD]
        if type(records) is not list:
            raise RejectedInput(
                "malformed", f"{ENVELOPE_FIELD} must be a list, not {type(records).__name__}"
            )
        return records
    if COLUMNS_FIELD in doc:
        return ColumnEnvelope.of(doc[COLUMNS_FIELD])
    return None


def column_records(columns: Any) -> list[dict[str, Any]]:
    """The records of a column envelope's columns (RejectedInput as ``ColumnEnvelope.of``)."""
    return ColumnEnvelope.of(columns).records()


@dataclass(slots=True)
class ColumnEnvelope:
    """A column envelope's figures: its columns (a list: one value per figure; any other value:
    every figure's), read back as records only when one is needed."""

    columns: dict[str, Any]
    count: int

    @classmethod
    def of(cls, columns: Any) -> ColumnEnvelope:
        """RejectedInput("malformed") when ``columns`` is not an object, its lists differ in
        length, or it would make more than ENVELOPE_MAX records or records of more than
        MAX_COLUMNS fields (a small message must not become a huge batch). With fields but no
        list it holds one record; with no field, none."""
        if type(columns) is not dict:
            raise RejectedInput(
                "malformed", f"{COLUMNS_FIELD} must be an object, not {type(columns).__name__}"
            )
        lengths = {len(v) for v in columns.values() if type(v) is list}
        if len(lengths) > 1:
            raise RejectedInput(
                "malformed",
                f"{COLUMNS_FIELD} holds lists of {sorted(lengths)} values, not one length",
            )
        count = lengths.pop() if lengths else 1 if columns else 0  # no fields: no figure
        if count > ENVELOPE_MAX or len(columns) > MAX_COLUMNS:
            raise RejectedInput(
                "malformed",
                f"{COLUMNS_FIELD} holds {count} figures of {len(columns)} fields"
                f" (at most {ENVELOPE_MAX} of {MAX_COLUMNS})",
            )
        return cls(columns, count)

    def records(self) -> list[dict[str, Any]]:
        return records_of_columns(self.columns, self.count)

    def record(self, at: int) -> dict[str, Any]:
        """The record of figure ``at`` (0-based)."""
        return {name: v[at] if type(v) is list else v for name, v in self.columns.items()}


def records_of_columns(columns: dict[str, Any], count: int) -> list[dict[str, Any]]:
    """``count`` records from columns (a list: one value per record; else every record's)."""
    names = list(columns)
    values = [v if type(v) is list else repeat(v, count) for v in columns.values()]
    return [dict(zip(names, row, strict=False)) for row in zip(*values, strict=False)]
