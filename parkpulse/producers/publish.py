"""Publishing feeds and plan targets: the ``produce`` and ``targets`` verbs.

Accepted rows go to their topic in the wire form the worker validates again; rejected rows go to
the dead-letter topic with their line number and reason. Sends are pipelined (no per-row wait
for delivery); a file's are confirmed while the next file is read, and once they are, the file
is kept under ``DATA_DIR/feeds/`` with a ledger entry (``producers/kept.py``) so a broker restart
can re-publish what has not landed yet; a file that is no feed (``feed.not_a_feed``) is refused
whole, with one dead letter when it has content, and not kept. Each file's last offsets and the
lines rejected here are returned for ``producers.verdict``, which adds the worker's rejects.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from itertools import chain
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from parkpulse.config import Settings
from parkpulse.logs import get_logger, log_event
from parkpulse.producers.columnar import ZoneFigures, feed_items
from parkpulse.producers.feed import FeedRow, FeedSummary, NotAFeed, not_a_feed, to_deadletter
from parkpulse.producers.kept import Entry, archive, kept_name, last_offsets, origin_of, record
from parkpulse.producers.read_options import ReadOptions, keep_options
from parkpulse.producers.readers import bureau_table, kind_of, table_refusal
from parkpulse.schemas.catalogue import Catalogue
from parkpulse.schemas.envelope import ENVELOPE_MAX
from parkpulse.schemas.records import Observation, PlanTarget, Registration
from parkpulse.schemas.wire import (
    observation_envelope,
    observation_to_wire,
    registration_envelope,
    registration_to_wire,
    target_to_wire,
)
from parkpulse.streams.keyed_send import partition_of, submit
from parkpulse.topics import DEADLETTER, OBSERVATIONS, REGISTRATIONS, TARGETS, client_options

log = get_logger("produce")

REVISIONS_DIR = "bulletins"  # where bulletin revisions are remembered (producers/bulletin.py)


@dataclass(frozen=True, slots=True)
class Published:
    """What one file contributed: its summary (accepted/rejected by reason), where its accepted
    rows went (the last offset per topic and partition) and which lines this side rejected,
    for ``producers.verdict``; or why it is no feed at all."""

    path: Path
    kind: str  # "observations" | "targets" | "registrations"
    summary: FeedSummary
    refused: NotAFeed | None = None
    last_offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    rejected_lines: frozenset[int] = frozenset()


def refusal(path: Path, kind: str) -> NotAFeed | None:
    """Why ``path`` is refused whole, or None. A bureau's own table goes to its reader, which
    dead-letters what it cannot read cell by cell; our own feed formats are judged whole first
    (``feed.not_a_feed``)."""
    kind = kind_of(path, kind)
    return None if bureau_table(path, kind) else not_a_feed(path, kind)


PROGRESS_EVERY = 1000
_SOURCE_TOPIC = {"targets": TARGETS, "registrations": REGISTRATIONS}  # else OBSERVATIONS


def _wire(row: FeedRow, origin: str) -> tuple[str, str, dict[str, Any]]:
    """(topic, key, wire record) for an accepted row."""
    record = row.record
    if isinstance(record, Observation):
        wire = observation_to_wire(record)
        topic, key = OBSERVATIONS, record.zone
    elif isinstance(record, PlanTarget):
        wire = target_to_wire(record)
        topic, key = TARGETS, f"{record.plan}|{record.zone}|{record.indicator}"
    elif isinstance(record, Registration):  # the stage dead-letters by place in its batch
        return REGISTRATIONS, record.zone, registration_to_wire(record)
    else:  # pragma: no cover - read_feed only yields these two
        raise TypeError(f"unexpected record {record!r}")
    # A bureau table's row names its cell, as the producer's own rejects do (feed.to_deadletter)
    wire["origin"] = f"{origin}:{row.place}" if row.place else origin
    wire["line"] = row.line
    return topic, key, wire


async def publish(
    settings: Settings,
    files: Sequence[tuple[Path, str]],
    catalogue: Catalogue,
    *,
    now: datetime | None = None,
    progress: bool = True,
    keep: bool = True,
    envelope: int = ENVELOPE_MAX,
    options: ReadOptions | None = None,
) -> list[Published]:
    """Publish each (path, kind) file; returns a summary per file.

    Figures go out ``envelope`` to a message (one zone's each; 1 sends bare figures).
    ``options`` are what a bureau table may need (--plan, --zone, --period)."""
    if not 1 <= envelope <= ENVELOPE_MAX:
        raise ValueError(f"envelope must be 1..{ENVELOPE_MAX} figures, got {envelope}")
    now = now or datetime.now(UTC)
    options = options or ReadOptions()
    if options.ledger is None:  # bulletin revisions are remembered beside the archive
        options = replace(options, ledger=settings.data_dir / REVISIONS_DIR)
    producer = AIOKafkaProducer(
        **client_options(settings), linger_ms=10, max_batch_size=1 << 20, acks="all"
    )
    await producer.start()
    results: list[Published] = []
    landing: asyncio.Task[Published] | None = None  # the file before, landing meanwhile

    async def landed() -> None:
        nonlocal landing
        if landing is not None:
            task, landing = landing, None
            results.append(await task)

    try:
        with _progress(progress) as bar:
            for path, given in files:
                kind = kind_of(path, given)  # a register export is recognised by its header
                refused = refusal(path, kind)
                if refused is not None:
                    await landed()
                    results.append(await _refuse_file(producer, refused, kind))
                    continue  # not kept: a replay would refuse it again
                queued = await _queue_file(
                    producer, path, kind, catalogue, now, bar, envelope, options
                )
                if isinstance(queued, Published):  # a workbook that holds no table
                    await landed()
                    results.append(queued)
                    continue
                keeping = _Keeping(settings, path, kind, options) if keep else None
                following = asyncio.create_task(_land(queued, keeping), name=queued.origin)
                try:
                    await landed()  # the file before, in order
                finally:
                    landing = following  # sent whole: kept once delivered, whatever failed
            await landed()
        await producer.flush()
    finally:
        if landing is not None:
            try:
                await landing
            except Exception as exc:  # the error that stops publishing is already raised
                log_event(log, "file_not_landed", file=landing.get_name(), error=type(exc).__name__)
        await producer.stop()
    return results


@dataclass
class _Keeping:
    """Where a published file is kept once delivered; its content digest is taken meanwhile
    on another thread (reading and hashing the file again was ~6 % of a backfill's publish)."""

    settings: Settings
    path: Path
    kind: str
    options: ReadOptions
    name: asyncio.Future[str] = field(init=False)

    def __post_init__(self) -> None:
        self.name = asyncio.get_running_loop().run_in_executor(None, kept_name, self.path)

    async def keep(self, published: Published) -> None:
        kept = archive(self.settings, self.path, self.kind, name=await self.name)
        keep_options(kept, self.options)
        epoch = self.settings.broker_epoch or ""
        origin = origin_of(self.path)
        record(self.settings, Entry(kept.name, self.kind, origin, epoch, published.last_offsets))


async def _land(queued: _Queued, keeping: _Keeping | None) -> Published:
    """A queued file once its sends are delivered, kept with its ledger entry."""
    published = await queued.delivered()
    if keeping is not None:
        await keeping.keep(published)
    return published


class _FileSender:
    """What one file sends: figures and registrations gathered into envelopes per zone (Faust
    costs ~90 µs per Kafka message, so one message per figure would cap a worker near 11k
    figures/s); a file's figure envelopes queued as record batches per partition when it is
    read (``submit``: no partitioner call or future per message, one broker round trip per
    batch); targets and dead letters one per message. Every send's delivery is kept, so the
    file is reported only once all are delivered."""

    def __init__(self, producer: AIOKafkaProducer, envelope: int) -> None:
        self.producer = producer
        self.envelope = envelope
        self.pending: list[asyncio.Future[Any]] = []
        self.partitions: dict[int, list[tuple[bytes, bytes]]] = {}  # figure envelopes
        self.batches: list[tuple[asyncio.Future[Any], int]] = []  # delivery, records
        self.envelopes: dict[tuple[str, str], list[dict[str, Any]]] = {}  # (topic, zone) -> wire

    async def send(self, topic: str, value: bytes, key: str | bytes) -> None:
        key = key.encode() if isinstance(key, str) else key
        self.pending.append(await self.producer.send(topic, value=value, key=key))

    async def figures(self, row: ZoneFigures) -> None:
        """Accepted figures read as columns, in column envelopes gathered by partition."""
        key = row.zone.encode()
        partition = partition_of(key, len(await self.producer.partitions_for(OBSERVATIONS)))
        gathered = self.partitions.setdefault(partition, [])
        gathered += ((key, value) for value in row.envelopes(self.envelope))

    async def record(self, topic: str, key: str, wire: dict[str, Any]) -> None:
        if topic not in (OBSERVATIONS, REGISTRATIONS):
            await self.send(topic, orjson.dumps(wire), key)
            return
        gathered = self.envelopes.setdefault((topic, key), [])
        gathered.append(wire)
        if len(gathered) >= self.envelope:
            await self._send_envelope(topic, key)

    async def _send_envelope(self, topic: str, zone: str) -> None:
        records = self.envelopes.pop((topic, zone))
        wrap = registration_envelope if topic == REGISTRATIONS else observation_envelope
        await self.send(
            topic, orjson.dumps(wrap(records) if self.envelope > 1 else records[0]), zone
        )

    async def flush(self) -> None:
        """Send what is still gathered, without waiting for the broker."""
        for topic, zone in list(self.envelopes):
            await self._send_envelope(topic, zone)
        for partition, messages in self.partitions.items():  # each zone's in order
            self.batches += await submit(self.producer, OBSERVATIONS, partition, messages)
        self.partitions = {}

    async def delivered(self) -> dict[tuple[str, int], int]:
        """Wait for every send (acks=all); the last offset per topic and partition."""
        delivered = [(await fut, 1) for fut in self.pending]
        return last_offsets(delivered + [(await fut, count) for fut, count in self.batches])


async def _queue_file(
    producer: AIOKafkaProducer,
    path: Path,
    kind: str,
    catalogue: Catalogue,
    now: datetime,
    bar: Progress,
    envelope: int,
    options: ReadOptions,
) -> _Queued | Published:
    """Read, check and send one file without waiting for the broker (a workbook that holds
    no table: its refusal, sent)."""
    origin = origin_of(path)  # a replayed kept copy lands on the same dead-letter rows
    rows = iter(feed_items(path, kind, catalogue, now=now, options=options, origin=origin))
    first = next(rows, None)
    if (refused := table_refusal(path, first)) is not None:  # a workbook that holds no table
        return await _refuse_file(producer, refused, kind)
    rows = chain([first], rows) if first is not None else rows
    source_topic = _SOURCE_TOPIC.get(kind, OBSERVATIONS)
    queued = _Queued(path, kind, origin, _FileSender(producer, envelope), bar)
    summary, sender = queued.summary, queued.sender
    for n, row in enumerate(rows, start=1):
        if isinstance(row, ZoneFigures):
            summary.accepted += len(row)
            await sender.figures(row)
            continue
        summary.add(row)
        if row.duplicate:
            pass  # a register export's repeated row: its first copy is sent
        elif row.error is not None:
            queued.rejected_lines.add(row.line)
            dead = to_deadletter(row, origin=origin, source_topic=source_topic)
            await sender.send(DEADLETTER, orjson.dumps(dead.to_dict()), source_topic)
        else:
            await sender.record(*_wire(row, origin))
        if n % PROGRESS_EVERY == 0:
            bar.update(queued.task, completed=n)
    await sender.flush()
    await asyncio.sleep(0)  # a turn of the loop: the sender takes the closed batches now
    return queued


@dataclass
class _Queued:
    """A file read and sent, its delivery not yet confirmed."""

    path: Path
    kind: str
    origin: str
    sender: _FileSender
    bar: Progress
    summary: FeedSummary = field(default_factory=FeedSummary)
    rejected_lines: set[int] = field(default_factory=set)
    task: TaskID = field(init=False)

    def __post_init__(self) -> None:
        self.task = self.bar.add_task(self.origin, total=None)

    async def delivered(self) -> Published:
        """The file's summary once every send is delivered."""
        offsets = await self.sender.delivered()
        summary = self.summary
        total = summary.accepted + summary.rejected
        self.bar.update(self.task, total=total, completed=total)
        log_event(
            log,
            "file_published",
            file=self.origin,
            kind=self.kind,
            accepted=summary.accepted,
            rejected=summary.rejected,
        )
        rejected = frozenset(self.rejected_lines)
        return Published(self.path, self.kind, summary, None, offsets, rejected)


async def _refuse_file(producer: AIOKafkaProducer, refused: NotAFeed, kind: str) -> Published:
    """A file that is no feed: one dead letter for the whole file when it has content."""
    if refused.dead_letter is not None:
        source_topic = _SOURCE_TOPIC.get(kind, OBSERVATIONS)
        dead = to_deadletter(refused.dead_letter, origin_of(refused.path), source_topic)
        value = orjson.dumps(dead.to_dict())
        await producer.send_and_wait(DEADLETTER, value=value, key=source_topic.encode())
    log_event(log, "file_refused", file=origin_of(refused.path), kind=kind, why=refused.what)
    return Published(refused.path, kind, FeedSummary(), refused)


def _progress(enabled: bool) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=not enabled,
        transient=False,
    )
