"""The worker's verdict on what ``produce`` published: the rejects only the worker can decide.

The producer checks each row alone and against the rest of its file; only the worker knows the
figures already stored, so a figure that conflicts with a stored one (same key and revision,
another value) is dead-lettered by the worker after ``produce`` has published it. For the clerk's
summary and exit status to hold every reject, ``produce`` waits for that verdict:

1. It notes the last offset it wrote to each partition of the input topics (delivery is
   confirmed with acks=all before anything is reported).
2. It polls the consumer group's committed offsets (``parkpulse``, the Faust app id; every
   worker shares it) until the group has committed past those offsets. The worker acknowledges
   a batch only after it is written to ClickHouse and its dead letters are delivered to
   ``parkpulse.deadletter``, and Faust commits only acknowledged offsets, so past that point
   every dead letter of these rows is on the dead-letter topic. Targets pass one more hop:
   ``parkpulse.targets`` is re-keyed onto ``parkpulse.targets-by-zone`` before the roll-up.
3. It reads the dead-letter topic's end offsets and waits until the group has committed past
   them too: the sink agent commits only what it has written, so the dead letters are then in
   the ``deadletter`` table.
4. It asks the table (through the worker API given with ``--api``, ClickHouse with
   ``--clickhouse``, or the running stack's API) for the dead letters whose origin is the
   file's name, and keeps those that are new since it asked the same before publishing (a dead
   letter sent again replaces the stored one with a new ``received_at``; one left from an
   earlier run keeps its own) and are of lines the producer itself accepted: its own rejects
   are already counted. No clock of the producer's is compared with the worker's, so a
   producer on another host needs no synchronized clock.

Waiting is bounded (``--wait``, 10 s by default). Without a verdict in time, ``produce`` says so in
one line and that rejects may still come; its exit status then holds what it knows. Committed
offsets are the only progress signal used: no guess at processing time, and it is the same for
one worker or several, embedded Tansu or a Kafka cluster. Files published together under the
same name share their origin, so share one verdict: give them different names.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from aiokafka.structs import TopicPartition

from parkpulse.config import Settings
from parkpulse.group_offsets import end_offsets, wait_committed_past
from parkpulse.logs import get_logger, log_event
from parkpulse.producers.feed import FeedRow
from parkpulse.producers.kept import origin_of
from parkpulse.producers.publish import Published
from parkpulse.schemas.errors import REASONS, RejectedInput
from parkpulse.topics import DEADLETTER, TARGETS, TARGETS_BY_ZONE, client_options

log = get_logger("verdict")

# What can go wrong asking: the broker (KafkaError), the API (URLError is an OSError), ClickHouse
# (ClickHouseUnavailable, a RuntimeError), a page that is not one (KeyError, ValueError).
ASK_ERRORS = (KafkaError, OSError, RuntimeError, KeyError, ValueError)
WORKER_NOTE = " (decided by the worker)"

# origin -> the /api/deadletter page of that origin: {"total", "by_reason", "rows"}
Fetch = Callable[[str], Mapping[str, Any]]
Seen = dict[str, dict[tuple[Any, ...], Any]]  # origin -> dead letter's key -> its received_at


@dataclass(frozen=True, slots=True)
class Verdict:
    """The worker's rejects for each origin, or why there is no verdict."""

    rejects: dict[str, list[dict[str, Any]]]
    missing: str | None = None  # one line: why no verdict was had


