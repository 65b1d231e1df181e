"""The registrations stage: ``parkpulse.registrations`` → ClickHouse → derived monthly figures.

Each batch goes through ``RegistrationCounter.take_read``, the stage's domain step (testable
without Faust: tests/test_registrations_stage.py): read and validate it (streams/registrations.py
``read_batch``, in a helper process: streams/batch_reader.py), keep each id once
(``DistinctIds``, loaded from ClickHouse per zone), write the new rows, dead-letter the rejects.
The agent starts reading each batch as it is taken and queues it (``queue_taken``,
``READ_AHEAD``) for ``count_taken``, so batch N+1 is read on another core while batch N is
counted and written.

Counts change with every batch, but a derived figure per (zone, month) every EMIT_EVERY is
plenty, and each one costs a produce round trip and a roll-up recompute. So batches are written
at once and their events acknowledged only after the counts they changed have been emitted: a
crash in between replays them, which counts nothing twice.
The pages that read the registrations table sit at the end.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

import faust
import orjson

from parkpulse.logs import get_logger, log_event
from parkpulse.schemas.envelope import ENVELOPE_MAX
from parkpulse.schemas.records import DeadLetter, Observation
from parkpulse.schemas.registration_block import RegistrationBlock
from parkpulse.schemas.wire import observation_envelope, observation_to_wire
from parkpulse.sinks.clickhouse import ClickHouseStore
from parkpulse.sinks.retry import retry_store, until_stopped, write_registrations_durably
from parkpulse.streams.app import REGISTRATIONS_TAKE, Topics
from parkpulse.streams.batch_reader import IDLE_STOP, BatchReader
from parkpulse.streams.deps import Deps
from parkpulse.streams.keyed_send import send_all
from parkpulse.streams.registrations import (
    Batch,
    DistinctIds,
    Message,
    Pair,
    dedupe,
    derived_observations,
)
from parkpulse.topics import DEADLETTER, OBSERVATIONS, REGISTRATIONS

log = get_logger("registrations")

TAKE_WITHIN = 0.25  # seconds: a registration is in ClickHouse well within a second
EMIT_EVERY = 2.0  # seconds between derived figures of one (zone, month)
READ_AHEAD = 1  # batches queued while one is counted (and one more taken, its read started)

Send = Callable[[list[tuple[bytes, bytes]]], Awaitable[Any]]
Ack = Callable[[], Awaitable[Any]]


@dataclass
class Unemitted:
    """(zone, month)s whose counts changed, and the acks of the events waiting for them."""

    pairs: set[Pair] = field(default_factory=set)
    events: list[Ack] = field(default_factory=list)  # acknowledge one event each
    since: float = field(default_factory=time.monotonic)
    writing: asyncio.Future[None] | None = None  # the batch being written to ClickHouse
    emitting: asyncio.Future[None] | None = None  # counts being delivered, then acks
    rebalanced: bool = False  # partitions moved: emit, then drop the cache

    async def written(self) -> None:
        """Wait for the write in flight (its failure, on shutdown, surfaces here)."""
        writing, self.writing = self.writing, None
        if writing is not None:
            await writing

    async def delivered(self) -> None:
        emitting, self.emitting = self.emitting, None
        if emitting is not None:
            await emitting

    def due(self, every: float = EMIT_EVERY) -> bool:
        return bool(self.pairs or self.events) and time.monotonic() - self.since >= every

    def clear(self) -> None:
        self.pairs.clear()
        self.events.clear()
        self.since = time.monotonic()


def message_of(event: Any) -> Message:
    """A Faust event of the registrations topic as ``read_batch`` reads it."""
    return Message(
        event.value if isinstance(event.value, bytes) else b"",
        event.message.partition,
        event.message.offset,
        event.key if isinstance(event.key, bytes) and event.key else None,
    )


def since_sent(sent_at: str) -> float | None:
    """Milliseconds from a producer's ``sent_at`` stamp to now (None: no readable stamp)."""
    try:
        sent = datetime.fromisoformat(sent_at)
    except ValueError:
        return None
    if sent.tzinfo is None:
        return None
    return round((datetime.now(UTC) - sent).total_seconds() * 1000, 1)


