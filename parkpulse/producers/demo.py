"""The demo feed ``parkpulse run`` replays: the source documents' figures plus simulated months.

One CSV in the bureau feed format (README, "The feed") (``FEED_COLUMNS``; STRUCTURE ``dataflow``,
STRUCTURE_ID ``PARKPULSE:ZONE_MONTHLY(1.0)``), built deterministically: every random draw comes
from a ``random.Random`` seeded with a fixed string per series, and nothing reads the clock.
Each series is drawn year by year from 2019 on, so a shorter ``through`` gives a prefix of a
longer one (the same figures, fewer months).

What the feed holds, in publication order (PUBLISHED_AT = the 15th of the month after the
period ends, 09:00+08:00; a ``YYYY`` figure is published on 15 January of the next year):

1. **The seed figures** – every row of the bundled ``observations.csv`` that is a valid figure
   (a value or a YoY present, a unit that converts to the indicator's unit). The 2015
   import/export total in USD_100M (亿美元, a series break against the CNY_100M indicator) is
   *left out*, so the only dead-letters are the three of item 6.
2. **Simulated months for jinan-hitech**, for every indicator of its 14th-FYP targets, 2020 (the
   base year, whose YTD shape gives 2021 its prior-year seasonality) through ``through``; 2019 is
   simulated too but only used for the 2020 YoY and never published. The 2020 figures agree
   with the plan's base values and the seed: budget_revenue YTD 2020-12 = 130.2 (and 2019 =
   124.6), import_export_total YTD 2020-03 = 147.2 (YoY 48.1) and 2020-12 = 701.3, GDP 2020 =
   1291.5 at 6.5 % growth, hitech_enterprises 2020-12 = 1214, and so on. A simulated row whose
   key a seed row already has is not repeated.

   - *flows with level targets* (budget_revenue, retail_sales, new_high_end_talent,
     import_export_total, foreign_capital_used, new_urban_jobs): YTD with a seasonal shape per
     indicator, January–February only as the combined ``YYYY-02``, then 03..12, with YOY_PCT.
     The yearly growth is constant per indicator, chosen so that at 2023 the full year stands
     at ``design_ratio`` × the plan path A(2023) (see ``LEVEL_FLOWS``).
   - *growth targets* (gdp, industrial_value_added, fixed_asset_investment): YTD values with
     the bureau's YTD real growth as YOY_PCT (``GROWTH_PATHS``; year-end figure exact, earlier
     months noisy around it, 2020 with a Covid dip). The values grow nominally (real growth plus
     a deflator), so YOY_PCT is deliberately not this year ÷ last year.
   - *stocks with level targets*: a monthly LEVEL at month end, 2020-01 on, between year-end
     anchors (``STOCKS``); listed_companies falls through 2021 (NEEQ delistings) and recovers.
   - *share targets* on ratio indicators: LEVEL each quarter (periods YYYY-03/06/09/12) around
     the plan's linear path, drifting to ``design_ratio`` × E(2023) at 2023-12.
   - *cumulative targets* (new_medical_institutions, new_schools): MONTH counts (non-negative
     integers, zero months included); 2020 sums to the plan's base value, later years to
     ``CUMULATIVE_TOTALS``; schools open in August and September.
   - *qualitative targets* (pm25, good_air_days_ratio): the monthly mean as LEVEL, seasonal,
     the 2020 average at the plan's base value (43 µg/m³, 62 %).

   Units are the indicator's own, except the budget_revenue YTD rows of ``CNY_10K_PERIODS``,
   published in CNY_10K (万元, value × 1e4) to exercise unit conversion.
3. **jining-hitech**: hitech_enterprise_applications YTD 2021-02..2021-10 ending at the seed's 94,
   and hitech_enterprises LEVEL 2021-01..2021-10 ending at the seed's 140.
4. **Revisions** (``REVISED``): three figures first published with OBS_STATUS ``P`` (REVISION
   0, a lower value), then a month later again with ACTION ``R``, REVISION 1, OBS_STATUS ``A``
   and the corrected value.
5. Everything is filtered to periods ending by ``through`` and sorted by PUBLISHED_AT. Years
   after 2023 carry on with the same growth (``GROWTH_PATHS`` and ``CUMULATIVE_TOTALS`` give
   2024–2025), so ``through`` may run to the end of the plan and beyond.
6. **Exactly three bad rows at the end**, so the demo shows dead-letters: an unknown zone
   (``zibo-hitech``), an unknown indicator (``patents_granted``), and retail_sales in
   ``USD_100M`` (does not convert to CNY_100M).

Designed statuses at the default ``through`` 2023-12 (14th FYP, per the engine in streams/plan.py):
achieved/on track – new_high_end_talent, import_export_total, gdp, hitech_enterprises,
national_rd_institutions, foreign_rd_institutions, pension_enrollees, medical_insurance_enrollees,
tax_per_mu, hitech_output_share, top10_industry_fai_share, postgraduate_share, forest_coverage,
new_medical_institutions; at risk – budget_revenue, new_urban_jobs, industrial_value_added,
listed_companies, human_capital_index, culture_sports_centers, investment_intensity,
rd_intensity, new_schools; behind – retail_sales, foreign_capital_used,
fixed_asset_investment, new_rd_institutions, overseas_rd_institutions,
hitech_service_revenue_share; not evaluated – pm25, good_air_days_ratio.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path

from parkpulse.schemas.catalogue import (
    convert_unit,
    load_catalogue,
    load_plan_targets,
    reference_observation_rows,
)
from parkpulse.schemas.periods import YearMonth, evaluated_month, parse_month
from parkpulse.schemas.records import PlanTarget
from parkpulse.schemas.wire import STRUCTURE, STRUCTURE_ID

FEED_COLUMNS: tuple[str, ...] = (
    "STRUCTURE",
    "STRUCTURE_ID",
    "ACTION",
    "ZONE",
    "INDICATOR",
    "TIME_PERIOD",
    "BASIS",
    "OBS_VALUE",
    "UNIT_MEASURE",
    "YOY_PCT",
    "OBS_STATUS",
    "REVISION",
    "PUBLISHED_AT",
)

SEED = "parkpulse-demo-v1"
PLAN = "14th-fyp"
JINAN = "jinan-hitech"
JINING = "jining-hitech"
BASE_YEAR = 2020
DESIGN_YEAR = 2023  # the year the ahead / at-risk / behind mix is designed for
FIRST_SIMULATED_YEAR = BASE_YEAR - 1  # drawn for the 2020 YoY, never published

# Monthly weights Jan..Dec (normalised after noise).
_EVEN = (0.06, 0.05, 0.085, 0.08, 0.082, 0.095, 0.08, 0.08, 0.09, 0.08, 0.09, 0.118)


@dataclass(frozen=True, slots=True)
class LevelFlow:
    """A flow with a level target: 2019 full year (when no seed gives it) and the design."""

    prior_year: float
    design_ratio: float  # full year DESIGN_YEAR / plan path A(DESIGN_YEAR)
    profile: tuple[float, ...]
    decimals: int


LEVEL_FLOWS: dict[str, LevelFlow] = {
    # Budget revenue comes in early (January settlement), thin in the last months.
    "budget_revenue": LevelFlow(
        124.6, 0.975, (0.12, 0.06, 0.08, 0.1, 0.09, 0.08, 0.09, 0.06, 0.07, 0.09, 0.06, 0.04), 1
    ),
    "retail_sales": LevelFlow(
        340.1, 0.88, (0.09, 0.08, 0.08, 0.08, 0.085, 0.085, 0.08, 0.08, 0.085, 0.09, 0.085, 0.09), 1
    ),
    # Graduates join in July.
    "new_high_end_talent": LevelFlow(
        3650, 1.05, (0.05, 0.04, 0.07, 0.08, 0.08, 0.09, 0.14, 0.1, 0.09, 0.08, 0.08, 0.1), 0
    ),
    "import_export_total": LevelFlow(589.3, 1.08, _EVEN, 1),
    # Foreign capital lands in lumps at half-year and year end.
    "foreign_capital_used": LevelFlow(
        7.9, 0.85, (0.05, 0.04, 0.09, 0.07, 0.07, 0.15, 0.06, 0.06, 0.1, 0.07, 0.07, 0.17), 2
    ),
    "new_urban_jobs": LevelFlow(
        1.70, 0.965, (0.06, 0.05, 0.09, 0.09, 0.09, 0.1, 0.09, 0.08, 0.09, 0.08, 0.08, 0.1), 2
    ),
}


@dataclass(frozen=True, slots=True)
class GrowthFlow:
    """A flow with a growth target: the 2020 level (when no seed gives it), YTD growth by year."""

    level_2020: float
    growth_pct: dict[int, float]  # year-end YTD growth; later years repeat the last
    deflator: float  # nominal minus real growth, as a fraction
    covid_dip_pct: float  # 2020-02 growth below the 2020 year-end figure
    profile: tuple[float, ...]


GROWTH_PATHS: dict[str, GrowthFlow] = {
    "gdp": GrowthFlow(
        1291.5, {2021: 11.2, 2022: 7.6, 2023: 10.4, 2024: 9.8, 2025: 10.1}, 0.02, 9.0, _EVEN
    ),
    "industrial_value_added": GrowthFlow(
        512.1, {2021: 16.8, 2022: 10.9, 2023: 12.2, 2024: 13.0, 2025: 13.6}, 0.01, 16.0, _EVEN
    ),
    # No FAI level appears in the seeds: 486.0 (2020) is simulated.
    "fixed_asset_investment": GrowthFlow(
        486.0,
        {2021: 14.1, 2022: 9.5, 2023: 7.8, 2024: 8.5, 2025: 9.0},
        0.0,
        22.0,
        (0.03, 0.03, 0.07, 0.08, 0.09, 0.11, 0.08, 0.09, 0.1, 0.09, 0.1, 0.13),
    ),
}


@dataclass(frozen=True, slots=True)
class Stock:
    """A stock with a level target: 2019 year end, the design, optional explicit year ends."""

    prior_year: float
    design_ratio: float  # level at DESIGN_YEAR-12 / plan path A(DESIGN_YEAR)
    decimals: int
    anchors: dict[int, float] | None = None  # explicit year-end levels before DESIGN_YEAR
    profile: tuple[float, ...] = (1.0,) * 12


STOCKS: dict[str, Stock] = {
    # Certificates are granted in batches at the end of the year.
    "hitech_enterprises": Stock(
        1013,
        1.04,
        0,
        None,
        (0.02, 0.02, 0.03, 0.03, 0.03, 0.04, 0.05, 0.05, 0.05, 0.08, 0.25, 0.35),
    ),
    # Falls through 2021 (NEEQ delistings), recovers from 2022.
    "listed_companies": Stock(109, 0.97, 0, {2021: 109, 2022: 113}),
    "national_rd_institutions": Stock(16, 1.0, 0),
    "new_rd_institutions": Stock(28, 0.854, 0),
    "human_capital_index": Stock(570.0, 0.98, 1),
    "foreign_rd_institutions": Stock(24, 1.039, 0),
    "overseas_rd_institutions": Stock(21, 0.83, 0),
    "culture_sports_centers": Stock(2, 0.952, 0),
    "pension_enrollees": Stock(10.8, 1.01, 2),
    "medical_insurance_enrollees": Stock(15.2, 1.004, 2),
}

# Share targets: the value at DESIGN_YEAR-12 over the plan's linear path E(DESIGN_YEAR).
SHARES: dict[str, float] = {
    "tax_per_mu": 1.014,
    "investment_intensity": 0.979,
    "hitech_output_share": 1.005,
    "hitech_service_revenue_share": 0.862,
    "top10_industry_fai_share": 1.006,
    "rd_intensity": 0.98,
    "postgraduate_share": 1.032,
    "forest_coverage": 1.001,
}

# Cumulative targets: new institutions per year after the base year (2020 is the plan's base).
CUMULATIVE_TOTALS: dict[str, dict[int, int]] = {
    "new_medical_institutions": {2021: 25, 2022: 26, 2023: 28, 2024: 23, 2025: 23},
    "new_schools": {2021: 2, 2022: 2, 2023: 3, 2024: 3, 2025: 2},
}
_CUMULATIVE_PROFILES: dict[str, tuple[float, ...]] = {
    "new_medical_institutions": (1.0,) * 12,
    "new_schools": (0.02,) * 7 + (0.4, 0.4) + (0.02,) * 3,
}

# Monthly means, Jan..Dec, before the 2020 scaling to the plan's base value.
_PM25_PROFILE = (80, 65, 50, 42, 38, 30, 25, 24, 30, 40, 55, 70)
_GOOD_AIR_PROFILE = (40, 48, 58, 66, 70, 78, 82, 84, 78, 66, 52, 44)
PM25_DECLINE = 0.04  # per year
GOOD_AIR_GAIN_PP = 1.5  # per year

CNY_10K_PERIODS = ("2020-12", "2021-06", "2022-09")  # budget_revenue YTD published in 万元

# (zone, indicator, basis, period) first published provisional, revised a month later.
REVISED: tuple[tuple[str, str, str, str], ...] = (
    (JINAN, "import_export_total", "YTD", "2021-06"),
    (JINAN, "budget_revenue", "YTD", "2022-03"),
    (JINAN, "hitech_enterprises", "LEVEL", "2022-11"),
)

JINING_APPLICATIONS_PROFILE = (0.02, 0.03, 0.05, 0.08, 0.15, 0.2, 0.2, 0.15, 0.08, 0.04)
JINING_HITECH_2020 = 121  # simulated year-end 2020 level (not published)

Key = tuple[str, str, str, str]  # zone, indicator, basis, period


# -- small helpers ------------------------------------------------------------------------


def _rng(*parts: object) -> random.Random:
    """One generator per series, so series are independent and prefix-stable."""
    return random.Random(":".join([SEED, *map(str, parts)]))


def _fmt(value: float, decimals: int) -> str:
    text = f"{value:.{decimals}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def _label(year: int, month: int) -> str:
    return YearMonth(year, month).label


def published_at(period: str) -> str:
    """The 15th of the month after ``period`` ends, 09:00 Beijing time."""
    ym = evaluated_month(period)
    year, month = (ym.year + 1, 1) if ym.month == 12 else (ym.year, ym.month + 1)
    return f"{year:04d}-{month:02d}-15T09:00:00+08:00"


def next_publication(stamp: str) -> str:
    """The same PUBLISHED_AT a month later (when a revision of that figure comes out)."""
    year, month = int(stamp[:4]), int(stamp[5:7])
    year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return f"{year:04d}-{month:02d}{stamp[7:]}"


def _row(
    zone: str,
    indicator: str,
    period: str,
    basis: str,
    value: str,
    unit: str,
    yoy: str = "",
) -> dict[str, str]:
    """A first print (ACTION I, OBS_STATUS A, REVISION 0), published as ``published_at``."""
    return dict(
        zip(
            FEED_COLUMNS,
            (
                STRUCTURE,
                STRUCTURE_ID,
                "I",
                zone,
                indicator,
                period,
                basis,
                value,
                unit,
                yoy,
                "A",
                "0",
                published_at(period),
            ),
            strict=True,
        )
    )


def _key(row: dict[str, str]) -> Key:
    return (row["ZONE"], row["INDICATOR"], row["BASIS"], row["TIME_PERIOD"])


def _cumulative_shares(
    rng: random.Random,
    profile: Sequence[float],
    noise: float,
    pins: dict[int, float] | None = None,
) -> list[float]:
    """Cumulative shares c(1..n), c(n) = 1, from noisy weights; ``pins`` fixes c(m) exactly."""
    weights = [p * (1 + rng.uniform(-noise, noise)) for p in profile]
    total = sum(weights)
    weights = [w / total for w in weights]
    n = len(weights)
    start, done = 0, 0.0
    for month, share in [*sorted((pins or {}).items()), (n, 1.0)]:
        segment = sum(weights[start:month])
        for i in range(start, month):
            weights[i] *= (share - done) / segment
        start, done = month, share
    shares = list(accumulate(weights))
    shares[-1] = 1.0
    return shares


def _targets() -> dict[str, PlanTarget]:
    return {t.indicator: t for t in load_plan_targets() if t.plan == PLAN and t.zone == JINAN}


def _plan_path(target: PlanTarget, year: int) -> float:
    """A(y) of a level target: geometric from the base value to the target value."""
    v0, vt = target.base_value, target.target_value
    assert v0 is not None and vt is not None
    return v0 * (vt / v0) ** ((year - target.base_year) / (target.target_year - target.base_year))


def _linear_path(target: PlanTarget, x: float) -> float:
    """The share path at x years after the base year-end (E(B + x))."""
    v0, vt = target.base_value, target.target_value
    assert v0 is not None and vt is not None
    return v0 + (vt - v0) * x / (target.target_year - target.base_year)


def _seed_figures() -> dict[Key, tuple[float | None, float | None]]:
    """The seed's (value, yoy) per key, to pin the simulation to it."""
    out: dict[Key, tuple[float | None, float | None]] = {}
    for r in reference_observation_rows():
        value = float(r["value"]) if r["value"].strip() else None
        yoy = float(r["yoy_pct"]) if r["yoy_pct"].strip() else None
        out[(r["zone"], r["indicator"], r["basis"], r["time_period"])] = (value, yoy)
    return out


