"""validate_observation is fast because it is the only implementation: what makes it so, and why
that never changes an answer.

A backfill validates every row twice (the producer on the CSV row, the worker on the wire form),
so each field is read by looking up what it holds among the values it held before, in lookups
bound to the catalogue; a value not met before runs that field's checks. The properties: the
answer of a row does not depend on what the lookups hold (a fresh catalogue answers as a warm
one), nor on how the row reaches the readers (a plain dict, by its remembered layout, or any other
mapping, through _Fields): the same Observation (same types, same float signs), or RejectedInput
with the same reason and detail. The worked examples pin what the answers are.
"""

from __future__ import annotations

import math
import random
from dataclasses import fields
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parkpulse.schemas import validation
from parkpulse.schemas.catalogue import Catalogue, load_catalogue
from parkpulse.schemas.errors import RejectedInput
from parkpulse.schemas.records import ACTIONS, BASES, OBS_STATUSES, SOURCES, Observation
from parkpulse.schemas.validation import validate_observation
from parkpulse.schemas.wire import observation_to_wire
from tests.test_validation import DESIGN_OBS, DESIGN_ROW

CATALOGUE = load_catalogue()
NOW = datetime(2021, 11, 15, 10, 0, tzinfo=UTC)
ZONES = sorted(CATALOGUE.zones)
INDICATORS = sorted(CATALOGUE.indicators.values(), key=lambda i: i.id)


def fresh() -> Catalogue:
    """The catalogue again, with lookups that have seen nothing yet."""
    return Catalogue(CATALOGUE.zones, CATALOGUE.indicators, CATALOGUE.aliases)


def wire(obs: Observation, line: int = 7) -> dict[str, Any]:
    """The message the producer sends for ``obs``, as the worker decodes it."""
    doc = {**observation_to_wire(obs), "origin": "observations-001-018.csv", "line": line}
    return orjson.loads(orjson.dumps(doc))


def exactly(obs: Observation) -> tuple[Any, ...]:
    """An observation compared to the last bit: its type, and each field's type and repr."""
    return (
        type(obs),
        *((f.name, type(v), repr(v)) for f in fields(obs) for v in [getattr(obs, f.name)]),
    )


def answer(raw: Any, catalogue: Catalogue = CATALOGUE, now: datetime = NOW) -> tuple[Any, ...]:
    """What validation makes of ``raw``: the exact observation, or the rejection."""
    try:
        obs = validate_observation(raw, catalogue, now=now)
    except RejectedInput as exc:
        return ("rejected", exc.reason, exc.detail)
    return ("accepted", exactly(obs))


def assert_one_answer(raw: Any, now: datetime = NOW) -> None:
    """The answer does not depend on the lookups' history, nor on the mapping's type."""
    cold = answer(raw, fresh(), now)
    warm = fresh()
    for taught in (wire(DESIGN_OBS), DESIGN_ROW, raw):  # what they and the row itself teach
        answer(taught, warm, now)
    assert answer(raw, warm, now) == cold
    if type(raw) is dict:
        assert answer(MappingProxyType(raw), fresh(), now) == cold


def lookups(catalogue: Catalogue) -> Any:
    return catalogue.derived["observations"]


# --- worked examples ---------------------------------------------------------------------------


def test_the_design_row_and_its_wire_form() -> None:
    catalogue = fresh()
    assert validate_observation(DESIGN_ROW, catalogue, now=NOW) == DESIGN_OBS
    assert validate_observation(DESIGN_ROW, catalogue, now=NOW) == DESIGN_OBS  # from the lookups
    # What the worker decodes: lower-case names, JSON numbers, plus the producer's origin/line.
    assert validate_observation(wire(DESIGN_OBS), catalogue, now=NOW) == DESIGN_OBS
    held = lookups(catalogue)
    assert held.zones["jinan-hitech"] == "jinan-hitech"
    assert ("2021-03", "YTD") in held.periods


