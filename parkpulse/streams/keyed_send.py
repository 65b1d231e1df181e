"""Many keyed messages to one topic at once: a record batch per partition, not a future apiece.

A backfill emits a status row per figure; through ``AIOKafkaProducer.send`` each row cost a
partitioner call (aiokafka's murmur2 is pure Python), an accumulator append and a future to
gather (~50 µs in all, a sixth of the worker's time). Here each row goes into its partition's
record batch (the same murmur2 choice as aiokafka's DefaultPartitioner, cached per key: status
keys repeat), made with ``create_batch`` and submitted with ``send_batch`` when full; each
partition's batches go in order, so rows of one key keep their order (``submit`` queues one
partition's: ``produce`` sends a zone's envelopes so). ``send_all`` is the few-messages way,
through a Faust topic (dead letters, re-keyed targets, derived figures).
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
    """Send ``(key, value)`` messages and wait until the broker has them all; returns how many.

    ``messages`` is read once, each message copied into its partition's record batch as it
    comes: a backfill's status rows (made by a generator, streams/rollup_stage.py) are let go
    one by one instead of all held at once (each value orjson wrote and was kept cost a fresh
    page of memory, ~3 µs on a VM that faults pages in slowly)."""
    count = len(await producer.partitions_for(topic))
    batches: dict[int, Any] = {}
    queued: list[tuple[asyncio.Future[Any], int]] = []
    sent = 0
    for key, value in messages:
        partition = partition_of(key, count)
        batch = batches.get(partition) or producer.create_batch()
        if batch.append(key=key, value=value, timestamp=None) is None:
            batch = await _next_batch(producer, batch, key, value, topic, partition, queued)
        batches[partition] = batch
        sent += 1
    for partition, batch in batches.items():
        queued.append(await _send_batch(producer, batch, topic, partition))
    await asyncio.gather(*(done for done, _ in queued))
    return sent


async def submit(
    producer: AIOKafkaProducer, topic: str, partition: int, rows: Iterable[tuple[bytes, bytes]]
) -> list[tuple[asyncio.Future[Any], int]]:
    """Queue ``(key, value)`` rows for one partition as record batches, in order, without
    waiting for the broker: each batch's delivery (its ``RecordMetadata`` gives the offset of
    its first record) and how many records it holds."""
    queued: list[tuple[asyncio.Future[Any], int]] = []
    batch = producer.create_batch()
    for key, value in rows:
        if batch.append(key=key, value=value, timestamp=None) is None:
            batch = await _next_batch(producer, batch, key, value, topic, partition, queued)
    if batch.record_count():
        queued.append(await _send_batch(producer, batch, topic, partition))
    return queued


async def _next_batch(
    producer: AIOKafkaProducer,
    batch: Any,
    key: bytes,
    value: bytes,
    topic: str,
    partition: int,
    queued: list[tuple[asyncio.Future[Any], int]],
) -> Any:
    """``batch`` is full (it took no more): it is queued (onto ``queued``), and a new batch,
    returned, holds the message."""
    queued.append(await _send_batch(producer, batch, topic, partition))
    batch = producer.create_batch()
    batch.append(key=key, value=value, timestamp=None)  # a new batch takes any first record
    return batch


async def _send_batch(
    producer: AIOKafkaProducer, batch: Any, topic: str, partition: int
) -> tuple[asyncio.Future[Any], int]:
    """Queue a record batch for ``partition`` (after the ones queued before it): its delivery
    and how many records it holds."""
    batch.close()  # no message sent otherwise joins it (its count is the one given here)
    count = batch.record_count()
    return await producer.send_batch(batch, topic, partition=partition), count


async def send_all(topic: faust.TopicT, messages: Iterable[tuple[bytes, bytes]]) -> int:
    """Send ``(key, value)`` messages through a Faust topic, queued in order, and wait until
    every one is delivered (what a stage does before its batch may be acknowledged)."""
    delivered = [await topic.send(key=key, value=value) for key, value in messages]
    await asyncio.gather(*delivered)
    return len(delivered)
