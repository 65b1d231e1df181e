"""The plan-target engine: status rows of (zone, indicator, plan) by month (pure; no I/O).

Notation: month m of year y, base year B with value V0, target year T with value VT,
annual growth g (a fraction). Every function here is total on data: a missing or degenerate input
gives None numbers and a sensible status, never an exception.

Decisions the design card left open, made here:
- V0 missing: read from the data (YTD(B, 12) of a flow, else the last level up to B-12). If still
  unknown, only A(T) = VT is known: an annual task (T = B+1) expects VT·s(m) of a flow and VT
  itself of a stock or share (the level must stand by year end); earlier years give not_evaluated.
- A geometric path needs V0, VT > 0; otherwise the path is the straight line between them.
- A month whose actual cannot be formed gives no row; a target with no row at all gives one
  no_data row at B+1-01 (qualitative targets: one not_evaluated row there).
- Expected ≤ 0 leaves attainment None; the status then compares actual with expected directly.
  A known actual with no expected (no path) is not_evaluated.
- Lower is better: attainment = expected/actual, gap_pp of growth = g·100 − actual_pct, and a
  flow or cumulative target is achieved only once its period is complete (YTD only grows).
- Comparisons allow 1e-9 of float noise, so a figure exactly on its path is on_track.
- out_of_reach (flow level targets): the rest-of-year growth of year k at month m is
  ((YTD(k,12) − YTD(k,m)) / (YTD(k−1,12) − YTD(k−1,m)) − 1)·100; the best of it over the years
  k < y with all four figures (and a positive remainder) is best_rest_growth_pct, and
  out_of_reach = required_growth_pct > best_rest_growth_pct. Unknown (None) when either is, so
  in December (no rest of year) and before two full years are on record.
- An implausible figure (streams/plausibility.py) is evaluated all the same — the bureau is the
  authority — and every row of its month is marked ``suspect`` with the reason. Rows of later
  months that merely use it (a cumulative sum, next year's seasonality) are not marked.
"""

from __future__ import annotations

import statistics
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from operator import attrgetter

from parkpulse.schemas.catalogue import Indicator
from parkpulse.schemas.periods import YearMonth, months_of
from parkpulse.schemas.quick_init import quick_init
from parkpulse.schemas.records import (
    STATUSES,
    IndicatorStatus,
    Observation,
    PlanTarget,
    SuspectFigure,
    ZoneScorecard,
)
from parkpulse.streams.observations import Series, derive_series, derive_values
from parkpulse.streams.plausibility import DEFAULT_JUMP_FACTOR, Suspicion, suspicions

