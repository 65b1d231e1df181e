"""Many keyed messages to one topic at once: a record batch per partition, not a future apiece.

A backfill emits a status row per figure; through ``AIOKafkaProducer.send`` each row cost a
partitioner call (aiokafka's murmur2 is pure Python), an accumulator append and a future to
gather (~50 µs in all, a sixth of the worker's time). Here rows are grouped by partition (the
same murmur2 choice as aiokafka's DefaultPartitioner, cached per key: status keys repeat), packed
into record batches with ``create_batch`` and submitted with ``send_batch``; each partition's
batches go in order, so rows of one key keep their order (``submit`` queues one partition's:
``produce`` sends a zone's envelopes so). ``send_all`` is the few-messages way, through a Faust
topic (dead letters, re-keyed targets, derived figures).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import murmur2

if TYPE_CHECKING:  # the producer CLI imports this module without starting Faust
    import faust


@lru_cache(maxsize=1 << 16)
def partition_of(key: bytes, partitions: int) -> int:
    """The partition aiokafka's (and Kafka's Java client's) default partitioner picks for a
    keyed message, partitions being numbered 0 … ``partitions`` − 1."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


async def send_keyed(
    producer: AIOKafkaProducer, topic: str, messages: Iterable[tuple[bytes, bytes]]
) -> int:
    """Send ``(key, value)`` messages and wait until the broker has them all; returns how many."""
    count = len(await producer.partitions_for(topic))
    by_partition: dict[int, list[tuple[bytes, bytes]]] = {}
    for key, value in messages:
        by_partition.setdefault(partition_of(key, count), []).append((key, value))
    sent = await asyncio.gather(
        *(_send_partition(producer, topic, p, rows) for p, rows in by_partition.items())
    )
    return sum(sent)


async def _send_partition(
    producer: AIOKafkaProducer, topic: str, partition: int, rows: list[tuple[bytes, bytes]]
) -> int:
    await asyncio.gather(*(done for done, _ in await submit(producer, topic, partition, rows)))
    return len(rows)


async def submit(
    producer: AIOKafkaProducer, topic: str, partition: int, rows: Iterable[tuple[bytes, bytes]]
) -> list[tuple[asyncio.Future[Any], int]]:
    """Queue ``(key, value)`` rows for one partition as record batches, in order, without
    waiting for the broker: each batch's delivery (its ``RecordMetadata`` gives the offset of
    its first record) and how many records it holds."""
    queued: list[tuple[asyncio.Future[Any], int]] = []

    async def send(batch: Any) -> None:
        batch.close()  # no message sent otherwise joins it (its count is the one given here)
        count = batch.record_count()
        queued.append((await producer.send_batch(batch, topic, partition=partition), count))

    batch = producer.create_batch()
    for key, value in rows:
        if batch.append(key=key, value=value, timestamp=None) is not None:
            continue
        await send(batch)
        batch = producer.create_batch()
        batch.append(key=key, value=value, timestamp=None)  # a new batch takes any first record
    if batch.record_count():
        await send(batch)
    return queued


async def send_all(topic: faust.TopicT, messages: Iterable[tuple[bytes, bytes]]) -> int:
    """Send ``(key, value)`` messages through a Faust topic, queued in order, and wait until
    every one is delivered (what a stage does before its batch may be acknowledged)."""
    delivered = [await topic.send(key=key, value=value) for key, value in messages]
    await asyncio.gather(*delivered)
    return len(delivered)
