"""What people act on, exported from the durable state: status gauges and consumer lag.

The gauges are not set batch by batch. After every batch that changed status rows, every
rebalance and at least once a minute, the worker reads the latest status from ClickHouse (what
``parkpulse status`` shows) and exports the keys of the zones it owns: a zone belongs to the
worker that holds its partition of ``parkpulse.observations`` (the roll-up is keyed by zone), so
each key is exported by exactly one live worker, and a restarted worker exports every key it
owns within seconds, changed or not. Lag is exported for owned partitions only.

Reads are throttled to a multiple of their own duration, and to one per REFRESH_BUSY_EVERY
while changes keep arriving, so a backfill (a batch every few milliseconds) does not turn into a
status query per batch nor hold the store's thread the roll-up writes through; once it drains the
gauges catch up within REFRESH_BUSY_EVERY. ``register`` adds the task, the lag
timer and ``/api/health`` to the App; the roll-up stage calls ``changed`` after a batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

import faust

from parkpulse.config import Settings
from parkpulse.logs import get_logger, log_event
from parkpulse.sinks.clickhouse import ClickHouseStore
from parkpulse.sinks.metrics import PipelineMetrics
from parkpulse.sinks.retry import retry_store, until_stopped
from parkpulse.streams.deps import Deps
from parkpulse.streams.faust_internals import committed_offsets
from parkpulse.streams.keyed_send import partition_of
from parkpulse.throttle import gauge_wait
from parkpulse.topics import OBSERVATIONS

log = get_logger("signals")

REFRESH_MIN_EVERY = 1.0  # seconds between two status reads, at least …
REFRESH_COST_FACTOR = 4.0  # … and at least this many times the last read's duration
REFRESH_BUSY_EVERY = 3.0  # … and this long while batches keep changing status (a backlog)
RESYNC_EVERY = 60.0  # a read even when nothing changed here (ClickHouse is the record)
LAG_EVERY = 5.0


def owned_partitions(assignment: Iterable[Any], topic: str = OBSERVATIONS) -> set[int]:
    """The partitions of ``topic`` among the assigned topic-partitions."""
    return {tp.partition for tp in assignment if tp.topic == topic}


def owned_rows(rows: Iterable[dict[str, Any]], owned: set[int], partitions: int) -> list[Any]:
    """The rows whose zone's partition (the producer's murmur2 choice) is in ``owned``."""
    return [r for r in rows if partition_of(str(r["zone"]).encode(), partitions) in owned]


class StatusSignals:
    """Keeps ``metrics``' per-indicator gauges equal to ClickHouse's latest status of the zones
    this worker owns."""

    def __init__(
        self,
        app: faust.App,
        store: ClickHouseStore,
        metrics: PipelineMetrics,
        settings: Settings,
        retry: Callable[..., Any],
    ) -> None:
        self.app = app
        self.store = store
        self.metrics = metrics
        self.settings = settings
        self._retry = retry
        self._changed = asyncio.Event()
        self._rows: list[dict[str, Any]] = []

    def changed(self) -> None:
        """Status rows were written (or ownership moved): read them again soon."""
        self._changed.set()

    def _partitions(self) -> int:
        return self.app.consumer.topic_partitions(OBSERVATIONS) or self.settings.partitions

    def reassigned(self) -> None:
        """After a rebalance: drop the zones no longer owned at once, then read the new ones."""
        owned = owned_partitions(self.app.consumer.assignment())
        self.metrics.show_statuses(owned_rows(self._rows, owned, self._partitions()))
        self.changed()

    async def refresh(self) -> int:
        """Read the latest status and export the owned keys; returns how many."""
        rows = await self._retry(self.store.latest_status)
        owned = owned_partitions(self.app.consumer.assignment())  # as of now, after the read
        self._rows = rows
        return self.metrics.show_statuses(owned_rows(rows, owned, self._partitions()))

    async def run(self) -> None:
        """Refresh whenever something changed (throttled), and at least every RESYNC_EVERY.

        The stored status is read once before the first assignment too, so a restarted worker
        exports its keys the moment it is assigned (``reassigned``), not one read later."""
        if not self._rows:  # urgent: ahead of the report's and reloads' reads
            self._rows = await self._retry(self.store.latest_status, urgent=True)
            if self.app.consumer.assignment():
                self.reassigned()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=RESYNC_EVERY)
            self._changed.clear()
            if not self.app.consumer.assignment():
                continue
            started = time.monotonic()
            keys = await self.refresh()
            took = time.monotonic() - started
            log_event(log, "status_gauges", keys=keys, read_s=round(took, 3), level=logging.DEBUG)
            quiet = gauge_wait(
                took, False, REFRESH_MIN_EVERY, REFRESH_COST_FACTOR, REFRESH_BUSY_EVERY
            )
            await asyncio.sleep(quiet)
            if self._changed.is_set():  # batches kept coming during the wait: a backlog
                busy = gauge_wait(
                    took, True, REFRESH_MIN_EVERY, REFRESH_COST_FACTOR, REFRESH_BUSY_EVERY
                )
                await asyncio.sleep(busy - quiet)


async def report_lag(app: faust.App, metrics: PipelineMetrics) -> None:
    """Consumer lag of each owned partition: end offset minus committed offset."""
    assigned = app.consumer.assignment()
    if not assigned:
        metrics.show_consumer_lag({})
        return
    ends = await app.consumer.highwaters(*assigned)
    committed = committed_offsets(app)
    lag = {
        (tp.topic, tp.partition): max(0, end - (committed.get(tp) or 0)) for tp, end in ends.items()
    }
    metrics.show_consumer_lag(lag)


def register(app: faust.App, deps: Deps) -> StatusSignals:
    """The status gauges' task, the lag timer and ``/api/health``; returns the signals (the
    roll-up stage tells them when status rows changed)."""

    async def read(fn: Callable[[], Any], urgent: bool = False) -> Any:
        return await retry_store(
            deps.store,
            fn,
            metrics=deps.metrics,
            stopping=lambda: bool(app.should_stop),
            urgent=urgent,
        )

    signals = StatusSignals(app, deps.store, deps.metrics, deps.settings, read)

    @app.on_rebalance_complete.connect
    async def export_owned(sender: faust.App, **kwargs: Any) -> None:
        signals.reassigned()  # export exactly the keys of the zones owned now
        await report_lag(app, deps.metrics)

    @app.timer(interval=LAG_EVERY)
    async def lag() -> None:
        await report_lag(app, deps.metrics)

    @app.task
    async def status_gauges() -> None:
        await until_stopped(signals.run(), lambda: bool(app.should_stop))

    @app.page("/api/health")
    async def api_health(self: Any, request: Any) -> Any:
        return self.json({"ok": True, "assigned": len(app.consumer.assignment())})

    return signals