StatusKey = tuple[str, str, str]  # (zone, indicator, plan)


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Where on_track turns at_risk turns behind (configurable per indicator)."""

    at_risk_attainment: float = 0.95  # attainment ≥ this (and < 1) is at_risk
    at_risk_gap_pp: float = -2.0  # growth targets: gap_pp ≥ this (and < 0) is at_risk


DEFAULT_THRESHOLDS = Thresholds()
# Comparisons allow float noise: a figure computed exactly on its path is on_track, not at_risk.
EPSILON = 1e-9


def thresholds_for(indicator: str, table: Mapping[str, Thresholds] | None) -> Thresholds:
    """The thresholds configured for ``indicator``, else the defaults."""
    return (table or {}).get(indicator, DEFAULT_THRESHOLDS)


# -- target paths ------------------------------------------------------------------------


@quick_init
@dataclass(frozen=True, slots=True)
class _Path:
    """The yearly target path of a level or share target; None where it cannot be known."""

    base_year: int
    v0: float | None
    target_year: int
    vt: float | None
    geometric: bool

    def at(self, year: int) -> float | None:
        """A(y) = V0·(VT/V0)^((y−B)/(T−B)) (level) or E(y) = V0 + (VT − V0)·(y−B)/(T−B) (share)."""
        b, t = self.base_year, self.target_year
        if year == t:
            return self.vt
        if year == b:
            return self.v0
        if self.v0 is None or self.vt is None or t <= b:
            return None
        share = (year - b) / (t - b)
        if self.geometric and self.v0 > 0 and self.vt > 0:
            return self.v0 * (self.vt / self.v0) ** share
        # A geometric path needs positive ends; otherwise fall back to the straight line.
        return self.v0 + (self.vt - self.v0) * share


def _observed_base(target: PlanTarget, indicator: Indicator, series: Series) -> float | None:
    """V0 read from the data when the plan gives none: YTD(B, 12) of a flow, else the last level."""
    december = YearMonth(target.base_year, 12)
    if indicator.kind == "flow" and target.kind == "level":
        return series.ytd.get(december)
    return series.latest_level(december)


def _path(target: PlanTarget, indicator: Indicator, series: Series, geometric: bool) -> _Path:
    v0 = target.base_value
    if v0 is None:
        v0 = _observed_base(target, indicator, series)
    vt = target.target_value
    g = target.annual_growth_pct
    if vt is None and v0 is not None and g is not None:
        # If VT is missing, VT = V0·(1+g)^(T−B).
        vt = v0 * (1 + g / 100) ** (target.target_year - target.base_year)
    return _Path(target.base_year, v0, target.target_year, vt, geometric)


def _within_year(
    start: float | None, end: float | None, month: int, geometric: bool
) -> float | None:
    """Stock: A(y−1)·(A(y)/A(y−1))^(m/12); share: E(y−1) + (E(y) − E(y−1))·m/12.

    With no start (an annual task without a base level) the year's target is expected already.
    """
    if end is None:
        return None
    if start is None:
        return end
    if geometric and start > 0 and end > 0:
        return start * (end / start) ** (month / 12)
    return start + (end - start) * month / 12


def seasonal_share(series: Series, at: YearMonth) -> tuple[float, str]:
    """s(m) = YTD(y−1, m) / YTD(y−1, 12) when both are known, else m/12; with its source."""
    return _seasonal(*_last_year(series, at), at.month)


def _last_year(series: Series, at: YearMonth) -> tuple[float | None, float | None]:
    """YTD(y−1, m) and YTD(y−1, 12): what s(m) and the required growth of month m both read."""
    return series.ytd.get(at.previous_year()), series.ytd.get(months_of(at.year - 1)[11])


def _seasonal(prior: float | None, full: float | None, month: int) -> tuple[float, str]:
    if prior is not None and full is not None and full > 0 and prior >= 0:
        return prior / full, "prior_year"
    return month / 12, "linear"


# -- one reading per kind ------------------------------------------------------------------


@quick_init
@dataclass(frozen=True, slots=True)
class _Reading:
    """The inputs of one status row before attainment and status."""

    actual: float
    expected: float | None
    annual_target: float | None
    met: bool = False  # the year's target is already reached
    projected_year_end: float | None = None
    required_growth_pct: float | None = None
    seasonal_source: str | None = None
    best_rest_growth_pct: float | None = None
    out_of_reach: bool | None = None


def _meets(actual: float, target: float | None, higher_is_better: bool) -> bool:
    """``actual`` reaches ``target`` (up to float noise, so a figure on its path counts)."""
    if target is None:
        return False
    slack = EPSILON * max(1.0, abs(target))
    return actual >= target - slack if higher_is_better else actual <= target + slack


def _required_growth(
    prior: float | None, full: float | None, month: int, annual: float | None, actual: float
) -> float | None:
    """((A(y) − actual) / (YTD(y−1,12) − YTD(y−1,m)) − 1)·100, when last year's remainder is > 0;
    ``prior`` and ``full`` are YTD(y−1, m) and YTD(y−1, 12)."""
    if annual is None or prior is None or full is None or month == 12:
        return None
    remainder = full - prior
    if remainder <= 0:
        return None
    return ((annual - actual) / remainder - 1) * 100


def rest_of_year_growth(series: Series, year: int, month: int) -> float | None:
    """((YTD(k,12) − YTD(k,m)) / (YTD(k−1,12) − YTD(k−1,m)) − 1)·100 for k = ``year``."""
    if not 1 <= month < 12:  # December has no rest of year; no series has a month 0
        return None
    # Asked for every year and month of a flow's history: one year's months made once.
    this, last, ytd = months_of(year), months_of(year - 1), series.ytd
    full, upto = ytd.get(this[11]), ytd.get(this[month - 1])
    prior_full, prior_upto = ytd.get(last[11]), ytd.get(last[month - 1])
    if full is None or upto is None or prior_full is None or prior_upto is None:
        return None
    remainder = prior_full - prior_upto
    if remainder <= 0:
        return None
    return ((full - upto) / remainder - 1) * 100


def best_rest_growth(series: Series, at: YearMonth) -> float | None:
    """The highest rest-of-year growth from month m that a year before ``at`` showed."""
    # Every month of a flow's history asks this of the same years: each month's growth by year
    # is worked out once per series, with its running maximum (measured: asking afresh was a
    # fifth of a backfill's evaluation, quadratic in the years on record).
    years, best = series.memo.get(at.month) or _rest_growth_by_year(series, at.month)
    i = bisect_left(years, at.year)
    return best[i - 1] if i else None


def _rest_growth_by_year(series: Series, month: int) -> tuple[list[int], list[float]]:
    """The years with a rest-of-year growth from ``month`` and the highest up to each, in
    order; the same maximum ``max`` takes of them in that order (the first of equals kept)."""
    years: list[int] = []
    best: list[float] = []
    if "years" not in series.memo:  # the same for every month
        series.memo["years"] = sorted({m.year for m in series.ytd})
    for k in series.memo["years"]:
        g = rest_of_year_growth(series, k, month)
        if g is not None:
            years.append(k)
            best.append(g if not best or g > best[-1] else best[-1])
    series.memo[month] = (years, best)
    return years, best


def out_of_reach(required_pct: float | None, best_pct: float | None) -> bool | None:
    """The required rest-of-year growth exceeds the best on record (None when either unknown)."""
    if required_pct is None or best_pct is None:
        return None
    return required_pct > best_pct + EPSILON * max(1.0, abs(best_pct))


def _flow_out_of_reach(
    met: bool, required: float | None, best: float | None, higher_is_better: bool
) -> bool | None:
    # A met target is within reach; a lower-is-better flow must stay *below* a growth, which
    # the best growth on record says nothing about.
    if met:
        return False
    return out_of_reach(required, best) if higher_is_better else None


def _level_flow(ind: Indicator, series: Series, at: YearMonth, path: _Path) -> _Reading | None:
    """Flow level: actual = YTD(y, m); expected = A(y)·s(m); projected_year_end = actual / s(m)."""
    actual = series.ytd.get(at)
    if actual is None:
        return None
    annual = path.at(at.year)
    prior, full = _last_year(series, at)
    share, source = _seasonal(prior, full, at.month)
    # A lower-is-better flow only proves its year's target once the year is complete.
    met = _meets(actual, annual, ind.higher_is_better) and (ind.higher_is_better or at.month == 12)
    required = _required_growth(prior, full, at.month, annual, actual)
    best = best_rest_growth(series, at)
    return _Reading(
        actual=actual,
        expected=None if annual is None else annual * share,
        annual_target=annual,
        met=met,
        projected_year_end=actual / share if share > 0 else None,
        required_growth_pct=required,
        seasonal_source=source,
        best_rest_growth_pct=best,
        out_of_reach=_flow_out_of_reach(met, required, best, ind.higher_is_better),
    )


def _level_path_reading(
    ind: Indicator, series: Series, at: YearMonth, path: _Path
) -> _Reading | None:
    """Stock level (geometric path) or share (linear path): actual = the latest level."""
    actual = series.latest_level(at)
    if actual is None:
        return None
    annual = path.at(at.year)
    start = path.at(at.year - 1)
    return _Reading(
        actual=actual,
        expected=_within_year(start, annual, at.month, path.geometric),
        annual_target=annual,
        met=_meets(actual, annual, ind.higher_is_better),
    )


def _path_reader(
    target: PlanTarget, ind: Indicator, series: Series
) -> Callable[[YearMonth], _Reading | None]:
    """The reader of a level or share target by month: its yearly path worked out once (a flow's
    V0 read from the data, VT from the growth), not once per month."""
    geometric = target.kind == "level"  # a share moves on a straight line
    try:
        path = _path(target, ind, series, geometric)
    except ArithmeticError:  # absurd magnitudes overflow a power: no month has a usable path
        return _no_reading
    if geometric and ind.kind == "flow":
        return partial(_level_flow, ind, series, path=path)
    # A level target on a ratio indicator is evaluated like a stock.
    return partial(_level_path_reading, ind, series, path=path)


def _no_reading(at: YearMonth) -> None:
    return None


def _cumulative(
    target: PlanTarget, ind: Indicator, series: Series, at: YearMonth
) -> _Reading | None:
    """actual = Σ YTD(k, 12) for B < k < y, + YTD(y, m) (the flow since B);
    expected = VT·((y−B−1)·12 + m)/((T−B)·12)."""
    b, t, vt = target.base_year, target.target_year, target.target_value
    parts = [series.ytd.get(YearMonth(year, 12)) for year in range(b + 1, at.year)]
    parts.append(series.ytd.get(at))
    if any(part is None for part in parts):
        return None
    actual = float(sum(parts))  # type: ignore[arg-type]
    expected = (
        None if vt is None or t <= b else vt * ((at.year - b - 1) * 12 + at.month) / ((t - b) * 12)
    )
    plan_complete = at == YearMonth(t, 12)
    met = _meets(actual, vt, ind.higher_is_better) and (ind.higher_is_better or plan_complete)
    return _Reading(actual=actual, expected=expected, annual_target=vt, met=met)


def _growth_pct(target: PlanTarget) -> float | None:
    g = target.annual_growth_pct
    return g if g is not None else target.target_value


def _growth(target: PlanTarget, ind: Indicator, series: Series, at: YearMonth) -> _Reading | None:
    """actual = YTD YoY % (the bureau's, else computed); expected = annual_target = g·100."""
    actual = series.yoy_pct.get(at)
    if actual is None:
        return None
    g_pct = _growth_pct(target)
    return _Reading(actual=actual, expected=g_pct, annual_target=g_pct)


def _reader(
    target: PlanTarget, ind: Indicator, series: Series
) -> Callable[[YearMonth], _Reading | None] | None:
    """The reading of ``target`` by month, None for a kind the engine cannot read."""
    if target.kind in ("level", "share"):
        return _path_reader(target, ind, series)
    if target.kind == "cumulative":
        return partial(_cumulative, target, ind, series)
    if target.kind == "growth":
        return partial(_growth, target, ind, series)
    return None


# -- attainment and status -----------------------------------------------------------------


def attainment_ratio(actual: float, expected: float, higher_is_better: bool = True) -> float | None:
    """actual / expected (expected / actual when lower is better); None when undefined."""
    if higher_is_better:
        return actual / expected if expected > 0 else None
    return expected / actual if actual > 0 and expected >= 0 else None


def growth_attainment(
    actual_pct: float, g_pct: float, higher_is_better: bool = True
) -> tuple[float | None, float]:
    """attainment = (1 + actual_pct/100) / (1 + g); gap_pp = actual_pct − g·100.

    Lower is better inverts both, so a positive gap_pp is always good."""
    grown, planned = 1 + actual_pct / 100, 1 + g_pct / 100
    if higher_is_better:
        return (grown / planned if planned > 0 else None), actual_pct - g_pct
    return (planned / grown if grown > 0 else None), g_pct - actual_pct


def _grade(ratio: float, at_risk_from: float, on_track_from: float) -> str:
    if ratio >= on_track_from - EPSILON:
        return "on_track"
    return "at_risk" if ratio >= at_risk_from - EPSILON else "behind"


def _finish(
    target: PlanTarget, ind: Indicator, at: YearMonth, reading: _Reading, limits: Thresholds
) -> IndicatorStatus:
    hib = ind.higher_is_better
    attainment = gap = None
    if reading.expected is None:
        status = "achieved" if reading.met else "not_evaluated"
    elif target.kind == "growth":
        attainment, gap = growth_attainment(reading.actual, reading.expected, hib)
        status = _grade(gap, limits.at_risk_gap_pp, 0.0)  # growth targets are never achieved
    else:
        attainment = attainment_ratio(reading.actual, reading.expected, hib)
        gap = None if attainment is None else (attainment - 1) * 100
        if reading.met:
            status = "achieved"
        elif attainment is None:  # expected is zero or negative: compare the numbers themselves
            status = "on_track" if _meets(reading.actual, reading.expected, hib) else "behind"
        else:
            status = _grade(attainment, limits.at_risk_attainment, 1.0)
    return _row(
        target,
        at.label,
        status,
        actual=reading.actual,
        expected=reading.expected,
        annual_target=reading.annual_target,
        attainment=attainment,
        gap_pp=gap,
        projected_year_end=reading.projected_year_end,
        required_growth_pct=reading.required_growth_pct,
        seasonal_source=reading.seasonal_source,
        best_rest_growth_pct=reading.best_rest_growth_pct,
        out_of_reach=reading.out_of_reach,
    )


def _row(
    target: PlanTarget,
    period: str,
    status: str,
    *,
    actual: float | None = None,
    expected: float | None = None,
    annual_target: float | None = None,
    attainment: float | None = None,
    gap_pp: float | None = None,
    projected_year_end: float | None = None,
    required_growth_pct: float | None = None,
    seasonal_source: str | None = None,
    best_rest_growth_pct: float | None = None,
    out_of_reach: bool | None = None,
) -> IndicatorStatus:
    # The numbers by name, not packed into a dict (**numbers) and out again: a row per target
    # and month, where that packing cost as much as working out the status.
    return IndicatorStatus(
        zone=target.zone,
        indicator=target.indicator,
        plan=target.plan,
        period=period,
        kind=target.kind,
        status=status,
        binding=target.binding,
        actual=actual,
        expected=expected,
        annual_target=annual_target,
        attainment=attainment,
        gap_pp=gap_pp,
        projected_year_end=projected_year_end,
        required_growth_pct=required_growth_pct,
        seasonal_source=seasonal_source,
        best_rest_growth_pct=best_rest_growth_pct,
        out_of_reach=out_of_reach,
    )


# -- public API ----------------------------------------------------------------------------


def _plan_months(target: PlanTarget, series: Series) -> list[YearMonth]:
    """Months with a figure in years B+1..T; earlier years only feed seasonality, YoY and sums."""
    return sorted(m for m in series.observed if target.base_year < m.year <= target.target_year)


def _any_actual(ind: Indicator, series: Series, at: YearMonth) -> float | None:
    return series.ytd.get(at) if ind.kind == "flow" else series.latest_level(at)


def _evaluate_target(
    target: PlanTarget, ind: Indicator, series: Series, limits: Thresholds
) -> list[IndicatorStatus]:
    first = f"{target.base_year + 1}-01"
    months = _plan_months(target, series)
    if target.kind == "qualitative":  # 完成市下达指标: the target value comes from outside
        rows = [
            _row(target, m.label, "not_evaluated", actual=_any_actual(ind, series, m))
            for m in months
        ]
        return rows or [_row(target, first, "not_evaluated")]
    reader = _reader(target, ind, series)
    if reader is None:
        return [_row(target, first, "no_data")]
    rows = []
    for month in months:
        try:
            reading = reader(month)
            if reading is not None:
                rows.append(_finish(target, ind, month, reading, limits))
        except ArithmeticError:  # absurd magnitudes overflow a power: no usable figure that month
            continue
    return rows or [_row(target, first, "no_data")]


def _target_order(target: PlanTarget) -> tuple[int, bool, str]:
    # Highest revision wins, a withdrawal wins a tie, then any fixed order for equal revisions.
    return (target.revision, target.action == "D", repr(target.to_dict()))


def _current_targets(zone: str, indicator: str, targets: Iterable[PlanTarget]) -> list[PlanTarget]:
    """The kept revision per plan, withdrawn targets (action D) dropped."""
    kept: dict[tuple[str, str, str], PlanTarget] = {}
    for target in targets:
        if target.zone == zone and target.indicator == indicator:
            current = kept.get(target.key)
            if current is None or _target_order(target) > _target_order(current):
                kept[target.key] = target
    return [kept[key] for key in sorted(kept) if kept[key].action != "D"]


@dataclass(frozen=True, slots=True)
class Assessment:
    """The status rows of one zone and indicator, and the figures among its that look wrong."""

    rows: list[IndicatorStatus]
    suspects: list[SuspectFigure]


def assess(
    zone: str,
    indicator: Indicator,
    observations: Iterable[Observation],
    targets: Iterable[PlanTarget],
    thresholds: Thresholds | Mapping[str, Thresholds] | None = None,
    jump_factor: float = DEFAULT_JUMP_FACTOR,
) -> Assessment:
    """Status rows per (plan, month with a figure) by plan and period, each marked ``suspect``
    where its month's figure is implausible (streams/plausibility.py), and those figures.

    ``observations`` may hold duplicates, revisions, tombstones and both sources; they are merged.
    """
    if isinstance(thresholds, Thresholds):
        limits = thresholds
    else:
        limits = thresholds_for(indicator.id, thresholds)
    mine = [o for o in observations if o.zone == zone and o.indicator == indicator.id]
    series = derive_series(mine, indicator.kind)
    flow = indicator.kind == "flow"
    found = suspicions(series.ytd if flow else series.level, indicator.kind, jump_factor)
    rows = []
    for target in _current_targets(zone, indicator.id, targets):
        rows.extend(_evaluate_target(target, indicator, series, limits))
    if found:
        reasons = {at.label: s.reason for at, s in found.items()}
        rows = [
            replace(row, suspect=reasons[row.period]) if row.period in reasons else row
            for row in rows
        ]
    suspects = _suspect_figures(zone, indicator, found)
    return Assessment(sorted(rows, key=_PLAN_THEN_PERIOD), suspects)


_PLAN_THEN_PERIOD = attrgetter("plan", "period")


def judge(
    zone: str,
    indicator: Indicator,
    observations: Iterable[Observation],
    jump_factor: float = DEFAULT_JUMP_FACTOR,
) -> list[SuspectFigure]:
    """The suspect figures ``assess`` gives, without evaluating targets (an indicator without
    any): a third of the cost of deriving every series the engine needs."""
    mine = [o for o in observations if o.zone == zone and o.indicator == indicator.id]
    found = suspicions(derive_values(mine, indicator.kind), indicator.kind, jump_factor)
    return _suspect_figures(zone, indicator, found)


def _suspect_figures(
    zone: str, indicator: Indicator, found: Mapping[YearMonth, Suspicion]
) -> list[SuspectFigure]:
    return [
        SuspectFigure(
            zone, indicator.id, at.label, s.reason, s.value, s.previous, s.previous_at.label
        )
        for at, s in sorted(found.items())
    ]


def evaluate(
    zone: str,
    indicator: Indicator,
    observations: Iterable[Observation],
    targets: Iterable[PlanTarget],
    thresholds: Thresholds | Mapping[str, Thresholds] | None = None,
    jump_factor: float = DEFAULT_JUMP_FACTOR,
) -> list[IndicatorStatus]:
    """The status rows of ``assess``."""
    return assess(zone, indicator, observations, targets, thresholds, jump_factor).rows


def latest(rows: Iterable[IndicatorStatus]) -> dict[StatusKey, IndicatorStatus]:
    """The latest month's row per (zone, indicator, plan)."""
    out: dict[StatusKey, IndicatorStatus] = {}
    for row in rows:
        key = (row.zone, row.indicator, row.plan)
        if key not in out or row.period >= out[key].period:
            out[key] = row
    return out


def scorecard(zone: str, rows: Iterable[IndicatorStatus]) -> ZoneScorecard:
    """Roll up the latest row per (indicator, plan) of ``zone``: counts, worst binding, median."""
    current = [row for row in latest(r for r in rows if r.zone == zone).values()]
    counts = dict.fromkeys(STATUSES, 0)
    for row in current:
        counts[row.status] = counts.get(row.status, 0) + 1
    attained = [row for row in current if row.attainment is not None]
    binding = sorted(
        (row for row in attained if row.binding), key=lambda r: (r.attainment, r.indicator, r.plan)
    )
    worst = binding[0] if binding else None
    return ZoneScorecard(
        zone=zone,
        period=max((row.period for row in current), default=""),
        counts=counts,
        worst_binding_indicator=worst.indicator if worst else None,
        worst_binding_attainment=worst.attainment if worst else None,
        median_attainment=statistics.median(r.attainment for r in attained) if attained else None,
    )


# -- explanation: the same functions, with their inputs written out ----------------------


@dataclass(frozen=True, slots=True)
class Step:
    """One line of an explanation: ``name = formula = numbers = value``."""

    name: str  # a stable code: annual_target, seasonal_share, expected, attainment, …
    formula: str  # in the notation above, e.g. "A(2024) × s(6)"
    numbers: str  # the formula with its inputs filled in, e.g. "664.0 × 280/600"
    value: float | bool | str | None


@dataclass(frozen=True, slots=True)
class Explanation:
    """A status row and the steps that give its numbers, for a planner to check by hand."""

    row: IndicatorStatus
    target: PlanTarget
    inputs: dict[str, float | int | str | None]
    steps: list[Step]


def num(value: float | None) -> str:
    """A number as explanations show it: one decimal from 10 up, four significant digits below."""
    if value is None:
        return "—"
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.4g}"


