"""The fast path of validate_observation: what it takes, and that it never changes an answer.

A backfill validates every row twice (the producer on the CSV row, the worker on the wire form),
so plain rows go through ``_fast``; anything it cannot vouch for goes to the general path. The
property: for any row, validate_observation answers exactly as the general path does — the same
Observation (same types, same float signs), or RejectedInput with the same reason and detail.
"""

from __future__ import annotations

import math
import random
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parkpulse.schemas import validation
from parkpulse.schemas.catalogue import load_catalogue
from parkpulse.schemas.errors import RejectedInput
from parkpulse.schemas.records import ACTIONS, BASES, OBS_STATUSES, SOURCES, Observation
from parkpulse.schemas.validation import (
    _fast,
    _validate_observation_general,
    observation_to_wire,
    validate_observation,
)
from tests.test_validation import DESIGN_OBS, DESIGN_ROW

CATALOGUE = load_catalogue()
NOW = datetime(2021, 11, 15, 10, 0, tzinfo=UTC)
ZONES = sorted(CATALOGUE.zones)
INDICATORS = sorted(CATALOGUE.indicators.values(), key=lambda i: i.id)


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


def answer(validate: Any, raw: Any, now: datetime = NOW) -> tuple[Any, ...]:
    """What a validator makes of ``raw``: the exact observation, or the rejection."""
    try:
        obs = validate(raw, CATALOGUE, now=now)
    except RejectedInput as exc:
        return ("rejected", exc.reason, exc.detail)
    except Exception as exc:  # a crash would have to be the same crash on both paths
        return ("crashed", type(exc).__name__, str(exc))
    return ("accepted", exactly(obs))


def assert_same_answer(raw: Any, now: datetime = NOW) -> None:
    assert answer(validate_observation, raw, now) == answer(_validate_observation_general, raw, now)


# --- what the fast path takes ----------------------------------------------------------------


def test_the_design_row_takes_the_fast_path() -> None:
    assert _fast(DESIGN_ROW, CATALOGUE, NOW) == DESIGN_OBS
    assert validate_observation(DESIGN_ROW, CATALOGUE, now=NOW) == DESIGN_OBS


def test_the_wire_form_takes_the_fast_path() -> None:
    # What the worker decodes: lower-case names, JSON numbers, plus the producer's origin/line.
    assert _fast(wire(DESIGN_OBS), CATALOGUE, NOW) == DESIGN_OBS


def test_simulated_feed_rows_take_the_fast_path() -> None:
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
    for row in rows:
        obs = _fast(row, CATALOGUE, NOW)
        assert obs is not None, row
        assert obs == _validate_observation_general(row, CATALOGUE, now=NOW)
        assert _fast(wire(obs), CATALOGUE, NOW) == obs


@pytest.mark.parametrize(
    "changes",
    [
        {"OBS_VALUE": "1802000", "UNIT_MEASURE": "CNY_10K"},  # converted through Decimal
        {"OBS_VALUE": "1802000", "UNIT_MEASURE": "万元"},
        {"OBS_VALUE": "180.2", "UNIT_MEASURE": "亿元"},
        {"OBS_VALUE": 1802000, "UNIT_MEASURE": "cny_10k"},
        {"ACTION": "i", "BASIS": "ytd", "OBS_STATUS": "a", "source": "BUREAU"},
        {"ACTION": "", "OBS_STATUS": "", "REVISION": "", "PUBLISHED_AT": ""},
        {"ACTION": None, "OBS_STATUS": None, "REVISION": None, "PUBLISHED_AT": None},
        {"REVISION": "007"},
        {"OBS_VALUE": "", "UNIT_MEASURE": "", "YOY_PCT": "35.1"},  # growth only, no unit
        {"OBS_VALUE": "+180.2"},
        {"YOY_PCT": "-0"},
    ],
)
def test_plain_variations_take_the_fast_path(changes: dict[str, Any]) -> None:
    row = DESIGN_ROW | changes
    obs = _fast(row, CATALOGUE, NOW)
    assert obs is not None
    assert exactly(obs) == exactly(_validate_observation_general(row, CATALOGUE, now=NOW))


def test_a_delete_takes_the_fast_path_and_ignores_its_value_fields() -> None:
    row = DESIGN_ROW | {"ACTION": "D", "REVISION": "2", "OBS_VALUE": "n/a", "UNIT_MEASURE": "?"}
    obs = _fast(row, CATALOGUE, NOW)
    assert obs is not None and obs.is_delete and obs.value is None and obs.revision == 2
    assert _fast(wire(obs), CATALOGUE, NOW) == obs


