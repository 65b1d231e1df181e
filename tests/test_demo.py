"""The demo feed: deterministic, faithful to the seed figures, and shaped like a bureau's feed."""

from __future__ import annotations

import csv
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import pytest

from parkpulse.producers.demo import (
    CNY_10K_PERIODS,
    FEED_COLUMNS,
    REVISED,
    build_demo_feed,
    published_at,
    write_demo_feed,
)
from parkpulse.schemas.catalogue import (
    convert_unit,
    load_catalogue,
    load_plan_targets,
    reference_observation_rows,
)
from parkpulse.schemas.errors import RejectedInput
from parkpulse.schemas.validation import validate_observation

JINAN = "jinan-hitech"
Key = tuple[str, str, str, str]


@pytest.fixture(scope="module")
def feed() -> list[dict[str, str]]:
    return build_demo_feed()


def _is_bad(row: dict[str, str]) -> bool:
    catalogue = load_catalogue()
    indicator = catalogue.indicators.get(row["INDICATOR"])
    if row["ZONE"] not in catalogue.zones or indicator is None:
        return True
    return convert_unit(1.0, row["UNIT_MEASURE"], indicator.unit) is None


def _effective(feed: list[dict[str, str]]) -> dict[Key, tuple[float | None, float | None]]:
    """(value in the indicator's unit, yoy) per key, at the highest revision."""
    catalogue = load_catalogue()
    best: dict[Key, tuple[int, dict[str, str]]] = {}
    for row in feed:
        if _is_bad(row):
            continue
        key = (row["ZONE"], row["INDICATOR"], row["BASIS"], row["TIME_PERIOD"])
        revision = int(row["REVISION"])
        if key not in best or revision > best[key][0]:
            best[key] = (revision, row)
    out = {}
    for key, (_, row) in best.items():
        unit = catalogue.indicators[row["INDICATOR"]].unit
        value = (
            convert_unit(float(row["OBS_VALUE"]), row["UNIT_MEASURE"], unit)
            if row["OBS_VALUE"]
            else None
        )
        out[key] = (value, float(row["YOY_PCT"]) if row["YOY_PCT"] else None)
    return out


def _jinan_targets() -> dict[str, object]:
    return {t.indicator: t for t in load_plan_targets() if t.plan == "14th-fyp"}


def test_two_builds_are_equal() -> None:
    assert build_demo_feed() == build_demo_feed()
    assert build_demo_feed("2021-06") == build_demo_feed("2021-06")


def test_a_shorter_feed_is_a_prefix_of_the_longer_one(feed: list[dict[str, str]]) -> None:
    short = [tuple(r.values()) for r in build_demo_feed("2022-06") if not _is_bad(r)]
    full = {tuple(r.values()) for r in feed}
    assert short and all(row in full for row in short)
    assert all(r["TIME_PERIOD"] <= "2022-06" for r in build_demo_feed("2022-06")[:-3])


def test_rows_are_bureau_feed_rows(feed: list[dict[str, str]]) -> None:
    for row in feed:
        assert tuple(row) == FEED_COLUMNS
        assert all(isinstance(v, str) for v in row.values())
        assert row["STRUCTURE"] == "dataflow"
        assert row["STRUCTURE_ID"] == "PARKPULSE:ZONE_MONTHLY(1.0)"
        assert row["ACTION"] in {"I", "R"}
        assert row["OBS_STATUS"] in {"A", "P"}


def test_published_the_15th_of_the_next_month(feed: list[dict[str, str]]) -> None:
    assert published_at("2021-03") == "2021-04-15T09:00:00+08:00"
    assert published_at("2020-12") == "2021-01-15T09:00:00+08:00"
    assert published_at("2015") == "2016-01-15T09:00:00+08:00"
    body = feed[:-3]
    assert [r["PUBLISHED_AT"] for r in body] == sorted(r["PUBLISHED_AT"] for r in body)
    for row in body:
        if row["ACTION"] == "I":
            assert row["PUBLISHED_AT"] == published_at(row["TIME_PERIOD"])


