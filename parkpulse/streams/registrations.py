"""The registrations stage: batch envelopes in, distinct counts per (zone, month, type) out.

``parkpulse.registrations`` (key zone) → ``count_registrations`` → ClickHouse ``registrations``
(written before the batch is acknowledged) → derived monthly observations ``new_market_entities``
(every entity type) and ``new_enterprises`` (entity_type enterprise), ``source="registrations"``,
basis MONTH, into ``parkpulse.observations`` — the same status pipeline as the bureau's figures,
where the bureau's own figure wins for a month that has both.

Nothing is a running sum. A registration id is counted once however often it is replayed or
re-sent, across restarts: the durable record is the ``registrations`` table (one row per
``(zone, registration_id)``), and a count is the number of distinct ids in it. Asking ClickHouse
per batch does not scale — a ``uniqExact`` over the affected (zone, month)s reads every stored
row of them (measured: 0.4 s per batch at 1.8 M rows, growing all month), and point lookups of
a batch's ids read every granule too (random ids) — so the worker keeps a cache of each
zone's ids as 64-bit hashes (8 bytes per registration in a numpy array) with the counts per
month they make, rebuilt from the table the first time a zone is seen after a start or a
rebalance, and evicted least-recently-used beyond ``max_ids``. The hash is Python's own
``hash()`` of the id (SipHash, per process; the cache never leaves the process); two ids of one
zone colliding is a ~n²/2⁶⁵ chance (10⁻⁸ at a million). The revision of a derived figure is its
count: counts only grow, so a re-emitted figure is a no-op downstream.

A registration is a fact: a re-sent id is a duplicate, and the first copy seen is the one kept
and counted (a re-send with another date or type does not move it). That is why the cache is
per zone and not per (zone, month): a copy dated another month must find the first one. The
table is a ReplacingMergeTree that would keep the last copy inserted, so the second copy is
never written; reading it back, the first copy ingested wins where an older table holds both.
The price: a worker holds 8 bytes per registration in the history of the zones it counts (a
zone is loaded whole), where a per-month cache held the months in play. Past ``max_ids`` the
least recently used zones are reloaded whole when next seen; add workers (and partitions) to
spread zones before a worker's zones outgrow it.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import compress
from typing import Any

import faust
import numpy as np
import orjson

from parkpulse.logs import get_logger, log_event
from parkpulse.schemas.catalogue import Catalogue
from parkpulse.schemas.deadletter import dead_letter
from parkpulse.schemas.errors import RejectedInput, key_of, wrong_key
from parkpulse.schemas.records import DeadLetter, Observation, Registration
from parkpulse.schemas.registration import read_envelope, validate_records
from parkpulse.schemas.wire import observation_to_wire, registration_to_wire
from parkpulse.sinks.clickhouse import ClickHouseStore, ClickHouseUnavailable
from parkpulse.sinks.metrics import PipelineMetrics
from parkpulse.topics import DEADLETTER, OBSERVATIONS, REGISTRATIONS

log = get_logger("registrations")

TAKE_MAX = 100  # messages (envelopes of a few hundred registrations each) per batch
TAKE_WITHIN = 0.25  # seconds: a registration is in ClickHouse well within a second
EMIT_EVERY = 2.0  # seconds between derived figures of one (zone, month)
MAX_CACHED_IDS = 8_000_000  # ~64 MB of id hashes
RECENT_MIN = 4096  # ids a zone gathers before they are merged into its bulk
RETRY_MAX_DELAY = 10.0
ALL_TYPES = "new_market_entities"
ENTERPRISES = "new_enterprises"

Pair = tuple[str, str]  # (zone, month)


# -- the distinct-id cache (pure) ---------------------------------------------------------


@dataclass
class _Zone:
    # Every id the zone has registered, whatever its month, as sorted int64 hashes in two runs:
    # the bulk, and what was added since it was last merged (a zone's history is large, and
    # inserting each batch into it would copy all of it batch after batch).
    hashes: np.ndarray
    counts: dict[str, list[int]]  # month -> [all entity types, enterprises] of those ids
    recent: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.hashes) + len(self.recent)

    def holds(self, hashes: np.ndarray) -> np.ndarray:
        """A mask over ``hashes``: those already held."""
        known = np.zeros(len(hashes), dtype=bool)
        for run in (self.hashes, self.recent):
            if len(run):
                pos = np.searchsorted(run, hashes)
                inside = pos < len(run)
                inside[inside] = run[pos[inside]] == hashes[inside]
                known |= inside
        return known

    def insert(self, hashes: np.ndarray) -> None:
        """Hold new (sorted, not yet held) hashes; the recent run merges into the bulk once it
        is an eighth of it, so each id is copied a bounded number of times."""
        self.recent = np.insert(self.recent, np.searchsorted(self.recent, hashes), hashes)
        if len(self.recent) > max(RECENT_MIN, len(self.hashes) // 8):
            self.hashes = np.insert(
                self.hashes, np.searchsorted(self.hashes, self.recent), self.recent
            )
            self.recent = self.recent[:0]


class DistinctIds:
    """Distinct registration ids per zone, with their counts per month; a cache of the table.

    An id is one entity in its zone whatever month a copy of it is dated, so ids are held per
    zone, not per (zone, month): a re-send dated another month is found and not counted again.
    ``fresh`` says which of a batch's ids are new (first copy within the batch, absent from the
    cache); ``add`` records them (written durably before their counts go out). Zones not loaded
    must be ``load``-ed from ClickHouse first. Memory is bounded by ``max_ids``: the least
    recently used zones are dropped (and reloaded when seen again).
    """

    def __init__(self, max_ids: int = MAX_CACHED_IDS) -> None:
        self.max_ids = max_ids
        self._zones: OrderedDict[str, _Zone] = OrderedDict()
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def missing(self, zones: Iterable[str]) -> list[str]:
        return sorted(z for z in set(zones) if z not in self._zones)

    def load(
        self,
        zone: str,
        registration_ids: Sequence[str],
        months: Sequence[str],
        types: Sequence[str],
    ) -> None:
        """Install what ClickHouse holds for a zone: each id with its (first) month and type."""
        h = np.fromiter(map(hash, registration_ids), np.int64, len(registration_ids))
        unique, first = np.unique(h, return_index=True)  # sorted; a duplicate row counts once
        counts: dict[str, list[int]] = {}
        for i in first.tolist():
            month = counts.setdefault(months[i], [0, 0])
            month[0] += 1
            month[1] += types[i] == "enterprise"
        self._put(zone, _Zone(unique, counts))

    def fresh(self, zone: str, hashes: np.ndarray) -> np.ndarray:
        """A mask over ``hashes``: the first copy of each id that the cache does not hold."""
        _, first = np.unique(hashes, return_index=True)
        mask = np.zeros(len(hashes), dtype=bool)
        mask[first] = True
        return mask & ~self._zones[zone].holds(hashes)

    def add(self, zone: str, hashes: np.ndarray, new: Sequence[Registration]) -> None:
        """Record new ids (as ``fresh`` selected them) and the registrations they are."""
        state = self._zones[zone]
        self._zones.move_to_end(zone)
        if not len(hashes):
            return
        state.insert(np.sort(hashes))
        for reg in new:
            month = state.counts.setdefault(reg.month, [0, 0])
            month[0] += 1
            month[1] += reg.entity_type == "enterprise"
        self._size += len(hashes)

    def counts(self, pair: Pair) -> tuple[int, int]:
        """(all entity types, enterprises) registered in the zone and month."""
        total, enterprises = self._zones[pair[0]].counts.get(pair[1], (0, 0))
        return total, enterprises

    def evict(self, keep: Iterable[str] = ()) -> None:
        """Drop least recently used zones (never those in ``keep``) until within ``max_ids``."""
        kept = set(keep)
        for zone in list(self._zones):
            if self._size <= self.max_ids:
                return
            if zone not in kept:
                self._size -= len(self._zones.pop(zone))

    def forget(self) -> None:
        """Drop everything (after a rebalance another worker may have counted on)."""
        self._zones.clear()
        self._size = 0

    def _put(self, zone: str, state: _Zone) -> None:
        old = self._zones.pop(zone, None)
        self._size += len(state) - (len(old) if old else 0)
        self._zones[zone] = state


def derived_observations(zone: str, month: str, total: int, enterprises: int) -> list[Observation]:
    """The monthly figures a (zone, month)'s counts give; revision = count (counts only grow)."""
    return [
        Observation(
            zone=zone,
            indicator=indicator,
            period=month,
            basis="MONTH",
            value=float(count),
            unit="COUNT",
            obs_status="P",  # the bureau's official figure, when it comes, wins
            revision=count,
            source="registrations",
        )
        for indicator, count in ((ALL_TYPES, total), (ENTERPRISES, enterprises))
        if count
    ]


