"""The one period reader (schemas.periods): properties beside worked examples.

Validation, the engine and the status gauges all read a TIME_PERIOD through split_period and
parse_period, so these pin what every one of them takes.
"""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from parkpulse.schemas.errors import RejectedInput
from parkpulse.schemas.periods import (
    SHANGHAI,
    Period,
    YearMonth,
    evaluated_month,
    parse_period,
    split_period,
)

YEARS = st.integers(0, 9999)


def canonical(period: Period) -> str:
    if period.kind == "month":
        return f"{period.year:04d}-{period.number:02d}"
    if period.kind == "quarter":
        return f"{period.year:04d}-Q{period.number}"
    return f"{period.year:04d}"


@pytest.mark.parametrize(
    ("text", "split"),
    [
        ("2021-03", (2021, "month", 3)),
        ("2021-13", (2021, "month", 13)),  # the syntax only: the caller judges the month
        ("2021-Q5", (2021, "quarter", 5)),
        ("2021", (2021, "year", None)),
        ("2021-q1", None),  # as written: validation upper-cases first
        ("2021-3", None),
        (" 2021-03", None),
        ("２０２１-03", None),  # ASCII digits only
        ("2021-03\n", None),
    ],
)
def test_split_period_reads_the_syntax(text: str, split: tuple | None) -> None:
    assert split_period(text) == split


def test_parse_period_forgives_blanks_and_a_lower_case_q() -> None:
    assert parse_period(" 2021-q3 ") == Period(2021, "quarter", 3)
    assert evaluated_month("2021-q3") == YearMonth(2021, 9)


@pytest.mark.parametrize("bad", ["2021-13", "2021-00", "2021-Q0", "2021-Q5", "２０２１", "21"])
def test_out_of_range_and_foreign_digits_are_bad_periods(bad: str) -> None:
    with pytest.raises(RejectedInput) as err:
        parse_period(bad)
    assert err.value.reason == "bad_period"


def test_beijing_time_is_utc_plus_eight() -> None:
    assert datetime(2021, 1, 1, tzinfo=SHANGHAI).utcoffset().total_seconds() == 8 * 3600


@given(YEARS, st.integers(1, 12))
def test_a_month_is_evaluated_at_itself(year: int, month: int) -> None:
    text = f"{year:04d}-{month:02d}"
    assert parse_period(text) == Period(year, "month", month)
    assert evaluated_month(text) == YearMonth(year, month)
    assert evaluated_month(text).label == text


@given(YEARS, st.integers(1, 4))
def test_a_quarter_is_evaluated_at_its_last_month(year: int, quarter: int) -> None:
    assert evaluated_month(f"{year:04d}-Q{quarter}") == YearMonth(year, 3 * quarter)


@given(YEARS)
def test_a_year_is_evaluated_at_december(year: int) -> None:
    assert evaluated_month(f"{year:04d}") == YearMonth(year, 12)


@given(st.text(max_size=12) | st.from_regex(r"[0-9]{4}(-[0-9Qq]{1,3})?", fullmatch=True))
def test_any_text_is_a_period_that_reads_back_or_a_bad_period(text: str) -> None:
    split = split_period(text)  # never raises
    try:
        period = parse_period(text)
    except RejectedInput as err:
        assert err.reason == "bad_period"
        return
    assert parse_period(canonical(period)) == period
    assert split is None or split == (period.year, period.kind, period.number)