def test_simulated_feed_rows() -> None:
    # Rows as `parkpulse simulate` writes them: a level, a YTD flow, a revision, a whole count.
    zone = ZONES[0]
    rows = [
        DESIGN_ROW
        | {"ZONE": zone, "INDICATOR": "hitech_enterprises", "BASIS": "LEVEL"}
        | {"OBS_VALUE": "41", "UNIT_MEASURE": "COUNT", "YOY_PCT": ""},
        DESIGN_ROW
        | {"ZONE": zone, "INDICATOR": "gdp", "TIME_PERIOD": "2016-01"}
        | {"OBS_VALUE": "12.26", "YOY_PCT": "3.6", "PUBLISHED_AT": "2016-02-15T09:00:00+08:00"},
        DESIGN_ROW | {"ACTION": "R", "OBS_STATUS": "P", "REVISION": "1"},
        DESIGN_ROW
        | {"INDICATOR": "good_air_days_ratio", "BASIS": "LEVEL"}
        | {"OBS_VALUE": "100", "UNIT_MEASURE": "PCT", "YOY_PCT": "-100"},
    ]
    expected = [
        ("hitech_enterprises", 41.0, "COUNT", None, "I", 0),
        ("gdp", 12.26, "CNY_100M", 3.6, "I", 0),
        ("import_export_total", 180.2, "CNY_100M", 35.1, "R", 1),
        ("good_air_days_ratio", 100.0, "PCT", -100.0, "I", 0),
    ]
    for row, (indicator, value, unit, yoy, action, revision) in zip(rows, expected, strict=True):
        obs = validate_observation(row, CATALOGUE, now=NOW)
        assert (obs.indicator, obs.value, obs.unit, obs.yoy_pct) == (indicator, value, unit, yoy)
        assert (obs.action, obs.revision) == (action, revision)
        assert validate_observation(wire(obs), CATALOGUE, now=NOW) == obs
        assert_one_answer(row)


@pytest.mark.parametrize(
    "changes",
    [
        {"OBS_VALUE": "1802000", "UNIT_MEASURE": "CNY_10K"},  # converted through Decimal
        {"OBS_VALUE": "1802000", "UNIT_MEASURE": "万元"},
        {"OBS_VALUE": "180.2", "UNIT_MEASURE": "亿元"},
        {"OBS_VALUE": 1802000, "UNIT_MEASURE": "cny_10k"},
        {"OBS_VALUE": "1,802,000", "UNIT_MEASURE": "CNY_10K"},
        {"OBS_VALUE": " 180.2"},  # values are stripped
        {"OBS_VALUE": "1.802e2"},
        {"OBS_VALUE": "+180.2"},
        {"ACTION": "i", "BASIS": "ytd", "OBS_STATUS": "a", "source": "BUREAU"},
        {"ACTION": "", "OBS_STATUS": "", "REVISION": ""},  # the defaults: I, A, 0
        {"ACTION": None, "OBS_STATUS": None, "REVISION": None},
        {"ZONE": " jinan-hitech"},
        {"zone": "jinan-hitech"},  # the same field twice, with the same value
        {"period": "2021-03"},  # observations.csv's name for TIME_PERIOD
        {None: ["extra", "cells"]},  # csv.DictReader's restkey
    ],
)
def test_rows_that_read_as_the_design_row(changes: dict[Any, Any]) -> None:
    row = DESIGN_ROW | changes
    assert exactly(validate_observation(row, CATALOGUE, now=NOW)) == exactly(DESIGN_OBS)
    assert_one_answer(row)


@pytest.mark.parametrize(
    ("changes", "revision"),
    [({"REVISION": "007"}, 7), ({"REVISION": "+1"}, 1), ({"REVISION": 1.0}, 1)],
)
def test_revisions_as_written(changes: dict[str, Any], revision: int) -> None:
    row = DESIGN_ROW | changes
    assert validate_observation(row, CATALOGUE, now=NOW).revision == revision
    assert_one_answer(row)


@pytest.mark.parametrize("empty", ["", None, "  "])
def test_an_empty_published_at_is_kept_empty(empty: str | None) -> None:
    row = DESIGN_ROW | {"PUBLISHED_AT": empty}
    assert validate_observation(row, CATALOGUE, now=NOW).published_at == ""
    assert_one_answer(row)


def test_growth_only_figures_and_signed_zeros() -> None:
    growth = DESIGN_ROW | {"OBS_VALUE": "", "UNIT_MEASURE": "", "YOY_PCT": "35.1"}
    obs = validate_observation(growth, CATALOGUE, now=NOW)
    assert (obs.value, obs.yoy_pct) == (None, 35.1)
    minus_zero = validate_observation(DESIGN_ROW | {"YOY_PCT": "-0"}, CATALOGUE, now=NOW)
    assert repr(minus_zero.yoy_pct) == "-0.0"
    huge = validate_observation(DESIGN_ROW | {"OBS_VALUE": 2**60}, CATALOGUE, now=NOW)
    assert huge.value == float(2**60)
    for row in (growth, DESIGN_ROW | {"YOY_PCT": "-0"}):
        assert_one_answer(row)


