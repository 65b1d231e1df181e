"""Inserts tell the driver the column types schema.sql declares (sinks/schema_types.py) and the
batch's time as milliseconds (sinks/writer.py ``millis``), instead of the driver asking
``DESCRIBE TABLE`` before every insert and converting a datetime per row."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from clickhouse_connect.datatypes.registry import get_from_name
from hypothesis import given
from hypothesis import strategies as st

from parkpulse.broker import free_port
from parkpulse.config import parse_clickhouse_url
from parkpulse.schemas.records import IndicatorStatus, Observation
from parkpulse.sinks.batch import SinkBatch
from parkpulse.sinks.clickhouse import ClickHouseStore
from parkpulse.sinks.connection import TABLE_TYPES
from parkpulse.sinks.schema_types import declared_types, insert_types
from parkpulse.sinks.writer import millis
from tests.chdb_http_shim import ClickHouseShim

STATEMENT = """CREATE TABLE IF NOT EXISTS parkpulse.t
(
    zone LowCardinality(String),
    seen DateTime64(3, 'UTC'),
    ingested_at DateTime64(6, 'UTC') DEFAULT now64(6),
    note Nullable(String)  -- last, with a comment
)
ENGINE = ReplacingMergeTree
ORDER BY zone"""


def test_types_are_read_from_the_create_statement() -> None:
    tables = declared_types([STATEMENT, "CREATE DATABASE IF NOT EXISTS parkpulse"])
    assert tables == {
        "t": {
            "zone": "LowCardinality(String)",
            "seen": "DateTime64(3, 'UTC')",
            "ingested_at": "DateTime64(6, 'UTC')",
            "note": "Nullable(String)",
        }
    }
    assert insert_types(tables, "t", ["note", "zone"]) == [
        "Nullable(String)",
        "LowCardinality(String)",
    ]
    # A column or table schema.sql does not declare: the driver asks the server, as before.
    assert insert_types(tables, "t", ["zone", "added_later"]) is None
    assert insert_types(tables, "elsewhere", ["zone"]) is None


_DATETIME64_3 = get_from_name("DateTime64(3, 'UTC')")


@given(
    st.datetimes(
        min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
    )
)
def test_millis_is_what_the_driver_makes_of_a_datetime(moment: datetime) -> None:
    assert millis(moment) == _DATETIME64_3._datetime64_ticks(moment)


@pytest.mark.integration
def test_declared_types_are_what_clickhouse_describes_and_times_land(tmp_path: Path) -> None:
    shim = ClickHouseShim(free_port(), tmp_path / "server").start()
    try:
        store = ClickHouseStore.open(parse_clickhouse_url(shim.url()))
        try:
            store.run(store.connect)  # applies schema.sql
            for table, declared in TABLE_TYPES.items():
                described = shim.rows(f"DESCRIBE TABLE parkpulse.{table}")
                assert {r["name"]: r["type"] for r in described} == declared, table
            before = millis(datetime.now(UTC))
            status = IndicatorStatus("jinan-hitech", "gdp", "p", "2021-03", "growth", "on_track")
            figure = Observation("jinan-hitech", "gdp", "2021-03", "YTD", 12.5, "CNY_100M")
            store.run(store.write, SinkBatch(statuses=[status], observations=[figure]))
            after = millis(datetime.now(UTC) + timedelta(milliseconds=1))
        finally:
            store.close()
        (landed,) = shim.rows(
            "SELECT toUnixTimestamp64Milli(s.evaluated_at) AS evaluated,"
            " toUnixTimestamp64Milli(o.ingested_at) AS ingested"
            " FROM parkpulse.indicator_status AS s, parkpulse.observations AS o"
        )
        assert before <= int(landed["evaluated"]) == int(landed["ingested"]) <= after
        assert abs(int(landed["evaluated"]) / 1000 - time.time()) < 60
    finally:
        shim.stop()
