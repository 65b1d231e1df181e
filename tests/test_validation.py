"""Validation of feed rows and plan targets: a worked example per reason code, then properties."""

from __future__ import annotations

import csv
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parkpulse.schemas.catalogue import (
    load_catalogue,
    load_plan_targets,
    reference_observation_rows,
)
from parkpulse.schemas.errors import RejectedInput
from parkpulse.schemas.records import (
    ACTIONS,
    BASES,
    OBS_STATUSES,
    SOURCES,
    Observation,
    PlanTarget,
)
from parkpulse.schemas.targets import validate_target
from parkpulse.schemas.validation import validate_observation
from parkpulse.schemas.wire import observation_to_wire, target_to_wire

CATALOGUE = load_catalogue()
NOW = datetime(2021, 11, 15, 10, 0, tzinfo=UTC)
EXTRACTION = Path("/work/shared/data/extraction/observations.csv")

# The example row of DESIGN.md, "Feed format".
DESIGN_ROW = {
    "STRUCTURE": "dataflow",
    "STRUCTURE_ID": "PARKPULSE:ZONE_MONTHLY(1.0)",
    "ACTION": "I",
    "ZONE": "jinan-hitech",
    "INDICATOR": "import_export_total",
    "TIME_PERIOD": "2021-03",
    "BASIS": "YTD",
    "OBS_VALUE": "180.2",
    "UNIT_MEASURE": "CNY_100M",
    "YOY_PCT": "35.1",
    "OBS_STATUS": "A",
    "REVISION": "0",
    "PUBLISHED_AT": "2021-04-15T09:00:00+08:00",
}
DESIGN_OBS = Observation(
    zone="jinan-hitech",
    indicator="import_export_total",
    period="2021-03",
    basis="YTD",
    value=180.2,
    unit="CNY_100M",
    yoy_pct=35.1,
    obs_status="A",
    revision=0,
    action="I",
    published_at="2021-04-15T09:00:00+08:00",
    source="bureau",
)


def row(**changes: Any) -> dict[str, Any]:
    """The DESIGN.md row with some fields changed (None drops a field)."""
    out = dict(DESIGN_ROW)
    for name, value in changes.items():
        if value is None:
            out.pop(name, None)
        else:
            out[name] = value
    return out


def rejection(raw: Any, now: datetime = NOW) -> RejectedInput:
    with pytest.raises(RejectedInput) as info:
        validate_observation(raw, CATALOGUE, now=now)
    return info.value


def accept(raw: Any) -> Observation:
    return validate_observation(raw, CATALOGUE, now=NOW)


# --- accepted rows -------------------------------------------------------------------------


def test_the_design_row_is_accepted_as_given() -> None:
    assert accept(DESIGN_ROW) == DESIGN_OBS


def test_json_lines_names_and_json_numbers() -> None:
    doc = {k.lower(): v for k, v in DESIGN_ROW.items()}
    doc |= {"obs_value": 180.2, "yoy_pct": 35.1, "revision": 0}
    assert accept(doc) == DESIGN_OBS


def test_names_are_case_insensitive_and_values_stripped() -> None:
    raw = {"Zone": " jinan-hitech ", "indicator": "import_export_total\t", "Time_Period": "2021-03"}
    raw |= {"basis": " ytd", "obs_value": " 180.2 ", "UNIT_measure": "CNY_100M "}
    raw |= {"yoy_pct": "35.1", "published_at": "2021-04-15T09:00:00+08:00"}
    assert accept(raw) == DESIGN_OBS


def test_structure_fields_are_optional_and_extra_fields_ignored() -> None:
    raw = row(STRUCTURE=None, STRUCTURE_ID=None, NOTE="进出口总额", origin="feed.csv", line=7)
    assert accept(raw) == DESIGN_OBS


def test_record_field_names_are_accepted_too() -> None:
    # observations.csv and Observation.to_dict() say period/value/unit.
    assert accept(DESIGN_OBS.to_dict()) == DESIGN_OBS
    both = observation_to_wire(DESIGN_OBS) | {"value": 181.0}
    assert "given twice" in rejection(both).detail


