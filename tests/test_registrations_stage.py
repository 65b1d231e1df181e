"""The registrations stage's domain step (streams/registrations_stage.py), without Faust.

``RegistrationCounter.take`` is what the agent calls per batch; here it runs against a store
that keeps rows in memory and senders that record what goes out, so the order the stage
promises can be seen: rows written first, dead letters at once, derived figures every
EMIT_EVERY, and a batch's events acknowledged only once the counts they changed are delivered.
The same step against the real broker, worker and ClickHouse: tests/test_registrations.py.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from parkpulse.config import Settings
from parkpulse.schemas.catalogue import load_catalogue
from parkpulse.schemas.records import Registration
from parkpulse.schemas.wire import registration_envelope
from parkpulse.sinks.metrics import PipelineMetrics
from parkpulse.streams.deps import Deps
from parkpulse.streams.registrations import Message
from parkpulse.streams.registrations_stage import (
    READ_AHEAD,
    RegistrationCounter,
    Taken,
    count_taken,
    message_of,
    queue_taken,
    release_bytes,
)
from parkpulse.topics import REGISTRATIONS

ZONE = "jinan-hitech"


class MemoryStore:
    """The two calls the stage makes of ClickHouse, on rows kept in memory."""

    def __init__(self) -> None:
        self.rows: list[Registration] = []
        self.calls: list[tuple[str, bool]] = []  # (call, urgent)
        self.urgent_waited = 0.0

    async def arun(self, fn: Callable[..., Any], *args: Any, urgent: bool = False) -> Any:
        self.calls.append((fn.__name__, urgent))
        return fn(*args)

    def registration_ids(self, zones: Sequence[str]) -> list[tuple[str, Any, Any, Any]]:
        held = [r for r in self.rows if r.zone in zones]
        return [
            (
                zone,
                [r.registration_id for r in held if r.zone == zone],
                [r.month for r in held if r.zone == zone],
                [r.entity_type for r in held if r.zone == zone],
            )
            for zone in sorted({r.zone for r in held})
        ]

    def write_registrations(self, rows: Sequence[Registration]) -> dict[str, int]:
        self.rows += rows
        return {"registrations": len(rows)}


class Stage:
    """A counter wired to a MemoryStore, with what it sent and acknowledged."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store
        self.observations: list[dict[str, Any]] = []
        self.deadletters: list[tuple[bytes, dict[str, Any]]] = []
        self.acked: list[int] = []
        deps = Deps(store, PipelineMetrics(), load_catalogue(), Settings())  # type: ignore[arg-type]
        self.counter = RegistrationCounter(
            deps,
            send_observations=self._observations,
            send_deadletters=self._deadletters,
            stopping=lambda: False,
        )

    async def _observations(self, messages: list[tuple[bytes, bytes]]) -> None:
        for key, value in messages:  # an envelope of the zone's figures per message
            records = orjson.loads(value)["observations"]
            assert {r["zone"] for r in records} == {key.decode()}
            self.observations += records

    async def _deadletters(self, messages: list[tuple[bytes, bytes]]) -> None:
        self.deadletters += [(k, orjson.loads(v)) for k, v in messages]

    async def take(self, offset: int, ids: Sequence[str], bad: int = 0) -> None:
        await self.counter.take([self.message(offset, ids, bad)], [self.ack(offset)])

    def ack(self, offset: int) -> Callable[[], Awaitable[None]]:
        async def ack() -> None:
            self.acked.append(offset)

        return ack

    def message(self, offset: int, ids: Sequence[str], bad: int = 0) -> Message:
        records = [
            {
                "zone": ZONE,
                "registration_id": rid,
                "registered_at": "2021-03-04T10:11:12+08:00",
                "entity_type": "enterprise" if i % 2 == 0 else "individual_business",
                "industry_code": "I65",
                "registered_capital": -1 if i < bad else 500,
            }
            for i, rid in enumerate(ids)
        ]
        value = orjson.dumps(registration_envelope(records))
        return Message(value, 0, offset, ZONE.encode())

    async def emit_now(self) -> None:
        """The emission timer firing once EMIT_EVERY has passed, and its delivery finishing."""
        self.counter.unemitted.since = time.monotonic() - 60
        await self.counter.tick()
        await self.counter.unemitted.delivered()

    def counts(self) -> dict[str, float]:
        return {o["indicator"]: o["obs_value"] for o in self.observations}


