"""Registrations: validation reasons, counting each entity once, and the figures they derive.

The pure parts (validation, the distinct-id cache) are tested directly; the integration tests run
against the real Tansu broker, Faust worker and chdb of the session ``stack``, and one against a
stack of its own that is stopped and started again on the same data.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from types import MappingProxyType
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from hypothesis import given, settings
from hypothesis import strategies as st

from parkpulse.broker import free_port
from parkpulse.schemas.catalogue import load_catalogue
from parkpulse.schemas.errors import RejectedInput
from parkpulse.schemas.registration import read_envelope, validate_records, validate_registration
from parkpulse.schemas.registration_block import id_hashes
from parkpulse.schemas.wire import batch_id_of, registration_envelope, registration_to_wire
from parkpulse.streams.registrations import (
    DistinctIds,
    Message,
    dedupe,
    derived_observations,
    read_batch,
)
from parkpulse.topics import REGISTRATIONS
from tests.chdb_http_shim import ClickHouseShim
from tests.conftest import RunningStack, start_stack, wait_until

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
CATALOGUE = load_catalogue()


def reg(rid: str = "91370100MA3C4XYZ1K", **changes: Any) -> dict[str, Any]:
    record = {
        "zone": "jinan-hitech",
        "registration_id": rid,
        "registered_at": "2021-03-04T10:11:12+08:00",
        "entity_type": "enterprise",
        "industry_code": "I65",
        "registered_capital": 500,
    }
    record.update(changes)
    return {k: v for k, v in record.items() if v is not None or k == "registered_capital"}


def rejected(raw: Any) -> RejectedInput:
    with pytest.raises(RejectedInput) as info:
        validate_registration(raw, CATALOGUE, now=NOW)
    return info.value


# -- validation ---------------------------------------------------------------------------


def test_a_valid_registration() -> None:
    r = validate_registration(reg(), CATALOGUE, now=NOW, batch_id="b1", sent_at="2026-11-21")
    assert (r.zone, r.registration_id, r.entity_type, r.industry_code) == (
        "jinan-hitech",
        "91370100MA3C4XYZ1K",
        "enterprise",
        "I65",
    )
    assert r.registered_at == "2021-03-04T10:11:12+08:00"
    assert r.month == "2021-03"
    assert r.registered_capital == 500.0
    assert (r.batch_id, r.sent_at) == ("b1", "2026-11-21")
    assert validate_registration(registration_to_wire(r), CATALOGUE, now=NOW).key == r.key


def test_the_month_is_beijings() -> None:
    # 17:00 UTC on 31 March is 01:00 on 1 April in Beijing.
    r = validate_registration(reg(registered_at="2021-03-31T17:00:00Z"), CATALOGUE, now=NOW)
    assert (r.month, r.registered_at) == ("2021-04", "2021-04-01T01:00:00+08:00")
    naive = validate_registration(reg(registered_at="2021-03-31 23:30"), CATALOGUE, now=NOW)
    assert (naive.month, naive.registered_at) == ("2021-03", "2021-03-31T23:30:00+08:00")


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"REGISTRATION_ID": "X1", "registration_id": None}, "X1"),  # names in any case
        ({"entity_type": "个体工商户"}, "individual_business"),
        ({"entity_type": "Farmers_Cooperative"}, "farmers_cooperative"),
        ({"zone": "  jinan-hitech "}, "jinan-hitech"),
        ({"industry_code": "c3971"}, "C3971"),
        ({"registered_capital": "1,200.5"}, 1200.5),
        ({"registered_capital": 2, "unit": "CNY_100M"}, 20000.0),  # 2 亿元 = 20,000 万元
        ({"registered_capital": None}, None),
    ],
)
def test_what_is_accepted_and_how_it_reads(changes: dict[str, Any], expected: Any) -> None:
    r = validate_registration(reg(**changes), CATALOGUE, now=NOW)
    assert expected in (
        r.registration_id,
        r.entity_type,
        r.zone,
        r.industry_code,
        r.registered_capital,
    )


@pytest.mark.parametrize(
    ("raw", "reason", "words"),
    [
        ([1, 2], "malformed", "mapping"),
        (reg(zone=None), "malformed", "zone is missing"),
        ({**reg(), "registration_id": "has space"}, "malformed", "registration_id"),
        (reg(registration_id="x" * 65), "malformed", "registration_id"),
        (reg(entity_type="company"), "malformed", "entity_type"),
        (reg(registered_capital=[1]), "malformed", "registered_capital"),
        (reg(registered_at=20210304), "malformed", "registered_at must be text"),
        (reg(zone="atlantis-hitech"), "unknown_zone", "atlantis-hitech"),
        (reg(registered_at="yesterday"), "bad_period", "ISO 8601"),
        (reg(registered_at="2021-02-30T10:00:00+08:00"), "bad_period", "ISO 8601"),
        (reg(registered_at="1900-01-01T00:00:00+08:00"), "bad_period", "1949"),
        (reg(registered_at="2026-11-22T12:00:00+08:00"), "future_period", "after now"),
        (reg(registered_capital=-5), "bad_value", "at least 0"),
        (reg(registered_capital="NaN"), "bad_value", "finite"),
        (reg(registered_capital="lots"), "bad_value", "not a number"),
        (reg(industry_code="Z99"), "bad_value", "GB/T 4754"),
        (reg(industry_code="I6"), "bad_value", "GB/T 4754"),
        (reg(unit="USD_100M"), "unit_mismatch", "USD_100M"),
        (reg(unit="PERSON"), "unit_mismatch", "PERSON"),
    ],
)
def test_reasons(raw: Any, reason: str, words: str) -> None:
    error = rejected(raw)
    assert error.reason == reason
    assert words in error.detail


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"registered_capital": 0},
        {"registered_capital": 12.5},
        {"registered_at": "2021-03-04T10:11:12.250+08:00"},
        {"registered_at": "2026-11-21T20:05:00+08:00"},  # five minutes of clock skew
        {"industry_code": "A"},
        {"registration_id": "ABC-123_x"},
        {"sent_at": "2026-11-21T11:59:59.5+00:00"},
    ],
)
def test_a_dict_and_any_other_mapping_read_alike(changes: dict[str, Any]) -> None:
    # A plain field of a dict is taken as it is; a copy of any other mapping is read the same way.
    raw = reg(**changes)
    plain = validate_registration(raw, CATALOGUE, now=NOW)
    other = validate_registration(MappingProxyType(raw), CATALOGUE, now=NOW)
    assert plain == other
    assert validate_records([raw], CATALOGUE, now=NOW) == ([plain], [])


@pytest.mark.parametrize("field", ["zone", "registration_id", "entity_type", "industry_code"])
def test_a_field_that_is_not_text_is_malformed_not_a_crash(field: str) -> None:
    error = rejected(reg(**{field: ["x"]}))
    assert error.reason == "malformed"
    assert f"{field} must be text, not list" in error.detail


def test_envelopes() -> None:
    records = [reg("A1"), reg("A2")]
    wire = registration_envelope(records, sent_at="2026-11-21T12:00:00+00:00")
    assert (
        wire["batch_id"] == batch_id_of(["A1", "A2"]) == registration_envelope(records)["batch_id"]
    )
    envelope = read_envelope(orjson.dumps(wire))
    assert (envelope.batch_id, envelope.sent_at, envelope.bare) == (
        wire["batch_id"],
        "2026-11-21T12:00:00+00:00",
        False,
    )
    assert envelope.records == records
    bare = read_envelope(orjson.dumps(reg("A3")))
    assert bare.bare and bare.records == [reg("A3")]
    for value, words in [
        (b"{not json", "not JSON"),
        (b"[1]", "JSON object"),
        (orjson.dumps({"batch_id": "b", "registrations": {"a": 1}}), "must be a list"),
        (orjson.dumps({"registrations": []}), "batch_id"),
    ]:
        with pytest.raises(RejectedInput, match=words) as info:
            read_envelope(value)
        assert info.value.reason == "malformed"


def test_a_batch_keeps_the_good_and_dead_letters_the_rest() -> None:
    envelope = registration_envelope([reg("B1"), reg("B2", zone="atlantis"), reg("B3")])
    messages = [
        Message(orjson.dumps(envelope), partition=1, offset=7),
        Message(orjson.dumps(reg("B4", registered_capital=-1)), partition=2, offset=9),
        Message(b"\xff garbage", partition=3, offset=11),
    ]
    batch = read_batch(messages, CATALOGUE, NOW)
    assert [r.registration_id for r in batch.registrations] == ["B1", "B3"]
    assert all(r.batch_id == envelope["batch_id"] for r in batch.registrations)
    dead = {d.reason: d for d in batch.deadletters}
    assert set(dead) == {"unknown_zone", "bad_value", "malformed"}
    assert (dead["unknown_zone"].origin, dead["unknown_zone"].line) == (
        f"batch:{envelope['batch_id']}",
        2,
    )
    assert orjson.loads(dead["unknown_zone"].raw)["registration_id"] == "B2"
    assert (dead["bad_value"].origin, dead["bad_value"].line) == (f"{REGISTRATIONS}/2@9", None)
    assert dead["malformed"].origin == f"{REGISTRATIONS}/3@11"
    assert all(d.source_topic == REGISTRATIONS for d in batch.deadletters)


def test_a_registration_must_travel_under_its_zone() -> None:
    # Partitioned by zone, a zone is counted by one worker only; a stray would be counted twice.
    envelope = registration_envelope([reg("K1"), reg("K2", zone="jining-hitech"), reg("K3")])
    batch = read_batch([Message(orjson.dumps(envelope), key=b"jinan-hitech")], CATALOGUE, NOW)
    assert [r.registration_id for r in batch.registrations] == ["K1", "K3"]
    (dead,) = batch.deadletters
    assert (dead.reason, dead.line) == ("malformed", 2)
    assert "key" in dead.detail and orjson.loads(dead.raw)["registration_id"] == "K2"


# -- counting each registration once --------------------------------------------------------


def registrations(*specs: tuple[str, str, str]) -> list[Any]:
    """(id, month, entity type) → validated registrations of jinan-hitech."""
    return [
        validate_registration(
            reg(rid, registered_at=f"{month}-10T09:00:00+08:00", entity_type=kind),
            CATALOGUE,
            now=NOW,
        )
        for rid, month, kind in specs
    ]


def count(batches: list[list[Any]], ids: DistinctIds | None = None) -> DistinctIds:
    """Run batches through the cache as the agent does (load, dedupe, add)."""
    ids = ids or DistinctIds()
    for batch in batches:
        for zone in ids.missing({r.zone for r in batch}):
            ids.load(zone, [], [], [])
        for zone, (hashes, new) in dedupe(batch, ids).zones.items():
            ids.add(zone, hashes, new)
    return ids


def test_duplicates_and_replays_count_once() -> None:
    first = registrations(
        ("R1", "2021-03", "enterprise"),
        ("R2", "2021-03", "individual_business"),
        ("R1", "2021-03", "enterprise"),  # sent twice in one batch
        ("R3", "2021-04", "farmers_cooperative"),
    )
    ids = count([first, first, registrations(("R2", "2021-03", "individual_business"))])
    assert ids.counts(("jinan-hitech", "2021-03")) == (2, 1)
    assert ids.counts(("jinan-hitech", "2021-04")) == (1, 0)
    assert len(ids) == 3


def test_an_id_sent_again_with_another_month_counts_once_where_first_seen() -> None:
    # MOVE-1 and MOVE-2 in March, then MOVE-1 again dated April: two entities, both in March.
    ids = count(
        [
            registrations(("MOVE-1", "2021-03", "enterprise"), ("MOVE-2", "2021-03", "enterprise")),
            registrations(("MOVE-1", "2021-04", "individual_business")),
        ]
    )
    assert ids.counts(("jinan-hitech", "2021-03")) == (2, 2)
    assert ids.counts(("jinan-hitech", "2021-04")) == (0, 0)
    assert len(ids) == 2
    # In one batch too: the first copy in the batch is the one kept.
    batch = registrations(("MOVE-3", "2021-05", "enterprise"), ("MOVE-3", "2021-04", "enterprise"))
    counted = dedupe(batch, ids)
    assert [(r.registration_id, r.month) for r in counted.new] == [("MOVE-3", "2021-05")]


@settings(max_examples=60, deadline=None)
@given(
    sent=st.lists(
        st.tuples(
            st.sampled_from(["A", "B", "C", "D", "E"]),
            st.sampled_from(["2021-03", "2021-04", "2021-05"]),
            st.sampled_from(["enterprise", "individual_business"]),
        ),
        max_size=20,
    ),
    cuts=st.lists(st.integers(0, 20), max_size=4),
    restart_at=st.integers(0, 5),
)
def test_each_id_counts_once_in_the_month_of_its_first_copy(
    sent: list[tuple[str, str, str]], cuts: list[int], restart_at: int
) -> None:
    # However the stream is cut into batches, and whether the worker restarts (reloading what
    # it wrote) in between, an id counts once, in the month and type of its first copy.
    first: dict[str, tuple[str, str]] = {}
    for rid, month, kind in sent:
        first.setdefault(rid, (month, kind))
    bounds = sorted({0, len(sent), *(min(c, len(sent)) for c in cuts)})
    batches = [registrations(*sent[a:b]) for a, b in pairwise(bounds)]
    ids = DistinctIds()
    written: list[Any] = []
    for i, batch in enumerate(batches):
        if i == restart_at:  # a restart: the cache is rebuilt from the table
            ids = DistinctIds()
            ids.load(
                "jinan-hitech",
                [r.registration_id for r in written],
                [r.month for r in written],
                [r.entity_type for r in written],
            )
        for zone in ids.missing({r.zone for r in batch}):
            ids.load(zone, [], [], [])
        counted = dedupe(batch, ids)
        written += counted.new
        for zone, (hashes, new) in counted.zones.items():
            ids.add(zone, hashes, new)
    for zone in ids.missing({"jinan-hitech"}):  # nothing was sent at all
        ids.load(zone, [], [], [])
    assert sorted((r.registration_id, (r.month, r.entity_type)) for r in written) == sorted(
        first.items()
    )
    for month in ("2021-03", "2021-04", "2021-05"):
        kinds = [kind for m, kind in first.values() if m == month]
        assert ids.counts(("jinan-hitech", month)) == (len(kinds), kinds.count("enterprise"))


def test_ids_merged_into_a_zones_bulk_are_still_known(monkeypatch: pytest.MonkeyPatch) -> None:
    import parkpulse.streams.registrations as stage

    monkeypatch.setattr(stage, "RECENT_MIN", 2)  # merge after every few ids
    batches = [
        registrations(*((f"B{b}-{i}", "2021-03", "enterprise") for i in range(3))) for b in range(6)
    ]
    ids = count(batches)
    assert len(ids) == 18 and ids.counts(("jinan-hitech", "2021-03")) == (18, 18)
    resent = registrations(*((f"B{b}-1", "2021-07", "enterprise") for b in range(6)))
    assert not dedupe(resent, ids).new  # found in the bulk and in the recent run alike
    assert [
        r.registration_id for r in dedupe(registrations(("B9", "2021-07", "enterprise")), ids).new
    ] == ["B9"]


def test_what_the_cache_holds_is_what_was_written() -> None:
    batch = registrations(("N1", "2021-05", "enterprise"), ("N1", "2021-05", "enterprise"))
    ids = count([])
    for zone in ids.missing({"jinan-hitech"}):
        ids.load(zone, [], [], [])
    counted = dedupe(batch, ids)
    assert [r.registration_id for r in counted.new] == ["N1"]  # written once
    for zone, (hashes, new) in counted.zones.items():
        ids.add(zone, hashes, new)
    assert not dedupe(batch, ids).new  # a replay writes nothing
    # Nor does the same id dated another month.
    assert not dedupe(registrations(("N1", "2021-09", "enterprise")), ids).new


def test_a_restart_reloads_from_the_durable_table() -> None:
    written = registrations(("S1", "2021-06", "enterprise"), ("S2", "2021-06", "enterprise"))
    restarted = DistinctIds()
    # What ClickHouse returns for the zone: ids, months and types, duplicates possible.
    restarted.load(
        "jinan-hitech",
        ["S1", "S2", "S1", "S3"],
        ["2021-06", "2021-06", "2021-06", "2021-05"],
        ["enterprise", "enterprise", "enterprise", "individual_business"],
    )
    assert restarted.counts(("jinan-hitech", "2021-06")) == (2, 2)
    assert restarted.counts(("jinan-hitech", "2021-05")) == (1, 0)
    count([written, registrations(("S3", "2021-06", "enterprise"))], restarted)  # replayed
    assert restarted.counts(("jinan-hitech", "2021-06")) == (2, 2)
    assert restarted.counts(("jinan-hitech", "2021-05")) == (1, 0)


def test_memory_is_bounded_by_evicting_least_recently_used_zones() -> None:
    ids = DistinctIds(max_ids=3)
    zones = ["jinan-hitech", "jining-hitech", "xiamen-torch-hitech", "z4"]
    for zone in zones:
        ids.load(zone, [f"{zone}-a", f"{zone}-b"], ["2021-01"] * 2, ["enterprise"] * 2)
        ids.evict(keep={zone})
    assert len(ids) <= 3
    assert ids.missing(zones) == sorted(zones[:-1])


def test_hashes_are_sorted_and_fresh_masks_first_copies() -> None:
    ids = DistinctIds()
    ids.load("z", ["a", "b"], ["m", "m"], ["enterprise", "enterprise"])
    hashes = id_hashes(["c", "a", "c", "d"])
    assert ids.fresh("z", hashes).tolist() == [True, False, False, True]


def test_derived_figures_are_monthly_counts_whose_revision_is_the_count() -> None:
    total, enterprises = derived_observations("jinan-hitech", "2021-03", 41, 12)
    assert (total.indicator, total.value, total.revision) == ("new_market_entities", 41.0, 41)
    assert (enterprises.indicator, enterprises.value) == ("new_enterprises", 12.0)
    assert {o.basis for o in (total, enterprises)} == {"MONTH"}
    assert {o.source for o in (total, enterprises)} == {"registrations"}
    assert [o.indicator for o in derived_observations("z", "2021-03", 5, 0)] == [
        "new_market_entities"
    ]


# -- integration: the real broker, worker and ClickHouse -------------------------------------


def send(broker_port: int, messages: list[tuple[str, bytes]]) -> None:
    async def run() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=f"127.0.0.1:{broker_port}")
        await producer.start()
        try:
            for key, value in messages:
                await producer.send_and_wait(REGISTRATIONS, value, key=key.encode())
        finally:
            await producer.stop()

    asyncio.run(run())


def envelope_bytes(records: list[dict[str, Any]]) -> bytes:
    sent = datetime.now(UTC).isoformat()
    return orjson.dumps(registration_envelope(records, sent_at=sent))


def counts_of(stack: RunningStack, zone: str) -> dict[tuple[str, str], int]:
    rows = stack.get_json(f"/api/registrations?zone={zone}")
    return {(r["month"], r["entity_type"]): r["registrations"] for r in rows}


def statuses(stack: RunningStack, zone: str, plan: str) -> dict[str, dict[str, Any]]:
    rows = stack.get_json(f"/api/status/history?zone={zone}")
    return {r["period"]: r for r in rows if r["plan"] == plan}


@pytest.mark.integration
def test_registrations_are_counted_once_and_reach_indicator_status(
    stack: RunningStack, tmp_path: Path
) -> None:
    zone = "xiamen-torch-hitech"
    targets = tmp_path / "targets.csv"
    targets.write_text(
        "plan,zone,indicator,kind,base_year,base_value,target_year,target_value,"
        "annual_growth_pct,binding,unit,source\n"
        f"reg-plan,{zone},new_enterprises,level,2020,20,2025,40,,false,COUNT,test\n",
        encoding="utf-8",
    )
    assert stack.cli("targets", str(targets)).returncode == 0

    def r(rid: str, month: str, kind: str = "enterprise") -> dict[str, Any]:
        return reg(
            rid, zone=zone, registered_at=f"2021-{month}-05T10:00:00+08:00", entity_type=kind
        )

    january = [r("XM-J1", "01"), r("XM-J2", "01"), r("XM-J3", "01", "individual_business")]
    february = [r("XM-F1", "02"), r("XM-F2", "02", "farmers_cooperative")]
    march = [r("XM-M1", "03"), r("XM-M2", "03"), r("XM-M3", "03")]
    batches = [envelope_bytes(january), envelope_bytes(february), envelope_bytes(march)]
    send(
        stack.broker_port,
        [(zone, b) for b in batches]
        + [(zone, batches[0])]  # the same envelope again
        + [(zone, orjson.dumps(r("XM-M1", "03")))]  # a bare duplicate
        + [(zone, envelope_bytes([r("XM-F1", "02"), r("XM-M4", "03")]))],  # overlapping batch
    )
    expected = {
        ("2021-01", "enterprise"): 2,
        ("2021-01", "individual_business"): 1,
        ("2021-02", "enterprise"): 1,
        ("2021-02", "farmers_cooperative"): 1,
        ("2021-03", "enterprise"): 4,
    }
    wait_until(lambda: counts_of(stack, zone) == expected, timeout=30)

    # new_enterprises by month 2, 1, 4 → YTD 2, 3, 7 against a level target of 20 → 40 by 2025.
    def ytd_actuals() -> dict[str, float] | None:
        rows = statuses(stack, zone, "reg-plan")
        actual = {period: row["actual"] for period, row in rows.items()}
        return actual if actual == {"2021-01": 2, "2021-02": 3, "2021-03": 7} else None

    wait_until(ytd_actuals, timeout=30)
    # The bureau's official figure wins over the registrations-derived one.
    feed = tmp_path / "feed.csv"
    feed.write_text(
        "STRUCTURE,STRUCTURE_ID,ACTION,ZONE,INDICATOR,TIME_PERIOD,BASIS,OBS_VALUE,UNIT_MEASURE,"
        "YOY_PCT,OBS_STATUS,REVISION,PUBLISHED_AT\n"
        f"dataflow,PARKPULSE:ZONE_MONTHLY(1.0),I,{zone},new_enterprises,2021-03,YTD,9,COUNT,,A,0,"
        "2021-04-15T09:00:00+08:00\n",
        encoding="utf-8",
    )
    assert stack.cli("produce", str(feed)).returncode == 0
    wait_until(lambda: statuses(stack, zone, "reg-plan")["2021-03"]["actual"] == 9, timeout=30)
    assert statuses(stack, zone, "reg-plan")["2021-02"]["actual"] == 3

    # A bad registration reaches the dead-letter table with its reason and place.
    send(
        stack.broker_port,
        [(zone, envelope_bytes([r("XM-Z1", "03"), reg("XM-Z2", zone="nowhere")]))],
    )

    def dead() -> list[dict[str, Any]]:
        rows = orjson.loads(stack.cli("deadletter", "--format", "json").stdout)["rows"]
        return [r for r in rows if '"XM-Z2"' in r["raw"]]

    (row,) = wait_until(dead, timeout=30)
    assert (row["reason"], row["source_topic"], row["line"]) == ("unknown_zone", REGISTRATIONS, 2)
    assert row["origin"].startswith("batch:")


@pytest.mark.integration
def test_counts_survive_a_restart_and_a_replay(tmp_path: Path) -> None:
    """Stop the worker, start it again on the same data (the broker forgets its topics), and
    re-send everything: the counts in ClickHouse and the derived figures do not move."""
    zone = "jining-hitech"
    records = [
        reg(f"JN-{i}", zone=zone, registered_at="2021-07-01T08:00:00+08:00") for i in range(30)
    ]
    messages = [(zone, envelope_bytes(records[:20])), (zone, envelope_bytes(records[10:]))]
    first = start_stack(tmp_path / "data", "--no-demo", "--no-scoreboard")
    try:
        send(first.broker_port, messages)
        wait_until(lambda: counts_of(first, zone) == {("2021-07", "enterprise"): 30}, timeout=30)
        derived = wait_until(lambda: observations(first, zone), timeout=30)
    finally:
        assert first.stop() == 0
    again = start_stack(tmp_path / "data", "--no-demo", "--no-scoreboard")
    try:
        send(again.broker_port, messages + [(zone, envelope_bytes(records[5:8]))])
        wait_until(lambda: again.metric("parkpulse_events_total", topic=REGISTRATIONS,
                                        direction="in") >= 3)  # fmt: skip
        time.sleep(3)  # a derived figure goes out within EMIT_EVERY (2 s)
        assert counts_of(again, zone) == {("2021-07", "enterprise"): 30}
        assert (
            observations(again, zone)
            == derived
            == {
                ("new_market_entities", "2021-07"): (30.0, 30),
                ("new_enterprises", "2021-07"): (30.0, 30),
            }
        )
        rows = again.get_json("/api/registrations/stats")
        assert rows["registrations"] == 30
    finally:
        assert again.stop() == 0


def observations(stack: RunningStack, zone: str) -> dict[tuple[str, str], tuple[float, int]]:
    """The registrations-derived figures in ClickHouse: (indicator, period) → (value, revision)."""
    rows = stack.get_json(f"/api/registrations/figures?zone={zone}")
    return {(r["indicator"], r["period"]): (r["value"], r["revision"]) for r in rows}


def resend_with_another_month(stack: RunningStack, zone: str) -> None:
    """MOVE-1 and MOVE-2 dated March, then MOVE-1 again dated April (another type too): two
    entities, both in March; a later sentinel in May shows the April copy has been processed."""

    def r(rid: str, month: str, kind: str = "enterprise") -> dict[str, Any]:
        return reg(
            rid, zone=zone, registered_at=f"2017-{month}-05T10:00:00+08:00", entity_type=kind
        )

    send(
        stack.broker_port,
        [
            (zone, envelope_bytes([r("MOVE-1", "03"), r("MOVE-2", "03")])),
            (zone, envelope_bytes([r("MOVE-1", "04", "individual_business")])),
            (zone, envelope_bytes([r("MOVE-3", "05")])),
        ],
    )
    expected = {("2017-03", "enterprise"): 2, ("2017-05", "enterprise"): 1}
    wait_until(lambda: counts_of(stack, zone).get(("2017-05", "enterprise")) == 1, timeout=60)
    counts = {k: n for k, n in counts_of(stack, zone).items() if k[0].startswith("2017")}
    assert counts == expected  # today's code: March 2, April 1 — three entities for two ids
    # The derived figures (what the plan engine sees) count March twice and April not at all.
    time.sleep(3)  # a derived figure goes out within EMIT_EVERY (2 s)
    figures = {k: v[0] for k, v in observations(stack, zone).items() if k[1].startswith("2017")}
    assert figures == {
        ("new_market_entities", "2017-03"): 2.0,
        ("new_enterprises", "2017-03"): 2.0,
        ("new_market_entities", "2017-05"): 1.0,
        ("new_enterprises", "2017-05"): 1.0,
    }


@pytest.mark.integration
def test_an_id_resent_with_another_month_counts_once_in_its_first_month(
    stack: RunningStack,
) -> None:
    resend_with_another_month(stack, "wuxi-hitech")


@pytest.mark.integration
def test_an_id_resent_with_another_month_counts_once_on_a_server(tmp_path: Path) -> None:
    """The same against a ClickHouse server (chdb_http_shim), whose table keeps the first copy."""
    shim = ClickHouseShim(free_port(), tmp_path / "server", tmp_path / "shim.log").start()
    try:
        server = start_stack(
            tmp_path / "data", "--no-demo", "--no-scoreboard", "--clickhouse", shim.url()
        )
        try:
            resend_with_another_month(server, "yantai-hitech")
        finally:
            assert server.stop() == 0
        rows = shim.query(
            "SELECT month, entity_type FROM parkpulse.registrations FINAL"
            " WHERE registration_id = 'MOVE-1'"
        )
        assert rows == [["2017-03", "enterprise"]]
    finally:
        shim.stop()
