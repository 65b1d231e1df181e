"""The worker bounds what one Kafka fetch brings in (streams/faust_internals.py ``bound_fetches``).

Tansu may answer a fetch with more than the per-partition limit (up to aiokafka's
``fetch_max_bytes``); the worker sets that bound on its running aiokafka fetcher.
"""

from __future__ import annotations

import asyncio
import uuid

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from parkpulse.broker import TansuBroker
from parkpulse.config import Settings
from parkpulse.streams.app import FETCH_RESPONSE_BYTES, REGISTRATIONS_TAKE, ROLLUP_TAKE, create_app
from parkpulse.streams.faust_internals import bound_consumer_fetches
from tests.conftest import RunningStack

RECORD = 20_000
RECORDS = 1_000  # a 20 MB backlog in one partition
ANSWERS = 8


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
    bound_consumer_fetches(consumer, fetch_max_bytes)  # what bound_fetches does
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


def test_the_worker_sets_it(stack: RunningStack) -> None:
    events = [
        orjson.loads(line)
        for line in (stack.data_dir / "stderr.log").read_text().splitlines()
        if line.startswith("{") and '"fetch_bound' in line
    ]
    # Once per worker start (other tests of the session kill and restart the stack's worker).
    assert events and {e["event"] for e in events} == {"fetch_bound"}
    assert {e["max_bytes"] for e in events} == {FETCH_RESPONSE_BYTES}


def test_the_stream_buffer_holds_a_few_batches() -> None:
    # Faust's default (4096 messages per stream) kept ~4,100 figure envelopes alive through a
    # backfill, ~60 MB of the worker's peak (README "Worker memory"): a few batches.
    app = create_app(Settings(broker="kafka://127.0.0.1:1"))
    assert 2 * ROLLUP_TAKE <= app.conf.stream_buffer_maxsize <= 3 * ROLLUP_TAKE
    assert app.conf.stream_buffer_maxsize >= 2 * REGISTRATIONS_TAKE