def _path_steps(
    path: _Path, year: int, symbol: str, geometric: bool, name: str = "annual_target"
) -> Step:
    b, t = path.base_year, path.target_year
    value = path.at(year)
    if year in (b, t) or path.v0 is None or path.vt is None:
        return Step(name, f"{symbol}({year})", num(value), value)
    if geometric and path.v0 > 0 and path.vt > 0:
        formula = "V0 × (VT/V0)^((y−B)/(T−B))"
        numbers = f"{num(path.v0)} × ({num(path.vt)}/{num(path.v0)})^({year - b}/{t - b})"
    else:
        formula = "V0 + (VT − V0) × (y−B)/(T−B)"
        numbers = f"{num(path.v0)} + ({num(path.vt)} − {num(path.v0)}) × {year - b}/{t - b}"
    return Step(name, f"{symbol}({year}) = {formula}", numbers, value)


def _attainment_steps(row: IndicatorStatus, ind: Indicator, limits: Thresholds) -> list[Step]:
    if row.expected is None or row.actual is None:
        return []
    if row.kind == "growth":
        g = row.expected
        if ind.higher_is_better:
            att = ("(1 + a/100) / (1 + g/100)", f"(1 + {num(row.actual)}/100) / (1 + {num(g)}/100)")
            gap = ("a − g", f"{num(row.actual)} − {num(g)}")
        else:
            att = ("(1 + g/100) / (1 + a/100)", f"(1 + {num(g)}/100) / (1 + {num(row.actual)}/100)")
            gap = ("g − a", f"{num(g)} − {num(row.actual)}")
        rule = f"gap_pp ≥ 0 → on_track; ≥ {num(limits.at_risk_gap_pp)} → at_risk; else behind"
        return [
            Step("attainment", att[0], att[1], row.attainment),
            Step("gap_pp", gap[0], gap[1], row.gap_pp),
            Step("status", rule, num(row.gap_pp), row.status),
        ]
    if ind.higher_is_better:
        att = ("actual / expected", f"{num(row.actual)} / {num(row.expected)}")
    else:
        att = ("expected / actual", f"{num(row.expected)} / {num(row.actual)}")
    rule = (
        f"target met → achieved; attainment ≥ 1 → on_track; "
        f"≥ {num(limits.at_risk_attainment)} → at_risk; else behind"
    )
    steps = [Step("attainment", att[0], att[1], row.attainment)]
    if row.attainment is not None:
        steps.append(
            Step(
                "gap_pp", "(attainment − 1) × 100", f"({num(row.attainment)} − 1) × 100", row.gap_pp
            )
        )
    steps.append(Step("status", rule, num(row.attainment), row.status))
    return steps


