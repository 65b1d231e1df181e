"""Revisions, deletes and derived series of observations (pure; no I/O).

An observation is keyed by ``(zone, indicator, basis, period, source)``. The kept figure of a
key is the maximum by ``(revision, is_delete)``: a higher revision replaces a lower one and, at the
same revision, a delete beats an insert. Ties between equal figures are broken by the remaining
fields, so the final state never depends on arrival order. Two different figures at the same
revision are a ``conflict``.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from operator import itemgetter
from typing import NamedTuple

from parkpulse.schemas.errors import RejectedInput
from parkpulse.schemas.periods import Period, YearMonth, months_of, parse_period
from parkpulse.schemas.records import Observation

ObservationKey = tuple[str, str, str, str, str]

# For stocks and ratios every basis reads as a level at period end; the most direct one wins.
LEVEL_BASES = ("LEVEL", "YTD", "YEAR", "QUARTER", "MONTH")
# For flows a YTD-basis figure beats a YEAR one that lands on the same month.
YTD_BASES = ("YTD", "YEAR")


class ObservationConflict(RejectedInput):
    """Same key, same revision, same action class, but a different value or YoY."""

    def __init__(self, current: Observation, incoming: Observation) -> None:
        super().__init__(
            "conflict",
            f"{'/'.join(incoming.key)} revision {incoming.revision}: have value={current.value} "
            f"yoy={current.yoy_pct}, got value={incoming.value} yoy={incoming.yoy_pct}",
        )
        self.current = current
        self.incoming = incoming


def _number_key(value: float | None) -> tuple[int, float]:
    if value is None:
        return (0, 0.0)
    if math.isnan(value):
        return (2, 0.0)
    return (1, value)


def _order(obs: Observation) -> tuple:
    """A total order on the figures of one key; the maximum is kept."""
    return (
        obs.revision,
        obs.is_delete,
        obs.published_at,
        obs.obs_status,
        obs.action,
        obs.unit,
        _number_key(obs.value),
        _number_key(obs.yoy_pct),
    )


def _same_figure(a: Observation, b: Observation) -> bool:
    return _number_key(a.value) == _number_key(b.value) and _number_key(a.yoy_pct) == _number_key(
        b.yoy_pct
    )


def merge(current: Observation | None, incoming: Observation) -> Observation:
    """The observation to keep for a key; returns ``current`` itself when nothing changes.

    Raises ObservationConflict when both are upserts at one revision with different figures.
    """
    if current is None:
        return incoming
    if current.key != incoming.key:
        raise ValueError(f"cannot merge different keys {current.key} and {incoming.key}")
    if (incoming.revision, incoming.is_delete) == (current.revision, current.is_delete) and not (
        incoming.is_delete or _same_figure(current, incoming)
    ):
        raise ObservationConflict(current, incoming)
    return incoming if _order(incoming) > _order(current) else current


def resolve(observations: Iterable[Observation]) -> dict[ObservationKey, Observation]:
    """The kept observation per key (tombstones included), whatever the order or duplicates.

    Never raises: a conflict resolves to the same figure ``merge`` would order last.
    """
    kept: dict[ObservationKey, Observation] = {}
    for obs in observations:
        key = obs.key
        current = kept.get(key)
        if current is None or _order(obs) > _order(current):
            kept[key] = obs
    return kept


@dataclass(frozen=True, slots=True)
class Series:
    """Figures of one (zone, indicator) by month; the bureau's figure wins over registrations."""

    ytd: Mapping[YearMonth, float]  # cumulative Jan..month (flows)
    monthly: Mapping[YearMonth, float]  # the month alone (flows)
    level: Mapping[YearMonth, float]  # level at month end (stocks, ratios; LEVEL figures of flows)
    yoy_pct: Mapping[YearMonth, float]  # YTD (flows) or level (others) YoY; the bureau's as given
    observed: frozenset[YearMonth]  # months that have a live figure, any basis
    level_months: tuple[YearMonth, ...]  # the months of ``level``, in order
    # What the engine works out once per series (plan.best_rest_growth), not part of its value.
    memo: dict = field(default_factory=dict, compare=False, repr=False)

    def latest_level(self, at: YearMonth) -> float | None:
        """The latest level at or before ``at``."""
        i = bisect_right(self.level_months, at)
        return self.level[self.level_months[i - 1]] if i else None


