"""The bench's watch on ``parkpulse.status``: how many status rows are live, from a process of its
own.

``make bench`` times the produce path on a thread of its own process. Followed from a thread of
that process, the status topic's messages (tens of thousands while the files go out) were
decoded under the same interpreter lock as the publishing thread; the watcher now runs in a
spawned process and hands over one number.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from multiprocessing.synchronize import Event
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer

from parkpulse.config import Settings
from parkpulse.topics import FETCH_WAIT_MS, STATUS, client_options

READY_TIMEOUT = 60.0  # seconds for the watching process to start and subscribe


class StatusWatcher:
    """Follows ``parkpulse.status``: how many (zone, indicator, plan, month) rows of zones whose
    id starts with ``prefix`` are live (sent and not since removed)."""

    def __init__(self, settings: Settings, prefix: str) -> None:
        context = multiprocessing.get_context("spawn")  # the bench process runs threads
        self._live: Any = context.Value("q", 0, lock=False)  # one writer, one reader
        self._ready = context.Event()
        self._stop = context.Event()
        self._process = context.Process(
            target=_watch,
            args=(settings, prefix, self._live, self._ready, self._stop),
            name="parkpulse-status-watch",
            daemon=True,
        )

    @property
    def live(self) -> int:
        return int(self._live.value)

    def start(self) -> None:
        """Start watching; returns once the watcher reads the topic (RuntimeError if it does not
        within READY_TIMEOUT)."""
        self._process.start()
        if not self._ready.wait(READY_TIMEOUT):
            self.stop()
            raise RuntimeError("the status watcher did not start")

    def stop(self) -> None:
        self._stop.set()
        self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(timeout=10)


def _watch(settings: Settings, prefix: str, live: Any, ready: Event, stop: Event) -> None:
    asyncio.run(_follow(settings, prefix, live, ready, stop))


async def _follow(settings: Settings, prefix: str, live: Any, ready: Event, stop: Event) -> None:
    consumer = AIOKafkaConsumer(
        STATUS,
        **client_options(settings),
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=FETCH_WAIT_MS,  # as the worker: the last row is seen when it lands
    )
    await consumer.start()
    ready.set()
    rows: dict[tuple[str, str, str, str], bool] = {}
    count = 0
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=500, max_records=20_000)
            for records in batches.values():
                for record in records:
                    doc = orjson.loads(record.value or b"{}")
                    if str(doc.get("zone", "")).startswith(prefix):
                        key = (doc["zone"], doc["indicator"], doc["plan"], doc["period"])
                        now = not doc.get("deleted", False)
                        count += now - rows.get(key, False)
                        rows[key] = now
            live.value = count
    finally:
        await consumer.stop()