def _flow_steps(
    target: PlanTarget, ind: Indicator, series: Series, at: YearMonth, row: IndicatorStatus
) -> list[Step]:
    path = _path(target, ind, series, geometric=True)
    y, m = at.year, at.month
    share_step, s_numbers, share = _seasonal_step(series, at)
    annual = path.at(y)
    return [
        _path_steps(path, y, "A", geometric=True),
        share_step,
        Step("expected", f"A({y}) × s({m})", f"{num(annual)} × {s_numbers}", row.expected),
        Step(
            "projected_year_end",
            f"YTD({y},{m}) / s({m})",
            f"{num(row.actual)} / {num(share)}",
            row.projected_year_end,
        ),
        *_rest_of_year_steps(series, at, row, annual),
    ]


def _seasonal_step(series: Series, at: YearMonth) -> tuple[Step, str, float]:
    """s(m) as a step, its numbers as the later steps quote them, and its value."""
    y, m = at.year, at.month
    share, source = seasonal_share(series, at)
    if source != "prior_year":
        return Step("seasonal_share", f"s({m}) = m/12", f"{m}/12", share), f"{m}/12", share
    prior, full = series.ytd.get(at.previous_year()), series.ytd.get(YearMonth(y - 1, 12))
    numbers = f"{num(prior)}/{num(full)}"
    formula = f"s({m}) = YTD({y - 1},{m}) / YTD({y - 1},12)"
    return Step("seasonal_share", formula, numbers, share), numbers, share


