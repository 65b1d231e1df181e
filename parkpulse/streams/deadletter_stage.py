"""Dead letters: ``parkpulse.deadletter`` → ClickHouse ``deadletter``, and the page that reads it.

Every rejected input lands on the dead-letter topic — from the producers (a bad line, a bad
cell) and from this worker (a record the roll-up or the registrations stage refused) — and this
stage writes each into the table once, with its reason and its place. A dead-letter message
that cannot itself be read is kept too, as ``malformed``: nothing is dropped.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import faust
import orjson

from parkpulse.deadletter_query import DeadLetterQuery
from parkpulse.schemas.deadletter import dead_letter
from parkpulse.schemas.errors import RejectedInput
from parkpulse.schemas.records import DeadLetter
from parkpulse.sinks.batch import SinkBatch
from parkpulse.sinks.retry import write_durably
from parkpulse.streams.app import BATCH_MAX, BATCH_WITHIN, Topics
from parkpulse.streams.deps import Deps
from parkpulse.streams.web import bad_request, json_of
from parkpulse.topics import DEADLETTER


def read_deadletter(value: Any) -> DeadLetter:
    """A dead-letter message; one that cannot be read is itself kept, as malformed."""
    try:
        doc = orjson.loads(value)
        return DeadLetter(**{k: doc[k] for k in DeadLetter.__dataclass_fields__ if k in doc})
    except (orjson.JSONDecodeError, TypeError, ValueError):
        unreadable = RejectedInput("malformed", "unreadable dead-letter message")
        raw = value if isinstance(value, bytes) else ""
        return dead_letter(DEADLETTER, unreadable, raw, received_at=datetime.now(UTC).isoformat())


def register(app: faust.App, topics: Topics, deps: Deps) -> None:
    """The sinking agent and ``/api/deadletter``."""
    store, metrics = deps.store, deps.metrics

    @app.agent(topics.deadletter)
    async def sink_deadletters(stream: faust.StreamT) -> None:
        """Every rejected input, from the producers and from this worker, into ClickHouse."""
        async for events in stream.take_events(BATCH_MAX, within=BATCH_WITHIN):
            batch = SinkBatch(deadletters=[read_deadletter(e.value) for e in events])
            await write_durably(store, batch, metrics, lambda: app.should_stop)
            for d in batch.deadletters:
                metrics.count_deadletter(d.reason)
            metrics.count_events(DEADLETTER, "in", len(events))

    @app.page("/api/deadletter")
    async def api_deadletter(self: Any, request: Any) -> Any:
        """``{total, by_reason, rows}``: the newest ``limit`` rows of those matching ``origin``,
        ``reason`` and ``since`` (parkpulse/deadletter_query.py)."""
        try:
            asked = DeadLetterQuery.from_params(request.query)
        except ValueError as exc:
            return bad_request(self, exc)
        return await json_of(self, store, lambda: store.deadletter_page(*asked.params().values()))
