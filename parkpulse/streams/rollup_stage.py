"""The roll-up: figures and targets per zone → status rows, written to ClickHouse, then sent.

``observations`` + ``targets-by-zone`` (co-partitioned by zone) are one stream here. The agent
hands each batch of events to ``RollupStep.process``: load the zones it has not seen since it
started (or since a rebalance) from ClickHouse, apply the pure ``Rollup`` (streams/rollup.py) to
the batch's records, read message by message (``EventBatch``), write what changed (the batch is
acknowledged only once that is durable), then send the status rows and the rejected inputs on.
The pages that read the status table sit at the end.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import faust
import orjson

from parkpulse.logs import get_logger, log_event
from parkpulse.memory import gc_paused
from parkpulse.schemas.errors import key_of
from parkpulse.schemas.records import DeadLetter
from parkpulse.schemas.wire import status_wire
from parkpulse.sinks.retry import retry_store, write_durably
from parkpulse.streams.app import BATCH_WITHIN, ROLLUP_TAKE, Topics
from parkpulse.streams.deps import Deps
from parkpulse.streams.faust_internals import running_producer
from parkpulse.streams.keyed_send import send_all, send_keyed
from parkpulse.streams.refused_inputs import restate, rollup_deadletters
from parkpulse.streams.rollup import Input, Rollup, RollupResult, read_message
from parkpulse.streams.web import json_of, read_json
from parkpulse.topics import DEADLETTER, OBSERVATIONS, STATUS, TARGETS_BY_ZONE

log = get_logger("worker")

Send = Callable[[Iterable[tuple[bytes, bytes]]], Awaitable[int]]  # messages in, how many sent


def records_of(event: Any) -> list[Input]:
    """The records of one event (an envelope message holds many)."""
    return read_message(
        event.message.topic,
        "target" if event.message.topic == TARGETS_BY_ZONE else "observation",
        event.value if isinstance(event.value, bytes) else b"",
        event.message.partition,
        event.message.offset,
        event.message.key if event.message.topic == OBSERVATIONS else None,
    )


def inputs_of(events: Sequence[Any]) -> list[Input]:
    """The records of a batch of events, all at once."""
    return [record for event in events for record in records_of(event)]


@dataclass
class EventBatch:
    """A batch of events whose records are read message by message as the roll-up reaches them.

    Decoded all at once, a batch's figures were dicts of ~1.4 KB each held together (~28 MB for
    200 envelopes) at the start of ``apply``; read lazily, a message's records are let go once
    applied (scripts/profile_rollup.py: the same output, peak 623 → 573 MB in-process at 200
    messages a batch). Iterating counts the records per topic.
    """

    events: Sequence[Any]
    counts: Counter[str] = field(default_factory=Counter)

    def __iter__(self) -> Iterator[Input]:
        for event in self.events:
            records = records_of(event)
            self.counts[event.message.topic] += len(records)
            yield from records

    def zones(self) -> set[str | None]:
        """The zones the batch's records are about: a figure's message key names its zone (a
        record of another zone is refused as a stray, never applied); other messages are read."""
        zones: set[str | None] = set()
        for event in self.events:
            key = key_of(event.message.key) if event.message.topic == OBSERVATIONS else None
            if key:
                zones.add(key)
            else:
                zones.update(record.zone for record in records_of(event))
        return zones


def status_messages(result: RollupResult) -> Iterator[tuple[bytes, bytes]]:
    """The status topic's messages for a batch's result: changed rows, then tombstones (made
    as they are sent, see streams/keyed_send.py)."""
    for rows, deleted in ((result.batch.statuses, False), (result.batch.status_tombstones, True)):
        for row in rows:
            yield f"{row.zone}|{row.indicator}|{row.plan}".encode(), status_wire(row, deleted)


def deadletter_messages(dead: Sequence[DeadLetter]) -> list[tuple[bytes, bytes]]:
    return [(d.source_topic.encode(), orjson.dumps(d.to_dict())) for d in dead]


class RollupStep:
    """One batch of inputs through the roll-up, with the I/O around the pure ``Rollup``."""

    def __init__(
        self,
        deps: Deps,
        *,
        send_status: Send,
        send_deadletters: Send,
        status_changed: Callable[[], None],
        stopping: Callable[[], bool],
    ) -> None:
        self.deps = deps
        self.rollup = Rollup(deps.catalogue, jump_factor=deps.settings.suspect_jump_factor)
        self.send_status = send_status
        self.send_deadletters = send_deadletters
        self.status_changed = status_changed
        self.stopping = stopping

    def forget(self) -> None:
        """Another worker may have moved a zone on while we did not own it: reload lazily."""
        self.rollup.forget()

    async def load_missing(self, zones: set[str | None], holding: int = 0) -> None:
        """Load the state of the batch's zones not held yet from ClickHouse; ``holding``: the
        batch's size while it waits (its messages: an envelope is not read yet)."""
        catalogue, rollup, store = self.deps.catalogue, self.rollup, self.deps.store
        missing = sorted(z for z in zones if z in catalogue.zones and not rollup.is_loaded(z))
        if missing:
            states = await retry_store(
                store,
                store.zones_state,
                missing,
                metrics=self.deps.metrics,
                stopping=self.stopping,
                holding=holding,
            )
            for zone in missing:
                rollup.load(zone, *states[zone])

    async def process(self, events: Sequence[Any]) -> None:
        """Roll the batch up, write it, then send its status rows and dead letters."""
        metrics = self.deps.metrics
        batch = EventBatch(events)
        await self.load_missing(batch.zones(), holding=len(events))
        with gc_paused():
            result = self.rollup.apply(batch)
        for topic, count in batch.counts.items():
            metrics.count_events(topic, "in", count)
        dead = result.batch.deadletters
        result.batch.deadletters = []
        if len(result.batch):
            refused = await write_durably(self.deps.store, result.batch, metrics, self.stopping)
            if refused:  # dead letters; what they touched recomputed from what ClickHouse holds
                inputs = inputs_of(events)
                dead += rollup_deadletters(refused, inputs, self.rollup)
                dead += await restate(refused, self.rollup, self.deps, self.stopping, result)
        # Record batches straight to the producer (streams/keyed_send.py): a backfill emits a
        # status row per figure, and a send per row was a sixth of the worker's time.
        statuses = await self.send_status(status_messages(result))
        if statuses:
            metrics.count_events(STATUS, "out", statuses)
        if dead:
            await self.send_deadletters(deadletter_messages(dead))
            metrics.count_events(DEADLETTER, "out", len(dead))
        for figure in result.newly_suspect:  # counted once written
            metrics.count_suspect(figure.reason)
        if result.batch.statuses or result.batch.status_tombstones or result.shrunk:
            self.status_changed()  # the gauges follow ClickHouse, read again soon
        log_event(
            log,
            "batch_processed",
            inputs=sum(batch.counts.values()),
            accepted=result.accepted,
            rejected=len(dead),
            observations=len(result.batch.observations),
            targets=len(result.batch.targets),
            status_rows=len(result.batch.statuses),
            status_removed=len(result.batch.status_tombstones),
        )


