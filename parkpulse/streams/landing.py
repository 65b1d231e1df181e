"""Marks kept feed files *landed* once the worker group has committed past everything they left
on the broker (see ``producers/kept.py``), so a fresh embedded broker gets only the rest.

Committed offsets come from the group coordinator (any worker of the group may own a file's
partitions). A targets file lands once ``parkpulse.targets`` is committed past it and its
re-keyed copies are consumed, i.e. ``parkpulse.targets-by-zone`` is committed to its end.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from parkpulse.config import Settings
from parkpulse.logs import get_logger, log_event
from parkpulse.producers.kept import Entry, entries
from parkpulse.topics import TARGETS, TARGETS_BY_ZONE, client_options

log = get_logger("landing")

GROUP = "parkpulse"  # the Faust app id is its consumer group
LANDING_EVERY = 2.0


async def committed_offsets(
    admin: AIOKafkaAdminClient, tps: Iterable[tuple[str, int]]
) -> dict[tuple[str, int], int]:
    """The group's committed offset (the next to read) of each (topic, partition); -1 if none."""
    wanted = [TopicPartition(t, p) for t, p in sorted(set(tps))]
    if not wanted:
        return {}
    found = await admin.list_consumer_group_offsets(GROUP, partitions=wanted)
    return {(tp.topic, tp.partition): meta.offset for tp, meta in found.items()}


async def rekeyed_consumed(admin: AIOKafkaAdminClient, consumer: AIOKafkaConsumer) -> bool:
    """Whether every re-keyed target on the broker has been consumed (committed to the end)."""
    parts = consumer.partitions_for_topic(TARGETS_BY_ZONE) or set()
    if not parts:
        await consumer.topics()  # refresh metadata once
        parts = consumer.partitions_for_topic(TARGETS_BY_ZONE) or set()
    tps = [TopicPartition(TARGETS_BY_ZONE, p) for p in parts]
    if not tps:
        return False
    ends = await consumer.end_offsets(tps)
    done = await committed_offsets(admin, [(tp.topic, tp.partition) for tp in tps])
    return all(
        end == 0 or done.get((tp.topic, tp.partition), -1) >= end for tp, end in ends.items()
    )


def pending(settings: Settings, landed: set[str]) -> list[Entry]:
    """Ledger entries of this broker incarnation whose file has not landed yet."""
    epoch = settings.broker_epoch or ""
    return [e for e in entries(settings) if e.file not in landed and e.epoch == epoch]


async def keep_marking_landed(
    settings: Settings,
    landed_files: Callable[[], Awaitable[set[str]]],
    mark: Callable[[list[str]], Awaitable[Any]],
) -> None:
    """Every LANDING_EVERY seconds, record the kept files that have landed (runs forever)."""
    landed = set(await landed_files())
    admin = AIOKafkaAdminClient(**client_options(settings))
    consumer = AIOKafkaConsumer(**client_options(settings), enable_auto_commit=False)
    await admin.start()
    await consumer.start()
    try:
        while True:
            todo = pending(settings, landed)
            if todo:
                done = await landed_now(admin, consumer, settings, todo)
                if done:
                    await mark(done)
                    landed.update(done)
                    log_event(log, "feeds_landed", files=len(done), pending=len(todo) - len(done))
            await asyncio.sleep(LANDING_EVERY)
    finally:
        await consumer.stop()
        await admin.close()


async def landed_now(
    admin: AIOKafkaAdminClient,
    consumer: AIOKafkaConsumer,
    settings: Settings,
    todo: list[Entry],
) -> list[str]:
    """The files among ``todo`` the group has committed past."""
    tps = {tp for e in todo for tp in e.last_offsets}
    try:
        committed = await committed_offsets(admin, tps)
        targets_ok = (
            await rekeyed_consumed(admin, consumer)
            if any(t == TARGETS for e in todo for t, _ in e.last_offsets)
            else True
        )
    except Exception as exc:  # a broker that is restarting: try again next round
        log_event(log, "landing_check_failed", level=logging.WARNING, error=repr(exc)[:300])
        return []
    epoch = settings.broker_epoch or ""
    return [
        e.file
        for e in todo
        if e.landed(committed, epoch=epoch)
        and (targets_ok or all(t != TARGETS for t, _ in e.last_offsets))
    ]