def release_bytes(events: Sequence[Any]) -> None:
    """Drop the events' message bytes once read (``message_of`` took them): an event waits for
    its acknowledgement until the counts it changed are emitted (EMIT_EVERY), and a backlog
    held ~1,500 envelopes (~50 MB) of bytes alive for nothing. Acknowledging needs only the
    message's partition and offset."""
    for event in events:
        event.value = None
        event.message.value = None


def derived_messages(derived: Sequence[Observation]) -> list[tuple[bytes, bytes]]:
    """Derived figures as one envelope per zone (its key), as a producer sends figures: one
    Kafka message to send and for the roll-up to take per zone, not one per figure."""
    by_zone: dict[str, list[dict[str, Any]]] = {}
    for obs in derived:
        by_zone.setdefault(obs.zone, []).append(observation_to_wire(obs))
    return [
        (zone.encode(), orjson.dumps(observation_envelope(records[i : i + ENVELOPE_MAX])))
        for zone, records in by_zone.items()
        for i in range(0, len(records), ENVELOPE_MAX)
    ]


class RegistrationCounter:
    """The stage's state (the id cache, what is not emitted yet) and its domain step."""

    def __init__(
        self,
        deps: Deps,
        *,
        send_observations: Send,
        send_deadletters: Send,
        stopping: Callable[[], bool],
        reader: BatchReader | None = None,
    ) -> None:
        self.deps = deps
        self.reader = reader or BatchReader(deps.catalogue, in_process=True)
        self.send_observations = send_observations
        self.send_deadletters = send_deadletters
        self.stopping = stopping
        self.ids = DistinctIds()
        self.lock = asyncio.Lock()
        self.unemitted = Unemitted()

    async def take(self, messages: Sequence[Message], acks: Sequence[Ack]) -> None:
        """One batch: read, counted and written now; ``acks`` run once its counts are
        delivered."""
        await self.take_read(len(messages), self.reader.read(messages, datetime.now(UTC)), acks)

    async def take_read(self, count: int, read: Awaitable[Batch], acks: Sequence[Ack]) -> None:
        """``take`` of a batch of ``count`` messages whose reading is under way (``read``)."""
        async with self.lock:
            await self.after_rebalance()
            await self.process(count, await read)
            self.unemitted.events += acks
            if self.unemitted.due():
                await self.emit()

    async def tick(self) -> None:
        """Counts of a stream that went quiet still go out within about EMIT_EVERY."""
        unemitted = self.unemitted
        if (unemitted.due() or unemitted.rebalanced) and not self.lock.locked():
            async with self.lock:
                await self.after_rebalance()
                if unemitted.due():
                    await self.emit()

    def rebalanced(self) -> None:
        """Partitions moved. Never wait here (a write may be retrying): the next batch or tick
        emits what was counted, then drops the cache."""
        self.unemitted.rebalanced = True

    async def process(self, count: int, batch: Batch) -> None:
        """A batch of ``count`` messages, read: de-duplicated, written, dead letters sent."""
        metrics, store, ids = self.deps.metrics, self.deps.store, self.ids
        received = time.monotonic()
        # Records, not messages: each is counted or dead-lettered.
        metrics.count_events(REGISTRATIONS, "in", len(batch.registrations) + len(batch.deadletters))
        regs = RegistrationBlock.of_rows(batch.registrations)  # the reader process made it
        pairs = regs.pairs()
        missing = ids.missing(zone for zone, _ in pairs)
        if missing:
            # The store's one thread runs this after the (urgent) writes submitted before it.
            known_ids = await retry_store(
                store,
                store.registration_ids,
                missing,
                metrics=metrics,
                stopping=self.stopping,
                urgent=True,
            )
            for zone, known, months, types in known_ids:
                ids.load(zone, known, months, types)
            for zone in ids.missing(missing):  # nothing registered there yet
                ids.load(zone, [], [], [])
        counted = dedupe(regs, ids)
        # The cache learns the batch at once, so the next batch is de-duplicated against it
        # while this one is still being written: one write in flight overlaps the next read.
        for zone, (hashes, new) in counted.zones.items():
            ids.add(zone, hashes, new)
        await self.unemitted.written()
        self.unemitted.writing = asyncio.ensure_future(self.write(counted.new, received))
        self.unemitted.pairs |= pairs
        ids.evict(keep={zone for zone, _ in self.unemitted.pairs})
        if batch.deadletters:
            await self.send_dead(batch.deadletters)
        log_event(
            log,
            "registrations_processed",
            messages=count,
            accepted=len(batch.registrations),
            new=len(counted.new),
            rejected=len(batch.deadletters),
            cached_ids=len(ids),
        )

    async def write(self, new: RegistrationBlock, received: float) -> None:
        """Write a batch's new registrations durably; its log line says where the time went
        from the batch's arrival (``received``): the store thread's queue (``queued_ms``) and
        the whole way to the insert's end (``written_ms``)."""
        store = self.deps.store
        await write_registrations_durably(
            store, new, self.deps.metrics, self.stopping, self.refused
        )
        if len(new):
            log_event(
                log,
                "registrations_written",
                rows=len(new),
                queued_ms=round(store.urgent_waited * 1000, 1),
                written_ms=round((time.monotonic() - received) * 1000, 1),
                oldest_sent_ms=since_sent(new.oldest_sent),
            )

    async def refused(self, dead: list[DeadLetter]) -> None:
        """Registrations ClickHouse refused (sinks/retry.py): sent on as dead letters. The id
        cache counted them: it is reloaded from ClickHouse after the next emission."""
        await self.send_dead(dead)
        self.rebalanced()

    async def send_dead(self, dead: Sequence[DeadLetter]) -> None:
        """Dead letters of this stage's records to the dead-letter topic, keyed by its topic."""
        await self.send_deadletters(
            [(REGISTRATIONS.encode(), orjson.dumps(d.to_dict())) for d in dead]
        )
        self.deps.metrics.count_events(DEADLETTER, "out", len(dead))

    async def emit(self) -> None:
        """Send the counts of every (zone, month) changed since last time, then acknowledge.

        Writing, delivery and acknowledgement finish in the background, one emission after the
        other, so the next batch is read meanwhile.
        """
        unemitted = self.unemitted
        if unemitted.emitting is not None and unemitted.emitting.done():
            await unemitted.delivered()  # a failure surfaces here and stops the agent
        derived = [
            obs
            for pair in sorted(unemitted.pairs)
            for obs in derived_observations(*pair, *self.ids.counts(pair))
        ]
        unemitted.emitting = asyncio.ensure_future(
            self.deliver(unemitted.emitting, unemitted.writing, derived, list(unemitted.events))
        )
        unemitted.writing = None
        unemitted.clear()

    async def deliver(
        self,
        before: asyncio.Future[None] | None,
        writing: asyncio.Future[None] | None,
        derived: list[Observation],
        acks: list[Ack],
    ) -> None:
        for step in (before, writing):  # counts go out only once what they count is written
            if step is not None:
                await step
        await self.send_observations(derived_messages(derived))
        self.deps.metrics.count_events(OBSERVATIONS, "out", len(derived))
        for ack in acks:
            await ack()

    async def after_rebalance(self) -> None:
        # What we counted still goes out (a lower count than another worker's later one is
        # ignored downstream: its revision is lower), then the cache is dropped: another
        # worker may have counted a zone on while we did not own it.
        if self.unemitted.rebalanced:
            await self.emit()
            self.ids.forget()
            self.unemitted.rebalanced = False


