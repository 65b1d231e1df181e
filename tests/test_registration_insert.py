"""The registrations insert's columns and settings (sinks/writer.py ``write_registrations``).

Issue 14: the insert is on the heavy stream's path, so ``registered_at`` is parsed from one
buffer of fixed-width texts and ReplacingMergeTree's merge on insert is skipped (a batch holds
one row per id). Both are checked here against the plain reading of each value; the real insert
into chdb and into a server is in tests/test_registrations.py's integration tests.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from parkpulse.schemas.periods import SHANGHAI
from parkpulse.schemas.records import Registration
from parkpulse.schemas.registration_block import INSERTED, beijing_ms
from parkpulse.sinks.clickhouse import ClickHouseStore
from parkpulse.sinks.writer import REGISTRATION_INSERT_SETTINGS, registration_part

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def one_by_one(texts: list[str]) -> list[int]:
    """Each text's Unix milliseconds (a fraction of a millisecond dropped, as DateTime64(3))."""
    return [(datetime.fromisoformat(t) - EPOCH) // timedelta(milliseconds=1) for t in texts]


def test_beijing_times_in_milliseconds() -> None:
    texts = ["2021-04-15T09:30:00+08:00", "1949-01-01T00:00:00+08:00", "2020-02-29T23:59:59+08:00"]
    assert beijing_ms(texts).tolist() == [1618450200000, -662716800000, 1582991999000]
    assert beijing_ms(texts).tolist() == one_by_one(texts)
    assert beijing_ms(["2021-04-15T09:30:00.250+08:00", texts[0]]).tolist() == [
        1618450200250,
        1618450200000,
    ]
    assert beijing_ms([]).tolist() == []


local_times = st.datetimes(min_value=datetime(1949, 1, 1), max_value=datetime(2100, 12, 31))


@given(st.lists(st.tuples(local_times, st.booleans()), max_size=30))
def test_whole_seconds_and_fractions_read_as_each_text_reads(
    times: list[tuple[datetime, bool]],
) -> None:
    texts = [
        when.replace(tzinfo=SHANGHAI).isoformat(timespec="microseconds" if frac else "seconds")
        for when, frac in times
    ]
    assert beijing_ms(texts).tolist() == one_by_one(texts)


class RecordingClient:
    """A driver client that keeps what each insert was called with."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def insert(self, table: str, data: Any, **kwargs: Any) -> None:
        self.calls.append((table, kwargs))

    def raw_insert(self, table: str, columns: Any, block: bytes, **kwargs: Any) -> None:
        self.calls.append((table, {"columns": columns, **kwargs}))

    def close(self) -> None:
        pass


def test_a_registrations_insert_skips_the_merge_on_insert_and_others_do_not() -> None:
    client = RecordingClient()
    store = ClickHouseStore(client=client)
    when = datetime(2021, 4, 15, 9, 30, tzinfo=SHANGHAI) + timedelta(seconds=1)
    row = Registration(
        "jinan-hitech", "R1", when.isoformat(), "enterprise", "I65", 5.0, "2021-04", "b", ""
    )
    try:
        store.run(store.write_registrations, [row])
        store.run(store.mark_landed, ["a.csv"])
    finally:
        store.close()
    (reg_table, reg_kwargs), (ledger_table, ledger_kwargs) = client.calls
    assert reg_table.endswith(".registrations") and ledger_table.endswith(".feed_ledger")
    assert reg_kwargs["settings"] == {"optimize_on_insert": 0} == dict(REGISTRATION_INSERT_SETTINGS)
    assert reg_kwargs["fmt"] == "Native" and reg_kwargs["columns"] == [n for n, _ in INSERTED]
    assert "settings" not in ledger_kwargs
    assert registration_part([row]).rows(0, 1).settings == REGISTRATION_INSERT_SETTINGS