# -- the parts of the feed ---------------------------------------------------------------


def _seed_rows() -> list[dict[str, str]]:
    """Every seed figure that is valid for the feed (value or YoY, a unit that converts)."""
    catalogue = load_catalogue()
    rows = []
    for r in reference_observation_rows():
        indicator = catalogue.indicators.get(r["indicator"])
        if indicator is None or r["zone"] not in catalogue.zones:
            continue
        if not r["value"].strip() and not r["yoy_pct"].strip():
            continue
        if convert_unit(1.0, r["unit"], indicator.unit) is None:
            continue  # the 2015 import/export total in 亿美元: a series break, not a figure
        rows.append(
            _row(
                r["zone"],
                r["indicator"],
                r["time_period"],
                r["basis"],
                r["value"].strip(),
                r["unit"],
                r["yoy_pct"].strip(),
            )
        )
    return rows


def _year_end_level(
    seeds: dict[Key, tuple[float | None, float | None]], ind: str, year: int
) -> float | None:
    value, _ = seeds.get((JINAN, ind, "YEAR", str(year)), (None, None))
    return value


def _level_flow_rows(last_year: int) -> list[dict[str, str]]:
    catalogue, targets, seeds = load_catalogue(), _targets(), _seed_figures()
    rows = []
    for ind, spec in LEVEL_FLOWS.items():
        target = targets[ind]
        unit = catalogue.indicators[ind].unit
        v0 = target.base_value
        assert v0 is not None
        growth = (_plan_path(target, BASE_YEAR + 1) / v0) * spec.design_ratio ** (
            1 / (DESIGN_YEAR - BASE_YEAR)
        )
        rng = _rng(JINAN, ind)
        ytd: dict[int, list[float]] = {}
        for year in range(FIRST_SIMULATED_YEAR, last_year + 1):
            if year < BASE_YEAR:
                total = _year_end_level(seeds, ind, year) or spec.prior_year
            else:
                total = v0 * growth ** (year - BASE_YEAR)
            pins = _ytd_pins(seeds, ind, year, total)
            shares = _cumulative_shares(rng, spec.profile, 0.04, pins)
            ytd[year] = [round(total * s, spec.decimals) for s in shares]
            if year < BASE_YEAR:
                continue
            for month in range(2, 13):
                value = ytd[year][month - 1]
                yoy = (value / ytd[year - 1][month - 1] - 1) * 100
                period = _label(year, month)
                if ind == "budget_revenue" and period in CNY_10K_PERIODS:
                    text, row_unit = _fmt(value * 1e4, 0), "CNY_10K"
                else:
                    text, row_unit = _fmt(value, spec.decimals), unit
                rows.append(_row(JINAN, ind, period, "YTD", text, row_unit, _fmt(yoy, 1)))
    return rows