def register(
    app: faust.App, topics: Topics, deps: Deps, status_changed: Callable[[], None]
) -> RollupStep:
    """The roll-up agent, its rebalance hook and the status pages."""

    async def send_status(messages: Iterable[tuple[bytes, bytes]]) -> int:
        return await send_keyed(running_producer(app), STATUS, messages)

    step = RollupStep(
        deps,
        send_status=send_status,
        send_deadletters=lambda messages: send_all(topics.deadletter, messages),
        status_changed=status_changed,
        stopping=lambda: bool(app.should_stop),
    )

    @app.agent(topics.zone_inputs)
    async def roll_up(stream: faust.StreamT) -> None:
        """Figures and targets per zone → status rows (ClickHouse first, then the topic)."""
        async for events in stream.take_events(ROLLUP_TAKE, within=BATCH_WITHIN):
            await step.process(events)

    @app.on_rebalance_complete.connect
    async def forget_state(sender: faust.App, **kwargs: Any) -> None:
        step.forget()

    register_views(app, deps)
    return step


def register_views(app: faust.App, deps: Deps) -> None:
    """``/api/status``, ``/api/status/history``, ``/api/suspect``, ``/api/scorecard``: what the
    roll-up wrote, read back from ClickHouse."""
    store = deps.store

    @app.page("/api/status")
    async def api_status(self: Any, request: Any) -> Any:
        names = ("zone", "indicator", "plan")
        return await read_json(self, store, request, names, store.latest_status)

    @app.page("/api/status/history")
    async def api_status_history(self: Any, request: Any) -> Any:
        return await read_json(self, store, request, ("zone",), store.status_rows)

    @app.page("/api/suspect")
    async def api_suspect(self: Any, request: Any) -> Any:
        return await read_json(self, store, request, ("zone",), store.suspect_figures)

    @app.page("/api/scorecard")
    async def api_scorecard(self: Any, request: Any) -> Any:
        return await json_of(self, store, store.scorecards)
