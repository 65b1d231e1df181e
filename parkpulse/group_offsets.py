"""Where the worker group stands on the broker: committed offsets and end offsets.

``produce`` waits on them for the worker's verdict (``producers/verdict.py``); the worker reads them
to mark kept files landed (``streams/landing.py``). Committed offsets are the next offset to read,
the group is the Faust app's id, and any worker of the group may own a partition, so both ask the
group coordinator rather than a worker's own consumer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition

GROUP = "parkpulse"  # the Faust app id is its consumer group
POLL_EVERY = 0.2


async def committed(
    admin: AIOKafkaAdminClient, tps: Iterable[TopicPartition]
) -> dict[TopicPartition, int]:
    """The group's committed offset of each topic-partition (-1 where it has none)."""
    wanted = sorted(set(tps))
    if not wanted:
        return {}
    found = await admin.list_consumer_group_offsets(GROUP, partitions=wanted)
    return {tp: found[tp].offset if tp in found else -1 for tp in wanted}


async def end_offsets(consumer: AIOKafkaConsumer, topic: str) -> dict[TopicPartition, int]:
    """The end offset of each partition of ``topic`` (waits until the topic is in the metadata;
    callers bound the wait)."""
    partitions = consumer.partitions_for_topic(topic)
    while partitions is None:
        await consumer.topics()  # a metadata refresh
        partitions = consumer.partitions_for_topic(topic)
    tps = [TopicPartition(topic, p) for p in sorted(partitions)]
    return dict(await consumer.end_offsets(tps)) if tps else {}


async def caught_up(admin: AIOKafkaAdminClient, consumer: AIOKafkaConsumer, topic: str) -> bool:
    """Whether the group has committed every partition of ``topic`` to its end."""
    ends = await end_offsets(consumer, topic)
    done = await committed(admin, ends)
    return all(end == 0 or done[tp] >= end for tp, end in ends.items())


async def wait_committed_past(
    admin: AIOKafkaAdminClient, wanted: Mapping[TopicPartition, int]
) -> None:
    """Return once the group has committed at least ``wanted`` on each topic-partition."""
    left = {tp: offset for tp, offset in wanted.items() if offset > 0}
    while left:
        done = await committed(admin, left)
        left = {tp: offset for tp, offset in left.items() if done[tp] < offset}
        if left:
            await asyncio.sleep(POLL_EVERY)