def test_defaults_for_action_status_revision_published_and_source() -> None:
    obs = accept(row(ACTION=None, OBS_STATUS="", REVISION=None, PUBLISHED_AT=None))
    assert (obs.action, obs.obs_status, obs.revision, obs.published_at, obs.source) == (
        "I",
        "A",
        0,
        "",
        "bureau",
    )


def test_registrations_source_is_kept() -> None:
    assert accept(row(source="registrations")).source == "registrations"


@pytest.mark.parametrize(
    ("value", "unit"),
    [
        ("1802000", "CNY_10K"),  # 1,802,000 万元 = 180.2 亿元
        ("1,802,000", "CNY_10K"),
        (1802000, "CNY_10K"),
        ("1802000", "万元"),
        ("180.2", "亿元"),
        ("180.2", "億元"),  # Traditional, as in seed 000
    ],
)
def test_ten_thousand_yuan_converts_to_hundred_million_exactly(value: Any, unit: str) -> None:
    obs = accept(row(OBS_VALUE=value, UNIT_MEASURE=unit))
    assert obs.value == 180.2  # exactly, not 180.20000000000002
    assert obs.unit == "CNY_100M"


def test_ten_thousand_persons_convert_to_persons() -> None:
    raw = row(INDICATOR="new_high_end_talent", BASIS="YEAR", TIME_PERIOD="2020")
    obs = accept(raw | {"OBS_VALUE": "0.3933", "UNIT_MEASURE": "PERSON_10K", "YOY_PCT": ""})
    assert (obs.value, obs.unit) == (3933.0, "PERSON")


def test_growth_only_figure_has_no_value() -> None:
    # observations.csv: fixed-asset investment 2019 "growth only" (全年固定资产投资增长22.9%).
    raw = row(INDICATOR="fixed_asset_investment", TIME_PERIOD="2019", BASIS="YEAR")
    obs = accept(raw | {"OBS_VALUE": "", "YOY_PCT": "22.9"})
    assert (obs.value, obs.yoy_pct, obs.unit) == (None, 22.9, "CNY_100M")
    assert accept(raw | {"OBS_VALUE": "", "YOY_PCT": "22.9", "UNIT_MEASURE": ""}).value is None


def test_growth_may_be_negative_down_to_minus_100() -> None:
    assert accept(row(YOY_PCT="-12.5")).yoy_pct == -12.5
    assert accept(row(YOY_PCT="-100")).yoy_pct == -100.0


def test_delete_needs_only_the_key() -> None:
    raw = {"action": "D", "zone": "jinan-hitech", "indicator": "import_export_total"}
    obs = accept(raw | {"time_period": "2021-03", "basis": "YTD", "revision": 2})
    assert obs.is_delete and obs.value is None and obs.revision == 2
    assert obs.key == DESIGN_OBS.key
    # value fields of a tombstone are ignored, even unreadable ones
    assert accept(row(ACTION="D", OBS_VALUE="n/a", UNIT_MEASURE="USD_100M")).value is None


@pytest.mark.parametrize(
    ("basis", "period"),
    [
        ("YTD", "2021-02"),  # January and February come combined
        ("MONTH", "2021-11"),  # the current month is not the future
        ("QUARTER", "2021-Q4"),  # started in October
        ("QUARTER", "2021-q3"),
        ("YEAR", "2021"),
        ("YEAR", 2020),  # JSON may give a year as a number
        ("LEVEL", "2021-10"),
        ("LEVEL", "2021-Q1"),
        ("LEVEL", "1949"),
    ],
)
def test_periods_per_basis(basis: str, period: Any) -> None:
    obs = accept(row(BASIS=basis, TIME_PERIOD=period))
    assert obs.period == str(period).upper()


# --- one worked example per reason code ----------------------------------------------------