def test_the_seed_facts_appear(feed: list[dict[str, str]]) -> None:
    eff = _effective(feed)
    assert eff[(JINAN, "import_export_total", "YTD", "2020-03")] == (147.2, 48.1)
    assert eff[(JINAN, "import_export_total", "YTD", "2020-12")][0] == 701.3
    assert eff[(JINAN, "import_export_total", "YEAR", "2020")][0] == 701.3
    # 2020-12 budget revenue is one of the rows published in 万元.
    raw = next(
        r
        for r in feed
        if (r["INDICATOR"], r["BASIS"], r["TIME_PERIOD"]) == ("budget_revenue", "YTD", "2020-12")
    )
    assert (raw["OBS_VALUE"], raw["UNIT_MEASURE"]) == ("1302000", "CNY_10K")
    assert eff[(JINAN, "budget_revenue", "YTD", "2020-12")][0] == pytest.approx(130.2)
    assert eff[(JINAN, "gdp", "YTD", "2020-12")] == (1291.5, 6.5)
    assert eff[(JINAN, "hitech_enterprises", "LEVEL", "2020-12")][0] == 1214
    assert eff[("jining-hitech", "hitech_enterprise_applications", "YTD", "2021-10")][0] == 94
    assert eff[("jining-hitech", "hitech_enterprises", "LEVEL", "2021-10")][0] == 140


def test_every_valid_seed_row_is_in_the_feed(feed: list[dict[str, str]]) -> None:
    keys = {(r["ZONE"], r["INDICATOR"], r["BASIS"], r["TIME_PERIOD"]): r for r in feed}
    left_out = []
    for seed in reference_observation_rows():
        key = (seed["zone"], seed["indicator"], seed["basis"], seed["time_period"])
        row = keys.get(key)
        if row is None:
            left_out.append(key)
            continue
        assert (row["OBS_VALUE"], row["UNIT_MEASURE"], row["YOY_PCT"]) == (
            seed["value"],
            seed["unit"],
            seed["yoy_pct"],
        )
    # Only the 2015 import/export total in 亿美元, a series break against the 亿元 indicator.
    assert left_out == [(JINAN, "import_export_total", "YEAR", "2015")]


def test_the_2020_base_year_matches_the_plan(feed: list[dict[str, str]]) -> None:
    eff = _effective(feed)
    for indicator, target in _jinan_targets().items():
        if target.kind == "level":
            basis = "YTD" if load_catalogue().indicators[indicator].kind == "flow" else "LEVEL"
            assert eff[(JINAN, indicator, basis, "2020-12")][0] == pytest.approx(target.base_value)
        elif target.kind == "share":
            assert eff[(JINAN, indicator, "LEVEL", "2020-12")][0] == pytest.approx(
                target.base_value
            )
        elif target.kind == "growth":
            assert eff[(JINAN, indicator, "YTD", "2020-12")][1] == target.base_value
        elif target.kind == "cumulative":
            months = [eff[(JINAN, indicator, "MONTH", f"2020-{m:02d}")][0] for m in range(1, 13)]
            assert sum(months) == target.base_value


def test_ytd_never_falls_within_a_year(feed: list[dict[str, str]]) -> None:
    series: dict[tuple[str, str, str], list[tuple[str, float]]] = defaultdict(list)
    for (zone, indicator, basis, period), (value, _) in _effective(feed).items():
        if basis == "YTD" and value is not None:
            series[(zone, indicator, period[:4])].append((period, value))
    assert len(series) > 20
    for key, points in series.items():
        values = [v for _, v in sorted(points)]
        assert values == sorted(values), key
    # ...and the provisional first prints of revised YTD figures do not break that either.
    first_prints = {
        (r["INDICATOR"], r["TIME_PERIOD"]): float(r["OBS_VALUE"])
        for r in feed
        if r["OBS_STATUS"] == "P" and r["BASIS"] == "YTD"
    }
    eff = _effective(feed)
    for (indicator, period), value in first_prints.items():
        before = f"{period[:5]}{int(period[5:]) - 1:02d}"
        assert eff[(JINAN, indicator, "YTD", before)][0] <= value


