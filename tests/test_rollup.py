"""The per-zone roll-up the zone agent runs (pure: inputs in, changed rows out)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parkpulse.schemas.catalogue import load_catalogue
from parkpulse.schemas.records import Observation, PlanTarget
from parkpulse.schemas.wire import (
    COLUMNS_FIELD,
    ENVELOPE_FIELD,
    observation_columns,
    observation_envelope,
    observation_to_wire,
    target_to_wire,
)
from parkpulse.streams.rollup import Input, Rollup, read_message
from parkpulse.topics import OBSERVATIONS, TARGETS_BY_ZONE

NOW = datetime(2026, 11, 21, tzinfo=UTC)
ZONE = "jinan-hitech"
TARGET = PlanTarget(
    "14th-fyp", ZONE, "retail_sales", "level", 2020, 351.7, 2025, 517.0, None, False, "CNY_100M"
)


def obs(period: str, value: float, revision: int = 0, action: str = "I") -> Observation:
    return Observation(
        ZONE, "retail_sales", period, "YTD", value, "CNY_100M", revision=revision, action=action
    )


def as_input(record: Observation | PlanTarget, offset: int = 0) -> Input:
    if isinstance(record, PlanTarget):
        return Input(TARGETS_BY_ZONE, "target", orjson.dumps(target_to_wire(record)), 0, offset)
    return Input(OBSERVATIONS, "observation", orjson.dumps(observation_to_wire(record)), 0, offset)


def fresh() -> Rollup:
    rollup = Rollup(load_catalogue())
    rollup.load(ZONE, [], [], [])
    return rollup


FEED = [TARGET, obs("2020-06", 160.0), obs("2020-12", 351.7), obs("2021-03", 90.0)]


def test_a_batch_yields_status_rows_and_a_scorecard() -> None:
    result = fresh().apply([as_input(r) for r in FEED], NOW)
    assert result.accepted == 4
    assert [r.period for r in result.statuses] == ["2021-03"]
    assert [c.zone for c in result.batch.scorecards] == [ZONE]
    assert len(result.batch.observations) == 3 and len(result.batch.targets) == 1


def test_replaying_a_batch_changes_nothing() -> None:
    rollup = fresh()
    rollup.apply([as_input(r) for r in FEED], NOW)
    again = rollup.apply([as_input(r) for r in FEED], NOW)
    assert again.accepted == 4
    assert len(again.batch) == 0


@settings(max_examples=40, deadline=None)
@given(st.permutations(FEED + [obs("2021-03", 95.0, revision=1, action="R")]))
def test_arrival_order_does_not_change_the_rows(order: list) -> None:
    one = fresh()
    for record in order:
        one.apply([as_input(record)], NOW)
    together = fresh()
    together.apply([as_input(r) for r in order], NOW)
    assert sorted(one.current_statuses(ZONE), key=lambda r: r.key) == sorted(
        together.current_statuses(ZONE), key=lambda r: r.key
    )
    (row,) = one.current_statuses(ZONE)
    assert row.actual == 95.0  # the highest revision, whenever it came


def test_a_delete_removes_the_status_row() -> None:
    rollup = fresh()
    rollup.apply([as_input(r) for r in FEED], NOW)
    result = rollup.apply([as_input(obs("2021-03", 0.0, revision=1, action="D"))], NOW)
    assert [r.period for r in result.batch.status_tombstones] == ["2021-03"]
    assert rollup.current_statuses(ZONE)[0].status == "no_data"


def test_a_key_that_loses_rows_reports_what_it_has_left() -> None:
    rollup = fresh()
    rollup.apply([as_input(r) for r in [*FEED, obs("2021-04", 120.0)]], NOW)
    latest_deleted = rollup.apply([as_input(obs("2021-04", 0.0, revision=1, action="D"))], NOW)
    key = (ZONE, "retail_sales", "14th-fyp")
    assert latest_deleted.shrunk[key].period == "2021-03"  # the gauges go back a month
    withdrawn = rollup.apply([as_input(replace(TARGET, revision=1, action="D"))], NOW)
    assert withdrawn.shrunk == {key: None}  # nothing left to show: the series go
    assert rollup.apply([as_input(obs("2021-05", 130.0))], NOW).shrunk == {}


def test_tombstones_restored_from_the_store_keep_old_revisions_out() -> None:
    rollup = Rollup(load_catalogue())
    deleted = obs("2021-03", 0.0, revision=1, action="D")
    withdrawn = replace(TARGET, revision=1, action="D")
    rollup.load(ZONE, [obs("2020-12", 351.7), deleted], [withdrawn], [])
    result = rollup.apply([as_input(obs("2021-03", 90.0)), as_input(TARGET)], NOW)
    assert len(result.batch) == 0


def test_a_target_edited_at_the_same_revision_replaces_the_old_one() -> None:
    rollup = fresh()
    rollup.apply([as_input(r) for r in FEED], NOW)
    edited = replace(TARGET, target_value=600.0)
    result = rollup.apply([as_input(edited)], NOW)
    assert result.batch.targets == [edited]
    assert result.statuses[0].annual_target != rollup.apply([], NOW).batch.statuses


def test_unreadable_and_invalid_inputs_are_dead_lettered_with_their_origin() -> None:
    bad_row = {**observation_to_wire(obs("2021-03", 1.0)), "zone": "atlantis", "origin": "f.csv"}
    bad_row["line"] = 7
    result = fresh().apply(
        [
            Input(OBSERVATIONS, "observation", b"\xff{not json", 3, 41),
            Input(OBSERVATIONS, "observation", orjson.dumps(bad_row), 3, 42),
        ],
        NOW,
    )
    assert result.accepted == 0
    first, second = result.deadletters
    assert (first.reason, first.line) == ("malformed", None)
    assert first.origin == "parkpulse.observations/3@41"
    assert (second.reason, second.origin, second.line) == ("unknown_zone", "f.csv", 7)


def envelope(*records: dict) -> bytes:
    return orjson.dumps(observation_envelope(list(records)))


def test_an_envelope_is_read_record_by_record() -> None:
    good = [observation_to_wire(r) for r in FEED[1:]]
    bad = {**observation_to_wire(obs("2021-04", 1.0)), "zone": "atlantis"}
    sourced = {**observation_to_wire(obs("2021-05", -1.0)), "origin": "f.csv", "line": 9}
    message = envelope(*good[:2], bad, good[2], "not a record", sourced)
    inputs = read_message(OBSERVATIONS, "observation", message, 2, 17)
    assert len(inputs) == 6
    rollup = fresh()
    rollup.apply([as_input(TARGET)], NOW)
    result = rollup.apply(inputs, NOW)
    assert result.accepted == 3
    by_line = {d.line: d for d in result.deadletters}
    assert {line: d.reason for line, d in by_line.items()} == {
        3: "unknown_zone",
        5: "malformed",
        9: "bad_value",
    }
    assert by_line[3].origin == by_line[5].origin == "parkpulse.observations/2@17"
    assert orjson.loads(by_line[3].raw) == bad  # the record itself, not the whole envelope
    assert by_line[9].origin == "f.csv"
    # The same figures one per message give the same rows.
    single = fresh()
    single.apply([as_input(TARGET)], NOW)
    assert single.apply([as_input(r) for r in FEED[1:]], NOW).statuses == result.statuses


def test_an_envelope_whose_records_are_not_a_list_is_one_dead_letter() -> None:
    message = orjson.dumps({ENVELOPE_FIELD: {"zone": ZONE}})
    inputs = read_message(OBSERVATIONS, "observation", message, 0, 5)
    result = fresh().apply(inputs, NOW)
    (dead,) = result.deadletters
    assert (dead.reason, dead.origin) == ("malformed", "parkpulse.observations/0@5")
    assert "must be a list" in dead.detail and dead.raw == message.decode()


def columns(*records: dict) -> bytes:
    records_ = list(records)
    return orjson.dumps(
        observation_columns({k: [r[k] for r in records_] for k in records_[0]}, len(records_))
    )


def test_a_column_envelope_is_read_as_its_records_one_by_one() -> None:
    good = [
        {**observation_to_wire(r), "origin": "f.csv", "line": n} for n, r in enumerate(FEED[1:], 2)
    ]
    bad = {**observation_to_wire(obs("2021-04", 1.0)), "zone": "atlantis", "origin": "f.csv"}
    bad["line"] = 8
    negative = {**observation_to_wire(obs("2021-05", -1.0)), "origin": "f.csv", "line": 9}
    message = columns(*good[:2], bad, good[2], negative)
    assert orjson.loads(message)[COLUMNS_FIELD]["origin"] == "f.csv"  # shared: sent once
    inputs = read_message(OBSERVATIONS, "observation", message, 2, 17, ZONE.encode())
    assert orjson.dumps([i.record for i in inputs]) == orjson.dumps(
        [*good[:2], bad, good[2], negative]
    )
    rollup = fresh()
    rollup.apply([as_input(TARGET)], NOW)
    result = rollup.apply(inputs, NOW)
    assert result.accepted == 3
    assert [(d.reason, d.origin, d.line) for d in result.deadletters] == [
        ("unknown_zone", "f.csv", 8),
        ("bad_value", "f.csv", 9),
    ]
    assert orjson.loads(result.deadletters[0].raw) == bad  # the record, not the envelope
    dicts = fresh()  # the same figures in a dict envelope give the same rows
    dicts.apply([as_input(TARGET)], NOW)
    again = read_message(OBSERVATIONS, "observation", envelope(*good), 2, 18, ZONE.encode())
    assert dicts.apply(again, NOW).statuses == result.statuses


@pytest.mark.parametrize(
    ("cols", "says"),
    [
        (["not", "an", "object"], "must be an object"),
        ({"zone": ZONE, "time_period": ["2021-03", "2021-04"], "line": [1]}, "[1, 2] values"),
    ],
)
def test_a_column_envelope_that_is_no_table_is_one_dead_letter(cols: object, says: str) -> None:
    message = orjson.dumps({COLUMNS_FIELD: cols})
    inputs = read_message(OBSERVATIONS, "observation", message, 0, 6)
    (dead,) = fresh().apply(inputs, NOW).deadletters
    assert (dead.reason, dead.origin) == ("malformed", "parkpulse.observations/0@6")
    assert says in dead.detail and dead.raw == message.decode()


def test_only_the_observations_topic_reads_envelopes() -> None:
    message = envelope(target_to_wire(TARGET))
    (one,) = read_message(TARGETS_BY_ZONE, "target", message)
    assert [d.reason for d in fresh().apply([one], NOW).deadletters] == ["malformed"]


def test_a_figure_must_travel_under_its_zones_key() -> None:
    """Keyed by another zone, a figure would reach the worker that does not hold its zone."""
    figures = [observation_to_wire(r) for r in FEED[1:]]
    stray = read_message(OBSERVATIONS, "observation", envelope(*figures), 1, 8, b"wuxi-hitech")
    result = fresh().apply(stray, NOW)
    assert result.accepted == 0 and not result.batch.observations
    assert [(d.reason, d.line) for d in result.deadletters] == [("malformed", n) for n in (1, 2, 3)]
    assert "'wuxi-hitech'" in result.deadletters[0].detail
    assert "message key must be its zone" in result.deadletters[0].detail
    own = read_message(OBSERVATIONS, "observation", envelope(*figures), 1, 9, ZONE.encode())
    assert fresh().apply(own, NOW).accepted == 3


def test_same_revision_different_value_is_a_conflict() -> None:
    rollup = fresh()
    rollup.apply([as_input(obs("2021-03", 90.0))], NOW)
    result = rollup.apply([as_input(obs("2021-03", 91.0))], NOW)
    assert [d.reason for d in result.deadletters] == ["conflict"]
    assert rollup.apply([], NOW).accepted == 0


def test_it_holds_the_most_recently_touched_zones_within_its_row_budget() -> None:
    rollup = Rollup(load_catalogue(), max_rows=5)  # each zone below holds 2 figures, 0 rows
    zones = ["jinan-hitech", "jining-hitech", "xian-hitech"]
    for zone in zones:
        rollup.load(zone, [], [], [])
        figures = [obs("2021-03", 90.0), obs("2021-04", 95.0)]
        rollup.apply([as_input(replace(f, zone=zone)) for f in figures], NOW)
    assert rollup.zones() == zones[1:]  # 6 rows > 5: the least recently touched went
    rollup.apply([as_input(replace(obs("2021-05", 99.0), zone=zones[1]))], NOW)
    rollup.load(zones[0], [], [], [])
    rollup.apply([as_input(replace(obs("2021-05", 99.0), zone=zones[0]))], NOW)
    assert rollup.zones() == zones[:2]  # 1 + 3 + 2 rows: xian, touched least recently, went


def test_a_zone_of_few_rows_is_kept_while_bigger_zones_make_room() -> None:
    # Zones of at most a thousandth of the budget go last: a plan table touches every zone
    # first, and each dropped one would be read back from ClickHouse when its figures came.
    rollup = Rollup(load_catalogue(), max_rows=900)  # a zone of no row is small
    months = [f"{year}-{month:02d}" for year in range(1949, 2026) for month in range(1, 13)]
    small, big, bigger = "jining-hitech", "jinan-hitech", "xian-hitech"

    def touch(zone: str, periods: list[str]) -> None:
        result = rollup.apply([as_input(replace(obs(p, 90.0), zone=zone)) for p in periods], NOW)
        assert result.accepted == len(periods)

    rollup.load(small, [], [], [])
    touch(big, months[:500])
    touch(bigger, months[:500])
    assert rollup.zones() == sorted([small, bigger])  # 1,000 rows: the big zone went
    touch(bigger, months[500:])  # 924 rows alone: the small zone goes too, the last one stays
    assert rollup.zones() == [bigger]
