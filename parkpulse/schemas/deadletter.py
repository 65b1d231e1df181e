"""Dead letters: the one way a rejected record is kept, wherever it was rejected.

The producer (a feed line it refused), the worker (a message or an envelope's record it refused)
and the dead-letter stage (a dead letter it cannot read) all build them here, so every dead
letter keeps its raw text the same way and within the same limit. Text is a decoded line, cut at
a character boundary and saying how long it was; bytes come off the wire and may not be UTF-8,
so they are cut first and decoded with replacement characters.
"""

from __future__ import annotations

from parkpulse.schemas.errors import RejectedInput
from parkpulse.schemas.records import DeadLetter

__all__ = ["RAW_LIMIT", "dead_letter", "kept_raw"]

RAW_LIMIT = 4 * 1024  # how much of a rejected record a dead letter keeps, in UTF-8 bytes


def kept_raw(raw: str | bytes) -> str:
    """``raw`` as a dead letter keeps it: cut to RAW_LIMIT bytes."""
    if isinstance(raw, bytes):
        return raw[:RAW_LIMIT].decode("utf-8", errors="replace")
    data = raw.encode("utf-8", "replace")
    if len(data) <= RAW_LIMIT:
        return raw
    return data[:RAW_LIMIT].decode("utf-8", "ignore") + f"…[cut, {len(data)} bytes]"


def dead_letter(
    source_topic: str,
    error: RejectedInput,
    raw: str | bytes,
    *,
    origin: str = "",
    line: int | None = None,
    received_at: str = "",
) -> DeadLetter:
    """The dead letter of a record ``error`` rejected.

    ``raw`` bytes are kept as kept_raw keeps them; text is taken as already kept (give
    ``kept_raw(text)`` for a line that may be long), so a kept text is never cut twice.
    """
    return DeadLetter(
        source_topic=source_topic,
        reason=error.reason,
        detail=error.detail,
        raw=kept_raw(raw) if isinstance(raw, bytes) else raw,
        origin=origin,
        line=line,
        received_at=received_at,
    )
