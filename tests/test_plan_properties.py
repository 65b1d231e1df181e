"""Properties of the engine: replays, revisions, YTD ↔ monthly, attainment."""

from __future__ import annotations

import itertools
import math
from functools import reduce

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parkpulse.schemas.catalogue import Indicator, load_catalogue, load_plan_targets
from parkpulse.schemas.periods import YearMonth
from parkpulse.schemas.records import Observation, PlanTarget
from parkpulse.streams.observations import derive_series, merge
from parkpulse.streams.plan import evaluate

ZONE = "jinan-hitech"
CATALOGUE = load_catalogue()
TRADE = CATALOGUE.indicators["import_export_total"]
FAST = settings(max_examples=60, deadline=None)

months = st.integers(min_value=1, max_value=12)
amounts = st.floats(min_value=0.0, max_value=1e6, allow_nan=False, allow_infinity=False)
positive = st.floats(min_value=0.5, max_value=1e5, allow_nan=False, allow_infinity=False)


def figure(
    ind: Indicator, period: str, value: float | None, basis: str = "YTD", **kw
) -> Observation:
    return Observation(ZONE, ind.id, period, basis, value, ind.unit, **kw)


def synthetic(
    ind: Indicator, kind: str, b: int, v0: float | None, t: int, vt: float | None, g=None
):
    return PlanTarget("p", ZONE, ind.id, kind, b, v0, t, vt, g, False, ind.unit)


# -- replays, duplicates, revisions -----------------------------------------------------------


@st.composite
def trade_feeds(draw) -> list[Observation]:
    """Figures of one indicator over 2020–2021 with revisions, deletes and both sources."""
    keys = draw(
        st.lists(
            st.tuples(
                st.sampled_from([2020, 2021]),
                months,
                st.sampled_from(["YTD", "MONTH"]),
                st.sampled_from(["bureau", "registrations"]),
            ),
            min_size=1,
            max_size=12,
            unique=True,
        )
    )
    feed = []
    for year, month, basis, source in keys:
        for revision in draw(st.lists(st.integers(0, 3), min_size=1, max_size=3, unique=True)):
            delete = draw(st.booleans()) and draw(st.booleans())
            value = None if delete else draw(st.floats(1.0, 1000.0))
            feed.append(
                figure(
                    TRADE,
                    f"{year}-{month:02d}",
                    value,
                    basis,
                    revision=revision,
                    action="D" if delete else ("R" if revision else "I"),
                    source=source,
                    yoy_pct=draw(st.none() | st.floats(-50.0, 50.0)),
                )
            )
    return feed


@FAST
@given(feed=trade_feeds(), data=st.data())
def test_evaluation_ignores_arrival_order_and_duplicates(feed, data):
    targets = load_plan_targets()
    expected = evaluate(ZONE, TRADE, feed, targets)
    shuffled = data.draw(st.permutations(feed))
    replayed = shuffled + data.draw(st.lists(st.sampled_from(feed), max_size=10))
    assert evaluate(ZONE, TRADE, replayed, targets) == expected
    assert evaluate(ZONE, TRADE, feed + feed, targets) == expected


@FAST
@given(
    figures=st.lists(
        st.tuples(
            st.integers(0, 5), st.booleans(), st.sampled_from(["", "2021-04-15", "2021-05-15"])
        ),
        min_size=1,
        max_size=6,
    ),
    data=st.data(),
)
def test_revisions_in_any_order_end_at_the_highest(figures, data):
    # One value per revision, so no two upserts conflict; deletes and publish dates vary.
    feed = [
        figure(
            TRADE,
            "2021-03",
            None if delete else 100.0 + revision,
            revision=revision,
            action="D" if delete else "I",
            published_at=published,
        )
        for revision, delete, published in figures
    ]
    final = reduce(merge, data.draw(st.permutations(feed)), None)
    assert final == reduce(merge, feed, None)
    top = max(revision for revision, _, _ in figures)
    assert final.revision == top
    assert final.is_delete == any(delete for revision, delete, _ in figures if revision == top)


