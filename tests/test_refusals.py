"""Rows ClickHouse refuses (sinks/refusals.py, sinks/retry.py, streams/refused_inputs.py): found
by halving, dead-lettered once each with their place, while every other row lands.

Fake stores stand in for ClickHouse here (milliseconds); tests/test_refused_integration.py has
a real ClickHouse refuse rows by a CHECK constraint under a running worker.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError
from hypothesis import given, settings
from hypothesis import strategies as st

from parkpulse.schemas.catalogue import load_catalogue
from parkpulse.schemas.errors import REASONS
from parkpulse.schemas.records import DeadLetter, Observation, Registration
from parkpulse.schemas.wire import observation_envelope, observation_to_wire
from parkpulse.sinks import retry
from parkpulse.sinks.batch import SinkBatch
from parkpulse.sinks.clickhouse import ClickHouseStore
from parkpulse.sinks.connection import ClickHouseRejected, ClickHouseUnavailable
from parkpulse.sinks.metrics import PipelineMetrics
from parkpulse.sinks.refusals import REFUSED, Refused, refused_rows
from parkpulse.sinks.writer import Part, registration_part
from parkpulse.streams.refused_inputs import rollup_deadletters
from parkpulse.streams.rollup import Input, Rollup, read_message
from parkpulse.topics import OBSERVATIONS, REGISTRATIONS
from tests.test_registrations_stage import MemoryStore, Stage
from tests.test_sink_retry import fast_backoff, sample  # noqa: F401 (the autouse fixture)

CONSTRAINT = DatabaseError("Code: 469. VIOLATED_CONSTRAINT: Constraint `sane` ...", code=469)
ZONE = "jinan-hitech"
NOW = datetime(2026, 11, 21, tzinfo=UTC)


class FakeLanding:
    """A table that refuses any insert carrying a poisoned record (ClickHouse checks a block
    as a whole: all of it lands or none)."""

    def __init__(self, poisoned: set[int]) -> None:
        self.poisoned = poisoned
        self.landed: list[int] = []
        self.inserts = 0

    async def __call__(self, part: Part) -> None:
        self.inserts += 1
        bad = self.poisoned.intersection(part.records)
        if bad:
            raise ClickHouseRejected(f"row {min(bad)} breaks CHECK sane", part.table)
        self.landed += part.records


def part_of(ids: list[int], column_oriented: bool = False) -> Part:
    data: Any = [list(ids), [i * 10 for i in ids]] if column_oriented else [[i] for i in ids]
    return Part("t", ("id", "x"), data, ids, column_oriented)


def test_one_poisoned_row_among_eight_is_found_and_the_rest_land() -> None:
    landing = FakeLanding({5})
    refused = asyncio.run(refused_rows(part_of(list(range(8))), landing))
    assert [(r.table, r.record) for r in refused] == [("t", 5)]
    assert "CHECK sane" in refused[0].detail
    assert sorted(landing.landed) == [0, 1, 2, 3, 4, 6, 7]
    # 8 refused → [0..3] lands, [4..7] refused → [4,5] refused → 4 lands, 5 refused; [6,7] lands
    assert landing.inserts == 7


def test_a_clean_part_is_one_insert() -> None:
    landing = FakeLanding(set())
    assert asyncio.run(refused_rows(part_of([1, 2, 3]), landing)) == []
    assert landing.inserts == 1 and landing.landed == [1, 2, 3]


def test_halves_of_a_column_oriented_part_keep_rows_together() -> None:
    part = part_of([1, 2, 3, 4, 5], column_oriented=True)
    assert part.rows(1, 3).data == [[2, 3], [20, 30]]
    assert part.rows(1, 3).records == [2, 3]
    assert part_of([1, 2, 3]).rows(2, 3).data == [[3]]


def test_unavailable_while_halving_is_not_taken_for_a_refusal() -> None:
    async def down(part: Part) -> None:
        if len(part) < 4:
            raise ClickHouseUnavailable("connection refused")
        raise ClickHouseRejected("bad row")

    with pytest.raises(ClickHouseUnavailable):
        asyncio.run(refused_rows(part_of(list(range(4))), down))


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(min_value=1, max_value=64),
    poison=st.sets(st.integers(min_value=0, max_value=63)),
    column_oriented=st.booleans(),
)
def test_exactly_the_poisoned_rows_are_refused_once_and_all_others_land_once(
    n: int, poison: set[int], column_oriented: bool
) -> None:
    poisoned = {i for i in poison if i < n}
    landing = FakeLanding(poisoned)
    refused = asyncio.run(refused_rows(part_of(list(range(n)), column_oriented), landing))
    assert [r.record for r in refused] == sorted(poisoned)
    assert sorted(landing.landed) == sorted(set(range(n)) - poisoned)
    # halving: at most two inserts per poisoned row per level, plus the first
    levels = max(1, (n - 1).bit_length())
    assert landing.inserts <= 1 + 2 * len(poisoned) * levels


# -- the policy around it (sinks/retry.py), a fake driver behind a real store --------------


class PoisonClient:
    """A driver client refusing any insert holding a value in ``poison`` (in any column), and
    unavailable for the ``down`` inserts after its first refusal (while halving)."""

    def __init__(self, poison: set[Any], down: int = 0) -> None:
        self.poison = poison
        self.down = down
        self.rows: dict[str, list[Any]] = {}
        self.attempts = 0
        self.refusals = 0

    def insert(self, table: str, data: Any, *, column_oriented: bool = False, **_: Any) -> None:
        self.attempts += 1
        rows = list(zip(*data, strict=True)) if column_oriented else [tuple(r) for r in data]
        if any(v in self.poison for row in rows for v in row):
            self.refusals += 1
            raise CONSTRAINT
        if self.refusals and self.down:
            self.down -= 1
            raise OperationalError("connection reset")
        self.rows.setdefault(table.split(".")[-1], []).extend(rows)

    def raw_insert(self, table: str, columns: Any, block: bytes, **_: Any) -> None:
        """A Native block (registrations) holding a poisoned text is refused whole."""
        self.attempts += 1
        assert any(str(v).encode() in block for v in self.poison), "only refusals are faked"
        self.refusals += 1
        raise CONSTRAINT

    def close(self) -> None:
        pass


def figure(period: str, value: float) -> Observation:
    return Observation(ZONE, "retail_sales", period, "YTD", value, "CNY_100M")


def run_write(client: PoisonClient, batch: SinkBatch) -> tuple[list[Refused], PipelineMetrics]:
    store = ClickHouseStore(client=client)
    metrics = PipelineMetrics()
    try:
        refused = asyncio.run(retry.write_durably(store, batch, metrics, lambda: False))
    finally:
        store.close()
    return refused, metrics


def test_a_refused_figure_is_returned_and_the_batch_lands_through_an_outage(
    caplog: pytest.LogCaptureFixture,
) -> None:
    figures = [figure(f"2021-{m:02d}", 100.0 + m) for m in range(1, 7)]
    client = PoisonClient({103.0}, down=2)  # a refusal, then ClickHouse goes away twice
    with caplog.at_level(logging.WARNING):
        refused, metrics = run_write(client, SinkBatch(observations=figures))
    assert [(r.table, r.record) for r in refused] == [("observations", figures[2])]
    assert sorted(row[5] for row in client.rows["observations"]) == [
        101.0,
        102.0,
        104.0,
        105.0,
        106.0,
    ]
    assert sample(metrics, "parkpulse_sink_rows_total", table="observations") == 5
    assert sample(metrics, "parkpulse_sink_errors_total", table="observations") == 2
    assert sample(metrics, "parkpulse_sink_buffered_rows") == 0
    lines = [r for r in caplog.records if r.getMessage() == "write_refused"]
    assert len(lines) == 1
    assert (lines[0].table, lines[0].refused, lines[0].landed) == ("observations", 1, 5)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(min_value=1, max_value=24),
    poison=st.sets(st.integers(min_value=0, max_value=23)),
)
def test_through_the_store_any_poisoned_figures_come_back_once_and_the_rest_land(
    n: int, poison: set[int]
) -> None:
    figures = [figure(f"20{10 + i // 12}-{i % 12 + 1:02d}", 1000.0 + i) for i in range(n)]
    poisoned = {i for i in poison if i < n}
    client = PoisonClient({1000.0 + i for i in poisoned})
    refused, metrics = run_write(client, SinkBatch(observations=figures))
    assert [r.record for r in refused] == [figures[i] for i in sorted(poisoned)]
    landed = [row[5] for row in client.rows.get("observations", [])]
    # a refused insert lands nothing (ClickHouse checks a block whole): each clean row lands once
    assert sorted(landed) == [1000.0 + i for i in range(n) if i not in poisoned]
    assert sample(metrics, "parkpulse_sink_rows_total", table="observations") == n - len(poisoned)


def test_a_refused_dead_letter_is_logged_and_counted_never_returned_or_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    letters = [
        DeadLetter("parkpulse.observations", "bad_value", "x", raw, "feed.csv", line)
        for line, raw in enumerate(["ok", "poison", "fine"], start=2)
    ]
    client = PoisonClient({"poison"})
    with caplog.at_level(logging.WARNING):
        refused, metrics = run_write(client, SinkBatch(deadletters=letters))
    assert refused == []
    assert [row[4] for row in client.rows["deadletter"]] == ["ok", "fine"]
    assert sample(metrics, "parkpulse_sink_errors_total", table="deadletter") == 1
    kept = [r for r in caplog.records if r.getMessage() == "deadletter_refused"]
    assert [(r.raw, r.origin, r.line) for r in kept] == [("poison", "feed.csv", 3)]


def test_refused_registrations_go_to_the_stage_as_dead_letters_with_their_batch() -> None:
    regs = [
        Registration(ZONE, f"id-{i}", "2025-03-01T09:00:00+08:00", "enterprise", "I65",
                     100.0 * i, "2025-03", batch_id="b7")
        for i in range(1, 6)
    ]  # fmt: skip
    client = PoisonClient({"id-4"})
    store = ClickHouseStore(client=client)
    got: list[DeadLetter] = []

    async def keep(dead: list[DeadLetter]) -> None:
        got.extend(dead)

    try:
        asyncio.run(
            retry.write_registrations_durably(store, regs, PipelineMetrics(), lambda: False, keep)
        )
    finally:
        store.close()
    assert sorted(row[1] for row in client.rows["registrations"]) == [
        "id-1",
        "id-2",
        "id-3",
        "id-5",
    ]
    assert [(d.reason, d.source_topic, d.origin) for d in got] == [
        (REFUSED, REGISTRATIONS, "batch:b7")
    ]
    assert orjson.loads(got[0].raw)["registration_id"] == "id-4"
    assert "VIOLATED_CONSTRAINT" in got[0].detail


# -- the roll-up's refused rows, placed at their inputs (streams/refused_inputs.py) --------


def test_a_refused_figure_is_dead_lettered_at_its_envelope_line() -> None:
    figures = [figure(f"2021-{m:02d}", 100.0 + m) for m in range(1, 4)]
    message = orjson.dumps(observation_envelope([observation_to_wire(f) for f in figures]))
    inputs = read_message(OBSERVATIONS, "observation", message, 2, 40)
    rollup = Rollup(load_catalogue())
    result = rollup.apply(inputs, NOW)
    written = result.batch.observations[1]
    refused = [Refused("observations", written, "Constraint `sane` violated")]
    dead = rollup_deadletters(refused, inputs, rollup)
    assert [(d.reason, d.origin, d.line) for d in dead] == [
        (REFUSED, "parkpulse.observations/2@40", 2)
    ]
    assert orjson.loads(dead[0].raw)["obs_value"] == 102.0
    assert REFUSED in REASONS


def test_a_feed_line_keeps_its_file_and_line_and_a_status_row_its_table() -> None:
    doc = {**observation_to_wire(figure("2021-05", 9e9)), "origin": "may.csv", "line": 7}
    item = Input(OBSERVATIONS, "observation", orjson.dumps(doc), 0, 3)
    rollup = Rollup(load_catalogue())
    written = rollup.apply([item], NOW).batch.observations[0]
    refused = [
        Refused("observations", written, "too big"),
        Refused("zone_scorecard", {"zone": ZONE}, "nope"),
    ]
    dead = rollup_deadletters(refused, [item], rollup)
    assert [(d.origin, d.line, d.reason) for d in dead] == [
        ("may.csv", 7, REFUSED),
        ("clickhouse:zone_scorecard", None, REFUSED),
    ]


# -- the registrations stage (streams/registrations_stage.py) -------------------------------


class RefusingStore(MemoryStore):
    """A MemoryStore whose table refuses any write carrying one of ``refused`` ids."""

    def __init__(self, refused: set[str]) -> None:
        super().__init__()
        self.refused = refused

    def write_registrations(self, rows: Sequence[Registration]) -> dict[str, int]:
        self.insert_part(registration_part(rows))
        return {"registrations": len(rows)}

    def insert_part(self, part: Part) -> None:
        if self.refused.intersection(r.registration_id for r in part.records):
            raise ClickHouseRejected("Code: 469. VIOLATED_CONSTRAINT", "registrations")
        self.rows += part.records


@pytest.mark.asyncio
async def test_the_stage_dead_letters_a_refused_registration_and_recounts_from_the_table() -> None:
    stage = Stage(RefusingStore({"R2"}))
    await stage.take(0, ["R1", "R2", "R3"])
    await stage.counter.unemitted.written()
    assert sorted(r.registration_id for r in stage.store.rows) == ["R1", "R3"]
    ((key, dead),) = stage.deadletters
    assert (key, dead["reason"]) == (REGISTRATIONS.encode(), REFUSED)
    assert orjson.loads(dead["raw"])["registration_id"] == "R2"
    # The count sent next was taken with R2 in the cache; the cache is then reloaded from the
    # table, so the month's next count is the table's.
    await stage.emit_now()
    assert stage.counts()["new_market_entities"] == 3.0
    await stage.take(1, ["R4"])
    await stage.emit_now()
    assert stage.counts()["new_market_entities"] == 3.0  # R1, R3, R4
    assert stage.acked == [0, 1]
