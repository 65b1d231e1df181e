"""The engine's shortcuts (issue 14) give what the formulas they replace give, value for value.

Each reference below is the code as it stood before the shortcut: a month made afresh instead of
once per year, a basis ranked by ``tuple.index``, four look-ups in a list. They are kept here, not
in the engine, so that a later shortcut is checked against the formula and not against itself.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from parkpulse.schemas.periods import YearMonth, months_of
from parkpulse.schemas.records import Observation
from parkpulse.streams.observations import (
    LEVEL_BASES,
    YTD_BASES,
    Series,
    _chain_ytd,
    _figures,
    _first_by_month,
    _flow_ytd,
    _is_ytd_figure,
    _monthly_from_ytd,
    derive_series,
    derive_values,
)
from parkpulse.streams.plan import best_rest_growth, rest_of_year_growth, seasonal_share
from parkpulse.streams.plausibility import (
    LEVEL_LOOKBACK_MONTHS,
    _judge,
    _months_apart,
    suspicions,
)

FAST = settings(max_examples=100, deadline=None)
years = st.integers(1, 9999)
months = st.integers(1, 12)
any_month = st.integers(-3, 15)  # also what no parsed period has: the fallbacks answer those
values = st.floats(-1e6, 1e6, allow_nan=False)
month_values = st.dictionaries(st.builds(YearMonth, st.integers(2018, 2023), months), values)
# Most months of 2018..2023 on record, so that a growth needing four of them is often known.
dense_ytd = st.lists(st.none() | st.floats(0, 1e6), min_size=72, max_size=72).map(
    lambda figures: {
        YearMonth(2018 + i // 12, i % 12 + 1): v for i, v in enumerate(figures) if v is not None
    }
)


@FAST
@given(year=st.integers(-5, 99999), month=any_month)
def test_a_label_is_the_formatted_month(year: int, month: int) -> None:
    assert YearMonth(year, month).label == f"{year:04d}-{month:02d}"


@FAST
@given(year=years, month=any_month)
def test_the_months_made_once_are_the_months(year: int, month: int) -> None:
    before = YearMonth(year, month).previous_year()
    assert before == YearMonth(year - 1, month) and type(before) is YearMonth
    if 1 <= month <= 12:
        assert months_of(year)[month - 1] == YearMonth(year, month)
    assert len(months_of(year)) == 12


def _first_by_month_reference(figures, bases, field) -> dict:
    ranked = sorted(
        (f for f in figures if f.obs.basis in bases and getattr(f.obs, field) is not None),
        key=lambda f: (bases.index(f.obs.basis), f.obs.period),
    )
    out: dict = {}
    for figure in ranked:
        out.setdefault(figure.at, getattr(figure.obs, field))
    return out


periods = st.builds(
    lambda y, kind, n: {"month": f"{y}-{n:02d}", "quarter": f"{y}-Q{(n + 2) // 3}", "year": f"{y}"}[
        kind
    ],
    st.integers(2019, 2021),
    st.sampled_from(["month", "quarter", "year"]),
    months,
)
observations = st.builds(
    lambda period, basis, value, yoy, source: Observation(
        "z", "gdp", period, basis, value, "亿元", yoy_pct=yoy, source=source
    ),
    periods,
    st.sampled_from(["YTD", "YEAR", "LEVEL", "QUARTER", "MONTH"]),
    st.none() | values,
    st.none() | st.floats(-50, 50),
    st.sampled_from(["bureau", "registrations"]),
)


@FAST
@given(feed=st.lists(observations, max_size=25), field=st.sampled_from(["value", "yoy_pct"]))
def test_first_by_month_ranks_bases_as_their_order_did(feed, field) -> None:
    figures = _figures(feed)
    for bases in (YTD_BASES, LEVEL_BASES, ("LEVEL",)):
        got = _first_by_month(figures, bases, field)
        want = _first_by_month_reference(figures, bases, field)
        assert list(got.items()) == list(want.items())  # the same months, in the same order


def _chain_ytd_reference(ytd, monthly, quarters) -> dict:
    out = dict(ytd)
    for year in sorted({at.year for at in (*ytd, *monthly, *quarters)}):
        for month in range(1, 13):
            at = YearMonth(year, month)
            if at in out:
                continue
            before = out.get(YearMonth(year, month - 1)) if month > 1 else 0.0
            quarter_start = out.get(YearMonth(year, month - 3)) if month > 3 else 0.0
            if before is not None and at in monthly:
                out[at] = before + monthly[at]
            elif at in quarters and quarter_start is not None:
                out[at] = quarter_start + quarters[at]
    return out


def _monthly_from_ytd_reference(ytd, monthly) -> dict:
    out = dict(monthly)
    for at, value in ytd.items():
        if at in out:
            continue
        if at.month == 1:
            out[at] = value
        elif (before := ytd.get(YearMonth(at.year, at.month - 1))) is not None:
            out[at] = value - before
    return out


@FAST
@given(ytd=month_values, monthly=month_values, quarters=month_values)
def test_the_ytd_chain_and_its_differences_are_the_formulas(ytd, monthly, quarters) -> None:
    chained = _chain_ytd(ytd, monthly, quarters)
    assert list(chained.items()) == list(_chain_ytd_reference(ytd, monthly, quarters).items())
    got, want = _monthly_from_ytd(chained, monthly), _monthly_from_ytd_reference(chained, monthly)
    assert list(got.items()) == list(want.items())


def _rest_of_year_growth_reference(series: Series, year: int, month: int) -> float | None:
    figures = [series.ytd.get(YearMonth(y, m)) for y in (year, year - 1) for m in (12, month)]
    if month >= 12 or any(f is None for f in figures):
        return None
    full, upto, prior_full, prior_upto = figures  # type: ignore[misc]
    remainder = prior_full - prior_upto
    if remainder <= 0:
        return None
    return ((full - upto) / remainder - 1) * 100


def _series(ytd: dict) -> Series:
    return Series(ytd, {}, {}, {}, frozenset(ytd), ())


@FAST
@given(ytd=dense_ytd, year=st.integers(2017, 2024), month=st.integers(1, 13))
def test_rest_of_year_growth_and_the_best_of_it_are_the_formulas(ytd, year, month) -> None:
    series = _series(ytd)
    assert rest_of_year_growth(series, year, month) == _rest_of_year_growth_reference(
        series, year, month
    )
    if month <= 12:  # the best of the years before, memoised per series, is max over them
        each = [
            g
            for k in sorted({at.year for at in ytd if at.year < year})
            if (g := _rest_of_year_growth_reference(series, k, month)) is not None
        ]
        best = best_rest_growth(series, YearMonth(year, month))
        assert best == (max(each) if each else None)
        assert best_rest_growth(series, YearMonth(year, month)) == best  # asked again: the memo


@FAST
@given(ytd=dense_ytd, year=st.integers(2017, 2024), month=months)
def test_seasonal_share_is_last_years_ytd_over_its_december(ytd, year, month) -> None:
    prior, full = ytd.get(YearMonth(year - 1, month)), ytd.get(YearMonth(year - 1, 12))
    if prior is not None and full is not None and full > 0 and prior >= 0:
        want = (prior / full, "prior_year")
    else:
        want = (month / 12, "linear")
    assert seasonal_share(_series(ytd), YearMonth(year, month)) == want


@FAST
@given(feed=st.lists(observations, max_size=25), kind=st.sampled_from(["flow", "stock"]))
def test_judging_derives_the_values_the_engine_evaluates(feed, kind) -> None:
    series = derive_series(feed, kind)
    got = derive_values(feed, kind)
    assert list(got.items()) == list((series.ytd if kind == "flow" else series.level).items())


def _flow_ytd_reference(figures) -> tuple[dict, dict]:
    with_value = [f for f in figures if f.obs.value is not None]
    ytd = _first_by_month([f for f in with_value if _is_ytd_figure(f)], YTD_BASES, "value")
    monthly = {
        f.at: f.obs.value for f in with_value if f.obs.basis == "MONTH" and f.period.kind == "month"
    }
    quarters = {
        f.at: f.obs.value
        for f in with_value
        if f.obs.basis == "QUARTER" and f.period.kind == "quarter"
    }
    return _chain_ytd_reference(ytd, monthly, quarters), monthly


@FAST
@given(feed=st.lists(observations, max_size=25))
def test_one_pass_over_a_flows_figures_is_the_three_filters(feed) -> None:
    figures = _figures(feed)
    got, want = _flow_ytd(figures), _flow_ytd_reference(figures)
    assert [list(m.items()) for m in got] == [list(m.items()) for m in want]


def _suspicions_reference(values, kind, factor) -> dict:
    flow = kind == "flow"
    out = {}
    before = None
    for at in sorted(values):
        value = values[at]
        if value != value or value in (float("inf"), float("-inf")):
            continue
        if before is not None:
            previous_at, previous = before
            comparable = (
                previous_at.year == at.year
                if flow
                else _months_apart(previous_at, at) <= LEVEL_LOOKBACK_MONTHS
            )
            if comparable:
                found = _judge(at, value, previous_at, previous, flow, factor)
                if found is not None:
                    out[at] = found
        before = (at, value)
    return out


@FAST
@given(
    values=st.dictionaries(
        st.builds(YearMonth, st.integers(2019, 2021), months),
        st.floats(-10, 1e4) | st.sampled_from([float("nan"), float("inf"), 0.0]),
    ),
    kind=st.sampled_from(["flow", "stock"]),
    factor=st.sampled_from([1.5, 10.0, float("inf")]),
)
def test_suspicions_are_the_walk_they_were(values, kind, factor) -> None:
    got = suspicions(values, kind, factor)
    assert list(got.items()) == list(_suspicions_reference(values, kind, factor).items())