def _rest_of_year_steps(
    series: Series, at: YearMonth, row: IndicatorStatus, annual: float | None
) -> list[Step]:
    """Required rest-of-year growth, the best on record, and whether it is out of reach."""
    y, m = at.year, at.month
    prior, full = series.ytd.get(at.previous_year()), series.ytd.get(YearMonth(y - 1, 12))
    steps = []
    if row.required_growth_pct is not None:
        steps.append(
            Step(
                "required_growth_pct",
                f"((A({y}) − YTD({y},{m})) / (YTD({y - 1},12) − YTD({y - 1},{m})) − 1) × 100",
                f"(({num(annual)} − {num(row.actual)}) / ({num(full)} − {num(prior)}) − 1) × 100",
                row.required_growth_pct,
            )
        )
    if row.best_rest_growth_pct is not None:
        years = sorted({k.year for k in series.ytd if k.year < y})
        each = [(k, g) for k in years if (g := rest_of_year_growth(series, k, m)) is not None]
        steps.append(
            Step(
                "best_rest_growth_pct",
                f"max over k < {y} of ((YTD(k,12) − YTD(k,{m}))"
                f" / (YTD(k−1,12) − YTD(k−1,{m})) − 1) × 100",
                "max(" + ", ".join(f"{k}: {num(g)}" for k, g in each) + ")",
                row.best_rest_growth_pct,
            )
        )
    if row.out_of_reach is not None:
        steps.append(
            Step(
                "out_of_reach",
                "required_growth_pct > best_rest_growth_pct",
                "met"
                if row.required_growth_pct is None
                else f"{num(row.required_growth_pct)} > {num(row.best_rest_growth_pct)}",
                row.out_of_reach,
            )
        )
    return steps


