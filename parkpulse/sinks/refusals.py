"""Rows ClickHouse refuses: found by halving the part it refused, and kept as dead letters.

ClickHouse refuses an insert as a whole (``ClickHouseRejected``, ``sinks/connection.py``) when
one of its rows breaks the table (a CHECK constraint an operator added, a value the column cannot
hold). ``refused_rows`` writes the halves of a refused part, and their halves, down to single
rows: every row that can land lands, and the rows still refused alone are the refused ones,
found in about ``2·k·log2(n)`` inserts for ``k`` of ``n`` rows. Writing a row again is harmless
(``sinks/writer.py``: ReplacingMergeTrees keyed by what a row is about, one version per batch).
A refused row becomes a dead letter with the reason ``clickhouse_rejected``; a refused dead
letter cannot be dead-lettered again, ``sinks/retry.py`` logs and counts it instead.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from parkpulse.schemas.deadletter import dead_letter, kept_raw
from parkpulse.schemas.errors import RejectedInput
from parkpulse.schemas.records import DeadLetter, Registration
from parkpulse.schemas.wire import registration_to_wire
from parkpulse.sinks.connection import ClickHouseRejected
from parkpulse.sinks.writer import Part

REFUSED = "clickhouse_rejected"  # the reason code (schemas/errors.py REASONS)
DETAIL_LIMIT = 500  # characters of ClickHouse's message a dead letter keeps


@dataclass(frozen=True, slots=True)
class Refused:
    """One row ClickHouse refused: its table, the record it was made from, and why."""

    table: str
    record: Any
    detail: str

    @property
    def error(self) -> RejectedInput:
        """The refusal as the input error its dead letter carries."""
        detail = f"ClickHouse refused the {self.table} row: {self.detail[:DETAIL_LIMIT]}"
        return RejectedInput(REFUSED, detail)


async def refused_rows(part: Part, land: Callable[[Part], Awaitable[Any]]) -> list[Refused]:
    """Land ``part`` with ``land``; when it is refused, its halves, down to single rows.

    Returns the rows refused on their own, in order; every other row has landed. Only
    ``ClickHouseRejected`` splits: ``ClickHouseUnavailable`` is ``land``'s retry policy's to
    wait out, and propagates when that gives up (the worker is stopping).
    """
    try:
        await land(part)
        return []
    except ClickHouseRejected as exc:
        if len(part) == 1:
            return [Refused(part.table, part.records[0], str(exc))]
    half = len(part) // 2
    first = await refused_rows(part.rows(0, half), land)
    return first + await refused_rows(part.rows(half, len(part)), land)


def refused_deadletters(refused: Sequence[Refused], source_topic: str) -> list[DeadLetter]:
    """Dead letters of refused rows kept as themselves: a registration with its batch (as the
    registrations stage places its records), a derived row (a status, a scorecard, a suspect
    figure) with its table. The roll-up places a refused figure or target at its input instead
    (``streams/refused_inputs.py``)."""
    received = datetime.now(UTC).isoformat()
    dead = []
    for row in refused:
        record = row.record
        if isinstance(record, Registration):
            raw = orjson.dumps(registration_to_wire(record))
            origin = f"batch:{record.batch_id}" if record.batch_id else source_topic
        else:
            raw = orjson.dumps(record)
            origin = f"clickhouse:{row.table}"
        dead.append(
            dead_letter(source_topic, row.error, kept_raw(raw), origin=origin, received_at=received)
        )
    return dead
