"""Implausible figures: flagged, never rejected (pure; no I/O).

The bureau stays the authority: a figure that looks wrong is accepted and evaluated like any
other, but it — and every status row evaluated at its month — is marked ``suspect`` with a
reason, so a status that flipped on it (retail_sales 35.2 → 1,234.5 in a month turned
``achieved`` with −333.7 % required growth) is not taken at face value.

- ``ytd_fell``: a flow's YTD(y, m) is below YTD(y, m′) of the nearest earlier month m′ of the
  same year that has one. Every flow in the catalogue is a sum of non-negative months, so within
  a year its YTD only grows; January starts again from zero, so years are never compared.
- ``jump``: the figure is more than ``factor`` times the previous one, or less than 1/factor of
  it. The previous one is the nearest earlier month's: of the same year for a flow (YTD), at
  most twelve months back for a stock or ratio (a level). Only positive figures are compared (a
  ratio of a zero or a negative says nothing). A flow's fall is ``ytd_fell``, which wins.

Figures are read from the derived series (``observations.derive_series``: the bureau's figure
wins over the registrations-derived one month by month; MONTH and QUARTER figures chained into
YTD), so what is judged is exactly what the plan engine evaluates. A later month is judged
against the figure before it as published, even if that one is itself suspect: 35.2 → 1,234.5 →
40.1 marks both 1,234.5 (jump) and 40.1 (ytd_fell); revising 1,234.5 clears both.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from parkpulse.schemas.periods import YearMonth

REASONS = ("ytd_fell", "jump")
DEFAULT_JUMP_FACTOR = 10.0
LEVEL_LOOKBACK_MONTHS = 12
EPSILON = 1e-9  # relative float noise: a YTD equal to last month's has not fallen


@dataclass(frozen=True, slots=True)
class Suspicion:
    """Why the figure at ``at`` looks wrong, against the figure it was compared with."""

    at: YearMonth
    value: float
    previous_at: YearMonth
    previous: float
    reason: str  # one of REASONS


def _months_apart(earlier: YearMonth, later: YearMonth) -> int:
    return (later.year - earlier.year) * 12 + later.month - earlier.month


def _judge(
    at: YearMonth,
    value: float,
    previous_at: YearMonth,
    previous: float,
    flow: bool,
    factor: float,
) -> Suspicion | None:
    if flow and value < previous - EPSILON * max(1.0, abs(previous)):
        return Suspicion(at, value, previous_at, previous, "ytd_fell")
    if value > 0 and previous > 0 and (value > previous * factor or value * factor < previous):
        return Suspicion(at, value, previous_at, previous, "jump")
    return None


def suspicions(
    values: Mapping[YearMonth, float],
    kind: str,
    factor: float = DEFAULT_JUMP_FACTOR,
) -> dict[YearMonth, Suspicion]:
    """The suspect months of one zone and indicator's series: YTD for a flow (``kind ==
    "flow"``), the level for a stock or ratio; ``factor`` > 1 bounds a month-on-month jump
    (``math.inf`` turns the jump check off)."""
    if not factor > 1:
        raise ValueError(f"the jump factor must be greater than 1, got {factor}")
    flow = kind == "flow"
    out: dict[YearMonth, Suspicion] = {}
    previous_at: YearMonth | None = None
    previous = 0.0
    for at, value in sorted(values.items()):  # months are unique: values are never compared
        if not math.isfinite(value):
            continue
        if previous_at is not None and (
            previous_at.year == at.year
            if flow
            else _months_apart(previous_at, at) <= LEVEL_LOOKBACK_MONTHS
        ):
            found = _judge(at, value, previous_at, previous, flow, factor)
            if found is not None:
                out[at] = found
        previous_at, previous = at, value
    return out
