"""The envelope-wide fast path of registration validation (``plain_records``, issue 14).

It must give exactly what the record-by-record validator gives, or step aside (None) so that
validator reads the envelope and dead-letters each reject with its own reason and line.
"""

from __future__ import annotations

import math
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parkpulse.producers import simulate as sim
from parkpulse.schemas.catalogue import load_catalogue
from parkpulse.schemas.registration import plain_records, validate_records
from parkpulse.schemas.wire import registration_envelope
from parkpulse.streams.registrations import DistinctIds, Message, dedupe, read_batch

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
CATALOGUE = load_catalogue()
ZONE = "jinan-hitech"


def reg(rid: str = "91370100MA3C4XYZ1K", **changes: Any) -> dict[str, Any]:
    record = {
        "zone": ZONE,
        "registration_id": rid,
        "registered_at": "2021-03-04T10:11:12+08:00",
        "entity_type": "enterprise",
        "industry_code": "I65",
        "registered_capital": 500,
    }
    return record | changes


def test_plain_records_read_as_the_validator_reads_them() -> None:
    records = [
        reg("P1"),
        reg("P2", registered_capital=None, entity_type="individual_business"),
        reg("P3", registered_capital=12.5, registered_at="2020-02-29T23:59:59+08:00"),
        reg("P4", registered_capital=0, industry_code="A"),
    ]
    plain = plain_records(records, CATALOGUE, now=NOW, batch_id="b", sent_at="s", key=ZONE)
    valid, rejected = validate_records(records, CATALOGUE, now=NOW, batch_id="b", sent_at="s")
    assert plain is not None and rejected == [] and list(plain) == valid
    assert [r.registered_capital for r in valid] == [500.0, None, 12.5, 0.0]
    empty = plain_records([], CATALOGUE, now=NOW)
    assert empty is not None and len(empty) == 0


@pytest.mark.parametrize(
    "odd",
    [
        reg(zone="atlantis-hitech"),
        reg(zone=" jinan-hitech"),
        reg(registration_id="has space"),
        reg(registration_id=""),
        reg(registration_id="x" * 65),
        reg(registration_id=12),
        reg(registration_id="ID-1"),  # valid, but checked on its own
        reg(registered_at="2021-02-29T10:00:00+08:00"),  # no such day
        reg(registered_at="2021-04-31T10:00:00+08:00"),
        reg(registered_at="2021-03-04T24:00:00+08:00"),
        reg(registered_at="2021-03-04T10:11:12Z"),
        reg(registered_at="1948-12-31T23:59:59+08:00"),
        reg(registered_at="2026-11-21T20:11:00+08:00"),  # after now + clock skew
        reg(entity_type="Enterprise"),
        reg(entity_type="企业"),
        reg(industry_code="c3971"),
        reg(industry_code="Z99"),
        reg(registered_capital=-1),
        reg(registered_capital=math.nan),
        reg(registered_capital=math.inf),
        reg(registered_capital="12"),
        reg(registered_capital=True),
        reg(registered_capital=2**60),
        reg(unit="CNY_100M"),
        reg(sent_at="2026-11-21T11:00:00+00:00"),
        reg(REGISTRATION_ID="X"),
        {k: v for k, v in reg().items() if k != "registered_capital"},
        {k: v for k, v in reg().items() if k != "zone"},
        # six names, as many as a plain record's, but one of them another
        {**{k: v for k, v in reg().items() if k != "registered_capital"}, "unit": "CNY_10K"},
        [1, 2],
    ],
)
def test_one_record_that_is_not_plain_sends_the_envelope_to_the_validator(odd: Any) -> None:
    assert plain_records([reg("P1"), odd], CATALOGUE, now=NOW) is None


@pytest.mark.parametrize(
    ("capitals", "plain"),
    [
        ([1.5, None, 0.0, -0.0], True),
        ([1.5, -2.5], False),
        ([math.nan, 1.5], False),
        ([1.5, math.nan], False),
        ([1.5, math.inf], False),
        ([1e308, 1e308], False),  # each finite, their sum not: read one by one, both valid
    ],
)
def test_amounts_without_ints_are_checked_together(capitals: list[Any], plain: bool) -> None:
    records = [reg(f"C{i}", registered_capital=c) for i, c in enumerate(capitals)]
    valid, _ = validate_records(records, CATALOGUE, now=NOW)
    fast = plain_records(records, CATALOGUE, now=NOW)
    assert (fast is not None) == plain
    assert fast is None or list(fast) == valid
    if capitals == [1e308, 1e308]:
        assert len(valid) == 2


def test_a_stray_under_another_zones_key_is_not_plain() -> None:
    records = [reg("K1"), reg("K2", zone="jining-hitech")]
    assert plain_records(records, CATALOGUE, now=NOW, key=ZONE) is None
    assert plain_records(records, CATALOGUE, now=NOW) is not None  # no key: no stray


def test_the_simulated_stream_takes_the_fast_path() -> None:
    # What the bench and `simulate` send must not fall back record by record (issue 14).
    stream = sim.RegistrationStream(sim.sim_zones(8), seed=sim.SEED)
    catalogue = load_catalogue()
    known = set(catalogue.zones)
    envelopes = [
        (zone, records)
        for zone, records in sim.envelopes(stream(0, 2_000), batch_size=50)
        if zone in known
    ]
    for zone, records in envelopes:
        plain = plain_records(records, catalogue, now=datetime.now(UTC), key=zone)
        assert plain is not None and len(plain) == len(records)