REJECTIONS = [
    # malformed: structure, types, vocabularies
    (row(ZONE=None), "malformed", "ZONE is missing"),
    (row(TIME_PERIOD=""), "malformed", "TIME_PERIOD is missing"),
    (row(BASIS=None), "malformed", "BASIS is missing"),
    (row(ACTION="X"), "malformed", "ACTION 'X' is not one of I, A, R, D"),
    (row(BASIS="WEEK"), "malformed", "BASIS 'WEEK'"),
    (row(OBS_STATUS="Z"), "malformed", "OBS_STATUS 'Z'"),
    (row(REVISION="-1"), "malformed", "REVISION '-1' is not a whole number"),
    (row(REVISION="1.5"), "malformed", "REVISION"),
    (row(REVISION="9" * 25), "malformed", "REVISION"),
    (row(REVISION=10**5000), "malformed", "REVISION <a 16610-bit number> is not 0 or a positive"),
    (row(PUBLISHED_AT="yesterday"), "malformed", "PUBLISHED_AT 'yesterday' is not an ISO 8601"),
    (row(source="rumour"), "malformed", "source 'rumour'"),
    (row(ZONE=42), "malformed", "ZONE must be text, not int 42"),
    (row(OBS_VALUE=[180.2]), "malformed", "OBS_VALUE must be a number, not list"),
    (row(OBS_VALUE=True), "malformed", "OBS_VALUE must be a number, not bool"),
    (row(ZONE="x" * 70_000), "malformed", "ZONE is 70000 characters long"),
    (row(UNIT_MEASURE=""), "malformed", "UNIT_MEASURE is missing"),
    (row(zone="nanning-hitech"), "malformed", "given twice"),
    # unknown zone / indicator
    (row(ZONE="atlantis-hitech"), "unknown_zone", "ZONE 'atlantis-hitech' is not a known zone"),
    (row(ZONE="'; DROP TABLE observations; --"), "unknown_zone", "DROP TABLE"),
    (row(ZONE="Jinan-Hitech"), "unknown_zone", "Jinan-Hitech"),
    (row(INDICATOR="gdp_per_capita"), "unknown_indicator", "INDICATOR 'gdp_per_capita'"),
    # bad values
    (row(OBS_VALUE="abc"), "bad_value", "OBS_VALUE 'abc' is not a number"),
    (row(OBS_VALUE="NaN"), "bad_value", "OBS_VALUE 'NaN' is not a finite number"),
    (row(OBS_VALUE="inf"), "bad_value", "not a finite number"),
    (row(OBS_VALUE="-Infinity"), "bad_value", "not a finite number"),
    (row(OBS_VALUE=math.nan), "bad_value", "OBS_VALUE nan is not a finite number"),
    (row(OBS_VALUE="1e999"), "bad_value", "not a finite number"),
    (row(OBS_VALUE=10**400), "bad_value", "not a finite number"),
    (row(OBS_VALUE=10**5000), "bad_value", "OBS_VALUE <a 16610-bit number> is not a finite"),
    (row(OBS_VALUE="1e99999999999999999999"), "bad_value", "not a finite number"),
    (row(OBS_VALUE="1e-99999999999999999999"), "bad_value", "not a finite number"),
    (row(OBS_VALUE="9" * 100), "bad_value", "too long for a number"),
    (row(OBS_VALUE="1_000"), "bad_value", "is not a number"),
    (row(OBS_VALUE="１８０"), "bad_value", "is not a number"),  # full-width digits
    (row(OBS_VALUE="1,80"), "bad_value", "is not a number"),
    (
        row(INDICATOR="new_high_end_talent", OBS_VALUE="1e308", UNIT_MEASURE="PERSON_10K"),
        "bad_value",
        "OBS_VALUE is too large",
    ),
    (row(OBS_VALUE="-3"), "bad_value", "OBS_VALUE -3 CNY_100M is negative"),
    (
        row(INDICATOR="hitech_enterprises", BASIS="LEVEL", OBS_VALUE="41.5", UNIT_MEASURE="COUNT"),
        "bad_value",
        "OBS_VALUE 41.5 COUNT is not a whole number",
    ),
    (
        row(INDICATOR="rd_intensity", BASIS="LEVEL", OBS_VALUE="560", UNIT_MEASURE="PCT"),
        "bad_value",
        "OBS_VALUE 560 PCT is above 100",
    ),
    (row(YOY_PCT="-150"), "bad_value", "YOY_PCT -150 is below -100"),
    (row(YOY_PCT="n/a"), "bad_value", "YOY_PCT 'n/a' is not a number"),
    (row(OBS_VALUE="", YOY_PCT=""), "bad_value", "OBS_VALUE and YOY_PCT are both empty"),
    # bad periods
    (row(TIME_PERIOD="2021-13"), "bad_period", "month 13 is not 01..12"),
    (row(TIME_PERIOD="2021-00"), "bad_period", "month 0"),
    (row(TIME_PERIOD="2021-3"), "bad_period", "needs YYYY-MM"),
    (row(TIME_PERIOD="2021/03"), "bad_period", "needs YYYY-MM"),
    (row(TIME_PERIOD="21-03"), "bad_period", "needs YYYY-MM"),
    (row(TIME_PERIOD="２０２１-03"), "bad_period", "needs YYYY-MM"),
    (row(TIME_PERIOD="2021"), "bad_period", "TIME_PERIOD '2021' does not fit BASIS YTD"),
    (row(TIME_PERIOD="1900-03"), "bad_period", "year 1900 is outside 1949..2100"),
    (row(BASIS="QUARTER", TIME_PERIOD="2021-Q5"), "bad_period", "quarter 5 is not 1..4"),
    (row(BASIS="QUARTER", TIME_PERIOD="2021-03"), "bad_period", "needs YYYY-Qn"),
    (row(BASIS="YEAR", TIME_PERIOD="2021-03"), "bad_period", "needs YYYY"),
    (row(BASIS="LEVEL", TIME_PERIOD="2021-H1"), "bad_period", "YYYY-MM or YYYY-Qn or YYYY"),
    # units
    (
        row(UNIT_MEASURE="USD_100M"),
        "unit_mismatch",
        "UNIT_MEASURE 'USD_100M' does not convert to CNY_100M for import_export_total",
    ),
    (row(UNIT_MEASURE="YUAN"), "unit_mismatch", "UNIT_MEASURE 'YUAN' is not a known unit"),
    (row(UNIT_MEASURE="PCT"), "unit_mismatch", "does not convert"),
    (row(OBS_VALUE="", UNIT_MEASURE="USD_100M"), "unit_mismatch", "does not convert"),
    # the future
    (
        row(TIME_PERIOD="2021-12"),
        "future_period",
        "TIME_PERIOD '2021-12' starts after the current month 2021-11",
    ),
    (row(BASIS="YEAR", TIME_PERIOD="2022"), "future_period", "2022"),
    (row(BASIS="QUARTER", TIME_PERIOD="2022-Q1"), "future_period", "2022-Q1"),
    (row(ACTION="D", TIME_PERIOD="2030-01"), "future_period", "2030-01"),
]