@dataclass
class Unemitted:
    """(zone, month)s whose counts changed, and the events waiting for them to be emitted."""

    pairs: set[Pair] = field(default_factory=set)
    events: list[tuple[Any, Any]] = field(default_factory=list)  # (stream, event) to ack
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


# -- one batch ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Message:
    """One Kafka message of the registrations topic as the agent saw it."""

    value: bytes
    partition: int = 0
    offset: int = 0
    key: bytes | None = None  # the zone it was sent under


@dataclass
class Batch:
    """What the agent read from a batch of messages: valid registrations and dead letters."""

    registrations: list[Registration] = field(default_factory=list)
    deadletters: list[DeadLetter] = field(default_factory=list)


def read_batch(messages: Sequence[Message], catalogue: Catalogue, now: datetime) -> Batch:
    """Decode and validate every registration of every message; rejects become dead letters."""
    batch = Batch()
    received = now.isoformat()
    for message in messages:
        origin = f"{REGISTRATIONS}/{message.partition}@{message.offset}"
        try:
            envelope = read_envelope(message.value)
        except RejectedInput as exc:
            batch.deadletters.append(
                dead_letter(REGISTRATIONS, exc, message.value, origin=origin, received_at=received)
            )
            continue
        if envelope.batch_id:
            origin = f"batch:{envelope.batch_id}"
        valid, rejected = validate_records(
            envelope.records,
            catalogue,
            now=now,
            batch_id=envelope.batch_id,
            sent_at=envelope.sent_at,
        )
        # A zone's registrations must share its partition, or two workers would count it.
        key = key_of(message.key)
        strays = [
            (i, exc)
            for i, reg in enumerate(valid)
            if (exc := wrong_key(reg.zone, key, "registration")) is not None
        ]
        for i, exc in reversed(strays):
            reg = valid.pop(i)
            rejected.append((_line_of(envelope.records, reg), reg, exc))
        batch.registrations += valid
        for line, raw, exc in rejected:
            text = message.value if envelope.bare else _dumps(raw)
            at = None if envelope.bare else line
            batch.deadletters.append(
                dead_letter(REGISTRATIONS, exc, text, origin=origin, line=at, received_at=received)
            )
    return batch


