"""The batch envelope of the observations topic: many figures of one zone in one message.

Faust costs ~90 µs per Kafka message, so a backfill of 640k figures sent one per message would
spend about a minute in Faust alone. A producer sends a zone's figures (the message key) up to
ENVELOPE_MAX at a time::

    {"observations": [{"zone": "jinan-hitech", "indicator": …, "origin": "feed.csv", "line": 2},
                      {…}, …]}

A bare observation object is still a message of its own. Each record of an envelope is validated
(and, when rejected, dead-lettered) on its own.
"""

from __future__ import annotations

from typing import Any

from parkpulse.schemas.errors import RejectedInput
from parkpulse.schemas.wire import ENVELOPE_FIELD

ENVELOPE_MAX = 100  # figures per message a producer sends: ~1 µs of Faust per figure


def envelope_records(doc: Any) -> list[Any] | None:
    """The records of an envelope, or None when ``doc`` is a bare record.

    Raises RejectedInput("malformed") for an envelope whose records are not a list."""
    if type(doc) is not dict or ENVELOPE_FIELD not in doc:
        return None
    records = doc[ENVELOPE_FIELD]
    if type(records) is not list:
        raise RejectedInput(
            "malformed", f"{ENVELOPE_FIELD} must be a list, not {type(records).__name__}"
        )
    return records
