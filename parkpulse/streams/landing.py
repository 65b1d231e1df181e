"""Marks kept feed files *landed* once the worker group has committed past everything they left
on the broker (see ``producers/kept.py``), so a fresh embedded broker gets only the rest.

Committed offsets come from the group coordinator (any worker of the group may own a file's
partitions). A targets file lands once ``parkpulse.targets`` is committed past it and its
re-keyed copies are consumed, i.e. ``parkpulse.targets-by-zone`` is committed to its end.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from parkpulse.config import Settings
from parkpulse.group_offsets import caught_up, committed
from parkpulse.logs import get_logger, log_event
from parkpulse.producers.kept import Entry, entries
from parkpulse.topics import TARGETS, TARGETS_BY_ZONE, client_options

log = get_logger("landing")

LANDING_EVERY = 2.0


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
    tps = {TopicPartition(t, p) for e in todo for t, p in e.last_offsets}
    try:
        done = await committed(admin, tps)
        targets_ok = (
            await caught_up(admin, consumer, TARGETS_BY_ZONE)
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
        if e.landed({(tp.topic, tp.partition): o for tp, o in done.items()}, epoch=epoch)
        and (targets_ok or all(t != TARGETS for t, _ in e.last_offsets))
    ]