def _line_of(records: list[Any], reg: Registration) -> int:
    """The 1-based place of a valid registration's record in its envelope."""
    for line, raw in enumerate(records, start=1):
        if isinstance(raw, dict) and raw.get("registration_id") == reg.registration_id:
            return line
    return 0


def _dumps(raw: Any) -> bytes:
    if isinstance(raw, Registration):
        return orjson.dumps(registration_to_wire(raw))
    try:
        return orjson.dumps(raw)
    except TypeError:
        return repr(raw).encode()


@dataclass
class Counted:
    """A batch after de-duplication: rows to write, and what to add to the cache once written."""

    new: list[Registration]
    zones: dict[str, tuple[np.ndarray, list[Registration]]]  # zone -> (new hashes, new rows)


def dedupe(registrations: Sequence[Registration], ids: DistinctIds) -> Counted:
    """The registrations whose ids are new to their zone (in any month: the first copy seen is
    the one kept and counted); every zone must be loaded."""
    groups: dict[str, list[Registration]] = {}
    for reg in registrations:
        group = groups.get(reg.zone)
        if group is None:
            groups[reg.zone] = [reg]
        else:
            group.append(reg)
    counted = Counted([], {})
    for zone, regs in groups.items():
        hashes = np.fromiter((hash(r.registration_id) for r in regs), np.int64, len(regs))
        mask = ids.fresh(zone, hashes)
        new = list(compress(regs, mask.tolist()))
        counted.new.extend(new)
        counted.zones[zone] = (hashes[mask], new)
    return counted


