"""The one dead-letter factory (schemas.deadletter): what a dead letter keeps of its record."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from parkpulse.schemas.deadletter import RAW_LIMIT, dead_letter, kept_raw
from parkpulse.schemas.errors import RejectedInput

ERROR = RejectedInput("bad_value", "OBS_VALUE 'n/a' is not a number")


def test_a_dead_letter_carries_the_reason_detail_and_place() -> None:
    dead = dead_letter(
        "parkpulse.observations", ERROR, b'{"zone": 1}', origin="f.csv", line=7, received_at="t"
    )
    assert (dead.reason, dead.detail) == ("bad_value", "OBS_VALUE 'n/a' is not a number")
    assert (dead.raw, dead.origin, dead.line, dead.received_at) == ('{"zone": 1}', "f.csv", 7, "t")
    assert dead.source_topic == "parkpulse.observations"


def test_a_long_line_is_cut_and_says_how_long_it_was() -> None:
    line = "进" * 2000  # 6000 bytes
    kept = kept_raw(line)
    assert kept.startswith("进" * 1365) and kept.endswith("…[cut, 6000 bytes]")
    assert dead_letter("t", ERROR, kept).raw == kept  # a kept text is not cut twice


def test_bytes_off_the_wire_are_cut_then_decoded() -> None:
    assert kept_raw(b"\xff" * (3 * RAW_LIMIT)) == "\ufffd" * RAW_LIMIT
    assert dead_letter("t", ERROR, b"x" * 5000).raw == "x" * RAW_LIMIT


@given(st.text())
def test_kept_text_fits_the_limit_or_is_the_text(text: str) -> None:
    kept = kept_raw(text)
    if len(text.encode("utf-8", "replace")) <= RAW_LIMIT:
        assert kept == text
    else:
        head, _, tail = kept.rpartition("…[cut, ")
        assert len(head.encode()) <= RAW_LIMIT and text.startswith(head) and tail.endswith("bytes]")


@given(st.binary(max_size=3 * RAW_LIMIT))
def test_kept_bytes_are_the_first_raw_limit_bytes(data: bytes) -> None:
    assert kept_raw(data) == data[:RAW_LIMIT].decode("utf-8", "replace")