# A taken batch: how many messages, their reading (under way), their acks.
Taken = tuple[int, "asyncio.Future[Batch]", list[Ack]]


async def count_taken(
    counter: RegistrationCounter,
    taken: asyncio.Queue[Taken],
    on_error: Callable[[BaseException], Coroutine[Any, Any, None]],
) -> None:
    """Count the taken batches in the order they were taken, each once it is read. A failure
    is reported (``on_error``: the worker stops, nothing committed) and ends the task."""
    try:
        while True:
            count, read, acks = await taken.get()
            await counter.take_read(count, read, acks)
            del read, acks
    except asyncio.CancelledError:
        raise
    except BaseException as exc:
        await on_error(exc)
        raise


async def queue_taken(
    taken: asyncio.Queue[Taken], item: Taken, counting: asyncio.Future[None]
) -> None:
    """Queue a batch for ``counting``; raises what stopped it (it would never take the batch).
    A batch not queued has its reading cancelled."""
    try:
        if not counting.done():
            put = asyncio.ensure_future(taken.put(item))
            try:
                await asyncio.wait((put, counting), return_when=asyncio.FIRST_COMPLETED)
            except BaseException:
                put.cancel()
                raise
            if put.done():
                return
            put.cancel()
        counting.result()  # its error, or CancelledError
        raise RuntimeError("the registrations counting task ended")
    except BaseException:
        item[1].cancel()
        raise