# -- YTD ↔ monthly -----------------------------------------------------------------------------


@FAST
@given(values=st.lists(amounts, min_size=1, max_size=12))
def test_monthly_to_ytd_and_back(values):
    feed = [figure(TRADE, f"2021-{m:02d}", v, "MONTH") for m, v in enumerate(values, start=1)]
    ytd = derive_series(feed).ytd
    sums = list(itertools.accumulate(values))
    assert [ytd[YearMonth(2021, m)] for m in range(1, len(values) + 1)] == pytest.approx(sums)
    again = derive_series([figure(TRADE, at.label, value) for at, value in ytd.items()]).monthly
    assert [again[YearMonth(2021, m)] for m in range(1, len(values) + 1)] == pytest.approx(
        values, rel=1e-9, abs=1e-6
    )


@FAST
@given(jan_feb=amounts, later=st.lists(amounts, max_size=10))
def test_combined_jan_feb_round_trips(jan_feb, later):
    # Bureau style: 1–2月 as one YTD, then months 3.. as MONTH figures.
    feed = [figure(TRADE, "2021-02", jan_feb)]
    feed += [figure(TRADE, f"2021-{m:02d}", v, "MONTH") for m, v in enumerate(later, start=3)]
    series = derive_series(feed)
    sums = list(itertools.accumulate([jan_feb, *later]))
    assert [series.ytd[YearMonth(2021, m)] for m in range(2, len(later) + 3)] == pytest.approx(sums)
    assert YearMonth(2021, 1) not in series.ytd
    ytd_only = derive_series([figure(TRADE, at.label, v) for at, v in series.ytd.items()])
    derived = [ytd_only.monthly[YearMonth(2021, m)] for m in range(3, len(later) + 3)]
    assert derived == pytest.approx(later, rel=1e-9, abs=1e-6)


# -- attainment --------------------------------------------------------------------------------

LOWER_FLOW = Indicator("energy_use", "能耗", "Energy use", "COUNT", "flow", False, "environment")
PM25 = CATALOGUE.indicators["pm25"]

# (indicator, target, basis of the figure)
CASES = {
    "level flow": (TRADE, synthetic(TRADE, "level", 2020, 701.3, 2025, 2140.0), "YTD"),
    "level flow, lower": (LOWER_FLOW, synthetic(LOWER_FLOW, "level", 2020, 100, 2025, 80.0), "YTD"),
    "level stock": (
        CATALOGUE.indicators["hitech_enterprises"],
        synthetic(CATALOGUE.indicators["hitech_enterprises"], "level", 2020, 1214, 2025, 2500.0),
        "LEVEL",
    ),
    "share": (
        CATALOGUE.indicators["rd_intensity"],
        synthetic(CATALOGUE.indicators["rd_intensity"], "share", 2020, 5.6, 2025, 6.5),
        "LEVEL",
    ),
    "share, lower": (PM25, synthetic(PM25, "share", 2020, 43.0, 2025, 35.0), "LEVEL"),
    "level on ratio, lower": (PM25, synthetic(PM25, "level", 2020, 43.0, 2025, 35.0), "LEVEL"),
}


def attainment(ind: Indicator, target: PlanTarget, basis: str, at: YearMonth, actual: float):
    rows = evaluate(ZONE, ind, [figure(ind, at.label, actual, basis)], [target])
    (row,) = [r for r in rows if r.period == at.label]
    return row.attainment


@FAST
@given(
    case=st.sampled_from(sorted(CASES)),
    year=st.integers(2021, 2025),
    month=months,
    pair=st.tuples(positive, positive).map(sorted),
)
def test_attainment_is_monotone_in_actual(case, year, month, pair):
    ind, target, basis = CASES[case]
    low, high = (attainment(ind, target, basis, YearMonth(year, month), a) for a in pair)
    if ind.higher_is_better:
        assert low <= high
    else:
        assert low >= high