# -- the Faust stage ----------------------------------------------------------------------


def add_registrations_stage(
    app: faust.App,
    store: ClickHouseStore,
    metrics: PipelineMetrics,
    catalogue: Catalogue,
    observations_topic: faust.TopicT,
) -> None:
    """Declare the registrations topic, its counting agent and the pages that read its table."""
    raw = {"key_serializer": "raw", "value_serializer": "raw"}
    # Faust buffers up to stream_buffer_maxsize (4096) messages per topic before it stops
    # fetching; of 75 KB envelopes that is 300 MB. Two batches' worth is enough to keep busy.
    registrations = app.topic(REGISTRATIONS, maxsize=2 * TAKE_MAX, **raw)
    deadletter = app.topic(DEADLETTER, **raw)
    ids = DistinctIds()
    # Counts change with every batch, but a derived figure per (zone, month) every EMIT_EVERY
    # is plenty, and each one costs a produce round trip and a roll-up recompute. So batches
    # are written at once and their events acknowledged only after the counts they changed
    # have been emitted: a crash in between replays them, which counts nothing twice.
    lock = asyncio.Lock()
    unemitted = Unemitted()

    @app.agent(registrations, concurrency=1)  # faust#606: >1 may commit past in-flight events
    async def count_registrations(stream: faust.StreamT) -> None:
        """Registrations → ClickHouse (first) → derived monthly observations → acknowledged."""
        async for events in stream.noack_take(TAKE_MAX, within=TAKE_WITHIN):
            messages = [
                Message(
                    e.value if isinstance(e.value, bytes) else b"",
                    e.message.partition,
                    e.message.offset,
                    e.key if isinstance(e.key, bytes) and e.key else None,
                )
                for e in events
            ]
            async with lock:
                await after_rebalance()
                await process(messages)
                unemitted.events += [(stream, e) for e in events]
                if unemitted.due():
                    await emit()

    async def process(messages: Sequence[Message]) -> None:
        batch = read_batch(messages, catalogue, datetime.now(UTC))
        # Records, not messages: each is counted or dead-lettered.
        metrics.count_events(REGISTRATIONS, "in", len(batch.registrations) + len(batch.deadletters))
        pairs = {(r.zone, r.month) for r in batch.registrations}
        missing = ids.missing(zone for zone, _ in pairs)
        if missing:
            # The store's one thread runs this after the writes submitted before it.
            for zone, known, months, types in await store.arun(store.registration_ids, missing):
                ids.load(zone, known, months, types)
            for zone in ids.missing(missing):  # nothing registered there yet
                ids.load(zone, [], [], [])
        counted = dedupe(batch.registrations, ids)
        # The cache learns the batch at once, so the next batch is de-duplicated against it
        # while this one is still being written: one write in flight overlaps the next read.
        for zone, (hashes, new) in counted.zones.items():
            ids.add(zone, hashes, new)
        await unemitted.written()
        unemitted.writing = asyncio.ensure_future(
            write_durably(store, counted, metrics, lambda: app.should_stop)
        )
        unemitted.pairs |= pairs
        ids.evict(keep={zone for zone, _ in unemitted.pairs})
        if batch.deadletters:
            sent = [
                await deadletter.send(key=REGISTRATIONS.encode(), value=orjson.dumps(d.to_dict()))
                for d in batch.deadletters
            ]
            await asyncio.gather(*sent)
            metrics.count_events(DEADLETTER, "out", len(batch.deadletters))
        log_event(
            log,
            "registrations_processed",
            messages=len(messages),
            accepted=len(batch.registrations),
            new=len(counted.new),
            rejected=len(batch.deadletters),
            cached_ids=len(ids),
        )

    async def emit() -> None:
        """Send the counts of every (zone, month) changed since last time, then acknowledge.

        Writing, delivery and acknowledgement finish in the background, one emission after the
        other, so the next batch is read meanwhile.
        """
        if unemitted.emitting is not None and unemitted.emitting.done():
            await unemitted.delivered()  # a failure surfaces here and stops the agent
        derived = [
            obs
            for pair in sorted(unemitted.pairs)
            for obs in derived_observations(*pair, *ids.counts(pair))
        ]
        unemitted.emitting = asyncio.ensure_future(
            deliver(unemitted.emitting, unemitted.writing, derived, list(unemitted.events))
        )
        unemitted.writing = None
        unemitted.clear()

    async def deliver(
        before: asyncio.Future[None] | None,
        writing: asyncio.Future[None] | None,
        derived: list[Observation],
        events: list[tuple[Any, Any]],
    ) -> None:
        for step in (before, writing):  # counts go out only once what they count is written
            if step is not None:
                await step
        sends = [
            observations_topic.send(
                key=obs.zone.encode(), value=orjson.dumps(observation_to_wire(obs))
            )
            for obs in derived
        ]
        await asyncio.gather(*await asyncio.gather(*sends))  # queued, then delivered
        metrics.count_events(OBSERVATIONS, "out", len(derived))
        for stream, event in events:
            await stream.ack(event)

    async def after_rebalance() -> None:
        # What we counted still goes out (a lower count than another worker's later one is
        # ignored downstream: its revision is lower), then the cache is dropped: another
        # worker may have counted a zone on while we did not own it.
        if unemitted.rebalanced:
            await emit()
            ids.forget()
            unemitted.rebalanced = False

    @app.timer(interval=EMIT_EVERY / 4)
    async def emit_counts() -> None:
        """Counts of a stream that went quiet still go out within about EMIT_EVERY."""
        if (unemitted.due() or unemitted.rebalanced) and not lock.locked():
            async with lock:
                await after_rebalance()
                if unemitted.due():
                    await emit()

    @app.on_rebalance_complete.connect
    async def forget_ids(sender: faust.App, **kwargs: Any) -> None:
        # Never wait here (a write may be retrying): the agent or the timer acts on the flag.
        unemitted.rebalanced = True

    # -- the HTTP API, next to the table it reads ----------------------------------------

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


async def write_durably(
    store: ClickHouseStore,
    counted: Counted,
    metrics: PipelineMetrics,
    stopping: Callable[[], bool],
) -> None:
    """Write the new registrations, retrying with backoff until they land (like the roll-up)."""
    if not counted.new:
        return
    delay = 0.2
    # The buffered-rows gauge stays the roll-up's: two writers would overwrite each other.
    while True:
        try:
            written = await store.arun(store.write_registrations, counted.new)
        except ClickHouseUnavailable as exc:
            metrics.count_sink_error("registrations")
            log_event(log, "sink_retry", error=str(exc)[:300], rows=len(counted.new), delay_s=delay)
            if stopping():
                raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_DELAY)
            continue
        metrics.count_sink_rows("registrations", written["registrations"])
        return
