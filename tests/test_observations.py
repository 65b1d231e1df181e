"""Revisions, deletes and the series derived from bureau and registrations figures."""

from __future__ import annotations

import pytest

from parkpulse.schemas.errors import RejectedInput
from parkpulse.schemas.periods import (
    YearMonth,
    evaluated_month,
    is_combined_jan_feb,
    parse_month,
    parse_period,
    quarter_months,
)
from parkpulse.schemas.records import Observation
from parkpulse.streams.observations import ObservationConflict, derive_series, merge, resolve

ZONE, TRADE = "jinan-hitech", "import_export_total"


def obs(period: str, value: float | None, basis: str = "YTD", **fields) -> Observation:
    return Observation(ZONE, TRADE, period, basis, value, "CNY_100M", **fields)


def ym(text: str) -> YearMonth:
    return parse_month(text)


# -- periods -------------------------------------------------------------------------------


def test_periods_evaluate_at_their_last_month():
    assert evaluated_month("2021-06") == YearMonth(2021, 6)
    assert evaluated_month("2021-Q2") == YearMonth(2021, 6)
    assert evaluated_month("2021-Q4") == YearMonth(2021, 12)
    assert evaluated_month("2021") == YearMonth(2021, 12)
    assert YearMonth(2021, 2).label == "2021-02"
    assert list(quarter_months(2)) == [4, 5, 6]
    assert is_combined_jan_feb("YTD", "2021-02")
    assert not is_combined_jan_feb("MONTH", "2021-02")


@pytest.mark.parametrize("bad", ["2021-13", "2021-00", "2021-Q5", "21-06", "2021/06", "", "2021-6"])
def test_bad_periods_are_rejected_with_reason(bad):
    with pytest.raises(RejectedInput) as err:
        parse_period(bad)
    assert err.value.reason == "bad_period"


def test_parse_month_refuses_quarters():
    with pytest.raises(RejectedInput):
        parse_month("2021-Q1")


# -- merge ---------------------------------------------------------------------------------


def test_first_figure_is_kept():
    first = obs("2021-03", 180.2)
    assert merge(None, first) is first


def test_identical_resend_returns_current_itself():
    current = obs("2021-03", 180.2, yoy_pct=35.1)
    again = obs("2021-03", 180.2, yoy_pct=35.1)
    assert merge(current, again) is current


def test_higher_revision_replaces_lower_in_either_order():
    old = obs("2021-03", 180.2, revision=0)
    new = obs("2021-03", 181.0, revision=1, action="R")
    assert merge(old, new) is new
    assert merge(new, old) is new


def test_delete_beats_insert_at_equal_revision():
    figure = obs("2021-03", 180.2, revision=2)
    tombstone = obs("2021-03", None, revision=2, action="D")
    assert merge(figure, tombstone) is tombstone
    assert merge(tombstone, figure) is tombstone


def test_a_later_revision_resurrects_a_deleted_key():
    tombstone = obs("2021-03", None, revision=1, action="D")
    back = obs("2021-03", 182.0, revision=2, action="R")
    assert merge(tombstone, back) is back


def test_conflict_raises_with_reason_conflict():
    current = obs("2021-03", 180.2, revision=0)
    with pytest.raises(ObservationConflict) as err:
        merge(current, obs("2021-03", 190.0, revision=0))
    assert err.value.reason == "conflict"
    assert isinstance(err.value, RejectedInput)
    with pytest.raises(ObservationConflict):  # a different YoY is a different figure too
        merge(current, obs("2021-03", 180.2, revision=0, yoy_pct=3.0))


def test_resolve_never_raises_and_ignores_order():
    a, b = obs("2021-03", 180.2), obs("2021-03", 190.0)
    assert resolve([a, b]) == resolve([b, a])


# -- derivation ----------------------------------------------------------------------------


