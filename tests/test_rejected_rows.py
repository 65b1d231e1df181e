"""A file full of rejected rows is read without leaving garbage for the cyclic collector.

A clerk who mistypes a zone or a unit in a big file gets every row back as a dead letter. Each
rejected row kept its error with the traceback it was raised with, and the traceback's frames
held it in turn: garbage only the cyclic collector frees, whose full collections over it took
two thirds of reading such a file (``RejectedInput.detached``). The suggestions of a mistyped
unit (difflib over every unit name, ~0.8 ms) are found once per text, like a zone's.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from parkpulse.producers.columnar import read_feed_columns
from parkpulse.producers.feed import FeedRow, read_feed
from parkpulse.schemas.errors import RejectedInput
from parkpulse.schemas.names import unit_suggestions
from parkpulse.schemas.records import DeadLetter
from tests.test_feed import CATALOGUE, HEADER, NOW, line, write

ROWS = 120  # a month each, 2010–2019


@pytest.fixture
def collector_off() -> Iterator[None]:
    """The collector paused, so ``gc.collect()`` counts what the code under test left
    unreachable (each test collects once after a first read: what the first use of a reader
    sets up is not the read's garbage)."""
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _rows(**fields: str) -> list[str]:
    return [line(period=f"{2010 + k // 12}-{k % 12 + 1:02d}", **fields) for k in range(ROWS)]


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"zone": "jinan-hightec"}, "unknown_zone"),
        ({"unit": "CNY_1000M"}, "unit_mismatch"),
        ({"indicator": "gpd"}, "unknown_indicator"),
    ],
)
def test_rejected_rows_leave_no_cycles(
    tmp_path: Path, collector_off: None, fields: dict[str, str], reason: str
) -> None:
    path = write(tmp_path / "feed.csv", HEADER, *_rows(**fields))
    for read in (
        lambda: list(read_feed_columns(path, CATALOGUE, now=NOW, origin="feed.csv")),
        lambda: list(read_feed(path, CATALOGUE, now=NOW)),
    ):
        read()
        gc.collect()
        rows = read()
        assert len(rows) == ROWS
        assert all(isinstance(r, FeedRow) and r.error and r.error.reason == reason for r in rows)
        assert all(r.error.__traceback__ is None and r.error.__context__ is None for r in rows)
        del rows
        # Kept with their tracebacks: ~23 objects a row (the bound leaves room for what another
        # thread of the session may leave meanwhile).
        assert gc.collect() < ROWS


def test_detached_keeps_what_a_dead_letter_says() -> None:
    try:
        try:
            raise KeyError("inner")
        except KeyError:
            raise RejectedInput("unknown_zone", "ZONE 'x' is not a known zone") from None
    except RejectedInput as caught:
        exc = caught
    assert exc.__traceback__ is not None and exc.__context__ is not None
    assert exc.detached() is exc
    assert (exc.reason, exc.detail, str(exc)) == (
        "unknown_zone",
        "ZONE 'x' is not a known zone",
        "unknown_zone: ZONE 'x' is not a known zone",
    )
    assert exc.__traceback__ is None and exc.__context__ is None and exc.__cause__ is None


def test_unit_suggestions_are_a_fresh_list_each_time() -> None:
    first = unit_suggestions("亿")
    assert first and first == unit_suggestions("亿")
    first.clear()  # a caller's list is its own: the remembered suggestions stay
    assert unit_suggestions("亿") and unit_suggestions("亿") is not unit_suggestions("亿")


def test_a_dead_letter_as_a_dict_is_its_fields() -> None:
    dead = DeadLetter("parkpulse.observations", "malformed", "x", "raw", "feed.csv", 3, "t")
    assert dead.to_dict() == {
        "source_topic": "parkpulse.observations",
        "reason": "malformed",
        "detail": "x",
        "raw": "raw",
        "origin": "feed.csv",
        "line": 3,
        "received_at": "t",
    }
