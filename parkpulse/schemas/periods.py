"""Statistical periods: ``YYYY-MM``, ``YYYY-Qn`` and ``YYYY``, and the month each is evaluated at.

Periods and registrations are counted in Beijing time (``SHANGHAI``, here once).

The one reader of a TIME_PERIOD: validation (which says why a period does not fit its BASIS),
the engine and the status gauges all read periods here. Pure, and below everything that uses it.

Chinese statistics are published year-to-date; January and February usually appear only as one
combined ``YYYY-02`` figure, so month 2 is the first month a year is normally seen in.
A YEAR is evaluated at month 12 and quarter q at month 3q.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta, timezone
from functools import lru_cache
from typing import NamedTuple

from parkpulse.schemas.errors import RejectedInput

# Statistics bureaus publish on Beijing time; China has no daylight saving, so a fixed offset is
# exact and needs no tz database.
SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")
PERIOD_KINDS = ("month", "quarter", "year")
COMBINED_JAN_FEB = 2  # the month a combined January–February YTD figure is published at

# The syntax alone (ASCII digits): the month and quarter are checked by parse_period, so that
# validation can first say which form a BASIS needs and then what is out of range.
_PERIOD = re.compile(r"([0-9]{4})(?:-([0-9]{2})|-Q([0-9]))?")


class YearMonth(NamedTuple):
    """A month of a year; orders chronologically."""

    year: int
    month: int

    @property
    def label(self) -> str:
        """The ``YYYY-MM`` form used for status rows."""
        return _label(self)

    def previous_year(self) -> YearMonth:
        """The same month one year earlier."""
        if 1 <= self.month <= 12:  # asked of every month evaluated: the month made once
            return months_of(self.year - 1)[self.month - 1]
        return YearMonth(self.year - 1, self.month)


@lru_cache(maxsize=4096)  # every status row is labelled: the same few hundred months
def _label(at: tuple[int, int]) -> str:
    return f"{at[0]:04d}-{at[1]:02d}"


@lru_cache(maxsize=1024)
def months_of(year: int) -> tuple[YearMonth, ...]:
    """The twelve months of ``year``, January first: ``months_of(y)[m - 1]`` is YearMonth(y, m),
    made once for the loops that walk a year month by month."""
    return tuple(YearMonth(year, month) for month in range(1, 13))


@dataclass(frozen=True, slots=True)
class Period:
    """A parsed ``TIME_PERIOD``: kind is month, quarter or year; number is the month or quarter."""

    year: int
    kind: str
    number: int | None = None

    @property
    def evaluated_at(self) -> YearMonth:
        """The month this period ends in (YEAR → 12, quarter q → 3q)."""
        if self.kind == "month":
            return YearMonth(self.year, self.number or 0)
        if self.kind == "quarter":
            return YearMonth(self.year, 3 * (self.number or 0))
        return YearMonth(self.year, 12)


def split_period(text: str) -> tuple[int, str, int | None] | None:
    """(year, kind, month or quarter) as ``text`` writes them, unchecked; None when not a period.

    ``text`` is read as written (validation upper-cases it first): ``2021-13`` is (2021, "month",
    13) and ``2021-Q5`` (2021, "quarter", 5), for the caller to judge.
    """
    match = _PERIOD.fullmatch(text)
    if match is None:
        return None
    year, month, quarter = match.groups()
    if month is not None:
        return int(year), "month", int(month)
    if quarter is not None:
        return int(year), "quarter", int(quarter)
    return int(year), "year", None


def parse_period(text: str) -> Period:
    """Parse ``YYYY-MM`` | ``YYYY-Qn`` | ``YYYY`` (blanks around and a lower-case q allowed);
    raises RejectedInput("bad_period")."""
    if not isinstance(text, str):
        raise RejectedInput("bad_period", f"not YYYY-MM, YYYY-Qn or YYYY: {text!r}")
    return _parse_period(text)


@lru_cache(maxsize=4096)  # a feed names the same few hundred periods row after row
def _parse_period(text: str) -> Period:
    split = split_period(text.strip().upper())
    if split is None:
        raise RejectedInput("bad_period", f"not YYYY-MM, YYYY-Qn or YYYY: {text!r}")
    year, kind, number = split
    if kind == "month" and not 1 <= (number or 0) <= 12:
        raise RejectedInput("bad_period", f"month out of range: {text!r}")
    if kind == "quarter" and not 1 <= (number or 0) <= 4:
        raise RejectedInput("bad_period", f"quarter out of range: {text!r}")
    return Period(year, kind, number)


def evaluated_month(period: str) -> YearMonth:
    """The month a period is evaluated at (``2021`` → 2021-12, ``2021-Q2`` → 2021-06)."""
    return parse_period(period).evaluated_at


def parse_month(text: str) -> YearMonth:
    """Parse a ``YYYY-MM`` month; raises RejectedInput("bad_period") for anything else."""
    period = parse_period(text)
    if period.kind != "month":
        raise RejectedInput("bad_period", f"not a YYYY-MM month: {text!r}")
    return period.evaluated_at


def month_label(year: int, month: int) -> str:
    """``YYYY-MM`` for a year and month."""
    return YearMonth(year, month).label


def quarter_months(quarter: int) -> range:
    """The months of quarter 1..4 (``quarter_months(2)`` is 4, 5, 6)."""
    return range(3 * quarter - 2, 3 * quarter + 1)


def is_combined_jan_feb(basis: str, period: str) -> bool:
    """True for a ``YYYY-02`` YTD figure, which stands for January and February together."""
    try:
        return basis == "YTD" and parse_period(period) == Period(
            int(period[:4]), "month", COMBINED_JAN_FEB
        )
    except (RejectedInput, ValueError):
        return False