class Judge:
    """Asks for the worker's verdict on files about to be published: ``before`` them, then
    ``verdict`` after. ``fetch`` None: nothing to ask (``missing`` says why, or nothing when no
    verdict was wanted)."""

    def __init__(self, settings: Settings, fetch: Fetch | None, missing: str | None = None):
        self.settings = settings
        self.fetch = fetch
        self.missing = missing
        self.seen: Seen = {}

    def before(self, paths: Iterable[Path]) -> None:
        """What the dead-letter table holds for each file's origin now."""
        if self.fetch is None:
            return
        try:
            for origin in {origin_of(path) for path in paths}:
                rows = self.fetch(origin).get("rows", [])
                self.seen[origin] = {_key(row): row.get("received_at") for row in rows}
        except ASK_ERRORS as exc:
            self.fetch, self.missing = None, f"no verdict: {_said(exc)}"

    def verdict(self, results: Sequence[Published], timeout: float) -> Verdict:
        """Wait up to ``timeout`` s for the worker, then its new rejects of accepted lines."""
        published = [r for r in results if r.refused is None and r.last_offsets]
        if not published:
            return Verdict({})
        if self.fetch is None:
            return Verdict({}, self.missing)
        try:
            return asyncio.run(self._verdict(published, self.fetch, timeout))
        except ASK_ERRORS as exc:
            return Verdict({}, f"no verdict: {_said(exc)}")

    async def _verdict(
        self, published: Sequence[Published], fetch: Fetch, timeout: float
    ) -> Verdict:
        offsets: dict[TopicPartition, int] = {}
        for item in published:
            for (topic, partition), offset in item.last_offsets.items():
                tp = TopicPartition(topic, partition)
                offsets[tp] = max(offsets.get(tp, 0), offset + 1)  # committed = next to read
        try:
            await asyncio.wait_for(_consumed(self.settings, offsets), timeout)
        except TimeoutError:
            return Verdict({}, f"no verdict from the worker within {timeout:g} s")
        rejects: dict[str, list[dict[str, Any]]] = {}
        for item in published:
            origin = origin_of(item.path)
            seen = self.seen.get(origin, {})
            page = await asyncio.to_thread(fetch, origin)
            rejects.setdefault(origin, []).extend(
                row
                for row in page.get("rows", [])
                if row.get("line") not in item.rejected_lines
                and seen.get(_key(row)) != row.get("received_at")
            )
        return Verdict(rejects)


def _key(row: Mapping[str, Any]) -> tuple[Any, ...]:
    """A dead letter's identity in the table (its ORDER BY key, schema.sql)."""
    return (row.get("source_topic"), row.get("line"), row.get("reason"), row.get("raw"))


def _said(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__


async def _consumed(settings: Settings, offsets: Mapping[TopicPartition, int]) -> None:
    """Wait until the group has committed past ``offsets``, then past what those rows led to."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    ends = AIOKafkaConsumer(**client_options(settings))  # no group: only reads end offsets
    await admin.start()
    await ends.start()
    try:
        await wait_committed_past(admin, offsets)
        then = ([TARGETS_BY_ZONE] if any(tp.topic == TARGETS for tp in offsets) else []) + [
            DEADLETTER
        ]
        for topic in then:
            await wait_committed_past(admin, await end_offsets(ends, topic))
    finally:
        await ends.stop()
        await admin.close()


def merge_rejects(item: Published, rejects: Iterable[Mapping[str, Any]]) -> int:
    """Count the worker's rejects of ``item``'s rows in its summary (they were counted as
    accepted); returns how many."""
    n = 0
    for row in sorted(rejects, key=lambda r: r.get("line") or 0):
        if item.summary.accepted <= 0:  # two files of one name in one run share their rejects
            break
        reason = row.get("reason") if row.get("reason") in REASONS else "malformed"
        detail = str(row.get("detail", "")) + WORKER_NOTE
        error = RejectedInput(str(reason), detail)
        item.summary.accepted -= 1
        place = str(row.get("origin") or "").removeprefix(origin_of(item.path) + ":")
        place = "" if place == row.get("origin") else place  # a bureau table's cell, else none
        line = int(row.get("line") or 0)
        item.summary.add(FeedRow(line, str(row.get("raw", "")), None, error, place))
        n += 1
    if n:
        log_event(log, "worker_rejects", file=origin_of(item.path), rejected=n)
    return n
