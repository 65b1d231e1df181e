"""The one retry policy for every ClickHouse call (tenacity): wait while ClickHouse is
unavailable, never retry what it rejected.

A call that fails with ``ClickHouseUnavailable`` is tried again after a capped, jittered
exponential backoff (0.2 s doubling to 5 s, each wait ±25 %), for as long as it takes: the
stage awaiting it holds its events un-acknowledged, so Faust stops handing it more and stops
fetching once its bounded buffers are full, and nothing is dropped. ``ClickHouseRejected`` (and
any other error) is never retried: a rejected write is written again in halves down to the rows
ClickHouse refuses (``sinks/refusals.py``), which the stage dead-letters while the rest lands; a
rejected read is raised at once. Every failed attempt counts in
``parkpulse_sink_errors_total`` and logs a ``sink_retry`` line; the rows a call holds count in
``parkpulse_sink_buffered_rows`` until it returns. A worker told to stop gives the call up
(raising the last ``ClickHouseUnavailable``): its batch stays un-committed, so the broker hands
it to the next worker.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type

from parkpulse.logs import get_logger, log_event
from parkpulse.schemas.records import DeadLetter
from parkpulse.sinks.connection import ClickHouseRejected, ClickHouseUnavailable
from parkpulse.sinks.metrics import PipelineMetrics
from parkpulse.sinks.refusals import Refused, refused_deadletters, refused_rows
from parkpulse.sinks.writer import Part, registration_part
from parkpulse.topics import REGISTRATIONS

if TYPE_CHECKING:
    from parkpulse.schemas.records import Registration
    from parkpulse.sinks.batch import SinkBatch
    from parkpulse.sinks.clickhouse import ClickHouseStore
    from parkpulse.sinks.connection import Connection

log = get_logger("worker")
T = TypeVar("T")

RETRY_FIRST_DELAY = 0.2
RETRY_MAX_DELAY = 5.0
JITTER = 0.25


def backoff(attempt: int) -> float:
    """The wait after failed attempt ``attempt`` (1, 2, …) before jitter: 0.2 s doubling to 5 s."""
    return min(RETRY_FIRST_DELAY * 2 ** (attempt - 1), RETRY_MAX_DELAY)


def _jittered(state: RetryCallState) -> float:
    return backoff(state.attempt_number) * random.uniform(1 - JITTER, 1 + JITTER)


def policy(call: str, metrics: PipelineMetrics, stopping: Callable[[], bool]) -> AsyncRetrying:
    """The retry policy for one ClickHouse call named ``call`` (for the logs and the counter)."""

    def failed(state: RetryCallState) -> None:  # every failed attempt, before stop is asked
        exc = state.outcome.exception() if state.outcome else None
        metrics.count_sink_error(getattr(exc, "table", None) or call)
        log_event(
            log,
            "sink_retry",
            level=logging.WARNING,
            error=str(exc)[:300],
            call=call,
            delay_s=round(backoff(state.attempt_number), 2),
        )

    return AsyncRetrying(
        retry=retry_if_exception_type(ClickHouseUnavailable),
        wait=_jittered,
        stop=lambda _state: stopping(),
        after=failed,
        reraise=True,
    )


async def retry_store(
    store: Connection,
    fn: Callable[..., T],
    *args: Any,
    metrics: PipelineMetrics,
    stopping: Callable[[], bool],
    holding: int = 0,
    urgent: bool = False,
) -> T:
    """``fn(*args)`` on the store's thread, retried under the policy while ClickHouse is
    unavailable (reads of zone state need it as much as writes). ``urgent``: before the
    ordinary calls queued on the store's thread (``Connection.arun``).

    ``holding`` rows wait on this call; they count in ``parkpulse_sink_buffered_rows`` until it
    returns (inc/dec, not set: several agents wait at once).
    """
    metrics.sink_buffered.inc(holding)
    try:
        async for attempt in policy(getattr(fn, "__name__", "store"), metrics, stopping):
            with attempt:
                result = await store.arun(fn, *args, urgent=urgent)
        return result
    finally:
        metrics.sink_buffered.dec(holding)


async def write_durably(
    store: ClickHouseStore,
    batch: SinkBatch,
    metrics: PipelineMetrics,
    stopping: Callable[[], bool],
) -> list[Refused]:
    """Write the batch under the policy until it lands, holding its rows meanwhile, and count the
    rows written per table.

    Returns the rows ClickHouse refused (``sinks/refusals.py``), for the stage to dead-letter;
    every other row has landed. Refused dead letters are not returned: they are logged and
    counted here (a dead letter of a dead letter would be refused again). The batch is one call
    on the store's thread; only once it is rejected is it written table by table, in halves.
    """
    metrics.sink_buffered.inc(len(batch))
    try:
        try:
            written = await retry_store(
                store, store.write, batch, metrics=metrics, stopping=stopping
            )
        except ClickHouseRejected:
            parts = await store.arun(store.parts, batch)
            return await _write_parts(store, parts, metrics, stopping)
        _count_written(metrics, written)
        return []
    finally:
        metrics.sink_buffered.dec(len(batch))


async def write_registrations_durably(
    store: ClickHouseStore,
    registrations: Sequence[Registration],
    metrics: PipelineMetrics,
    stopping: Callable[[], bool],
    refused: Callable[[list[DeadLetter]], Awaitable[Any]],
) -> None:
    """Write the new registrations under the policy until they land, and count them; those
    ClickHouse refuses go to ``refused`` as dead letters (the stage sends them on).

    Every call is urgent: live registrations have a latency goal, so their inserts do not
    queue behind the roll-up's work on the store's thread (the stage's reads of known ids are
    urgent too, so they still run after the writes submitted before them)."""
    if not registrations:
        return
    # Not counted as buffered: the stage holds at most one batch of them while it waits.
    try:
        written = await retry_store(
            store,
            store.write_registrations,
            registrations,
            metrics=metrics,
            stopping=stopping,
            urgent=True,
        )
    except ClickHouseRejected:
        part = await store.arun(registration_part, registrations, urgent=True)
        rows = await _write_parts(store, [part], metrics, stopping, urgent=True)
        if rows:
            await refused(refused_deadletters(rows, REGISTRATIONS))
        return
    _count_written(metrics, written)


def _count_written(metrics: PipelineMetrics, written: dict[str, int]) -> None:
    for table, n in written.items():
        if n:
            metrics.count_sink_rows(table, n)


async def _write_parts(
    store: ClickHouseStore,
    parts: Sequence[Part],
    metrics: PipelineMetrics,
    stopping: Callable[[], bool],
    *,
    urgent: bool = False,
) -> list[Refused]:
    """Insert the parts in order, each under the policy; a refused part is written in halves."""

    async def land(part: Part) -> None:
        await retry_store(
            store, store.insert_part, part, metrics=metrics, stopping=stopping, urgent=urgent
        )

    found: list[Refused] = []
    for part in parts:
        if not len(part):
            continue
        refused = await refused_rows(part, land)
        if refused:
            _report_refused(part, refused, metrics)
            found += refused
        if len(part) > len(refused):
            metrics.count_sink_rows(part.table, len(part) - len(refused))
    return [row for row in found if row.table != "deadletter"]


def _report_refused(part: Part, refused: Sequence[Refused], metrics: PipelineMetrics) -> None:
    """One line for what ClickHouse refused of a part; a refused dead letter is logged whole
    (the log is all that keeps it) and counted as a failed write of its table."""
    log_event(
        log,
        "write_refused",
        level=logging.WARNING,
        table=part.table,
        refused=len(refused),
        landed=len(part) - len(refused),
        error=refused[0].detail[:300],
    )
    if part.table != "deadletter":
        return
    for row in refused:
        metrics.count_sink_error(part.table)
        log_event(log, "deadletter_refused", level=logging.ERROR, **row.record.to_dict())


async def until_stopped(job: Awaitable[Any], stopping: Callable[[], bool]) -> None:
    """Await a background job (a task or timer of the worker). When the worker stops while
    ClickHouse is down the policy gives the job's call up with ``ClickHouseUnavailable``: that is
    the job ending with the worker, not a crash (Faust would exit with status 1)."""
    try:
        await job
    except ClickHouseUnavailable:
        if not stopping():
            raise
