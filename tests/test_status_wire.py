"""The status topic's message value: every field of the status row in order, then the flag."""

from __future__ import annotations

import math
from dataclasses import fields

import orjson
from hypothesis import given
from hypothesis import strategies as st

from parkpulse.schemas.records import STATUSES, IndicatorStatus
from parkpulse.schemas.wire import status_wire

texts = st.text(max_size=12)
numbers = st.none() | st.floats(allow_nan=False, allow_infinity=False)
rows = st.builds(
    IndicatorStatus,
    zone=texts,
    indicator=texts,
    plan=texts,
    period=texts,
    kind=texts,
    status=st.sampled_from(STATUSES),
    actual=numbers,
    expected=numbers,
    annual_target=numbers,
    attainment=numbers,
    gap_pp=numbers,
    projected_year_end=numbers,
    required_growth_pct=numbers,
    seasonal_source=st.none() | texts,
    binding=st.booleans(),
    best_rest_growth_pct=numbers,
    out_of_reach=st.none() | st.booleans(),
    suspect=st.none() | texts,
)


@given(rows, st.booleans())
def test_a_status_message_is_the_row_then_whether_it_was_removed(
    row: IndicatorStatus, deleted: bool
) -> None:
    assert status_wire(row, deleted) == orjson.dumps({**row.to_dict(), "deleted": deleted})


def test_every_field_of_the_row_travels() -> None:
    row = IndicatorStatus("z", "i", "p", "2021-03", "level", STATUSES[0], actual=math.pi)
    assert list(orjson.loads(status_wire(row))) == [f.name for f in fields(row)] + ["deleted"]