@pytest.mark.asyncio
async def test_written_first_counted_once_acknowledged_after_delivery() -> None:
    stage = Stage(MemoryStore())
    await stage.take(0, ["R0", "R1", "R2", "R3"], bad=1)  # R0: a negative capital
    await stage.take(1, ["R1", "R2", "R4"])  # two re-sent
    await stage.counter.unemitted.written()
    assert sorted(r.registration_id for r in stage.store.rows) == ["R1", "R2", "R3", "R4"]
    ((key, dead),) = stage.deadletters  # dead-lettered at once, with its place
    assert (key, dead["reason"], dead["line"]) == (REGISTRATIONS.encode(), "bad_value", 1)
    assert stage.observations == [] and stage.acked == []  # not due yet: nothing acknowledged

    await stage.emit_now()
    assert stage.counts() == {"new_market_entities": 4.0, "new_enterprises": 2.0}
    assert {(o["zone"], o["time_period"], o["source"]) for o in stage.observations} == {
        (ZONE, "2021-03", "registrations")
    }
    assert stage.acked == [0, 1]


@pytest.mark.asyncio
async def test_a_replay_after_a_restart_counts_nothing_again() -> None:
    store = MemoryStore()
    first = Stage(store)
    await first.take(0, ["R1", "R2", "R3"])
    await first.emit_now()
    again = Stage(store)  # a restarted worker: its cache is rebuilt from the table
    await again.take(0, ["R1", "R2", "R3"])
    await again.emit_now()
    assert len(store.rows) == 3
    assert (
        again.counts()
        == first.counts()
        == {
            "new_market_entities": 3.0,
            "new_enterprises": 2.0,
        }
    )
    assert again.acked == [0]


@pytest.mark.asyncio
async def test_after_a_rebalance_counts_go_out_and_the_cache_is_reloaded() -> None:
    store = MemoryStore()
    stage = Stage(store)
    await stage.take(0, ["R1", "R2"])
    await stage.counter.unemitted.written()
    store.rows.append(replace(store.rows[0], registration_id="X"))
    stage.counter.rebalanced()  # another worker counted X meanwhile
    await stage.counter.tick()
    await stage.counter.unemitted.delivered()
    assert stage.acked == [0]  # what was counted before went out
    await stage.take(1, ["R3"])
    await stage.emit_now()
    assert stage.counts()["new_market_entities"] == 4.0  # R1, R2, X (reloaded) and R3


@pytest.mark.asyncio
async def test_taken_batches_are_counted_in_order_and_a_failure_stops_the_agent() -> None:
    """The agent queues each batch with its read under way (``queue_taken``); ``count_taken``
    counts them in order. A batch that fails is reported (the worker stops, nothing committed)
    and the agent, at its next batch, raises it too."""
    stage = Stage(MemoryStore())
    reported: list[BaseException] = []

    async def on_error(exc: BaseException) -> None:
        reported.append(exc)

    taken: asyncio.Queue[Taken] = asyncio.Queue(maxsize=READ_AHEAD)
    counting = asyncio.ensure_future(count_taken(stage.counter, taken, on_error))
    now = datetime.now(UTC)
    for offset, ids in ((0, ["R1", "R2"]), (1, ["R2", "R3"]), (2, ["R4"])):
        messages = [stage.message(offset, ids)]
        read = asyncio.ensure_future(stage.counter.reader.read(messages, now))
        await queue_taken(taken, (1, read, [stage.ack(offset)]), counting)
    while not taken.empty() or stage.counter.lock.locked():
        await asyncio.sleep(0.01)
    await stage.emit_now()
    assert [r.registration_id for r in stage.store.rows] == ["R1", "R2", "R3", "R4"]
    assert stage.counts()["new_market_entities"] == 4.0 and stage.acked == [0, 1, 2]

    failed = asyncio.get_running_loop().create_future()
    failed.set_exception(RuntimeError("ClickHouse went away"))
    await queue_taken(taken, (0, failed, []), counting)
    with pytest.raises(RuntimeError, match="went away"):
        await counting
    assert [str(e) for e in reported] == ["ClickHouse went away"]
    never = asyncio.get_running_loop().create_future()
    with pytest.raises(RuntimeError, match="went away"):
        await queue_taken(taken, (0, never, []), counting)
    assert never.cancelled()  # a batch not queued is not read on
    assert stage.acked == [0, 1, 2]


@pytest.mark.asyncio
async def test_every_store_call_of_the_stage_is_urgent() -> None:
    store = MemoryStore()
    stage = Stage(store)
    await stage.take(0, ["R1", "R2"])
    await stage.emit_now()
    assert store.calls == [("registration_ids", True), ("write_registrations", True)]


def test_released_events_keep_what_an_acknowledgement_needs() -> None:
    class Msg:
        def __init__(self) -> None:
            self.value: bytes | None = b"x" * 1000
            self.partition, self.offset = 3, 7

    class Event:
        def __init__(self) -> None:
            self.message = Msg()
            self.value: bytes | None = self.message.value
            self.key = ZONE.encode()

    events = [Event(), Event()]
    messages = [message_of(e) for e in events]
    release_bytes(events)
    assert [m.value for m in messages] == [b"x" * 1000] * 2  # read from the messages
    assert all(e.value is None and e.message.value is None for e in events)
    assert [(e.message.partition, e.message.offset) for e in events] == [(3, 7)] * 2