@pytest.mark.parametrize(("raw", "reason", "fragment"), REJECTIONS)
def test_rejections_carry_reason_and_a_readable_detail(
    raw: dict[str, Any], reason: str, fragment: str
) -> None:
    error = rejection(raw)
    assert (error.reason, fragment in error.detail) == (reason, True), error.detail
    assert len(error.detail) < 300


@pytest.mark.parametrize("raw", [None, [], ["jinan-hitech"], "ZONE=jinan-hitech", 42])
def test_non_mappings_are_malformed(raw: Any) -> None:
    assert rejection(raw).reason == "malformed"


def test_json_input_is_named_in_its_own_spelling() -> None:
    doc = {k.lower(): v for k, v in DESIGN_ROW.items()} | {"unit_measure": "USD_100M"}
    assert rejection(doc).detail.startswith("unit_measure 'USD_100M'")


def test_long_bad_values_are_quoted_truncated() -> None:
    error = rejection(row(ZONE="z" * 5000))
    assert error.reason == "unknown_zone"
    assert "(5000 chars)" in error.detail and len(error.detail) < 150


def test_future_is_relative_to_now() -> None:
    later = datetime(2022, 1, 3, tzinfo=UTC)
    assert (
        validate_observation(row(TIME_PERIOD="2021-12"), CATALOGUE, now=later).period == "2021-12"
    )


