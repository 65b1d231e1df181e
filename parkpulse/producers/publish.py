"""Publishing feeds and plan targets: the ``produce`` and ``targets`` verbs.

Accepted rows go to their topic in the wire form the worker validates again; rejected rows go to
the dead-letter topic with their line number and reason. Sends are pipelined (no per-row wait
for delivery) and confirmed together at the end. Every published file is kept under
``DATA_DIR/feeds/`` so ``produce --replay`` can re-publish it after a broker restart.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson
from aiokafka import AIOKafkaProducer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from parkpulse.config import Settings
from parkpulse.logs import get_logger, log_event
from parkpulse.producers.feed import (
    FeedRow,
    FeedSummary,
    read_feed,
    read_targets,
    summarize,
    to_deadletter,
)
from parkpulse.schemas.catalogue import Catalogue
from parkpulse.schemas.records import Observation, PlanTarget
from parkpulse.schemas.validation import observation_to_wire, target_to_wire
from parkpulse.topics import DEADLETTER, OBSERVATIONS, TARGETS, client_options

log = get_logger("produce")

ARCHIVE_DIR = "feeds"


@dataclass(frozen=True, slots=True)
class Published:
    """What one file contributed: its summary (accepted/rejected by reason)."""

    path: Path
    kind: str  # "observations" | "targets"
    summary: FeedSummary


def archive(settings: Settings, path: Path, kind: str) -> Path:
    """Keep a copy of a published file under DATA_DIR/feeds/ (named by content, so once)."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    folder = settings.data_dir / ARCHIVE_DIR / kind
    folder.mkdir(parents=True, exist_ok=True)
    dest = folder / f"{digest}-{path.name}"
    if not dest.exists():
        shutil.copyfile(path, dest)
    return dest


def archived(settings: Settings) -> list[tuple[Path, str]]:
    """Every archived file, targets first, then feeds, oldest first."""
    out: list[tuple[Path, str]] = []
    for kind in ("targets", "observations"):
        folder = settings.data_dir / ARCHIVE_DIR / kind
        if folder.is_dir():
            files = sorted(folder.iterdir(), key=lambda p: (p.stat().st_mtime, p.name))
            out += [(p, kind) for p in files if p.is_file()]
    return out


def _message(row: FeedRow, origin: str) -> tuple[str, bytes, bytes]:
    """(topic, key, value) for an accepted row."""
    record = row.record
    if isinstance(record, Observation):
        wire = observation_to_wire(record)
        topic, key = OBSERVATIONS, record.zone
    elif isinstance(record, PlanTarget):
        wire = target_to_wire(record)
        topic, key = TARGETS, f"{record.plan}|{record.zone}|{record.indicator}"
    else:  # pragma: no cover - read_feed only yields these two
        raise TypeError(f"unexpected record {record!r}")
    wire["origin"], wire["line"] = origin, row.line
    return topic, key.encode(), orjson.dumps(wire)


async def publish(
    settings: Settings,
    files: Sequence[tuple[Path, str]],
    catalogue: Catalogue,
    *,
    now: datetime | None = None,
    progress: bool = True,
    keep: bool = True,
) -> list[Published]:
    """Publish each (path, kind) file; returns a summary per file."""
    now = now or datetime.now(UTC)
    producer = AIOKafkaProducer(
        **client_options(settings), linger_ms=10, max_batch_size=1 << 20, acks="all"
    )
    await producer.start()
    results: list[Published] = []
    try:
        with _progress(progress) as bar:
            for path, kind in files:
                results.append(await _publish_file(producer, path, kind, catalogue, now, bar))
                if keep:
                    archive(settings, path, kind)
        await producer.flush()
    finally:
        await producer.stop()
    return results


async def _publish_file(
    producer: AIOKafkaProducer,
    path: Path,
    kind: str,
    catalogue: Catalogue,
    now: datetime,
    bar: Progress,
) -> Published:
    rows: Iterable[FeedRow] = (
        read_targets(path, catalogue) if kind == "targets" else read_feed(path, catalogue, now=now)
    )
    source_topic = TARGETS if kind == "targets" else OBSERVATIONS
    task = bar.add_task(path.name, total=None)
    seen: list[FeedRow] = []
    pending = []
    for row in rows:
        seen.append(row)
        if row.error is not None:
            dead = to_deadletter(row, origin=path.name, source_topic=source_topic)
            topic, key, value = DEADLETTER, source_topic.encode(), orjson.dumps(dead.to_dict())
        else:
            topic, key, value = _message(row, path.name)
        pending.append(await producer.send(topic, value=value, key=key))
        bar.advance(task)
    for fut in pending:
        await fut  # delivery confirmed (acks=all) before we report success
    summary = summarize(seen)
    bar.update(task, total=len(seen), completed=len(seen))
    log_event(
        log,
        "file_published",
        file=path.name,
        kind=kind,
        accepted=summary.accepted,
        rejected=summary.rejected,
    )
    return Published(path, kind, summary)


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