def _ytd_pins(
    seeds: dict[Key, tuple[float | None, float | None]], ind: str, year: int, total: float
) -> dict[int, float]:
    """Cumulative shares the seed fixes: its YTD figures of this year, and of next year ÷ YoY."""
    pins: dict[int, float] = {}
    for month in range(2, 12):
        value, _ = seeds.get((JINAN, ind, "YTD", _label(year, month)), (None, None))
        if value is not None:
            pins[month] = value / total
        nxt, yoy = seeds.get((JINAN, ind, "YTD", _label(year + 1, month)), (None, None))
        if nxt is not None and yoy is not None:
            pins[month] = round(nxt / (1 + yoy / 100), 1) / total
    return pins


def _growth_rows(last_year: int) -> list[dict[str, str]]:
    catalogue, targets, seeds = load_catalogue(), _targets(), _seed_figures()
    rows = []
    for ind, spec in GROWTH_PATHS.items():
        target = targets[ind]
        unit = catalogue.indicators[ind].unit
        assert target.base_value is not None
        rng = _rng(JINAN, ind)
        total = _year_end_level(seeds, ind, BASE_YEAR) or spec.level_2020
        last_growth = target.base_value
        for year in range(BASE_YEAR, last_year + 1):
            if year == BASE_YEAR:
                growth = target.base_value
            else:
                growth = spec.growth_pct.get(year, last_growth)
                total *= 1 + growth / 100 + spec.deflator
            last_growth = growth
            shares = _cumulative_shares(rng, spec.profile, 0.04)
            for month in range(2, 13):
                left = (12 - month) / 10
                dip = spec.covid_dip_pct * left if year == BASE_YEAR else 0.0
                yoy = growth - dip + rng.gauss(0, 1.2) * left
                value = round(total, 1) if month == 12 else total * shares[month - 1]
                rows.append(
                    _row(JINAN, ind, _label(year, month), "YTD", _fmt(value, 1), unit, _fmt(yoy, 1))
                )
    return rows


