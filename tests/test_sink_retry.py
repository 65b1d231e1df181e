"""The one retry policy (sinks/retry.py) and the one exception mapping (sinks/connection.py).

A fake driver client stands in for ClickHouse behind a real store (its thread, its mapping),
so these run in milliseconds; tests/test_faults_clickhouse.py drives the same policy against
a real endpoint going down and coming back.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from clickhouse_connect.driver.exceptions import (
    DatabaseError,
    DataError,
    OperationalError,
    ProgrammingError,
)
from hypothesis import given
from hypothesis import strategies as st

from parkpulse.schemas.records import DeadLetter
from parkpulse.sinks import retry
from parkpulse.sinks.batch import SinkBatch
from parkpulse.sinks.clickhouse import ClickHouseStore
from parkpulse.sinks.connection import (
    ClickHouseRejected,
    ClickHouseUnavailable,
    classify,
)
from parkpulse.sinks.metrics import PipelineMetrics


class FlakyClient:
    """A driver client whose inserts raise ``failures`` in turn, then succeed."""

    def __init__(self, failures: list[Exception]) -> None:
        self.failures = list(failures)
        self.inserted: list[str] = []
        self.attempts = 0

    def insert(self, table: str, data: Any, **_: Any) -> None:
        self.attempts += 1
        if self.failures:
            raise self.failures.pop(0)
        self.inserted.append(table)

    def close(self) -> None:
        pass


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retry, "RETRY_FIRST_DELAY", 0.001)
    monkeypatch.setattr(retry, "RETRY_MAX_DELAY", 0.004)


def dead_letters(n: int) -> SinkBatch:
    letter = DeadLetter(
        received_at="2025-03-01T00:00:00Z",
        source_topic="parkpulse.observations",
        reason="bad_value",
        detail="value: not a number",
        raw="x",
        origin="feed.csv",
        line=2,
    )
    return SinkBatch(deadletters=[letter] * n)


def sample(metrics: PipelineMetrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def write(client: FlakyClient, batch: SinkBatch, stopping: Any = lambda: False) -> PipelineMetrics:
    store = ClickHouseStore(client=client)
    metrics = PipelineMetrics()
    try:
        asyncio.run(retry.write_durably(store, batch, metrics, stopping))
    finally:
        store.close()
    return metrics


def test_an_unavailable_store_is_retried_until_the_batch_lands(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = FlakyClient([OperationalError("connection refused")] * 3)
    with caplog.at_level(logging.WARNING):
        metrics = write(client, dead_letters(2))
    assert client.attempts == 4 and client.inserted == ["parkpulse.deadletter"]
    assert sample(metrics, "parkpulse_sink_errors_total", table="deadletter") == 3
    assert sample(metrics, "parkpulse_sink_rows_total", table="deadletter") == 2
    assert sample(metrics, "parkpulse_sink_buffered_rows") == 0  # released once written
    assert sum("sink_retry" in r.getMessage() for r in caplog.records) == 3


def test_rejected_data_is_not_retried() -> None:
    """A refused write is halved down to its refused rows (tests/test_refusals.py), never tried
    again as it was; a refused dead letter is counted, not raised."""
    client = FlakyClient([DatabaseError("Code: 53. TYPE_MISMATCH", code=53)] * 2)
    store = ClickHouseStore(client=client)
    metrics = PipelineMetrics()
    try:
        refused = asyncio.run(retry.write_durably(store, dead_letters(1), metrics, lambda: False))
    finally:
        store.close()
    # the batch, then its one row alone: refused twice, never waited on
    assert refused == [] and client.attempts == 2 and client.inserted == []
    assert sample(metrics, "parkpulse_sink_errors_total", table="deadletter") == 1
    assert sample(metrics, "parkpulse_sink_rows_total", table="deadletter") == 0
    assert sample(metrics, "parkpulse_sink_buffered_rows") == 0


def test_a_rejected_read_is_raised_at_once() -> None:
    calls: list[int] = []

    def refused_read() -> str:
        calls.append(1)
        raise ClickHouseRejected("query failed: Code: 62. SYNTAX_ERROR")

    store = ClickHouseStore(client=FlakyClient([]))
    try:
        with pytest.raises(ClickHouseRejected):
            asyncio.run(
                retry.retry_store(store, refused_read, metrics=PipelineMetrics(), stopping=bool)
            )
    finally:
        store.close()
    assert calls == [1]


def test_a_stopping_worker_gives_the_batch_up_unwritten() -> None:
    client = FlakyClient([OperationalError("down")] * 100)
    store = ClickHouseStore(client=client)
    metrics = PipelineMetrics()
    stops = iter([False, False, True])
    try:
        with pytest.raises(ClickHouseUnavailable):
            asyncio.run(retry.write_durably(store, dead_letters(1), metrics, lambda: next(stops)))
    finally:
        store.close()
    assert client.attempts == 3 and client.inserted == []
    assert sample(metrics, "parkpulse_sink_errors_total", table="deadletter") == 3


def test_rows_held_while_retrying_count_as_buffered() -> None:
    seen: list[float] = []
    metrics = PipelineMetrics()

    class Watching(FlakyClient):
        def insert(self, table: str, data: Any, **kw: Any) -> None:
            seen.append(sample(metrics, "parkpulse_sink_buffered_rows"))
            super().insert(table, data, **kw)

    client = Watching([OperationalError("down")])
    store = ClickHouseStore(client=client)
    try:
        asyncio.run(retry.write_durably(store, dead_letters(5), metrics, lambda: False))
    finally:
        store.close()
    assert seen == [5, 5] and sample(metrics, "parkpulse_sink_buffered_rows") == 0


def test_reads_are_retried_under_the_same_policy() -> None:
    calls: list[int] = []

    def flaky_read() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ClickHouseUnavailable("query failed: down")
        return "rows"

    store = ClickHouseStore(client=FlakyClient([]))
    metrics = PipelineMetrics()
    try:
        got = asyncio.run(
            retry.retry_store(store, flaky_read, metrics=metrics, stopping=lambda: False)
        )
    finally:
        store.close()
    assert got == "rows" and len(calls) == 3
    assert sample(metrics, "parkpulse_sink_errors_total", table="flaky_read") == 2


@given(st.integers(min_value=1, max_value=60))
def test_backoff_doubles_from_a_fifth_of_a_second_to_five(attempt: int) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(retry, "RETRY_FIRST_DELAY", 0.2)
        mp.setattr(retry, "RETRY_MAX_DELAY", 5.0)
        now, after = retry.backoff(attempt), retry.backoff(attempt + 1)
    assert 0.2 <= now <= after <= 5.0
    assert after == min(2 * now, 5.0)


def test_backoff_worked_example() -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(retry, "RETRY_FIRST_DELAY", 0.2)
        mp.setattr(retry, "RETRY_MAX_DELAY", 5.0)
        assert [round(retry.backoff(n), 2) for n in range(1, 8)] == [
            0.2,
            0.4,
            0.8,
            1.6,
            3.2,
            5.0,
            5.0,
        ]


# -- the exception mapping ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "mapped"),
    [
        (OperationalError("Error executing HTTP request"), ClickHouseUnavailable),
        (DatabaseError("HTTP driver received HTTP status 503"), ClickHouseUnavailable),
        (DatabaseError("Code: 241. MEMORY_LIMIT_EXCEEDED", code=241), ClickHouseUnavailable),
        (DatabaseError("Code: 252. TOO_MANY_PARTS", code=252), ClickHouseUnavailable),
        (ConnectionResetError("reset by peer"), ClickHouseUnavailable),
        (DatabaseError("Code: 53. TYPE_MISMATCH", code=53), ClickHouseRejected),
        (DatabaseError("Code: 62. SYNTAX_ERROR", code=62), ClickHouseRejected),
        (DatabaseError("Code: 469. VIOLATED_CONSTRAINT", code=469), ClickHouseRejected),
        (ProgrammingError("Code: 47. UNKNOWN_IDENTIFIER", code=47), ClickHouseRejected),
        (DataError("value out of range"), ClickHouseRejected),
        (TypeError("cannot encode a str as Float64"), ClickHouseRejected),
    ],
)
def test_driver_errors_map_to_unavailable_or_rejected(exc: Exception, mapped: type) -> None:
    assert classify(exc) is mapped


def test_the_store_maps_and_scrubs_driver_errors() -> None:
    client = FlakyClient([OperationalError("auth s3cret refused")])
    store = ClickHouseStore(client=client, secret="s3cret")
    try:
        with pytest.raises(ClickHouseUnavailable) as caught:
            store.run(store.write, dead_letters(1))
    finally:
        store.close()
    assert caught.value.table == "deadletter"
    assert "s3cret" not in str(caught.value) and "***" in str(caught.value)


def test_a_background_job_given_up_while_stopping_ends_quietly() -> None:
    """A worker stopped while ClickHouse is down gives its gauges' read up: the task ends with
    the worker instead of crashing it (exit 1); while running, the same error is a real one."""

    async def refused() -> None:
        raise ClickHouseUnavailable("connection refused")

    asyncio.run(retry.until_stopped(refused(), lambda: True))
    with pytest.raises(ClickHouseUnavailable):
        asyncio.run(retry.until_stopped(refused(), lambda: False))