def test_a_delete_ignores_its_value_fields_but_not_their_length() -> None:
    row = DESIGN_ROW | {"ACTION": "D", "REVISION": "2", "OBS_VALUE": "n/a", "UNIT_MEASURE": "?"}
    obs = validate_observation(row, CATALOGUE, now=NOW)
    assert obs.is_delete and obs.value is None and obs.revision == 2
    assert validate_observation(wire(obs), CATALOGUE, now=NOW) == obs
    with pytest.raises(RejectedInput, match="OBS_VALUE is 70000 characters long"):
        validate_observation(row | {"OBS_VALUE": "x" * 70_000}, CATALOGUE, now=NOW)
    assert_one_answer(row)


@pytest.mark.parametrize(
    ("changes", "reason", "detail"),
    [
        ({"OBS_VALUE": "NaN"}, "bad_value", "OBS_VALUE 'NaN' is not a finite number"),
        ({"OBS_VALUE": math.inf}, "bad_value", "OBS_VALUE inf is not a finite number"),
        ({"OBS_VALUE": "1e-99999999999999999999"}, "bad_value", "is not a finite number"),
        ({"OBS_VALUE": "1_000"}, "bad_value", "OBS_VALUE '1_000' is not a number"),
        ({"OBS_VALUE": "１８０"}, "bad_value", "is not a number"),
        ({"OBS_VALUE": True}, "malformed", "OBS_VALUE must be a number, not bool True"),
        ({"OBS_VALUE": "-3"}, "bad_value", "OBS_VALUE -3 CNY_100M is negative"),
        ({"ZONE": "atlantis"}, "unknown_zone", "ZONE 'atlantis' is not a known zone"),
        ({"TIME_PERIOD": "2021-12"}, "future_period", "starts after the current month 2021-11"),
        ({"TIME_PERIOD": "2021-13"}, "bad_period", "TIME_PERIOD '2021-13': month 13 is not"),
        ({"TIME_PERIOD": ""}, "malformed", "TIME_PERIOD is missing"),
        ({"TIME_PERIOD": " ", "ACTION": "X"}, "malformed", "TIME_PERIOD is missing"),
        ({"PUBLISHED_AT": "yesterday"}, "malformed", "PUBLISHED_AT 'yesterday' is not an ISO"),
        ({"UNIT_MEASURE": "USD_100M"}, "unit_mismatch", "'USD_100M' does not convert to CNY_100M"),
        ({"NOTE": "x" * 70_000}, "malformed", "NOTE is 70000 characters long"),
        ({"NOTE": "x" * 70_000, "ACTION": "X"}, "malformed", "NOTE is 70000 characters long"),
        ({"zone": "atlantis"}, "malformed", "ZONE is given twice (zone too) with different"),
    ],
)
def test_rows_that_are_rejected(changes: dict[Any, Any], reason: str, detail: str) -> None:
    row = DESIGN_ROW | changes
    with pytest.raises(RejectedInput) as caught:
        validate_observation(row, CATALOGUE, now=NOW)
    assert caught.value.reason == reason
    assert detail in caught.value.detail
    assert_one_answer(row)


def test_mappings_other_than_dict() -> None:
    class Row(dict[str, Any]):
        pass

    assert validate_observation(Row(DESIGN_ROW), CATALOGUE, now=NOW) == DESIGN_OBS
    with pytest.raises(RejectedInput, match="must be a mapping of field names, not list"):
        validate_observation([DESIGN_ROW], CATALOGUE, now=NOW)  # type: ignore[arg-type]


def test_lookups_belong_to_their_catalogue() -> None:
    catalogue = fresh()
    validate_observation(DESIGN_ROW, catalogue, now=NOW)
    validate_observation(DESIGN_ROW, CATALOGUE, now=NOW)
    assert lookups(catalogue) is not lookups(CATALOGUE)
    assert catalogue == CATALOGUE  # the lookups are not part of what a catalogue is


def test_lookups_stay_bounded_under_hostile_input() -> None:
    catalogue = fresh()
    rng = random.Random(7)
    for n in range(3 * validation._CACHE_SIZE):
        spelled = "".join(c.upper() if rng.random() < 0.5 else c for c in "cny_100m")
        row = DESIGN_ROW | {f"NOTE{n}": "x", "UNIT_MEASURE": spelled}
        row["PUBLISHED_AT"] = f"2021-04-15T{n // 3600:02d}:{n // 60 % 60:02d}:{n % 60:02d}Z"
        row["TIME_PERIOD"] = rng.choice(["2021-03", "2021-q1", f"{1949 + n % 70}"])
        row["BASIS"] = "LEVEL"
        validate_observation(row, catalogue, now=NOW)
    held = lookups(catalogue)
    assert 0 < len(held.layouts) <= validation._LAYOUT_CACHE_SIZE
    for cache in (held.periods, held.published):
        assert 0 < len(cache) <= validation._CACHE_SIZE
    assert len(held.factors) <= validation._CACHE_SIZE