def _stock_rows(last_year: int) -> list[dict[str, str]]:
    catalogue, targets = load_catalogue(), _targets()
    rows = []
    for ind, spec in STOCKS.items():
        target = targets[ind]
        unit = catalogue.indicators[ind].unit
        v0 = target.base_value
        assert v0 is not None
        design = round(_plan_path(target, DESIGN_YEAR) * spec.design_ratio, spec.decimals)
        yearly = (design / v0) ** (1 / (DESIGN_YEAR - BASE_YEAR))
        ends = {FIRST_SIMULATED_YEAR: spec.prior_year, BASE_YEAR: v0}
        for year in range(BASE_YEAR + 1, last_year + 1):
            if spec.anchors and year in spec.anchors:
                ends[year] = spec.anchors[year]
            elif year <= DESIGN_YEAR:
                ends[year] = v0 * yearly ** (year - BASE_YEAR)
            else:
                ends[year] = design * yearly ** (year - DESIGN_YEAR)
            ends[year] = round(ends[year], spec.decimals)
        rng = _rng(JINAN, ind)
        for year in range(BASE_YEAR, last_year + 1):
            start, end = ends[year - 1], ends[year]
            shares = _cumulative_shares(rng, spec.profile, 0.5)
            for month in range(1, 13):
                value = end if month == 12 else start + (end - start) * shares[month - 1]
                rows.append(
                    _row(
                        JINAN,
                        ind,
                        _label(year, month),
                        "LEVEL",
                        _fmt(round(value, spec.decimals), spec.decimals),
                        unit,
                    )
                )
    return rows


