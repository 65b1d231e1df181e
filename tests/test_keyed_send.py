"""streams/keyed_send.py: the partition a key goes to, and batches sent to a real broker."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given
from hypothesis import strategies as st

from parkpulse.broker import TansuBroker
from parkpulse.streams.keyed_send import partition_of, send_keyed

PARTITIONS = 4


@given(st.binary(min_size=0, max_size=80), st.integers(min_value=1, max_value=64))
def test_partition_is_the_default_partitioners(key: bytes, partitions: int) -> None:
    every = list(range(partitions))
    assert partition_of(key, partitions) == DefaultPartitioner()(key, every, every)


def test_worked_partitions() -> None:
    # Kafka's own murmur2 test vectors (UtilsTest): b"21" → -973932308, b"abc" → 479470107;
    # the partitioner keeps the low 31 bits: 1,173,551,340 and 479,470,107
    assert partition_of(b"21", 4) == 0  # 1,173,551,340 = 4 × 293,387,835
    assert partition_of(b"abc", 4) == 3  # 479,470,107 = 4 × 119,867,526 + 3
    assert partition_of(b"abc", 7) == 479470107 % 7


async def _create_topic(bootstrap: str, name: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, PARTITIONS, 1)])
    finally:
        await admin.close()


async def _read_all(bootstrap: str, topic: str, expected: int) -> list[tuple[int, bytes, bytes]]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    seen: list[tuple[int, bytes, bytes]] = []
    try:
        deadline = asyncio.get_running_loop().time() + 30
        while len(seen) < expected and asyncio.get_running_loop().time() < deadline:
            for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                seen += [(tp.partition, r.key or b"", r.value or b"") for r in records]
    finally:
        await consumer.stop()
    return seen


@pytest.mark.asyncio
async def test_sends_every_message_on_its_keys_partition_in_order(
    tansu_broker: TansuBroker,
) -> None:
    topic = f"keyed-{uuid.uuid4().hex[:8]}"
    # 40 keys × 250 versions of ~600 bytes: many record batches per partition
    messages = [
        (f"zone-{k}|indicator|plan".encode(), f"{k}:{v}:".encode() + b"x" * 600)
        for v in range(250)
        for k in range(40)
    ]
    await _create_topic(tansu_broker.bootstrap, topic)
    producer = AIOKafkaProducer(bootstrap_servers=tansu_broker.bootstrap)
    await producer.start()
    try:
        sent = await send_keyed(producer, topic, messages)
    finally:
        await producer.stop()
    seen = await _read_all(tansu_broker.bootstrap, topic, len(messages))
    assert sent == len(messages) == len(seen)
    every = list(range(PARTITIONS))
    assert all(p == DefaultPartitioner()(key, every, every) for p, key, _ in seen)
    assert len({p for p, _, _ in seen}) > 1
    for k in range(40):
        key = f"zone-{k}|indicator|plan".encode()
        versions = [int(value.split(b":")[1]) for _, got, value in seen if got == key]
        assert versions == list(range(250))  # each key's messages in the order given