# --- the reference figures -----------------------------------------------------------------


def feed_row(ref: dict[str, str]) -> dict[str, str]:
    """An observations.csv row as a bureau feed row."""
    return {
        "ACTION": "I",
        "ZONE": ref["zone"],
        "INDICATOR": ref["indicator"],
        "TIME_PERIOD": ref["time_period"],
        "BASIS": ref["basis"],
        "OBS_VALUE": ref["value"],
        "UNIT_MEASURE": ref["unit"],
        "YOY_PCT": ref["yoy_pct"],
        "OBS_STATUS": "A",
        "REVISION": "0",
        "PUBLISHED_AT": "",
    }


def test_reference_observations_validate_except_the_dollar_trade_figure() -> None:
    rejected = []
    for ref in reference_observation_rows():
        try:
            obs = accept(feed_row(ref))
        except RejectedInput as exc:
            rejected.append((ref["indicator"], ref["time_period"], exc.reason))
            continue
        assert obs.value == (float(ref["value"]) if ref["value"] else None)
        assert obs.unit == ref["unit"]
    # 表1 gives 2015 imports/exports as 28.7 亿美元; the indicator is kept in 亿元.
    assert rejected == [("import_export_total", "2015", "unit_mismatch")]


def test_extraction_rows_validate_or_are_rejected_never_crash() -> None:
    basis = {"ytd_months": "YTD", "calendar_year": "YEAR", "point_in_time": "LEVEL"}
    reasons: dict[str, int] = {}
    with EXTRACTION.open(encoding="utf-8") as handle:
        for ref in csv.DictReader(handle):
            raw = {
                "ZONE": ref["zone_id"],
                "INDICATOR": ref["indicator_id"],
                "TIME_PERIOD": ref["period_end"],
                "BASIS": basis.get(ref["period_type"], ref["period_type"]),
                "OBS_VALUE": ref["value"],
                "UNIT_MEASURE": ref["unit_en"],
                "NOTE": ref["source_phrase_zh"],
            }
            try:
                accept(raw)
                reason = "accepted"
            except RejectedInput as exc:
                reason = exc.reason
            reasons[reason] = reasons.get(reason, 0) + 1
    assert sum(reasons.values()) == 230
    assert reasons["unknown_indicator"] > 0  # the extraction names indicators its own way


# --- properties ----------------------------------------------------------------------------

INDICATORS = sorted(CATALOGUE.indicators.values(), key=lambda i: i.id)


@st.composite
def periods(draw: st.DrawFn, basis: str) -> str:
    form = {"YTD": "month", "MONTH": "month", "QUARTER": "quarter", "YEAR": "year"}.get(basis)
    form = form or draw(st.sampled_from(["month", "quarter", "year"]))
    year = draw(st.integers(1949, NOW.year))
    if form == "year":
        return f"{year:04d}"
    if form == "quarter":
        return f"{year:04d}-Q{draw(st.integers(1, 4))}"
    last = NOW.month if year == NOW.year else 12
    return f"{year:04d}-{draw(st.integers(1, last)):02d}"