def _share_rows(last_year: int) -> list[dict[str, str]]:
    catalogue, targets = load_catalogue(), _targets()
    rows = []
    span = DESIGN_YEAR - BASE_YEAR
    for ind, ratio in SHARES.items():
        target = targets[ind]
        unit = catalogue.indicators[ind].unit
        rng = _rng(JINAN, ind)
        for year in range(BASE_YEAR, last_year + 1):
            for month in (3, 6, 9, 12):
                x = year - BASE_YEAR + (month - 12) / 12  # years after the base year end
                path = _linear_path(target, x)
                value = path * (1 + (ratio - 1) * max(x, 0.0) / span)
                if month != 12:  # year ends sit on the design; quarters wander a little
                    value *= 1 + rng.uniform(-0.002, 0.002)
                rows.append(_row(JINAN, ind, _label(year, month), "LEVEL", _fmt(value, 2), unit))
    return rows


def _cumulative_rows(last_year: int) -> list[dict[str, str]]:
    targets = _targets()
    rows = []
    for ind, totals in CUMULATIVE_TOTALS.items():
        base = targets[ind].base_value
        assert base is not None
        rng = _rng(JINAN, ind)
        profile = _CUMULATIVE_PROFILES[ind]
        last_total = int(base)
        for year in range(BASE_YEAR, last_year + 1):
            total = int(base) if year == BASE_YEAR else totals.get(year, last_total)
            last_total = total
            counts = [0] * 12
            for month in rng.choices(range(12), weights=profile, k=total):
                counts[month] += 1
            for month, count in enumerate(counts, start=1):
                rows.append(_row(JINAN, ind, _label(year, month), "MONTH", str(count), "COUNT"))
    return rows