# --- the property ----------------------------------------------------------------------------


@st.composite
def observations(draw: st.DrawFn, *, plain: bool = False) -> Observation:
    """Valid observations in the indicator's unit, as validation produces them.

    ``plain`` keeps figures to what a spreadsheet writes without an exponent.
    """
    indicator = draw(st.sampled_from(INDICATORS))
    basis = draw(st.sampled_from(BASES))
    action = draw(st.sampled_from(ACTIONS))
    year = draw(st.integers(1949, NOW.year))
    form = {"YTD": "m", "MONTH": "m", "QUARTER": "q", "YEAR": "y"}.get(basis)
    form = form or draw(st.sampled_from("mqy"))
    last = NOW.month if year == NOW.year else 12
    period = {
        "m": f"{year}-{draw(st.integers(1, last)):02d}",
        "q": f"{year}-Q{draw(st.integers(1, (last + 2) // 3))}",
        "y": f"{year}",
    }[form]
    value = yoy = None
    if action != "D":
        if indicator.unit in ("COUNT", "PERSON"):
            amounts = st.integers(0, 10**15).map(float)
        elif indicator.unit == "PCT":
            amounts = st.decimals(0, 100, places=3).map(float) | st.sampled_from([-0.0, 100.0])
            amounts = amounts if plain else amounts | st.floats(0, 100)
        else:
            amounts = st.decimals(0, 10**12, places=4).map(float)
            amounts = amounts if plain else amounts | st.floats(0, 1e300)
        growth = st.decimals(-100, 10**6, places=2).map(float) | st.sampled_from([-0.0, 0.0])
        growth = growth if plain else growth | st.floats(-100, 1e6)
        value = draw(st.none() | amounts)
        yoy = draw(growth if value is None else st.none() | growth)
    return Observation(
        zone=draw(st.sampled_from(ZONES)),
        indicator=indicator.id,
        period=period,
        basis=basis,
        value=value,
        unit=indicator.unit,
        yoy_pct=yoy,
        obs_status=draw(st.sampled_from(OBS_STATUSES)),
        revision=draw(st.integers(0, 2**63 - 1)),
        action=action,
        published_at=draw(
            st.sampled_from(["", "2021-04-15T09:00:00+08:00", "2021-04-15T01:00:00Z", "2021-04-15"])
        ),
        source=draw(st.sampled_from(SOURCES)),
    )


PLAIN_FORMATS = [repr, "{:.2f}".format, "{:.0f}".format]  # no exponent for plain figures
NUMBER_FORMATS = [*PLAIN_FORMATS, "{:g}".format, "{:,.1f}".format, "{:.3e}".format]


@st.composite
def csv_rows(draw: st.DrawFn) -> dict[str, Any]:
    """An observation as a CSV row: upper-case names, every value a string."""
    doc = observation_to_wire(draw(observations()))
    write = draw(st.sampled_from(NUMBER_FORMATS))
    row = {
        k.upper(): "" if v is None else write(v) if isinstance(v, float) else str(v)
        for k, v in doc.items()
    }
    if row["SOURCE"] == "bureau" and draw(st.booleans()):
        del row["SOURCE"]  # bureau files have no SOURCE column
    return row


@st.composite
def wire_docs(draw: st.DrawFn) -> dict[str, Any]:
    obs = draw(observations())
    return (
        wire(obs, draw(st.integers(1, 10**6))) if draw(st.booleans()) else observation_to_wire(obs)
    )