@st.composite
def observations(draw: st.DrawFn) -> Observation:
    """Valid observations as validation produces them (values in the indicator's unit)."""
    indicator = draw(st.sampled_from(INDICATORS))
    basis = draw(st.sampled_from(BASES))
    action = draw(st.sampled_from(ACTIONS))
    value = yoy = None
    if action != "D":
        if indicator.unit in ("COUNT", "PERSON"):
            amounts = st.integers(0, 10**12).map(float)
        elif indicator.unit == "PCT":
            amounts = st.floats(0, 100)
        else:
            amounts = st.floats(0, 1e12)
        growth = st.floats(-100, 1e6)
        value = draw(st.none() | amounts)
        yoy = draw(growth if value is None else st.none() | growth)
    return Observation(
        zone=draw(st.sampled_from(sorted(CATALOGUE.zones))),
        indicator=indicator.id,
        period=draw(periods(basis)),
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


@settings(max_examples=300, deadline=None)
@given(observations())
def test_wire_round_trip(obs: Observation) -> None:
    wire = observation_to_wire(obs)
    assert validate_observation(wire, CATALOGUE, now=NOW) == obs
    # and through the bytes that travel on the topic
    assert validate_observation(orjson.loads(orjson.dumps(wire)), CATALOGUE, now=NOW) == obs


@settings(max_examples=200, deadline=None)
@given(observations())
def test_csv_strings_give_the_same_observation(obs: Observation) -> None:
    wire = observation_to_wire(obs)
    as_csv = {
        k.upper(): "" if v is None else repr(v) if isinstance(v, float) else str(v)
        for k, v in wire.items()
    }
    assert validate_observation(as_csv, CATALOGUE, now=NOW) == obs


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from([*map(str.upper, observation_to_wire(DESIGN_OBS)), "zone", "x"]),
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats()
        | st.text(max_size=30)
        | st.sampled_from(["jinan-hitech", "gdp", "YTD", "2021-03", "CNY_10K", "1e5", "-0"]),
    )
)
def test_arbitrary_mappings_are_validated_or_rejected(raw: dict[str, Any]) -> None:
    try:
        obs = validate_observation(raw, CATALOGUE, now=NOW)
    except RejectedInput as exc:
        assert exc.reason in {"malformed", "unknown_zone", "unknown_indicator", "bad_value"} | {
            "bad_period",
            "unit_mismatch",
            "future_period",
        }
        return
    assert validate_observation(observation_to_wire(obs), CATALOGUE, now=NOW) == obs


# --- plan targets --------------------------------------------------------------------------

TARGET_ROW = {
    "plan": "14th-fyp",
    "zone": "jinan-hitech",
    "indicator": "import_export_total",
    "kind": "level",
    "base_year": "2020",
    "base_value": "701.3",
    "target_year": "2025",
    "target_value": "2140",
    "annual_growth_pct": "25.0",
    "binding": "false",
    "unit": "CNY_100M",
    "source": "004 表2 第18项",
}
TARGET = PlanTarget(
    plan="14th-fyp",
    zone="jinan-hitech",
    indicator="import_export_total",
    kind="level",
    base_year=2020,
    base_value=701.3,
    target_year=2025,
    target_value=2140.0,
    annual_growth_pct=25.0,
    binding=False,
    unit="CNY_100M",
    source="004 表2 第18项",
)


def target_row(**changes: Any) -> dict[str, Any]:
    out = dict(TARGET_ROW)
    for name, value in changes.items():
        if value is None:
            out.pop(name, None)
        else:
            out[name] = value
    return out


def test_target_row_is_accepted() -> None:
    assert validate_target(TARGET_ROW, CATALOGUE) == TARGET
    upper = {k.upper(): v for k, v in TARGET_ROW.items()}
    assert validate_target(upper, CATALOGUE) == TARGET


def test_reference_targets_validate_to_the_bundled_ones() -> None:
    path = Path(__file__).parents[1] / "parkpulse" / "reference" / "plan_targets.csv"
    with path.open(encoding="utf-8") as handle:
        validated = tuple(validate_target(r, CATALOGUE) for r in csv.DictReader(handle))
    assert validated == load_plan_targets()


def test_target_values_convert_to_the_indicator_unit() -> None:
    raw = target_row(indicator="budget_revenue", base_value="1302000", target_value="2,000,000")
    target = validate_target(raw | {"unit": "CNY_10K", "annual_growth_pct": "9.0"}, CATALOGUE)
    assert (target.base_value, target.target_value, target.unit) == (130.2, 200.0, "CNY_100M")


def test_level_target_from_base_and_growth_only() -> None:
    target = validate_target(target_row(target_value=""), CATALOGUE)
    assert target.target_value is None and target.annual_growth_pct == 25.0


def test_binding_spellings() -> None:
    for text, binding in [("TRUE", True), ("约束性", True), ("预期性", False), ("", False)]:
        assert validate_target(target_row(binding=text), CATALOGUE).binding is binding
    assert validate_target(target_row(binding=True), CATALOGUE).binding is True


