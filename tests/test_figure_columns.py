"""A column envelope's figures read as columns (schemas/figure_columns.py) are exactly what
``validate_observation`` makes of its records one by one, or nothing (the worker then reads the
records one by one, each reject with its own reason)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from parkpulse.schemas.catalogue import load_catalogue
from parkpulse.schemas.envelope import ColumnEnvelope
from parkpulse.schemas.errors import RejectedInput
from parkpulse.schemas.figure_columns import read_figure_columns
from parkpulse.schemas.records import Observation
from parkpulse.schemas.validation import ObservationReader
from parkpulse.schemas.wire import COLUMNS_FIELD, observation_columns
from parkpulse.streams import rollup as rollup_module
from parkpulse.streams.rollup import Rollup, read_message
from parkpulse.topics import OBSERVATIONS
from tests.test_rollup import TARGET, as_input

CATALOGUE = load_catalogue()
NOW = datetime(2026, 11, 21, tzinfo=UTC)
PLAIN = {
    "structure": "dataflow",
    "action": "I",
    "zone": "jinan-hitech",
    "indicator": "import_export_total",
    "time_period": "2021-03",
    "basis": "YTD",
    "obs_value": 180.2,
    "unit_measure": "CNY_100M",
    "yoy_pct": 35.1,
    "obs_status": "A",
    "revision": 0,
    "published_at": "2021-04-15T09:00:00+08:00",
    "source": "bureau",
    "origin": "feed.csv",
}
# Per field, what a producer sends and what a hostile or careless one might.
VALUES: dict[str, list[Any]] = {
    "structure": ["dataflow", None, "x" * 70_000, 3],
    "action": ["I", "i", "R", "M", "D", "", None, "x", 1],
    "zone": ["jinan-hitech", "jining-hitech", " jinan-hitech", "济南高新区", "nowhere", None, 5],
    "indicator": ["import_export_total", "gdp", "hitech_enterprises", "rd_intensity", "x", None],
    "time_period": ["2021-03", "2021-3", "2021-12", "2099-01", "2026-11", "2026-12", 2021, None],
    "basis": ["YTD", "ytd", "MONTH", "X", None],
    "obs_value": [180.2, "180.2", 12, 12.0, 1.5, -1.0, 0.0, -0.0, None, "", "1e3", True, 1e309],
    "unit_measure": ["CNY_100M", "CNY_10K", "亿元", "COUNT", "PCT", "", None, 3],
    "yoy_pct": [35.1, None, -100.0, -101.0, "3", 3, float("nan")],
    "obs_status": ["A", "a", "P", "X", None, 1],
    "revision": [0, 1, "2", -1, "x", None, True, 2**63, "01"],
    "published_at": ["2021-04-15T09:00:00+08:00", "", None, "bad", "2021-04-15"],
    "source": ["bureau", "BUREAU", "registrations", "x", None],
    "origin": ["feed.csv"],
    "line": [2, 3],
}


# Values the plain path takes, once met.
GOOD: dict[str, list[Any]] = {
    "time_period": ["2021-03", "2021-04", "2020-12"],
    "obs_value": [180.2, 12.0, 0.5, 1e6, None],
    "yoy_pct": [35.1, -3.0, None],
    "revision": [0, 1, 7],
    "line": [2, 3, 4],
    "origin": ["feed.csv"],
}


@st.composite
def envelopes(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[bool]]:
    """Records of one envelope (the same names, some upper-case, some absent) and which of them
    the reader meets first, one by one. One field (sometimes two) takes any of its values, the
    others plain ones: an odd value then decides whether the plain path is taken."""
    names = [n for n in VALUES if n in ("zone", "indicator") or draw(st.integers(0, 7))]
    spelled = {n: n.upper() if draw(st.booleans()) else n for n in names}
    odd = set(draw(st.lists(st.sampled_from(names), min_size=1, max_size=2)))

    def value(name: str) -> Any:
        return draw(
            st.sampled_from(VALUES[name] if name in odd else GOOD.get(name) or [PLAIN[name]])
        )

    shared = {n: value(n) for n in names if draw(st.booleans())}
    count = draw(st.integers(1, 6))
    records = [
        {spelled[n]: shared[n] if n in shared else value(n) for n in names} for _ in range(count)
    ]
    met = draw(st.lists(st.integers(0, 5).map(bool), min_size=count, max_size=count))
    return records, met


def _one_by_one(reader: ObservationReader, record: dict[str, Any]) -> Observation | str:
    try:
        return reader.read(record, NOW)
    except RejectedInput as exc:
        return exc.reason


def _columns(records: list[dict[str, Any]]) -> dict[str, Any]:
    columns = {n: [r[n] for r in records] for n in records[0]}
    return observation_columns(columns, len(records))[COLUMNS_FIELD]


def _json(figures: list[Any]) -> bytes:
    return orjson.dumps([f.to_dict() if isinstance(f, Observation) else f for f in figures])


def _check(records: list[dict[str, Any]], met: list[bool]) -> bool:
    """Read as columns, the records give what they give one by one (or nothing); whether they
    were read as columns."""
    reader = ObservationReader(CATALOGUE)
    for period in GOOD["time_period"]:  # the plain values met, so an odd one decides
        reader.read({**PLAIN, "time_period": period}, NOW)
    for record, first in zip(records, met, strict=True):
        if first:
            _one_by_one(reader, record)
    columns = _columns(records)
    envelope = ColumnEnvelope.of(columns)
    assert orjson.dumps(envelope.records()) == orjson.dumps(records)
    read = read_figure_columns(reader, columns, envelope.count, NOW)
    expected = [_one_by_one(reader, record) for record in records]
    if read is not None:  # values, their types (-0.0, 12 against 12.0) and every field
        assert _json(read) == _json(expected)
    return read is not None


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(envelopes())
def test_read_as_columns_or_not_at_all(drawn: tuple[list[dict[str, Any]], list[bool]]) -> None:
    event("read as columns" if _check(*drawn) else "record by record")


@pytest.mark.parametrize(
    ("name", "odd"), [(name, value) for name, values in VALUES.items() for value in values]
)
@pytest.mark.parametrize("form", ["alone", "one of two", "shared by two"])
def test_each_value_on_its_own(name: str, odd: Any, form: str) -> None:
    plain = {**PLAIN, "line": 2}
    records = {
        "alone": [{**plain, name: odd}],
        "one of two": [plain, {**plain, name: odd, "line": 3}],
        "shared by two": [{**plain, name: odd}, {**plain, name: odd, "line": 3}],
    }[form]
    _check(records, [True] * len(records))


def test_a_plain_envelope_met_before_is_read_as_columns() -> None:
    records = [
        {**PLAIN, "time_period": f"2021-{m:02d}", "obs_value": 10.0 * m, "line": m + 1}
        for m in range(1, 13)
    ]
    reader = ObservationReader(CATALOGUE)
    columns = _columns(records)
    assert type(columns["zone"]) is str and type(columns["obs_value"]) is list
    assert read_figure_columns(reader, columns, 12, NOW) is None  # nothing met yet
    expected = [reader.read(record, NOW) for record in records]
    read = read_figure_columns(reader, columns, 12, NOW)
    assert read is not None and _json(read) == _json(expected)
    assert [o.value for o in read] == [10.0 * m for m in range(1, 13)]
    # A month after ``now``: its figure is a reject, so none is read as columns.
    late = [*records, {**PLAIN, "time_period": "2026-12", "line": 14}]
    assert _one_by_one(reader, late[-1]) == "future_period"  # (its period is met, though)
    assert read_figure_columns(reader, _columns(late), 13, NOW) is None


def test_the_roll_up_gives_the_same_rows_either_way(monkeypatch: pytest.MonkeyPatch) -> None:
    # A reader that has met nothing: the first time record by record, then as columns.
    monkeypatch.delitem(CATALOGUE.derived, "observations", raising=False)
    records = [
        {**PLAIN, "time_period": f"2021-{m:02d}", "obs_value": 15.0 * m, "line": m + 1}
        for m in range(1, 13)
    ]
    message = orjson.dumps({COLUMNS_FIELD: _columns(records)})
    taken: list[bool] = []

    def spy(*args: Any) -> list[Observation] | None:
        read = read_figure_columns(*args)
        taken.append(read is not None)
        return read

    monkeypatch.setattr(rollup_module, "read_figure_columns", spy)
    target = replace(TARGET, indicator="import_export_total")  # status rows to compare
    results = []
    for offset in (1, 2):
        rollup = Rollup(CATALOGUE)
        rollup.apply([as_input(target)], NOW)
        inputs = read_message(OBSERVATIONS, "observation", message, 0, offset, b"jinan-hitech")
        results.append(rollup.apply(inputs, NOW))
    assert taken == [False, True]
    by_records, by_columns = results
    assert by_columns.accepted == by_records.accepted == 12
    assert _json(by_columns.batch.observations) == _json(by_records.batch.observations)
    assert by_columns.statuses and by_columns.statuses == by_records.statuses
    assert not by_columns.deadletters


def test_an_empty_column_envelope_holds_no_figure() -> None:
    message = orjson.dumps({COLUMNS_FIELD: {}})
    assert read_message(OBSERVATIONS, "observation", message, 0, 1, b"jinan-hitech") == []
    assert ColumnEnvelope.of({}).records() == []


def test_a_refused_figure_of_a_column_envelope_is_dead_lettered() -> None:
    # ClickHouse refused one figure: the stage applies its input again carrying the refusal
    # (streams/refused_inputs.py), which wins over reading the envelope as columns.
    records = [
        {**PLAIN, "time_period": f"2019-{m:02d}", "obs_value": 3.0 * m, "line": m + 1}
        for m in range(1, 7)
    ]
    message = orjson.dumps({COLUMNS_FIELD: _columns(records)})
    inputs = read_message(OBSERVATIONS, "observation", message, 0, 9, b"jinan-hitech")
    assert len(Rollup(CATALOGUE).apply(inputs, NOW).batch.observations) == 6
    refused = RejectedInput("clickhouse_rejected", "a CHECK constraint")
    again = Rollup(CATALOGUE).apply([replace(inputs[3], error=refused)], NOW)
    assert not again.batch.observations
    assert [(d.reason, d.origin, d.line) for d in again.deadletters] == [
        ("clickhouse_rejected", "feed.csv", 5)
    ]
    assert orjson.loads(again.deadletters[0].raw) == records[3]
