"""A batch of registrations as a Native block (schemas/registration_block.py), by property
against what it was made from and against clickhouse-connect's own encoding, and inserted into
a ClickHouse server (the embedded insert is every registrations integration test's)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from clickhouse_connect.datatypes.registry import get_from_name
from clickhouse_connect.driver.insert import InsertContext
from clickhouse_connect.driver.transform import NativeTransform
from hypothesis import given
from hypothesis import strategies as st

from parkpulse.broker import free_port
from parkpulse.config import parse_clickhouse_url
from parkpulse.schemas.periods import SHANGHAI
from parkpulse.schemas.records import Registration
from parkpulse.schemas.registration import RegistrationColumns
from parkpulse.schemas.registration_block import (
    INSERTED,
    SEPARATOR,
    RegistrationBlock,
    TextColumn,
    id_hashes,
)
from parkpulse.sinks.clickhouse import ClickHouseStore
from parkpulse.sinks.connection import TABLE_TYPES
from parkpulse.sinks.tables import REGISTRATION_COLUMNS
from parkpulse.sinks.writer import registration_part
from tests.chdb_http_shim import ClickHouseShim

# Texts of every kind the encoder tells apart: ASCII, other characters, the separator, values
# of 128 bytes or more (a two-byte length).
texts = st.one_of(
    st.text(alphabet="abcXYZ019-_:+T", max_size=30),
    st.text(max_size=12),
    st.text(alphabet=f"ab{SEPARATOR}", max_size=5),
    st.text(alphabet="ab好", min_size=60, max_size=200),
)
# As validation writes them: Beijing time, a fraction only when there is one.
times = st.datetimes(min_value=datetime(1949, 1, 1), max_value=datetime(2100, 12, 31)).map(
    lambda t: t.replace(tzinfo=SHANGHAI).isoformat()
)
sent = st.sampled_from(["", "2026-12-01T02:00:00.123456+00:00", "not a time", "2026-12-01"])
rows = st.builds(
    Registration,
    zone=texts,
    registration_id=texts,
    registered_at=times,
    entity_type=texts,
    industry_code=texts,
    registered_capital=st.one_of(st.none(), st.floats(0, 1e12)),
    month=texts,
    batch_id=texts,
    sent_at=sent,
)


def as_tuples(registrations: RegistrationColumns) -> list[tuple[object, ...]]:
    return list(zip(*registrations.columns(), strict=True))


@given(st.lists(texts, max_size=20))
def test_a_text_column_gives_back_its_values_and_any_of_them(values: list[str]) -> None:
    column = TextColumn.of(values)
    assert column.values() == values
    assert column.data.tobytes() == TextColumn._one_by_one(values).data.tobytes()
    picked = np.array([i for i in range(len(values)) if i % 3 != 1], np.int64)
    assert column.take(picked).values() == [values[i] for i in picked]


@given(st.lists(rows, max_size=25), st.data())
def test_a_block_gives_back_its_registrations_and_any_rows_of_them(
    registrations: list[Registration], data: st.DataObject
) -> None:
    columns = RegistrationColumns.of(registrations)
    block = RegistrationBlock.of(columns)
    assert as_tuples(block.registrations()) == as_tuples(columns)
    assert list(block) == registrations
    kept = sorted(data.draw(st.sets(st.integers(0, max(len(registrations) - 1, 0)))))
    kept = [i for i in kept if i < len(registrations)]
    part = block.take(np.array(kept, np.int64))
    assert list(part) == [registrations[i] for i in kept]
    assert (
        part.hashes.tolist() == id_hashes([registrations[i].registration_id for i in kept]).tolist()
    )
    assert part.pairs() == {(registrations[i].zone, registrations[i].month) for i in kept}


@given(st.lists(st.lists(rows, max_size=8), min_size=1, max_size=4))
def test_blocks_concatenated_are_the_block_of_all_their_rows(
    parts: list[list[Registration]],
) -> None:
    whole = RegistrationBlock.concat([RegistrationBlock.of_rows(part) for part in parts])
    every = [r for part in parts for r in part]
    assert list(whole) == every
    assert whole.hashes.tolist() == RegistrationBlock.of_rows(every).hashes.tolist()
    if every:
        assert whole.native() == RegistrationBlock.of_rows(every).native()


def driver_block(registrations: list[Registration]) -> bytes:
    """clickhouse-connect's Native block of the same rows, each column of the type the block
    sends it as (``batch_id`` as LowCardinality: ClickHouse converts it to the table's
    ``String`` on insert)."""
    part = registration_part(registrations)
    types = [get_from_name(kind) for _, kind in INSERTED]
    context = InsertContext("t", [name for name, _ in INSERTED], types, part.data, True)
    body = b"".join(NativeTransform.build_insert(context))
    return body[body.index(b"FORMAT Native\n") + len(b"FORMAT Native\n") :]  # the statement


@given(st.lists(rows, min_size=1, max_size=25))
def test_the_block_is_byte_for_byte_the_drivers_encoding(registrations: list[Registration]) -> None:
    assert RegistrationBlock.of_rows(registrations).native() == driver_block(registrations)


def test_the_inserted_columns_are_the_tables_as_declared_or_low_cardinality() -> None:
    declared = TABLE_TYPES["registrations"]
    assert [name for name, _ in INSERTED] == list(REGISTRATION_COLUMNS)
    for name, kind in INSERTED:
        assert kind in (declared[name], f"LowCardinality({declared[name]})"), name


def test_ids_hash_alike_in_every_process_as_xxhash64() -> None:
    # The published xxHash64 of "abc" (seed 0), as ClickHouse's xxHash64('abc') gives it too.
    assert id_hashes(["abc"]).view(np.uint64).tolist() == [4952883123889572249]


@pytest.mark.integration
def test_a_block_lands_in_a_clickhouse_server_as_its_registrations(tmp_path: Path) -> None:
    registrations = [
        Registration("jinan-hitech", "91370100MA3C4XYZ1K", "2021-04-15T09:30:00+08:00",
                     "enterprise", "I65", 500.0, "2021-04", "b" * 130, "2026-12-01T02:00:00+00:00"),
        Registration("qingdao-hitech", "R-二", "1949-10-01T15:00:00.250000+08:00",
                     "individual_business", "F52", None, "1949-10", "批次一", ""),
    ]  # fmt: skip
    shim = ClickHouseShim(free_port(), tmp_path / "server").start()
    try:
        store = ClickHouseStore.open(parse_clickhouse_url(shim.url()))
        try:
            store.run(store.write_registrations, registrations)
        finally:
            store.close()
        landed = shim.rows(
            "SELECT zone, registration_id, toUnixTimestamp64Milli(registered_at) AS ms, month,"
            " entity_type, industry_code, registered_capital, batch_id,"
            " toUnixTimestamp64Micro(sent_at) AS sent, toString(xxHash64(registration_id)) AS h"
            " FROM parkpulse.registrations"
            " ORDER BY registration_id"
        )
    finally:
        shim.stop()
    assert [(r["zone"], r["registration_id"], int(r["ms"]), r["batch_id"]) for r in landed] == [
        ("jinan-hitech", "91370100MA3C4XYZ1K", 1618450200000, "b" * 130),
        ("qingdao-hitech", "R-二", -639075599750, "批次一"),
    ]
    assert [(r["month"], r["entity_type"], r["industry_code"]) for r in landed] == [
        ("2021-04", "enterprise", "I65"),
        ("1949-10", "individual_business", "F52"),
    ]
    assert [r["registered_capital"] for r in landed] == [500, None]
    assert landed[0]["sent"] is not None and int(landed[0]["sent"]) == 1796090400000000
    assert landed[1]["sent"] is None
    # The worker's cache hashes ids as ClickHouse's xxHash64 does (a non-ASCII id too).
    ids = [r["registration_id"] for r in landed]
    assert id_hashes(ids).view(np.uint64).tolist() == [int(r["h"]) for r in landed]