def register(app: faust.App, topics: Topics, deps: Deps) -> RegistrationCounter:
    """The counting agent, its emission timer and rebalance hook, and the pages."""
    reader = BatchReader(deps.catalogue, in_process=not deps.settings.reader_process)
    counter = RegistrationCounter(
        deps,
        send_observations=lambda messages: send_all(topics.observations, messages),
        send_deadletters=lambda messages: send_all(topics.deadletter, messages),
        stopping=lambda: bool(app.should_stop),
        reader=reader,
    )

    @app.agent(topics.registrations, concurrency=1)  # faust#606: >1 may commit past in-flight
    async def count_registrations(stream: faust.StreamT) -> None:
        """Registrations → ClickHouse (first) → derived monthly observations → acknowledged.
        Each batch is read (on the helper's core) as soon as it is taken, while the one before
        is counted and written (``count_taken``)."""
        taken: asyncio.Queue[Taken] = asyncio.Queue(maxsize=READ_AHEAD)
        counting = asyncio.ensure_future(count_taken(counter, taken, app.consumer.on_task_error))
        try:
            async for events in stream.noack_take(REGISTRATIONS_TAKE, within=TAKE_WITHIN):
                reader.taken(len(events), REGISTRATIONS_TAKE)  # the helper, when behind
                messages = [message_of(e) for e in events]
                release_bytes(events)  # the messages hold them until the batch is read
                read = asyncio.ensure_future(reader.read(messages, datetime.now(UTC)))
                acks = [partial(stream.ack, e) for e in events]
                await queue_taken(taken, (len(messages), read, acks), counting)
                del messages, read
        finally:  # stopping, or the counting failed: what was taken is not acknowledged
            counting.cancel()
            while not taken.empty():
                taken.get_nowait()[1].cancel()
            await asyncio.gather(counting, return_exceptions=True)

    @app.timer(interval=IDLE_STOP / 4)
    async def stop_idle_reader() -> None:
        await reader.stop_idle()

    @app.on_before_shutdown.connect
    async def stop_reader(sender: faust.App, **kwargs: Any) -> None:
        await reader.close()

    @app.timer(interval=EMIT_EVERY / 4)
    async def emit_counts() -> None:
        await until_stopped(counter.tick(), lambda: bool(app.should_stop))

    @app.on_rebalance_complete.connect
    async def forget_ids(sender: faust.App, **kwargs: Any) -> None:
        counter.rebalanced()

    register_views(app, deps.store)
    return counter


def register_views(app: faust.App, store: ClickHouseStore) -> None:
    """``/api/registrations``, ``…/figures``, ``…/stats`` and ``/api/counts``."""

    @app.page("/api/registrations")
    async def api_registrations(self: Any, request: Any) -> Any:
        """Distinct registrations per (zone, month, entity_type), from ClickHouse."""
        zone = request.query.get("zone") or None
        month = request.query.get("month") or None
        rows = await store.arun(store.registration_counts, zone, month)
        return self.json(rows)

    @app.page("/api/registrations/figures")
    async def api_registration_figures(self: Any, request: Any) -> Any:
        """The monthly figures derived from registrations, as the roll-up keeps them."""
        zone = request.query.get("zone") or None
        return self.json(await store.arun(store.registration_figures, zone))

    @app.page("/api/registrations/stats")
    async def api_registration_stats(self: Any, request: Any) -> Any:
        """Rows and sent → ingested latency (``?since=`` ISO time), for the benchmark."""
        since_text = request.query.get("since")
        try:
            since = datetime.fromisoformat(since_text) if since_text else None
        except ValueError:
            return self.json({"error": "since must be an ISO 8601 date-time"}, status=400)
        return self.json(await store.arun(store.registration_stats, since))

    @app.page("/api/counts")
    async def api_counts(self: Any, request: Any) -> Any:
        """Current row counts per table (observations, statuses …), for the benchmark."""
        return self.json(await store.arun(store.counts))
