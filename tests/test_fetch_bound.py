"""The worker bounds what one Kafka fetch brings in (streams/faust_internals.py ``bound_fetches``).

Tansu may answer a fetch with more than the per-partition limit (up to aiokafka's
``fetch_max_bytes``), and holds a fetch that found nothing for much of its wait even when records
arrive meanwhile; the worker sets both bounds on its running aiokafka fetcher.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from parkpulse.broker import TansuBroker
from parkpulse.config import Settings
from parkpulse.streams.app import (
    FETCH_RESPONSE_BYTES,
    REGISTRATIONS_TAKE,
    ROLLUP_TAKE,
    create_app,
)
from parkpulse.streams.faust_internals import bound_consumer_fetches
from parkpulse.topics import FETCH_WAIT_MS
from tests.conftest import RunningStack

RECORD = 20_000
RECORDS = 1_000  # a 20 MB backlog in one partition
ANSWERS = 8
FAUST_FETCH_WAIT_MS = 1500  # what Faust's consumer asks for
WAITS = 21


async def _answer_sizes(bootstrap: str, topic: str, fetch_max_bytes: int) -> list[int]:
    """Bytes of each of the first fetch answers, the fetcher bounded as the worker bounds it."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        group_id=None,
        max_partition_fetch_bytes=1 << 20,
    )
    await consumer.start()
    bound_consumer_fetches(consumer, fetch_max_bytes, FETCH_WAIT_MS)  # what bound_fetches does
    sizes: list[int] = []
    try:
        for _ in range(ANSWERS):
            await asyncio.sleep(0.2)  # let aiokafka prefetch the next answer
            batches = await consumer.getmany(timeout_ms=2000)
            sizes.append(sum(len(r.value or b"") for rs in batches.values() for r in rs))
    finally:
        await consumer.stop()
    return sizes


@pytest.mark.asyncio
async def test_answers_stay_within_the_bound(tansu_broker: TansuBroker) -> None:
    # Unbounded, Tansu answers this backlog with 1 MB or 5 MB at a time, unpredictably.
    topic = f"fetch-{uuid.uuid4().hex[:8]}"
    producer = AIOKafkaProducer(bootstrap_servers=tansu_broker.bootstrap)
    await producer.start()
    try:
        for _ in range(RECORDS):
            await producer.send(topic, b"x" * RECORD, partition=0)
        await producer.flush()
    finally:
        await producer.stop()
    sizes = await _answer_sizes(tansu_broker.bootstrap, topic, FETCH_RESPONSE_BYTES)
    assert all(0 < size <= FETCH_RESPONSE_BYTES + RECORD for size in sizes), sizes


async def _median_wait_ms(bootstrap: str, topic: str, max_wait_ms: int) -> float:
    """Median milliseconds from sending a record to a consumer (bounded to ``max_wait_ms``) that
    was already waiting for it; ``WAITS`` records, 60 ms apart."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    await producer.start()
    await producer.send_and_wait(topic, b"0", partition=0)  # the topic exists before the consumer
    await consumer.start()
    bound_consumer_fetches(consumer, FETCH_RESPONSE_BYTES, max_wait_ms)
    waits: list[float] = []

    async def receive() -> None:
        async for record in consumer:
            waits.append((time.time() - float(record.value or b"0")) * 1000)
            if len(waits) == WAITS:
                return

    try:
        await consumer.seek_to_end()
        receiving = asyncio.create_task(receive())
        await asyncio.sleep(0.5)  # the consumer is waiting in a fetch
        for _ in range(WAITS):
            await producer.send_and_wait(topic, str(time.time()).encode(), partition=0)
            await asyncio.sleep(0.06)
        await asyncio.wait_for(receiving, 30)
    finally:
        await producer.stop()
        await consumer.stop()
    return statistics.median(waits)


@pytest.mark.asyncio
async def test_a_waiting_fetch_answers_soon_after_a_record_arrives(
    tansu_broker: TansuBroker,
) -> None:
    # At Faust's 1,500 ms Tansu answered a record that arrived during the wait after a median
    # ~250–375 ms (a live registration's latency was mostly this); bounded, within tens of ms
    # (measured 12–28 ms at 100–250 ms on a quiet machine, 85 ms beside a loaded CI run whose
    # unbounded median was 255 ms). Should Tansu one day answer at once, the two medians meet and
    # the comparison fails: the bound is then no longer needed.
    bounded = await _median_wait_ms(
        tansu_broker.bootstrap, f"w-{uuid.uuid4().hex[:8]}", FETCH_WAIT_MS
    )
    faust = await _median_wait_ms(
        tansu_broker.bootstrap, f"w-{uuid.uuid4().hex[:8]}", FAUST_FETCH_WAIT_MS
    )
    assert bounded < FETCH_WAIT_MS and bounded * 2 < faust, (bounded, faust)


def test_the_worker_sets_it(stack: RunningStack) -> None:
    events = stack.log_events("fetch_bound")
    # Once per worker start (other tests of the session kill and restart the stack's worker).
    assert events and stack.log_events("fetch_bound_not_set") == []
    assert {e["max_bytes"] for e in events} == {FETCH_RESPONSE_BYTES}
    assert {e["max_wait_ms"] for e in events} == {FETCH_WAIT_MS}


def test_the_stream_buffer_holds_a_few_batches() -> None:
    # Faust's default (4096 messages per stream) kept ~4,100 figure envelopes alive through a
    # backfill, ~60 MB of the worker's peak (README "Worker memory"): a few batches.
    app = create_app(Settings(broker="kafka://127.0.0.1:1"))
    assert 2 * ROLLUP_TAKE <= app.conf.stream_buffer_maxsize <= 3 * ROLLUP_TAKE
    assert app.conf.stream_buffer_maxsize >= 2 * REGISTRATIONS_TAKE