@FAST
@given(year=st.integers(2021, 2025), month=months, pair=st.tuples(positive, positive).map(sorted))
def test_attainment_is_monotone_for_cumulative_and_growth(year, month, pair):
    medical = CATALOGUE.indicators["new_medical_institutions"]
    cumulative = synthetic(medical, "cumulative", 2020, 28, 2025, 125.0)
    gdp = CATALOGUE.indicators["gdp"]
    growth = synthetic(gdp, "growth", 2020, 6.5, 2025, None, g=10.0)
    at = YearMonth(year, month)
    full_years = [figure(medical, str(y), 20.0, "YEAR") for y in range(2021, year)]
    results = []
    for actual in pair:
        rows = evaluate(
            ZONE, medical, [*full_years, figure(medical, at.label, actual)], [cumulative]
        )
        (row,) = [r for r in rows if r.period == at.label]
        growth_rows = evaluate(
            ZONE, gdp, [figure(gdp, at.label, 1.0, yoy_pct=actual - 50)], [growth]
        )
        results.append((row.attainment, growth_rows[0].attainment))
    assert results[0][0] <= results[1][0]
    assert results[0][1] <= results[1][1]


def _on_path(kind: str, b: int, v0: float, t: int, vt: float, at: YearMonth) -> float:
    """The figure that is exactly on the DESIGN path at ``at`` (linear season for flows)."""
    span, years = t - b, at.year - b
    if kind == "share":
        e = [v0 + (vt - v0) * (y - b) / span for y in (at.year - 1, at.year)]
        return e[0] + (e[1] - e[0]) * at.month / 12
    a = [v0 * (vt / v0) ** ((y - b) / span) for y in (at.year - 1, at.year)]
    if kind == "flow":
        return a[1] * at.month / 12
    return a[0] * (a[1] / a[0]) ** (at.month / 12) if years > 0 else v0


@FAST
@given(
    kind=st.sampled_from(["flow", "stock", "share"]),
    v0=positive,
    vt=positive,
    span=st.integers(1, 6),
    data=st.data(),
)
def test_a_figure_on_its_path_has_attainment_one(kind, v0, vt, span, data):
    b, t = 2020, 2020 + span
    at = YearMonth(data.draw(st.integers(b + 1, t)), data.draw(months))
    ind = {"flow": TRADE, "stock": CATALOGUE.indicators["hitech_enterprises"]}.get(
        kind, CATALOGUE.indicators["rd_intensity"]
    )
    target = synthetic(ind, "share" if kind == "share" else "level", b, v0, t, vt)
    value = _on_path(kind, b, v0, t, vt, at)
    basis = "YTD" if kind == "flow" else "LEVEL"
    (row,) = evaluate(ZONE, ind, [figure(ind, at.label, value, basis)], [target])
    assert math.isclose(row.attainment, 1.0, abs_tol=1e-9)
    assert row.status in ("on_track", "achieved")


@FAST
@given(vt=positive, span=st.integers(1, 6), g=st.floats(-20.0, 40.0), data=st.data())
def test_cumulative_and_growth_on_their_paths_have_attainment_one(vt, span, g, data):
    b, t = 2020, 2020 + span
    at = YearMonth(data.draw(st.integers(b + 1, t)), data.draw(months))
    medical = CATALOGUE.indicators["new_medical_institutions"]
    per_year = vt / span  # an even pace: VT/(T−B) a year, spread linearly over the months
    feed = [figure(medical, str(y), per_year, "YEAR") for y in range(b + 1, at.year)]
    feed.append(figure(medical, at.label, per_year * at.month / 12))
    rows = evaluate(ZONE, medical, feed, [synthetic(medical, "cumulative", b, None, t, vt)])
    (row,) = [r for r in rows if r.period == at.label]
    assert math.isclose(row.attainment, 1.0, abs_tol=1e-9)
    gdp = CATALOGUE.indicators["gdp"]
    growth = synthetic(gdp, "growth", b, None, t, None, g=g)
    (row,) = evaluate(ZONE, gdp, [figure(gdp, at.label, 1.0, yoy_pct=g)], [growth])
    assert math.isclose(row.attainment, 1.0, abs_tol=1e-9)
    assert row.gap_pp == 0.0 and row.status == "on_track"
