"""The column envelope (schemas/envelope.py, wire.observation_columns): figures sent as columns
read back as exactly the records they were made from, whatever their values; a table that is
not one is refused whole, with a reason."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from parkpulse.schemas.envelope import (
    ENVELOPE_MAX,
    MAX_COLUMNS,
    column_records,
    envelope_records,
)
from parkpulse.schemas.errors import RejectedInput
from parkpulse.schemas.wire import COLUMNS_FIELD, observation_columns

NAMES = ["zone", "time_period", "obs_value", "yoy_pct", "revision", "line", "flag"]
# What JSON holds: values of several types that compare equal (0, 0.0, False), nulls, texts,
# and lists and objects a malformed record may carry in a field.
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from([0.0, -0.0, 1.0, -0.5, 1e300]),
    st.sampled_from(["", "a", "jinan-hitech", "2021-03"]),
)
VALUES = st.one_of(SCALARS, st.lists(SCALARS, max_size=2), st.dictionaries(st.just("k"), SCALARS))


@st.composite
def tables(draw: st.DrawFn) -> list[dict[str, Any]]:
    names = draw(st.lists(st.sampled_from(NAMES), min_size=1, unique=True))
    rows = draw(st.integers(0, 6))
    # Some fields repeat one value, as a zone's figures share most of theirs.
    shared = {n: draw(VALUES) for n in names if draw(st.booleans())}
    return [{n: shared[n] if n in shared else draw(VALUES) for n in names} for _ in range(rows)]


def envelope_of(records: list[dict[str, Any]]) -> bytes:
    names = list(records[0]) if records else []
    columns = {n: [r[n] for r in records] for n in names}
    return orjson.dumps(observation_columns(columns, len(records)))


@given(tables())
def test_columns_read_back_as_the_records_they_were_made_from(records: list[dict]) -> None:
    decoded = envelope_records(orjson.loads(envelope_of(records)))
    assert orjson.dumps(decoded) == orjson.dumps(records)  # values, types and field order


@given(tables())
def test_a_value_all_records_share_travels_once(records: list[dict]) -> None:
    sent = orjson.loads(envelope_of(records))[COLUMNS_FIELD] if records else {}
    lists = [name for name, value in sent.items() if type(value) is list]
    for name, value in sent.items():
        texts = {orjson.dumps(r[name]) for r in records}
        one = len(texts) == 1 and type(records[0][name]) not in (list, dict)  # those travel whole
        if one and len(records) > 1:  # a list only when it is the one kept for the count
            assert type(value) is not list or lists == [name] == list(sent)[:1]
        elif len(records) > 1:
            assert value == [r[name] for r in records]


def test_a_shared_value_is_one_object_in_every_record() -> None:
    columns = {"zone": ["jinan-hitech"] * 3, "line": [2, 3, 4]}
    message = orjson.dumps(observation_columns(columns, 3))
    assert orjson.loads(message)[COLUMNS_FIELD] == {"zone": "jinan-hitech", "line": [2, 3, 4]}
    records = column_records(orjson.loads(message)[COLUMNS_FIELD])
    assert len({id(r["zone"]) for r in records}) == 1  # hashed once, held once


def test_one_list_stays_so_the_envelope_says_how_many_figures_it_holds() -> None:
    columns = {"zone": ["jinan-hitech"] * 2, "line": [5, 5]}
    sent = observation_columns(columns, 2)[COLUMNS_FIELD]
    assert sent == {"zone": ["jinan-hitech", "jinan-hitech"], "line": 5}
    assert column_records(sent) == [{"zone": "jinan-hitech", "line": 5}] * 2


@pytest.mark.parametrize(
    ("columns", "says"),
    [
        ([], "must be an object, not list"),
        ("zone", "must be an object, not str"),
        ({"zone": ["a", "b"], "line": [1, 2, 3]}, "lists of [2, 3] values"),
        ({"zone": "a", "line": list(range(ENVELOPE_MAX + 1))}, "101 figures of 2 fields"),
        ({f"f{n}": n for n in range(MAX_COLUMNS + 1)}, f"1 figures of {MAX_COLUMNS + 1} fields"),
    ],
)
def test_a_table_that_is_not_one_or_too_big_is_refused_whole(columns: Any, says: str) -> None:
    with pytest.raises(RejectedInput) as refused:
        envelope_records({COLUMNS_FIELD: columns})
    assert refused.value.reason == "malformed" and says in refused.value.detail


def test_without_lists_a_column_envelope_holds_one_record() -> None:
    assert envelope_records({COLUMNS_FIELD: {"zone": "jinan-hitech"}}) == [{"zone": "jinan-hitech"}]
    assert envelope_records({COLUMNS_FIELD: {}}) == []