def test_january_is_never_published_alone(feed: list[dict[str, str]]) -> None:
    assert not [r for r in feed if r["BASIS"] == "YTD" and r["TIME_PERIOD"].endswith("-01")]


def test_every_jinan_target_gets_months_from_2020(feed: list[dict[str, str]]) -> None:
    catalogue = load_catalogue()
    by_indicator: dict[str, set[tuple[str, str]]] = defaultdict(set)
    no_yoy: set[str] = set()
    for row in feed:
        if row["ZONE"] == JINAN and len(row["TIME_PERIOD"]) == 7:
            by_indicator[row["INDICATOR"]].add((row["BASIS"], row["TIME_PERIOD"]))
            if not row["YOY_PCT"]:
                no_yoy.add(row["INDICATOR"])
    years = range(2020, 2024)
    for indicator, target in _jinan_targets().items():
        kind = catalogue.indicators[indicator].kind
        got = by_indicator[indicator]
        if kind == "flow" and target.kind in {"level", "growth"}:
            assert got == {("YTD", f"{y}-{m:02d}") for y in years for m in range(2, 13)}
            assert indicator not in no_yoy
        elif target.kind == "cumulative":
            assert got == {("MONTH", f"{y}-{m:02d}") for y in years for m in range(1, 13)}
        elif target.kind == "share":
            assert got == {("LEVEL", f"{y}-{m:02d}") for y in years for m in (3, 6, 9, 12)}
        else:  # stocks and the qualitative targets
            assert got == {("LEVEL", f"{y}-{m:02d}") for y in years for m in range(1, 13)}


def test_units_are_the_indicators_except_the_wan_yuan_rows(feed: list[dict[str, str]]) -> None:
    catalogue = load_catalogue()
    odd = [
        (r["INDICATOR"], r["TIME_PERIOD"])
        for r in feed[:-3]
        if r["UNIT_MEASURE"] != catalogue.indicators[r["INDICATOR"]].unit
    ]
    assert odd == [("budget_revenue", p) for p in CNY_10K_PERIODS]


def test_month_counts_are_whole_and_not_negative(feed: list[dict[str, str]]) -> None:
    counts = [r["OBS_VALUE"] for r in feed if r["BASIS"] == "MONTH"]
    assert counts and all(c.isdigit() for c in counts)


def test_listed_companies_fall_for_a_while(feed: list[dict[str, str]]) -> None:
    eff = _effective(feed)
    levels = [eff[(JINAN, "listed_companies", "LEVEL", f"2021-{m:02d}")][0] for m in range(1, 13)]
    assert levels[-1] < 116 and levels == sorted(levels, reverse=True)


def test_three_figures_are_revised(feed: list[dict[str, str]]) -> None:
    for key in REVISED:
        rows = [
            (i, r)
            for i, r in enumerate(feed)
            if (r["ZONE"], r["INDICATOR"], r["BASIS"], r["TIME_PERIOD"]) == key
        ]
        assert len(rows) == 2, key
        (i, first), (j, second) = rows
        assert i < j
        assert (first["ACTION"], first["REVISION"], first["OBS_STATUS"]) == ("I", "0", "P")
        assert (second["ACTION"], second["REVISION"], second["OBS_STATUS"]) == ("R", "1", "A")
        assert first["OBS_VALUE"] != second["OBS_VALUE"]
        assert second["PUBLISHED_AT"] > first["PUBLISHED_AT"]
    assert sum(r["ACTION"] == "R" for r in feed) == len(REVISED) == 3


