"""Worked examples from 表2 of the Jinan High-tech Zone 14th Five-Year Plan (seed 004).

The numbers in the comments are worked by hand from DESIGN.md "The plan-target engine";
the assertions check the engine reproduces them.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from parkpulse.schemas.catalogue import load_catalogue, load_plan_targets
from parkpulse.schemas.records import IndicatorStatus, Observation, PlanTarget
from parkpulse.streams.plan import Thresholds, evaluate, latest, scorecard

JINAN, JINING = "jinan-hitech", "jining-hitech"
CATALOGUE = load_catalogue()


def target(zone: str, indicator: str) -> PlanTarget:
    (found,) = [t for t in load_plan_targets() if t.zone == zone and t.indicator == indicator]
    return found


def figure(
    indicator: str, period: str, value: float | None, basis: str = "YTD", zone: str = JINAN, **kw
) -> Observation:
    unit = CATALOGUE.indicators[indicator].unit
    return Observation(zone, indicator, period, basis, value, unit, **kw)


def run(indicator: str, *figures: Observation, zone: str = JINAN, **kw) -> list[IndicatorStatus]:
    """Evaluate one indicator against the bundled plan targets."""
    return evaluate(zone, CATALOGUE.indicators[indicator], figures, load_plan_targets(), **kw)


def only(rows: list[IndicatorStatus], period: str) -> IndicatorStatus:
    (row,) = [r for r in rows if r.period == period]
    return row


# -- level target on a flow: import/export 701.3 → 2140 亿元 by 2025 (25 %/yr) ------------------

# A(2021) = 701.3·(2140/701.3)^(1/5) = 701.3·1.249977 = 876.609
A2021_TRADE = 876.6087994


def test_import_export_2021_06_without_prior_year_uses_linear_season():
    rows = run("import_export_total", figure("import_export_total", "2021-06", 480.0))
    row = only(rows, "2021-06")
    # No 2020 months: s(6) = 6/12 = 0.5; expected = 876.609·0.5 = 438.304
    assert row.seasonal_source == "linear"
    assert row.annual_target == pytest.approx(A2021_TRADE)
    assert row.expected == pytest.approx(438.3043997)
    # attainment = 480 / 438.304 = 1.09513 → on_track; gap = +9.51 pp
    assert row.attainment == pytest.approx(1.0951293)
    assert row.gap_pp == pytest.approx(9.5129322)
    assert row.status == "on_track"
    # projected year end = 480 / 0.5 = 960; no prior year, so no required growth
    assert row.projected_year_end == pytest.approx(960.0)
    assert row.required_growth_pct is None
    assert row.kind == "level" and row.binding is False


def test_import_export_2021_06_with_prior_year_season():
    rows = run(
        "import_export_total",
        figure("import_export_total", "2020", 701.3, "YEAR"),
        figure("import_export_total", "2020-06", 330.0),
        figure("import_export_total", "2021-06", 480.0),
    )
    assert [r.period for r in rows] == ["2021-06"]  # 2020 only feeds the season
    row = rows[0]
    # s(6) = YTD(2020,6)/YTD(2020,12) = 330/701.3 = 0.470555
    # expected = 876.609·0.470555 = 412.492; attainment = 480/412.492 = 1.16366
    assert row.seasonal_source == "prior_year"
    assert row.expected == pytest.approx(412.4923767)
    assert row.attainment == pytest.approx(1.1636579)
    # projected = 480/0.470555 = 1020.07
    assert row.projected_year_end == pytest.approx(1020.0727273)
    # required growth = ((876.609 − 480)/(701.3 − 330) − 1)·100 = (396.609/371.3 − 1)·100 = 6.816 %
    assert row.required_growth_pct == pytest.approx(6.816267)
    assert row.status == "on_track"


def test_import_export_first_plan_month_is_combined_jan_feb():
    prior = [
        figure("import_export_total", "2020", 701.3, "YEAR"),
        figure("import_export_total", "2020-02", 95.0),
    ]
    jan_feb = figure("import_export_total", "2021-02", 120.0)
    row = only(run("import_export_total", *prior, jan_feb), "2021-02")
    # s(2) = 95/701.3 = 0.135462; expected = 876.609·0.135462 = 118.748; 120/118.748 = 1.01054
    assert row.seasonal_source == "prior_year"
    assert row.expected == pytest.approx(876.6087994 * 95 / 701.3)
    assert row.attainment == pytest.approx(120 / (876.6087994 * 95 / 701.3))
    assert row.status == "on_track"
    # Without last year's months: s(2) = 2/12; expected = 146.10; 120/146.10 = 0.8213 → behind
    row = only(run("import_export_total", jan_feb), "2021-02")
    assert row.seasonal_source == "linear"
    assert row.expected == pytest.approx(146.1014666)
    assert row.status == "behind"


def test_import_export_real_q1_2020_figure_sets_the_season():
    # observations.csv: 2020-03 YTD 147.2 and 2020 YEAR 701.3 → s(3) = 0.209896
    rows = run(
        "import_export_total",
        figure("import_export_total", "2020-03", 147.2, yoy_pct=48.1),
        figure("import_export_total", "2020", 701.3, "YEAR"),
        figure("import_export_total", "2021-03", 180.2, yoy_pct=35.1),
    )
    row = only(rows, "2021-03")
    # expected = 876.609·0.209896 = 183.997; attainment = 180.2/183.997 = 0.97937 → at_risk
    assert row.expected == pytest.approx(183.9965996)
    assert row.attainment == pytest.approx(0.9793660)
    assert row.status == "at_risk"


@pytest.mark.parametrize(
    ("prior_june", "why"),
    [(701.3, "zero remainder: all of 2020 happened by June"), (720.0, "negative remainder")],
)
def test_required_growth_is_none_without_a_positive_prior_year_remainder(prior_june, why):
    rows = run(
        "import_export_total",
        figure("import_export_total", "2020", 701.3, "YEAR"),
        figure("import_export_total", "2020-06", prior_june),
        figure("import_export_total", "2021-06", 480.0),
    )
    assert only(rows, "2021-06").required_growth_pct is None, why


# -- budget revenue 130.2 → 200 亿元 ------------------------------------------------------------


def test_budget_revenue_march_and_december():
    # A(2021) = 130.2·(200/130.2)^(1/5) = 130.2·1.089642 = 141.871
    rows = run(
        "budget_revenue",
        figure("budget_revenue", "2020", 130.2, "YEAR"),
        figure("budget_revenue", "2021-03", 38.0),
        figure("budget_revenue", "2021-12", 140.0),
    )
    march = only(rows, "2021-03")
    # 2020 has a full year but no March: s(3) = 3/12; expected = 35.468; 38/35.468 = 1.07138
    assert march.annual_target == pytest.approx(141.8713778)
    assert march.seasonal_source == "linear"
    assert march.expected == pytest.approx(35.4678445)
    assert march.status == "on_track"
    december = only(rows, "2021-12")
    # December: s(12) = YTD(2020,12)/YTD(2020,12) = 1; expected = 141.871; 140/141.871 = 0.986809
    assert december.seasonal_source == "prior_year"
    assert december.expected == pytest.approx(141.8713778)
    assert december.attainment == pytest.approx(0.9868093)
    assert december.status == "at_risk"
    assert december.projected_year_end == pytest.approx(140.0)
    assert december.required_growth_pct is None  # no months left


def test_budget_revenue_second_year_path():
    # A(2022) = 130.2·1.089642² = 154.589
    row = run("budget_revenue", figure("budget_revenue", "2022-06", 80.0))[0]
    assert row.annual_target == pytest.approx(154.5890003)
    assert row.expected == pytest.approx(154.5890003 / 2)


def test_level_target_already_exceeded_is_achieved():
    row = run("budget_revenue", figure("budget_revenue", "2021-11", 150.0))[0]
    # 150 ≥ A(2021) = 141.871 with a month to go
    assert row.status == "achieved"
    assert row.attainment == pytest.approx(150 / (141.8713778 * 11 / 12))


# -- growth target: GDP growth 10 % -----------------------------------------------------------


@pytest.mark.parametrize(
    ("yoy", "status", "attainment"),
    [
        (12.0, "on_track", 1.12 / 1.1),  # gap +2 pp; growth targets are never "achieved"
        (10.0, "on_track", 1.0),
        (8.5, "at_risk", 1.085 / 1.1),  # gap −1.5 pp ≥ −2
        (7.0, "behind", 1.07 / 1.1),  # gap −3 pp
    ],
)
def test_gdp_growth(yoy, status, attainment):
    row = run("gdp", figure("gdp", "2021-06", 660.0, yoy_pct=yoy))[0]
    assert row.kind == "growth"
    assert row.actual == yoy
    assert row.annual_target == 10.0 and row.expected == 10.0
    assert row.gap_pp == pytest.approx(yoy - 10.0)
    assert row.attainment == pytest.approx(attainment)
    assert row.status == status


def test_gdp_growth_computed_only_when_the_bureau_gives_none():
    rows = run("gdp", figure("gdp", "2020-06", 600.0), figure("gdp", "2021-06", 645.0))
    # (645/600 − 1)·100 = 7.5 % → gap −2.5 pp → behind
    assert only(rows, "2021-06").actual == pytest.approx(7.5)
    assert only(rows, "2021-06").status == "behind"


def test_gdp_growth_without_yoy_or_prior_year_is_no_data():
    (row,) = run("gdp", figure("gdp", "2021-06", 645.0))
    assert (row.period, row.status, row.actual, row.expected) == ("2021-01", "no_data", None, None)


# -- share target: R&D intensity 5.6 → 6.5 % ---------------------------------------------------


@pytest.mark.parametrize(
    ("level", "status"),
    [(5.8, "achieved"), (5.7, "on_track"), (5.5, "at_risk"), (5.0, "behind")],
)
def test_rd_intensity_share(level, status):
    row = run("rd_intensity", figure("rd_intensity", "2021-06", level, "LEVEL"))[0]
    # E(2021) = 5.6 + (6.5 − 5.6)·1/5 = 5.78; expected(June) = 5.6 + 0.18·6/12 = 5.69
    assert row.annual_target == pytest.approx(5.78)
    assert row.expected == pytest.approx(5.69)
    assert row.attainment == pytest.approx(level / 5.69)  # 5.7 → 1.00176, 5.5 → 0.96661
    assert row.status == status
    assert row.projected_year_end is None and row.seasonal_source is None


# -- cumulative target: new medical institutions [125] over 2021–2025 --------------------------


def test_new_medical_institutions_cumulative():
    rows = run(
        "new_medical_institutions",
        figure("new_medical_institutions", "2020", 28.0, "YEAR"),  # before the plan: not counted
        figure("new_medical_institutions", "2021", 26.0, "YEAR"),
        figure("new_medical_institutions", "2022-06", 12.0),
    )
    # 2021-12: actual 26; expected = 125·12/60 = 25 → 26/25 = 1.04
    assert only(rows, "2021-12").expected == pytest.approx(25.0)
    assert only(rows, "2021-12").status == "on_track"
    # 2022-06: actual = 26 + 12 = 38; expected = 125·((2022−2020−1)·12 + 6)/(5·12) = 37.5
    row = only(rows, "2022-06")
    assert row.actual == 38.0
    assert row.expected == pytest.approx(37.5)
    assert row.annual_target == 125.0
    assert row.attainment == pytest.approx(38 / 37.5)
    assert row.status == "on_track"


def test_cumulative_needs_every_full_plan_year():
    # 2021 is unknown, so the sum since 2020 cannot be formed.
    (row,) = run("new_medical_institutions", figure("new_medical_institutions", "2022-06", 12.0))
    assert row.status == "no_data" and row.period == "2021-01"


def test_cumulative_reaching_the_total_is_achieved():
    figures = [figure("new_medical_institutions", str(y), 30.0, "YEAR") for y in (2021, 2022, 2023)]
    figures.append(figure("new_medical_institutions", "2024-03", 40.0))
    row = only(run("new_medical_institutions", *figures), "2024-03")
    assert row.actual == 130.0  # ≥ 125
    assert row.status == "achieved"


# -- qualitative: air quality "完成市下达指标" -------------------------------------------------


def test_air_quality_is_not_evaluated():
    rows = run("good_air_days_ratio", figure("good_air_days_ratio", "2021-06", 70.0, "LEVEL"))
    (row,) = rows
    assert (row.period, row.status, row.actual, row.binding) == (
        "2021-06",
        "not_evaluated",
        70.0,
        True,
    )
    assert row.expected is None and row.attainment is None
    (row,) = run("good_air_days_ratio")
    assert (row.period, row.status, row.actual) == ("2021-01", "not_evaluated", None)


# -- stock: high-tech enterprises 1214 → 2500 -------------------------------------------------

# A(2021) = 1214·(2500/1214)^(1/5) = 1214·1.155432 = 1402.694
# expected(June 2021) = A(2020)·(A(2021)/A(2020))^(6/12) = 1214·1.155432^0.5 = 1304.941


@pytest.mark.parametrize(
    ("level", "status", "attainment"),
    [
        (1410.0, "achieved", 1410 / 1304.9408271),  # ≥ A(2021) already
        (1350.0, "on_track", 1.0345297),
        (1250.0, "at_risk", 1250 / 1304.9408271),  # 0.95790
        (1150.0, "behind", 0.8812660),  # the stock fell below its 2020 level
    ],
)
def test_hitech_enterprises_stock(level, status, attainment):
    rows = run(
        "hitech_enterprises",
        figure("hitech_enterprises", "2020", 1214.0, "LEVEL"),
        figure("hitech_enterprises", "2021-06", level, "LEVEL"),
    )
    row = only(rows, "2021-06")
    assert row.annual_target == pytest.approx(1402.6940382)
    assert row.expected == pytest.approx(1304.9408271)
    assert row.attainment == pytest.approx(attainment)
    assert row.status == status


def test_stock_falling_month_to_month_turns_behind():
    rows = run(
        "hitech_enterprises",
        figure("hitech_enterprises", "2021-03", 1300.0, "LEVEL"),
        figure("hitech_enterprises", "2021-06", 1200.0, "LEVEL"),
    )
    # March: expected = 1214·1.155432^(3/12) = 1258.65 → 1300/1258.65 = 1.03285 on_track
    assert only(rows, "2021-03").status == "on_track"
    # June: 1200/1304.94 = 0.91958 → behind
    assert only(rows, "2021-06").status == "behind"
    assert latest(rows)[(JINAN, "hitech_enterprises", "14th-fyp")].period == "2021-06"


def test_thresholds_are_configurable_per_indicator():
    figures = [figure("hitech_enterprises", "2021-06", 1150.0, "LEVEL")]
    loose = {"hitech_enterprises": Thresholds(at_risk_attainment=0.85)}
    assert run("hitech_enterprises", *figures)[0].status == "behind"
    assert run("hitech_enterprises", *figures, thresholds=loose)[0].status == "at_risk"
    assert run("hitech_enterprises", *figures, thresholds=loose["hitech_enterprises"])[
        0
    ].status == ("at_risk")


# -- annual tasks of the Jining zone (2021, no base value) ------------------------------------


def test_jining_applications_annual_task_achieved():
    rows = run(
        "hitech_enterprise_applications",
        figure("hitech_enterprise_applications", "2021-10", 94.0, zone=JINING),
        zone=JINING,
    )
    (row,) = rows
    # T = B + 1, so A(2021) = VT = 90; s(10) = 10/12; expected = 75; 94/75 = 1.25333
    assert row.plan == "2021-annual"
    assert row.annual_target == 90.0
    assert row.expected == pytest.approx(75.0)
    assert row.attainment == pytest.approx(94 / 75)
    assert row.status == "achieved"  # 94 ≥ 90


def test_jining_hitech_enterprises_annual_task_stock():
    level = figure("hitech_enterprises", "2021-10", 140.0, "LEVEL", zone=JINING)
    # No base level known: the 175 must stand by year end, expected = 175; 140/175 = 0.8 → behind
    (row,) = run("hitech_enterprises", level, zone=JINING)
    assert row.expected == 175.0 and row.attainment == pytest.approx(0.8)
    assert row.status == "behind"
    # With a 2020 level of 120 it interpolates: 120·(175/120)^(10/12) = 164.33; 140/164.33 = 0.852
    base = figure("hitech_enterprises", "2020", 120.0, "LEVEL", zone=JINING)
    row = only(run("hitech_enterprises", base, level, zone=JINING), "2021-10")
    assert row.expected == pytest.approx(164.3344371)
    assert row.status == "behind"


# -- PM2.5: lower is better -------------------------------------------------------------------


def test_pm25_plan_row_is_qualitative():
    (row,) = run("pm25", figure("pm25", "2021-06", 40.0, "LEVEL"))
    assert row.status == "not_evaluated"


@pytest.mark.parametrize(
    ("level", "status", "attainment"),
    [
        (40.0, "achieved", 42.2 / 40),  # ≤ E(2021) = 41.4
        (42.0, "on_track", 42.2 / 42),
        (43.0, "at_risk", 42.2 / 43),  # 0.98140
        (46.0, "behind", 42.2 / 46),  # 0.91739
    ],
)
def test_pm25_lower_is_better(level, status, attainment):
    # A numeric variant of 表2 row 29 (the plan only says 完成市下达指标): 43 → 35 µg/m³ by 2025.
    numeric = replace(target(JINAN, "pm25"), kind="share", target_value=35.0)
    # E(2021) = 43 − 8/5 = 41.4; expected(June) = 43 − 1.6·6/12 = 42.2; attainment = 42.2 / actual
    rows = evaluate(
        JINAN, CATALOGUE.indicators["pm25"], [figure("pm25", "2021-06", level, "LEVEL")], [numeric]
    )
    (row,) = rows
    assert row.expected == pytest.approx(42.2)
    assert row.attainment == pytest.approx(attainment)
    assert row.status == status


# -- no data, withdrawn targets, scorecard ----------------------------------------------------


def test_target_without_data_gives_one_no_data_row():
    (row,) = run("import_export_total")
    assert (row.period, row.status) == ("2021-01", "no_data")
    numbers = (row.actual, row.expected, row.annual_target, row.attainment, row.gap_pp)
    assert numbers == (None,) * 5
    # Figures from before the plan alone are still no data.
    (row,) = run("import_export_total", figure("import_export_total", "2020", 701.3, "YEAR"))
    assert row.status == "no_data"


def test_withdrawn_target_produces_nothing():
    withdrawn = replace(target(JINAN, "import_export_total"), revision=1, action="D")
    observations = [figure("import_export_total", "2021-06", 480.0)]
    ind = CATALOGUE.indicators["import_export_total"]
    assert (
        evaluate(JINAN, ind, observations, [target(JINAN, "import_export_total"), withdrawn]) == []
    )


def test_scorecard_rolls_up_latest_rows():
    rows = [
        *run("hitech_enterprises", figure("hitech_enterprises", "2021-06", 1150.0, "LEVEL")),
        *run(
            "forest_coverage",  # binding: E(2021) = 25.7; 25.5/25.7 = 0.99222 → at_risk
            figure("forest_coverage", "2021-03", 20.0, "LEVEL"),
            figure("forest_coverage", "2021-12", 25.5, "LEVEL"),
        ),
        *run("good_air_days_ratio", figure("good_air_days_ratio", "2021-06", 70.0, "LEVEL")),
        *run("gdp", figure("gdp", "2021-09", 900.0, yoy_pct=11.0)),
        *run("import_export_total"),
    ]
    card = scorecard(JINAN, rows)
    assert card.period == "2021-12"
    assert card.counts["behind"] == 1  # hitech_enterprises (forest 2021-03 is superseded)
    assert card.counts["at_risk"] == 1
    assert card.counts["on_track"] == 1
    assert card.counts["not_evaluated"] == 1
    assert card.counts["no_data"] == 1
    assert card.worst_binding_indicator == "forest_coverage"
    assert card.worst_binding_attainment == pytest.approx(25.5 / 25.7)
    # median of 0.88127 (enterprises), 0.99222 (forest), 1.00909 (gdp: 1.11/1.1)
    assert card.median_attainment == pytest.approx(25.5 / 25.7)
    empty = scorecard("xian-hitech", rows)
    assert empty.period == "" and sum(empty.counts.values()) == 0