def _within_year_steps(
    target: PlanTarget,
    ind: Indicator,
    series: Series,
    at: YearMonth,
    row: IndicatorStatus,
    geometric: bool,
) -> list[Step]:
    path = _path(target, ind, series, geometric)
    symbol = "A" if geometric else "E"
    y, m = at.year, at.month
    start, end = path.at(y - 1), path.at(y)
    steps = [
        _path_steps(path, y - 1, symbol, geometric, "start_of_year_target"),
        _path_steps(path, y, symbol, geometric),
    ]
    if start is None:
        formula, numbers = f"{symbol}({y})", num(end)
    elif geometric and start > 0 and end is not None and end > 0:
        formula = f"{symbol}({y - 1}) × ({symbol}({y}) / {symbol}({y - 1}))^({m}/12)"
        numbers = f"{num(start)} × ({num(end)}/{num(start)})^({m}/12)"
    else:
        formula = f"{symbol}({y - 1}) + ({symbol}({y}) − {symbol}({y - 1})) × {m}/12"
        numbers = f"{num(start)} + ({num(end)} − {num(start)}) × {m}/12"
    steps.append(Step("expected", formula, numbers, row.expected))
    return steps


def _cumulative_steps(
    target: PlanTarget, ind: Indicator, series: Series, at: YearMonth, row: IndicatorStatus
) -> list[Step]:
    b, t, vt = target.base_year, target.target_year, target.target_value
    y, m = at.year, at.month
    parts = [series.ytd.get(YearMonth(k, 12)) for k in range(b + 1, y)] + [series.ytd.get(at)]
    names = [f"YTD({k},12)" for k in range(b + 1, y)] + [f"YTD({y},{m})"]
    steps = [Step("actual", " + ".join(names), " + ".join(num(p) for p in parts), row.actual)]
    steps.append(
        Step(
            "expected",
            "VT × ((y−B−1)×12 + m) / ((T−B)×12)",
            f"{num(vt)} × ({y - b - 1}×12 + {m}) / ({t - b}×12)",
            row.expected,
        )
    )
    return steps