@pytest.mark.parametrize(
    "changes",
    [
        {"OBS_VALUE": "NaN"},
        {"OBS_VALUE": math.inf},
        {"OBS_VALUE": "1,802,000", "UNIT_MEASURE": "CNY_10K"},  # accepted, by the general path
        {"OBS_VALUE": " 180.2"},  # accepted: values are stripped
        {"OBS_VALUE": "1.802e2"},  # accepted, by the general path
        {"OBS_VALUE": "1e-99999999999999999999"},  # Decimal refuses this exponent
        {"OBS_VALUE": "1_000"},
        {"OBS_VALUE": "１８０"},
        {"OBS_VALUE": 2**60},
        {"OBS_VALUE": True},
        {"OBS_VALUE": "-3"},
        {"ZONE": " jinan-hitech"},
        {"ZONE": "atlantis"},
        {"TIME_PERIOD": "2021-12"},  # the future
        {"TIME_PERIOD": "2021-13"},
        {"REVISION": "+1"},
        {"REVISION": 1.0},
        {"PUBLISHED_AT": "yesterday"},
        {"UNIT_MEASURE": "USD_100M"},
        {"NOTE": "x" * 70_000},  # an unread field, still too long
        {"zone": "jinan-hitech"},  # the same field twice
        {"period": "2021-03"},
        {None: ["extra", "cells"]},  # csv.DictReader's restkey
    ],
)
def test_unusual_rows_are_left_to_the_general_path(changes: dict[Any, Any]) -> None:
    row = DESIGN_ROW | changes
    assert _fast(row, CATALOGUE, NOW) is None
    assert_same_answer(row)


def test_mappings_other_than_dict_are_left_to_the_general_path() -> None:
    class Row(dict[str, Any]):
        pass

    assert validate_observation(Row(DESIGN_ROW), CATALOGUE, now=NOW) == DESIGN_OBS
    assert_same_answer([DESIGN_ROW])


def test_caches_stay_bounded_under_hostile_input() -> None:
    rng = random.Random(7)
    for n in range(3 * validation._CACHE_SIZE):
        spelled = "".join(c.upper() if rng.random() < 0.5 else c for c in "cny_100m")
        row = DESIGN_ROW | {f"NOTE{n}": "x", "UNIT_MEASURE": spelled}
        row["PUBLISHED_AT"] = f"2021-04-15T{n // 3600:02d}:{n // 60 % 60:02d}:{n % 60:02d}Z"
        row["TIME_PERIOD"] = rng.choice(["2021-03", "2021-q1", f"{1949 + n % 70}"])
        row["BASIS"] = "LEVEL"
        validate_observation(row, CATALOGUE, now=NOW)
    for cache in (validation._LAYOUTS, validation._PERIODS, validation._PUBLISHED):
        assert 0 < len(cache) <= validation._CACHE_SIZE
    assert len(validation._FACTORS) <= validation._CACHE_SIZE


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
def test_perturbed_rows_get_the_general_paths_answer(raw: dict[Any, Any], now: datetime) -> None:
    assert_same_answer(raw, now)


@settings(max_examples=500, deadline=None)
@given(csv_rows() | wire_docs(), NOWS)
def test_canonical_rows_get_the_general_paths_answer(raw: dict[str, Any], now: datetime) -> None:
    assert_same_answer(raw, now)


@settings(max_examples=300, deadline=None)
@given(observations())
def test_canonical_wire_form_takes_the_fast_path(obs: Observation) -> None:
    doc = wire(obs)
    assert (
        _fast(doc, CATALOGUE, NOW) == obs == _validate_observation_general(doc, CATALOGUE, now=NOW)
    )


@settings(max_examples=300, deadline=None)
@given(observations(plain=True), st.sampled_from(PLAIN_FORMATS))
def test_canonical_csv_rows_take_the_fast_path(obs: Observation, write: Any) -> None:
    row = {
        k.upper(): "" if v is None else write(v) if isinstance(v, float) else str(v)
        for k, v in observation_to_wire(obs).items()
    }
    fast = _fast(row, CATALOGUE, NOW)
    assert fast is not None, row
    assert exactly(fast) == exactly(_validate_observation_general(row, CATALOGUE, now=NOW))