VALUES: dict[str, list[Any]] = {
    "zone": [ZONE, ZONE, "jining-hitech", " jinan-hitech", "atlantis", 1, None],
    "registration_id": ["A1", "91370100MA3C4XYZ1K", "ab-1", "", "x" * 64, "x" * 65, 12, "é1"],
    "registered_at": [
        "2021-03-04T10:11:12+08:00",
        "2021-03-04T10:11:12+08:00",
        "2020-02-29T10:00:00+08:00",
        "2021-02-29T10:00:00+08:00",
        "2021-04-30T23:59:59+08:00",
        "2021-04-31T00:00:00+08:00",
        "2021-03-04T24:00:00+08:00",
        "2021-03-04T10:11:12Z",
        "1949-01-01T00:00:00+08:00",
        "1948-12-31T23:59:59+08:00",
        "2026-11-21T20:05:00+08:00",
        "2026-11-21T20:11:00+08:00",
        "2021-03-04T10:11:12.5+08:00",
        5,
    ],
    "entity_type": ["enterprise", "individual_business", "Enterprise", "企业", 3],
    "industry_code": ["I65", "C3971", "c3971", "Z99", "A", " I65", 7],
    "registered_capital": [
        *(None, 0, 12.5, 500, -1, math.nan, math.inf, "12", True, 2**60),
        *(-2.5, -0.0, 1e308),
    ],
}
EXTRAS: list[dict[str, Any]] = [
    {},
    {},
    {},
    {"unit": "CNY_10K"},
    {"sent_at": "2026-11-21T11:00:00+00:00"},
    {"note": "x"},
]


@st.composite
def records(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 30)) == 0:
        return draw(st.sampled_from([[1], "x", None]))
    record = {name: draw(st.sampled_from(values)) for name, values in VALUES.items()}
    for name in record.copy():
        if draw(st.integers(0, 40)) == 0:
            del record[name]
    return record | draw(st.sampled_from(EXTRAS))


@settings(max_examples=300, deadline=None)
@given(st.lists(records(), max_size=6), st.sampled_from([None, ZONE]))
def test_the_fast_path_gives_what_the_validator_gives_or_steps_aside(
    envelope: list[Any], key: str | None
) -> None:
    plain = plain_records(envelope, CATALOGUE, now=NOW, batch_id="b", sent_at="s", key=key)
    valid, rejected = validate_records(envelope, CATALOGUE, now=NOW, batch_id="b", sent_at="s")
    if plain is not None:
        assert rejected == [] and list(plain) == valid
        assert key is None or {r.zone for r in plain} <= {key}
    message = (
        orjson.dumps(registration_envelope(envelope))
        if all(isinstance(r, dict) and isinstance(r.get("registration_id"), str) for r in envelope)
        else None
    )
    if message is not None:  # through read_batch: every record counted or dead-lettered once
        key_bytes = key.encode() if key else None
        batch = read_batch([Message(message, key=key_bytes)], CATALOGUE, NOW)
        assert len(batch.registrations) + len(batch.deadletters) == len(envelope)
        lines = [d.line for d in batch.deadletters]
        assert len(set(lines)) == len(lines)


ZONES3 = ["jinan-hitech", "jining-hitech", "xiamen-torch-hitech"]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(ZONES3),
            st.sampled_from(["A", "B", "C", "D"]),
            st.sampled_from(["2021-03", "2021-04"]),
            st.sampled_from(["enterprise", "individual_business"]),
        ),
        max_size=25,
    ),
    st.lists(st.tuples(st.sampled_from(ZONES3), st.sampled_from(["A", "B"])), max_size=4),
)
def test_dedupe_of_interleaved_zones_keeps_each_first_copy_in_order(
    sent: list[tuple[str, str, str, str]], held: list[tuple[str, str]]
) -> None:
    rows = [
        reg(rid, zone=zone, registered_at=f"{month}-10T09:00:00+08:00", entity_type=kind)
        for zone, rid, month, kind in sent
    ]
    batch = read_batch([Message(orjson.dumps(registration_envelope(rows)))], CATALOGUE, NOW)
    ids = DistinctIds()
    for zone in ZONES3:
        known = [rid for z, rid in held if z == zone]
        ids.load(zone, known, ["2021-01"] * len(known), ["enterprise"] * len(known))
    counted = dedupe(batch.registrations, ids)
    seen = set(held)
    expected = []
    for zone, rid, month, kind in sent:  # the reference: one step per registration
        if (zone, rid) not in seen:
            seen.add((zone, rid))
            expected.append((zone, rid, month, kind))
    assert [(r.zone, r.registration_id, r.month, r.entity_type) for r in counted.new] == expected
    for zone, (hashes, tally) in counted.zones.items():
        mine = [e for e in expected if e[0] == zone]
        assert len(hashes) == len(mine) == sum(tally.values())
        assert tally == dict(Counter((month, kind) for _, _, month, kind in mine))