class _Figure(NamedTuple):  # a tuple: every recompute makes one per figure of the indicator
    period: Period
    obs: Observation
    at: YearMonth  # the month the period is evaluated at


@lru_cache(maxsize=4096)  # the same few hundred periods, figure after figure
def _period_at(text: str) -> tuple[Period, YearMonth]:
    period = parse_period(text)
    return period, period.evaluated_at


def _figures(observations: Iterable[Observation]) -> list[_Figure]:
    figures = []
    for obs in observations:
        try:
            period, at = _period_at(obs.period)
        except (RejectedInput, TypeError):  # TypeError: not a str, and not hashable either
            continue
        figures.append(_Figure(period, obs, at))
    return figures


def _first_by_month(figures: Iterable[_Figure], bases: tuple[str, ...], field: str) -> dict:
    """``field`` per month, from the first basis in ``bases`` that has it at that month."""
    rank = _ranks(bases)
    ranked = sorted(
        [
            (rank[f.obs.basis], f.obs.period, f.at, value)
            for f in figures
            if f.obs.basis in rank and (value := getattr(f.obs, field)) is not None
        ],
        key=_BASIS_THEN_PERIOD,  # a stable sort on these two alone, as ``bases.index`` ranked
    )
    out: dict[YearMonth, float] = {}
    for _, _, at, value in ranked:
        out.setdefault(at, value)
    return out


_BASIS_THEN_PERIOD = itemgetter(0, 1)


@lru_cache(maxsize=16)
def _ranks(bases: tuple[str, ...]) -> dict[str, int]:
    """Each basis by its place in ``bases`` (the first one found wins a month)."""
    return {basis: i for i, basis in enumerate(bases)}


def _is_ytd_figure(figure: _Figure) -> bool:
    # A YEAR figure is the YTD at December only when its period is a whole year.
    return figure.obs.basis == "YTD" or (
        figure.obs.basis == "YEAR" and figure.period.kind == "year"
    )


def _chain_ytd(
    ytd: dict[YearMonth, float],
    monthly: Mapping[YearMonth, float],
    quarters: Mapping[YearMonth, float],
) -> dict[YearMonth, float]:
    """Extend YTD forward: YTD(m) = YTD(m−1) + MONTH(m), YTD(3q) = YTD(3q−3) + QUARTER(q).

    Only complete months add up (a combined ``YYYY-02`` YTD stands for January and February).
    """
    out = dict(ytd)
    for year in sorted({at.year for at in (*ytd, *monthly, *quarters)}):
        months = months_of(year)  # months[m - 1] is month m
        for month in range(1, 13):
            at = months[month - 1]
            if at in out:
                continue
            before = out.get(months[month - 2]) if month > 1 else 0.0
            quarter_start = out.get(months[month - 4]) if month > 3 else 0.0
            if before is not None and at in monthly:
                out[at] = before + monthly[at]
            elif at in quarters and quarter_start is not None:
                out[at] = quarter_start + quarters[at]
    return out


def _monthly_from_ytd(
    ytd: Mapping[YearMonth, float], monthly: Mapping[YearMonth, float]
) -> dict[YearMonth, float]:
    """MONTH(m) = YTD(m) − YTD(m−1), MONTH(1) = YTD(1); a published MONTH figure is kept."""
    out = dict(monthly)
    for at, value in ytd.items():
        if at in out:
            continue
        if at.month == 1:
            out[at] = value
        elif (before := ytd.get(_month_before(at))) is not None:
            out[at] = value - before
    return out


def _month_before(at: YearMonth) -> YearMonth:
    """Month m−1 of the same year."""
    if 1 < at.month <= 12:  # every month parsed here: one of the year's months made once
        return months_of(at.year)[at.month - 2]
    return YearMonth(at.year, at.month - 1)


def _flow_ytd_monthly(
    figures: list[_Figure],
) -> tuple[dict[YearMonth, float], dict[YearMonth, float]]:
    ytd, monthly = _flow_ytd(figures)
    return ytd, _monthly_from_ytd(ytd, monthly)


