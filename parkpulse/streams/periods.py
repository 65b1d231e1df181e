"""Statistical periods: ``YYYY-MM``, ``YYYY-Qn`` and ``YYYY``, and the month each is evaluated at.

Chinese statistics are published year-to-date; January and February usually appear only as one
combined ``YYYY-02`` figure, so month 2 is the first month a year is normally seen in.
A YEAR is evaluated at month 12 and quarter q at month 3q.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

from parkpulse.schemas.errors import RejectedInput

PERIOD_KINDS = ("month", "quarter", "year")
COMBINED_JAN_FEB = 2  # the month a combined January–February YTD figure is published at

_PERIOD = re.compile(r"^(\d{4})(?:-(?:(\d{2})|Q([1-4])))?$")


class YearMonth(NamedTuple):
    """A month of a year; orders chronologically."""

    year: int
    month: int

    @property
    def label(self) -> str:
        """The ``YYYY-MM`` form used for status rows."""
        return f"{self.year:04d}-{self.month:02d}"

    def previous_year(self) -> YearMonth:
        """The same month one year earlier."""
        return YearMonth(self.year - 1, self.month)


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


def parse_period(text: str) -> Period:
    """Parse ``YYYY-MM`` | ``YYYY-Qn`` | ``YYYY``; raises RejectedInput("bad_period")."""
    if not isinstance(text, str):
        raise RejectedInput("bad_period", f"not YYYY-MM, YYYY-Qn or YYYY: {text!r}")
    return _parse_period(text)


@lru_cache(maxsize=4096)  # a feed names the same few hundred periods row after row
def _parse_period(text: str) -> Period:
    match = _PERIOD.match(text.strip())
    if match is None:
        raise RejectedInput("bad_period", f"not YYYY-MM, YYYY-Qn or YYYY: {text!r}")
    year, month, quarter = match.groups()
    if month is not None:
        if not 1 <= int(month) <= 12:
            raise RejectedInput("bad_period", f"month out of range: {text!r}")
        return Period(int(year), "month", int(month))
    if quarter is not None:
        return Period(int(year), "quarter", int(quarter))
    return Period(int(year), "year")


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
