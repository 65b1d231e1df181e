"""out_of_reach: the required rest-of-year growth against the best the indicator has shown.

Worked by hand from DESIGN.md (flow level targets) on Jinan's import/export 701.3 → 2140 亿元.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from parkpulse.schemas.periods import YearMonth
from parkpulse.streams.observations import derive_series
from parkpulse.streams.plan import best_rest_growth, out_of_reach, rest_of_year_growth
from tests.test_plan_examples import figure, only, run

TRADE = "import_export_total"
HISTORY = (
    figure(TRADE, "2020-06", 330.0),
    figure(TRADE, "2020-12", 701.3),
    figure(TRADE, "2021-06", 400.0),
    figure(TRADE, "2021-12", 900.0),
    figure(TRADE, "2022-06", 450.0),
    figure(TRADE, "2022-12", 1000.0),
)
# A(2023) = 701.3·(2140/701.3)^(3/5) = 1369.651
# rest-of-year growth from June: 2021 (900−400)/(701.3−330) − 1 = +34.66 %;
#                                2022 (1000−450)/(900−400) − 1 = +10.00 %  → best +34.66 %


def test_a_target_needing_more_than_ever_shown_is_out_of_reach() -> None:
    row = only(run(TRADE, *HISTORY, figure(TRADE, "2023-06", 420.0)), "2023-06")
    # required = ((1369.651 − 420)/(1000 − 450) − 1)·100 = +72.66 % > +34.66 %
    assert row.required_growth_pct == pytest.approx(72.6637497)
    assert row.best_rest_growth_pct == pytest.approx(34.6619984)
    assert row.out_of_reach is True


def test_a_target_needing_less_is_within_reach() -> None:
    row = only(run(TRADE, *HISTORY, figure(TRADE, "2023-06", 800.0)), "2023-06")
    # required = ((1369.651 − 800)/550 − 1)·100 = +3.57 % ≤ +34.66 %
    assert row.required_growth_pct == pytest.approx(3.5728407)
    assert row.out_of_reach is False


def test_unknown_without_a_year_on_record_or_in_december() -> None:
    rows = run(TRADE, figure(TRADE, "2021-06", 400.0), figure(TRADE, "2021-12", 900.0))
    assert only(rows, "2021-06").out_of_reach is None  # no 2020: no required, no best
    assert only(rows, "2021-12").out_of_reach is False  # 900 ≥ A(2021) = 876.6: achieved
    december = only(run(TRADE, *HISTORY, figure(TRADE, "2023-12", 1000.0)), "2023-12")
    assert december.required_growth_pct is None and december.out_of_reach is None


def test_other_target_kinds_leave_it_unknown() -> None:
    rows = run("gdp", figure("gdp", "2021-06", 600.0, yoy_pct=8.0))
    assert {r.out_of_reach for r in rows} == {None}


@given(
    st.lists(st.floats(1.0, 1e4), min_size=6, max_size=6),
    st.integers(1, 11),
)
def test_best_is_the_max_over_the_years_on_record(values: list[float], month: int) -> None:
    # Three years of (month, December) pairs with December above the month: 2020..2022.
    figures = []
    for i, year in enumerate((2020, 2021, 2022)):
        upto, rest = values[2 * i], values[2 * i + 1]
        figures += [
            figure(TRADE, f"{year}-{month:02d}", upto),
            figure(TRADE, f"{year}-12", upto + rest),
        ]
    series = derive_series(figures, "flow")
    best = best_rest_growth(series, YearMonth(2023, month))
    each = [rest_of_year_growth(series, year, month) for year in (2021, 2022)]
    assert best == max(g for g in each if g is not None)
    # Growth is computed from differences of YTD sums: float noise is relative to the figures.
    candidates = ((values[5] / values[3] - 1) * 100, (values[3] / values[1] - 1) * 100)
    assert any(best == pytest.approx(c, rel=1e-6, abs=1e-6) for c in candidates)
    assert out_of_reach(best, best) is False
    assert out_of_reach(best + 1, best) is True