def test_target_withdrawal_needs_only_the_key() -> None:
    raw = {"plan": "14th-fyp", "zone": "jinan-hitech", "indicator": "gdp", "action": "D"}
    target = validate_target(raw | {"revision": "3"}, CATALOGUE)
    assert (target.key, target.action, target.revision) == (
        ("14th-fyp", "jinan-hitech", "gdp"),
        "D",
        3,
    )
    assert validate_target(target_to_wire(target), CATALOGUE) == target


GROWTH = target_row(
    indicator="gdp", kind="growth", base_value="6.5", target_value="", annual_growth_pct="10.0"
) | {"unit": "PCT"}

TARGET_REJECTIONS = [
    (target_row(plan=""), "malformed", "plan is missing"),
    (target_row(plan="14th|fyp"), "malformed", "without '|'"),
    (target_row(kind="stretch"), "malformed", "kind 'stretch' is not one of"),
    (target_row(base_year="twenty"), "malformed", "base_year 'twenty' is not a whole number"),
    (target_row(target_year=None), "malformed", "target_year is missing"),
    (target_row(binding="maybe"), "malformed", "binding 'maybe' is not true or false"),
    (target_row(unit=""), "malformed", "unit is missing"),
    (target_row(revision="-2"), "malformed", "revision"),
    (target_row(zone="atlantis-hitech"), "unknown_zone", "zone 'atlantis-hitech'"),
    (target_row(indicator="happiness"), "unknown_indicator", "indicator 'happiness'"),
    (target_row(target_value="lots"), "bad_value", "target_value 'lots' is not a number"),
    (target_row(base_value="-701.3"), "bad_value", "base_value -701.3 CNY_100M is negative"),
    (target_row(annual_growth_pct="-120"), "bad_value", "annual_growth_pct -120 is below -100"),
    (target_row(target_year="2020"), "bad_value", "target_year 2020 is not after base_year 2020"),
    (target_row(base_year="1800"), "bad_value", "base_year 1800 is outside 1949..2100"),
    (target_row(unit="USD_100M"), "unit_mismatch", "unit 'USD_100M' does not convert to CNY_100M"),
    (target_row(unit="PCT"), "unit_mismatch", "does not convert"),
    (GROWTH | {"unit": "CNY_100M"}, "unit_mismatch", "a growth target is a rate in PCT"),
    (GROWTH | {"annual_growth_pct": ""}, "bad_value", "a growth target needs annual_growth_pct"),
    (
        target_row(target_value="", annual_growth_pct=""),
        "bad_value",
        "a level target needs target_value, or base_value and annual_growth_pct",
    ),
    (
        target_row(kind="cumulative", target_value=""),
        "bad_value",
        "a cumulative target needs target_value",
    ),
    (
        target_row(kind="share", base_value=""),
        "bad_value",
        "a share target needs base_value and target_value",
    ),
]


@pytest.mark.parametrize(("raw", "reason", "fragment"), TARGET_REJECTIONS)
def test_target_rejections(raw: dict[str, Any], reason: str, fragment: str) -> None:
    with pytest.raises(RejectedInput) as info:
        validate_target(raw, CATALOGUE)
    assert (info.value.reason, fragment in info.value.detail) == (reason, True), info.value.detail


def test_growth_target_keeps_a_negative_base_rate() -> None:
    target = validate_target(GROWTH | {"base_value": "-3.2"}, CATALOGUE)
    assert (target.kind, target.base_value, target.unit) == ("growth", -3.2, "PCT")


@settings(max_examples=100, deadline=None)
@given(
    target=st.sampled_from(load_plan_targets()),
    revision=st.integers(0, 2**63 - 1),
    action=st.sampled_from(["I", "A", "R"]),
)
def test_target_wire_round_trip(target: PlanTarget, revision: int, action: str) -> None:
    target = PlanTarget(**(target.to_dict() | {"revision": revision, "action": action}))
    wire = target_to_wire(target)
    assert validate_target(orjson.loads(orjson.dumps(wire)), CATALOGUE) == target