def _qualitative_rows(last_year: int) -> list[dict[str, str]]:
    targets = _targets()
    rows = []
    for ind, profile, decimals in (
        ("pm25", _PM25_PROFILE, 0),
        ("good_air_days_ratio", _GOOD_AIR_PROFILE, 1),
    ):
        base = targets[ind].base_value
        assert base is not None
        unit = load_catalogue().indicators[ind].unit
        rng = _rng(JINAN, ind)
        mean = sum(profile) / len(profile)
        for year in range(BASE_YEAR, last_year + 1):
            k = year - BASE_YEAR
            for month in range(1, 13):
                shape = profile[month - 1] / mean
                if ind == "pm25":
                    value = base * shape * (1 - PM25_DECLINE) ** k * (1 + rng.uniform(-0.08, 0.08))
                else:
                    value = base * shape + GOOD_AIR_GAIN_PP * k + rng.uniform(-3, 3)
                    value = min(value, 100.0)
                rows.append(
                    _row(JINAN, ind, _label(year, month), "LEVEL", _fmt(value, decimals), unit)
                )
    return rows


def _jining_rows() -> list[dict[str, str]]:
    seeds = _seed_figures()
    applications, _ = seeds[(JINING, "hitech_enterprise_applications", "YTD", "2021-10")]
    level, _ = seeds[(JINING, "hitech_enterprises", "LEVEL", "2021-10")]
    assert applications is not None and level is not None
    rows = []
    rng = _rng(JINING, "hitech_enterprise_applications")
    shares = _cumulative_shares(rng, JINING_APPLICATIONS_PROFILE, 0.2)
    for month in range(2, 11):
        value = round(applications * shares[month - 1])
        rows.append(
            _row(
                JINING,
                "hitech_enterprise_applications",
                _label(2021, month),
                "YTD",
                str(value),
                "COUNT",
            )
        )
    rng = _rng(JINING, "hitech_enterprises")
    shares = _cumulative_shares(rng, (1.0,) * 10, 0.5)
    for month in range(1, 11):
        value = round(JINING_HITECH_2020 + (level - JINING_HITECH_2020) * shares[month - 1])
        rows.append(
            _row(JINING, "hitech_enterprises", _label(2021, month), "LEVEL", str(value), "COUNT")
        )
    return rows


