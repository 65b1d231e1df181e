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
import signal
import sys
import time
from multiprocessing.synchronize import Event
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer

from parkpulse.config import Settings
from parkpulse.topics import FETCH_WAIT_MS, STATUS, client_options

READY_TIMEOUT = 60.0  # seconds for the watching process to start and subscribe


class StatusWatchError(RuntimeError):
    """The watching process did not start, or it stopped while watched."""


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
        """The live rows counted so far."""
        return int(self._live.value)

    def counted(self) -> int:
        """``live``, while the watching process runs (StatusWatchError once it is gone: its
        count would stand still)."""
        if not self._process.is_alive():
            raise StatusWatchError(f"the status watcher stopped (exit code {self.exitcode})")
        return self.live

    @property
    def exitcode(self) -> int | None:
        return self._process.exitcode

    def start(self) -> None:
        """Start watching; returns once its consumer has started (StatusWatchError if it exits
        first, or does not start within READY_TIMEOUT)."""
        self._process.start()
        deadline = time.monotonic() + READY_TIMEOUT
        while not self._ready.wait(0.2):
            if not self._process.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise StatusWatchError(f"the status watcher did not start ({self.exitcode})")

    def stop(self) -> None:
        self._stop.set()
        self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(timeout=10)


def _watch(settings: Settings, prefix: str, live: Any, ready: Event, stop: Event) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the bench, which stops this
    try:
        asyncio.run(_follow(settings, prefix, live, ready, stop))
    except Exception as exc:  # one line, not a traceback: the bench says what it meant
        print(f"status watcher: {type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(1)


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
    parent = multiprocessing.parent_process()
    try:
        # Until told to stop, or the bench is gone without telling (killed).
        while not stop.is_set() and (parent is None or parent.is_alive()):
            batches = await consumer.getmany(timeout_ms=500, max_records=20_000)
            for records in batches.values():
                for record in records:
                    row = _row(record.value, prefix)
                    if row is not None:
                        key, is_live = row
                        count += is_live - rows.get(key, False)
                        rows[key] = is_live
            live.value = count
    finally:
        await consumer.stop()


def _row(value: bytes | None, prefix: str) -> tuple[tuple[str, str, str, str], bool] | None:
    """(key, live) of a status message about a watched zone; None for any other message."""
    try:
        doc = orjson.loads(value or b"null")
        key = (doc["zone"], doc["indicator"], doc["plan"], doc["period"])
    except (orjson.JSONDecodeError, TypeError, KeyError):
        return None
    if not (all(type(k) is str for k in key) and key[0].startswith(prefix)):
        return None
    return key, not doc.get("deleted", False)
