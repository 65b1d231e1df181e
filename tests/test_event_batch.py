"""The roll-up stage reads a batch's messages lazily (streams/rollup_stage.py ``EventBatch``):
the same records, in the same order, as reading them all at once; the zones to load found from
the figures' message keys; the same roll-up result either way."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from parkpulse.schemas.catalogue import load_catalogue
from parkpulse.schemas.records import Observation, PlanTarget
from parkpulse.schemas.wire import observation_envelope, observation_to_wire, target_to_wire
from parkpulse.streams.rollup import Rollup
from parkpulse.streams.rollup_stage import EventBatch, inputs_of
from parkpulse.topics import OBSERVATIONS, TARGETS_BY_ZONE

NOW = datetime(2026, 11, 21, tzinfo=UTC)
ZONES = ("jinan-hitech", "wuxi-hitech")
TARGET = PlanTarget(
    "14th-fyp", ZONES[0], "retail_sales", "level", 2020, 351.7, 2025, 517.0, None, False, "CNY_100M"
)


def event(topic: str, value: bytes, key: bytes | None, offset: int) -> Any:
    message = SimpleNamespace(topic=topic, partition=0, offset=offset, key=key)
    return SimpleNamespace(message=message, value=value)


def figure(zone: str, month: int, value: float) -> dict[str, Any]:
    period = f"2021-{month:02d}"
    return observation_to_wire(Observation(zone, "retail_sales", period, "YTD", value, "CNY_100M"))


def events_of(plan: list[tuple[int, int, bool]]) -> list[Any]:
    """(zone index, figures, keyed) per message: an envelope of that many figures (one: a bare
    figure), under its zone's key or none; a target first."""
    out = [event(TARGETS_BY_ZONE, orjson.dumps(target_to_wire(TARGET)), None, 0)]
    for offset, (z, count, keyed) in enumerate(plan, start=1):
        records = [figure(ZONES[z], 1 + (offset + i) % 12, 10.0 * (i + 1)) for i in range(count)]
        value = orjson.dumps(observation_envelope(records) if count > 1 else records[0])
        out.append(event(OBSERVATIONS, value, ZONES[z].encode() if keyed else None, offset))
    return out


PLANS = st.lists(st.tuples(st.integers(0, 1), st.integers(1, 5), st.booleans()), max_size=8)


@given(PLANS)
def test_the_records_are_those_read_all_at_once(plan: list[tuple[int, int, bool]]) -> None:
    events = events_of(plan)
    batch = EventBatch(events)
    together = inputs_of(events)
    assert list(batch) == together
    assert dict(batch.counts) == {
        topic: sum(1 for i in together if i.topic == topic) for topic in {i.topic for i in together}
    }
    assert batch.zones() == {i.zone for i in together}


def test_a_keyed_figure_message_names_its_zone_without_being_read() -> None:
    unreadable = event(OBSERVATIONS, b"not json", b"jinan-hitech", 3)
    assert EventBatch([unreadable]).zones() == {"jinan-hitech"}
    assert EventBatch([event(OBSERVATIONS, b"not json", None, 3)]).zones() == {None}


@settings(max_examples=30, deadline=None)
@given(PLANS)
def test_the_roll_up_gives_the_same_result_either_way(plan: list[tuple[int, int, bool]]) -> None:
    events = events_of(plan)
    results = []
    for inputs in (EventBatch(events), inputs_of(events)):
        rollup = Rollup(load_catalogue())
        for zone in ZONES:
            rollup.load(zone, [], [], [])
        results.append(rollup.apply(inputs, NOW))
    lazy, eager = results
    assert lazy.accepted == eager.accepted
    assert lazy.batch == eager.batch