def _with_revisions(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """Replace each REVISED figure by a provisional first print and a later correction."""
    by_key = {_key(r): i for i, r in enumerate(rows)}
    out = list(rows)
    for key in REVISED:
        i = by_key.get(key)
        if i is None:
            continue
        final = rows[i]
        decimals = len(final["OBS_VALUE"].partition(".")[2])
        value = float(final["OBS_VALUE"])
        zone, ind, basis, period = key
        year, month = int(period[:4]), int(period[5:])
        prev = by_key.get((zone, ind, basis, _label(year, month - 1))) if month > 1 else None
        floor = float(rows[prev]["OBS_VALUE"]) if prev is not None else 0.0
        # Short of the final figure, but past last month's, so a YTD series keeps rising.
        first = round(floor + 0.9 * (value - floor), decimals)
        yoy = final["YOY_PCT"]
        if yoy:
            last_year = value / (1 + float(yoy) / 100)
            yoy = _fmt((first / last_year - 1) * 100, 1)
        out[i] = {**final, "OBS_VALUE": _fmt(first, decimals), "YOY_PCT": yoy, "OBS_STATUS": "P"}
        out.append(
            {
                **final,
                "ACTION": "R",
                "REVISION": "1",
                "PUBLISHED_AT": next_publication(final["PUBLISHED_AT"]),
            }
        )
    return out


def bad_rows(through: str) -> list[dict[str, str]]:
    """The three rows the demo expects to be dead-lettered (zone, indicator, unit)."""
    return [
        _row("zibo-hitech", "budget_revenue", through, "YTD", "61.4", "CNY_100M", "5.2"),
        _row(JINAN, "patents_granted", through, "YTD", "5120", "COUNT"),
        _row(JINAN, "retail_sales", through, "YTD", "48.7", "USD_100M", "6.1"),
    ]


# -- the API --------------------------------------------------------------------------------


def build_demo_feed(through: str = "2023-12") -> list[dict[str, str]]:
    """The demo feed up to month ``through`` (``YYYY-MM``), as rows keyed by FEED_COLUMNS."""
    last = parse_month(through)
    seed_rows = _seed_rows()
    seeded = {_key(r) for r in seed_rows}
    simulated = [
        *_level_flow_rows(last.year),
        *_growth_rows(last.year),
        *_stock_rows(last.year),
        *_share_rows(last.year),
        *_cumulative_rows(last.year),
        *_qualitative_rows(last.year),
        *_jining_rows(),
    ]
    rows = seed_rows + [r for r in simulated if _key(r) not in seeded]
    rows = [r for r in _with_revisions(rows) if evaluated_month(r["TIME_PERIOD"]) <= last]
    # Stable sort: publication time, then a readable order within one publication day.
    rows.sort(
        key=lambda r: (
            r["PUBLISHED_AT"],
            r["ZONE"],
            r["INDICATOR"],
            r["BASIS"],
            r["TIME_PERIOD"],
            r["REVISION"],
        )
    )
    return rows + bad_rows(through)


def write_demo_feed(path: Path, through: str = "2023-12") -> int:
    """Write the demo feed as a UTF-8 CSV at ``path``; returns the number of rows written."""
    rows = build_demo_feed(through)
    with Path(path).open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=FEED_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)