DROP = object()  # a perturbation that removes the field
# fmt: off
ODD_VALUES = [
    # numbers
    "NaN", "nan", "-inf", "Infinity", math.nan, math.inf, -math.inf, "1e999", 10**400, 10**5000,
    "9" * 70, "1e-99999999999999999999", "1e5", "1E-5", "1,802,000", "1,80", "1_000", "１８０",
    " 12.5 ", "12.5\t", "+5", "-0", "-0.0", -0.0, ".5", "5.", "1.2.3", "+-1", "-3", -3, "0x10",
    2**53, 2**53 + 1, -(2**60), 2.5, 41.5, 100.0, 100.5, -100.0, -100.5, 1e308,
    # types
    True, False, [180.2], {"v": 1}, b"180.2", (1,), 2021, 2020.0,
    # zones, indicators, vocabularies
    "atlantis-hitech", "Jinan-Hitech", "jinan-hitech ", "gdp_per_capita", "", "   ", "\u3000",
    "ytd", "Ytd", "WEEK", "i", "d", "D", "X", "p", "Z", "REGISTRATIONS", "Bureau", "rumour",
    # periods
    "2021-13", "2021-00", "2021-3", "2021/03", "21-03", "２０２１-03", "2021-q3", "2021-Q5",
    "2021-H1", "1900-03", "2101", "2021-12", "2022", "2022-Q1", "2030-01", "2021", "2021-11",
    "2021-Q4", " 2021-03", "2021-03\n",
    # units
    "万元", "萬元", "亿元", "億元", "亿美元", "%", "％", "个", "人", "万人", "CNY_10K", "cny_100m",
    "Cny_100M", "USD_100M", "PCT", "COUNT", "YUAN", " CNY_100M", "PERSON_10K", "μg/m³",
    # revisions, dates
    "-1", "1.5", "007", "+3", "9" * 19, "9" * 20, 2**63 - 1, 2**63, "²", "yesterday", "2021-04-15",
    "2021-02-30T00:00:00", "2021-04-15T09:00:00+08:00 ", "２０２１-04-15", "2021-04-15T25:00:00",
    # long text
    "x" * 70_000, "z" * 5000,
]
# fmt: on
VALUES = (
    st.sampled_from(ODD_VALUES)
    | st.sampled_from(ZONES + [i.id for i in INDICATORS] + list(BASES))
    | st.text(max_size=12)
    | st.integers()
    | st.floats()
    | st.just(DROP)
)
NAMES = st.sampled_from(
    [*observation_to_wire(DESIGN_OBS), "period", "value", "unit", "note", "origin", "line"]
)


@st.composite
def spelled(draw: st.DrawFn, name: str) -> Any:
    """A field name as some file spells it: any case, with stray blanks, or not a string."""
    how = draw(st.sampled_from(["case", "blank", "odd"]))
    if how == "case":
        return "".join(c.upper() if draw(st.booleans()) else c.lower() for c in name)
    if how == "blank":
        return draw(st.sampled_from([" ", "\t", ""])) + name + draw(st.sampled_from([" ", ""]))
    return draw(st.sampled_from([None, 1, "x" * 100, name.upper() + "_2"]))


@st.composite
def perturbed(draw: st.DrawFn) -> dict[Any, Any]:
    """A canonical row (CSV or wire) with a few things changed: values, names, fields."""
    row: dict[Any, Any] = dict(draw(csv_rows() | wire_docs()))
    for _ in range(draw(st.integers(1, 4))):
        name = draw(NAMES)
        key = next((k for k in row if isinstance(k, str) and k.strip().lower() == name), None)
        if key is None:
            key = name.upper() if "ZONE" in row else name
        if draw(st.integers(0, 4)) == 0:  # respell the name (maybe giving it twice)
            value = row.get(key) if draw(st.booleans()) else draw(VALUES)
            if draw(st.booleans()):
                row.pop(key, None)
            if value is not DROP:
                row[draw(spelled(name))] = value
            continue
        value = draw(VALUES)
        if value is DROP:
            row.pop(key, None)
        else:
            row[key] = value
    return row


NOWS = st.sampled_from(
    [NOW, datetime(2016, 1, 31, tzinfo=UTC), datetime(2100, 12, 31, 23, 59, tzinfo=UTC)]
)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(perturbed(), NOWS)
def test_perturbed_rows_get_one_answer(raw: dict[Any, Any], now: datetime) -> None:
    assert_one_answer(raw, now)


@settings(max_examples=500, deadline=None)
@given(csv_rows() | wire_docs(), NOWS)
def test_canonical_rows_get_one_answer(raw: dict[str, Any], now: datetime) -> None:
    assert_one_answer(raw, now)


@settings(max_examples=300, deadline=None)
@given(observations())
def test_the_wire_form_reads_back_as_the_observation(obs: Observation) -> None:
    assert exactly(validate_observation(wire(obs), CATALOGUE, now=NOW)) == exactly(obs)


@settings(max_examples=300, deadline=None)
@given(observations(plain=True), st.sampled_from(PLAIN_FORMATS))
def test_a_csv_row_reads_back_as_the_observation(obs: Observation, write: Any) -> None:
    row = {
        k.upper(): "" if v is None else write(v) if isinstance(v, float) else str(v)
        for k, v in observation_to_wire(obs).items()
    }
    read = validate_observation(row, CATALOGUE, now=NOW)
    key = ("zone", "indicator", "period", "basis", "unit", "obs_status", "revision", "action")
    assert [getattr(read, k) for k in key] == [getattr(obs, k) for k in key]
    assert exactly(read) == exactly(validate_observation(wire(read), CATALOGUE, now=NOW))