def test_exactly_three_bad_rows_at_the_end(feed: list[dict[str, str]]) -> None:
    bad = [i for i, r in enumerate(feed) if _is_bad(r)]
    assert bad == [len(feed) - 3, len(feed) - 2, len(feed) - 1]
    catalogue = load_catalogue()
    zone, indicator, unit = feed[-3:]
    assert zone["ZONE"] not in catalogue.zones
    assert indicator["INDICATOR"] not in catalogue.indicators
    assert (unit["INDICATOR"], unit["UNIT_MEASURE"]) == ("retail_sales", "USD_100M")


def _plan_path(target, year: int) -> float:
    v0, vt = target.base_value, target.target_value
    return v0 * (vt / v0) ** ((year - target.base_year) / (target.target_year - target.base_year))


# The mix the demo is designed to show at 2023-12: ahead (achieved / on track), at risk, behind.
DESIGNED = {
    "budget_revenue": "at_risk",
    "retail_sales": "behind",
    "new_high_end_talent": "ahead",
    "import_export_total": "ahead",
    "foreign_capital_used": "behind",
    "new_urban_jobs": "at_risk",
    "gdp": "ahead",
    "industrial_value_added": "at_risk",
    "fixed_asset_investment": "behind",
    "hitech_enterprises": "ahead",
    "listed_companies": "at_risk",
    "new_rd_institutions": "behind",
    "overseas_rd_institutions": "behind",
    "hitech_service_revenue_share": "behind",
    "investment_intensity": "at_risk",
    "tax_per_mu": "ahead",
    "new_medical_institutions": "ahead",
    "new_schools": "at_risk",
}


def test_the_designed_mix_at_2023_12(feed: list[dict[str, str]]) -> None:
    """attainment at month 12 per DESIGN.md: s(12) = 1, a stock or share expects A(y) / E(y)."""
    eff = _effective(feed)
    catalogue = load_catalogue()
    targets = _jinan_targets()
    for indicator, designed in DESIGNED.items():
        target = targets[indicator]
        kind = catalogue.indicators[indicator].kind
        if target.kind == "growth":
            gap = eff[(JINAN, indicator, "YTD", "2023-12")][1] - target.annual_growth_pct
            grade = "ahead" if gap >= 0 else "at_risk" if gap >= -2 else "behind"
        else:
            if target.kind == "cumulative":
                actual = sum(
                    eff[(JINAN, indicator, "MONTH", f"{y}-{m:02d}")][0]
                    for y in (2021, 2022, 2023)
                    for m in range(1, 13)
                )
                expected = target.target_value * 36 / 60
            elif target.kind == "share":
                actual = eff[(JINAN, indicator, "LEVEL", "2023-12")][0]
                v0, vt = target.base_value, target.target_value
                expected = v0 + (vt - v0) * 3 / 5
            else:
                basis = "YTD" if kind == "flow" else "LEVEL"
                actual = eff[(JINAN, indicator, basis, "2023-12")][0]
                expected = _plan_path(target, 2023)
            ratio = actual / expected
            grade = "ahead" if ratio >= 1 else "at_risk" if ratio >= 0.95 else "behind"
        assert grade == designed, (indicator, grade)


def test_write_demo_feed_reads_back_the_same_rows(tmp_path: Path) -> None:
    path = tmp_path / "demo.csv"
    count = write_demo_feed(path)
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames or ()) == FEED_COLUMNS
        rows = list(reader)
    assert count == len(rows)
    assert rows == build_demo_feed()


def test_every_row_but_the_three_bad_ones_validates(feed: list[dict[str, str]]) -> None:
    catalogue = load_catalogue()
    now = datetime(2026, 11, 21, tzinfo=UTC)
    reasons = []
    for row in feed[:-3]:
        validate_observation(row, catalogue, now=now)
    for row in feed[-3:]:
        with pytest.raises(RejectedInput) as caught:
            validate_observation(row, catalogue, now=now)
        reasons.append(caught.value.reason)
    assert reasons == ["unknown_zone", "unknown_indicator", "unit_mismatch"]