def plans_of(zone: str, indicator: str, targets: Iterable[PlanTarget]) -> list[str]:
    """The plans with a current (not withdrawn) target for ``zone`` and ``indicator``."""
    return [t.plan for t in _current_targets(zone, indicator, targets)]


def explain(
    zone: str,
    indicator: Indicator,
    observations: Iterable[Observation],
    targets: Iterable[PlanTarget],
    plan: str | None = None,
    period: str | None = None,
    thresholds: Thresholds | Mapping[str, Thresholds] | None = None,
) -> Explanation | None:
    """The row of (zone, indicator, plan) at ``period`` (default: the latest) and the steps that
    give its numbers, written from the engine's own functions; None when there is no such row.
    ``plan`` may be omitted when the indicator has one target."""
    limits = (
        thresholds
        if isinstance(thresholds, Thresholds)
        else thresholds_for(indicator.id, thresholds)
    )
    observations = list(observations)
    mine = [o for o in observations if o.zone == zone and o.indicator == indicator.id]
    series = derive_series(mine, indicator.kind)
    current = [t for t in _current_targets(zone, indicator.id, targets) if plan in (None, t.plan)]
    if len(current) != 1:
        return None
    target = current[0]
    rows = evaluate(zone, indicator, mine, [target], limits)
    if period is not None:
        rows = [r for r in rows if r.period == period]
    if not rows:
        return None
    row = rows[-1]
    at = YearMonth(int(row.period[:4]), int(row.period[5:7]))
    inputs: dict[str, float | int | str | None] = {
        "kind": target.kind,
        "indicator_kind": indicator.kind,
        "B": target.base_year,
        "V0": target.base_value,
        "T": target.target_year,
        "VT": target.target_value,
        "g_pct": target.annual_growth_pct,
        "actual": row.actual,
    }
    if row.status in ("no_data",) or target.kind == "qualitative":
        return Explanation(row, target, inputs, [Step("status", "—", "—", row.status)])
    steps = _target_steps(target, indicator, series, at, row, mine)
    steps += _attainment_steps(row, indicator, limits)
    return Explanation(row, target, inputs, steps)


def _target_steps(
    target: PlanTarget,
    indicator: Indicator,
    series: Series,
    at: YearMonth,
    row: IndicatorStatus,
    mine: Sequence[Observation],
) -> list[Step]:
    """The steps from the target to ``expected`` (and beyond, for a flow), by target kind."""
    if target.kind == "level" and indicator.kind == "flow":
        return _flow_steps(target, indicator, series, at, row)
    if target.kind in ("level", "share"):
        geometric = target.kind == "level"
        return _within_year_steps(target, indicator, series, at, row, geometric=geometric)
    if target.kind == "cumulative":
        return _cumulative_steps(target, indicator, series, at, row)
    if target.kind == "growth":
        source = "bureau YoY" if any(o.yoy_pct is not None for o in mine) else "computed"
        return [
            Step("actual", f"YoY YTD({at.year},{at.month}) %", source, row.actual),
            Step("expected", "g", num(_growth_pct(target)), row.expected),
        ]
    return []