def test_ytd_from_months_only_when_months_are_complete():
    # February and March are known but January is not: no YTD can be derived at all.
    series = derive_series([obs("2021-02", 30.0, "MONTH"), obs("2021-03", 40.0, "MONTH")])
    assert series.ytd == {}
    # With January too, YTD adds up: 20, 50, 90.
    series = derive_series(
        [
            obs("2021-01", 20.0, "MONTH"),
            obs("2021-02", 30.0, "MONTH"),
            obs("2021-03", 40.0, "MONTH"),
            obs("2021-05", 10.0, "MONTH"),  # April is missing: no YTD for May
        ]
    )
    assert series.ytd == {ym("2021-01"): 20.0, ym("2021-02"): 50.0, ym("2021-03"): 90.0}


def test_combined_jan_feb_ytd_counts_for_both_months():
    series = derive_series([obs("2021-02", 100.0), obs("2021-03", 47.2, "MONTH")])
    assert series.ytd[ym("2021-03")] == pytest.approx(147.2)
    assert ym("2021-01") not in series.monthly  # January alone is not known
    assert ym("2021-02") not in series.monthly


def test_monthly_from_consecutive_ytd():
    series = derive_series([obs("2021-02", 100.0), obs("2021-03", 147.2), obs("2021-05", 260.0)])
    assert series.monthly == {ym("2021-03"): pytest.approx(47.2)}


def test_quarter_and_year_bases_land_on_their_months():
    series = derive_series(
        [
            obs("2021-Q1", 147.2, "QUARTER"),
            obs("2021-Q2", 200.0, "QUARTER"),
            obs("2020", 701.3, "YEAR"),
        ]
    )
    assert series.ytd[ym("2021-03")] == pytest.approx(147.2)
    assert series.ytd[ym("2021-06")] == pytest.approx(347.2)
    assert series.ytd[ym("2020-12")] == pytest.approx(701.3)
    assert series.observed == {ym("2021-03"), ym("2021-06"), ym("2020-12")}


def test_bureau_yoy_is_kept_and_computed_only_when_missing():
    series = derive_series(
        [
            obs("2020-03", 100.0),
            obs("2020-06", 200.0),
            obs("2021-03", 150.0, yoy_pct=48.1),  # comparable-basis growth, not 150/100 − 1
            obs("2021-06", 250.0),
        ]
    )
    assert series.yoy_pct[ym("2021-03")] == 48.1
    assert series.yoy_pct[ym("2021-06")] == pytest.approx(25.0)


def test_growth_only_figure_feeds_yoy_not_values():
    series = derive_series([obs("2019", None, "YEAR", yoy_pct=22.9)])
    assert series.ytd == {}
    assert series.yoy_pct == {ym("2019-12"): 22.9}
    assert series.observed == {ym("2019-12")}


def test_bureau_figure_beats_registrations():
    bureau = obs("2021-06", 480.0)
    registrations = obs("2021-06", 455.0, source="registrations")
    only_registrations = obs("2021-03", 200.0, source="registrations")
    for order in (
        [bureau, registrations, only_registrations],
        [only_registrations, registrations, bureau],
    ):
        series = derive_series(order)
        assert series.ytd[ym("2021-06")] == 480.0
        assert series.ytd[ym("2021-03")] == 200.0  # the bureau has nothing for March


def test_deleted_figures_are_ignored():
    series = derive_series([obs("2021-06", 480.0), obs("2021-06", None, action="D")])
    assert series.ytd == {}
    assert series.observed == frozenset()


def test_stock_levels_prefer_the_level_basis():
    figures = [
        Observation(ZONE, "hitech_enterprises", "2021-06", "LEVEL", 1350.0, "COUNT"),
        Observation(ZONE, "hitech_enterprises", "2021-Q2", "QUARTER", 1300.0, "COUNT"),
        Observation(ZONE, "hitech_enterprises", "2020", "LEVEL", 1214.0, "COUNT"),
    ]
    series = derive_series(figures, kind="stock")
    assert series.level == {ym("2021-06"): 1350.0, ym("2020-12"): 1214.0}
    assert series.latest_level(ym("2021-05")) == 1214.0
    assert series.yoy_pct == {}  # no level a year before June 2021
    assert series.ytd == {}