def _flow_ytd(figures: list[_Figure]) -> tuple[dict[YearMonth, float], dict[YearMonth, float]]:
    """A flow's YTD by month (its MONTH and QUARTER figures chained in) and the MONTH figures
    as published: the judging of a flow needs the first alone."""
    ytd_figures: list[_Figure] = []
    monthly: dict[YearMonth, float] = {}
    quarters: dict[YearMonth, float] = {}
    for f in figures:  # one pass sorts them: the bases are apart, the order is the figures'
        if f.obs.value is None:
            continue
        if _is_ytd_figure(f):
            ytd_figures.append(f)
        elif f.obs.basis == "MONTH" and f.period.kind == "month":
            monthly[f.at] = f.obs.value
        elif f.obs.basis == "QUARTER" and f.period.kind == "quarter":
            quarters[f.at] = f.obs.value
    ytd = _first_by_month(ytd_figures, YTD_BASES, "value")
    return _chain_ytd(ytd, monthly, quarters), monthly


def _prefer(primary: Mapping, secondary: Mapping) -> dict:
    return {**secondary, **primary}


def _computed_yoy(values: Mapping[YearMonth, float]) -> dict[YearMonth, float]:
    """YoY = (X(y, m) / X(y−1, m) − 1)·100 where last year's figure is positive."""
    out = {}
    for at, value in values.items():
        prior = values.get(at.previous_year())
        if prior is not None and prior > 0:
            out[at] = (value / prior - 1.0) * 100.0
    return out


def _live(observations: Iterable[Observation]) -> list[Observation]:
    kept = resolve(observations)
    # By key (keys are unique, so the sort never compares two observations).
    return [obs for _, obs in sorted(kept.items()) if not obs.is_delete]


def derive_series(observations: Iterable[Observation], kind: str = "flow") -> Series:
    """Derive YTD, monthly, level and YoY series of one (zone, indicator) of ``kind``.

    Sources are never mixed inside one derivation: each is derived alone, then the bureau's figure
    wins month by month. YoY is the bureau's where given, else computed from the merged series.
    """
    figures = _figures(_live(observations))
    by_source = {
        source: [f for f in figures if f.obs.source == source]
        for source in ("registrations", "bureau")
    }
    ytd: dict[YearMonth, float] = {}
    monthly: dict[YearMonth, float] = {}
    level: dict[YearMonth, float] = {}
    given_yoy: dict[YearMonth, float] = {}
    for source_figures in by_source.values():  # registrations first, the bureau overrides
        if kind == "flow":
            source_ytd, source_monthly = _flow_ytd_monthly(source_figures)
            ytd, monthly = _prefer(source_ytd, ytd), _prefer(source_monthly, monthly)
            level = _prefer(_first_by_month(source_figures, ("LEVEL",), "value"), level)
            yoy = _first_by_month(
                [f for f in source_figures if _is_ytd_figure(f)], YTD_BASES, "yoy_pct"
            )
        else:
            level = _prefer(_first_by_month(source_figures, LEVEL_BASES, "value"), level)
            yoy = _first_by_month(source_figures, LEVEL_BASES, "yoy_pct")
        given_yoy = _prefer(yoy, given_yoy)
    computed = _computed_yoy(ytd if kind == "flow" else level)
    observed = frozenset(
        f.at for f in figures if f.obs.value is not None or f.obs.yoy_pct is not None
    )
    return Series(ytd, monthly, level, _prefer(given_yoy, computed), observed, tuple(sorted(level)))


def derive_values(
    observations: Iterable[Observation], kind: str = "flow"
) -> dict[YearMonth, float]:
    """``derive_series(...).ytd`` of a flow, ``.level`` of a stock or ratio, and nothing else:
    what the plausibility check judges of an indicator that has no targets to evaluate."""
    figures = _figures(_live(observations))
    out: dict[YearMonth, float] = {}
    for source in ("registrations", "bureau"):  # the bureau's figure wins month by month
        mine = [f for f in figures if f.obs.source == source]
        if kind == "flow":
            values = _flow_ytd(mine)[0]
        else:
            values = _first_by_month(mine, LEVEL_BASES, "value")
        out = _prefer(values, out)
    return out
