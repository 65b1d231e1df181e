"""Files that are no feed at all (``feed.not_a_feed``) and the dead-letter question's checks
(``deadletter_query``): worked examples, and properties against the row reader itself."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parkpulse.deadletter_query import MAX_LIMIT, DeadLetterQuery, page_summary
from parkpulse.producers.feed import not_a_feed, read_feed, read_targets, to_deadletter
from parkpulse.schemas.deadletter import RAW_LIMIT
from parkpulse.schemas.errors import REASONS
from tests.test_feed import CATALOGUE, DESIGN_LINE, HEADER, TEMPORARY, line
from tests.test_validation import NOW

TARGET_HEADER = "plan,zone,indicator,kind,base_year,base_value,target_year,target_value"


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("name", "data", "what", "dead_letter"),
    [
        ("empty.csv", b"", "is empty", False),
        ("blank.csv", b"\n  \r\n\n", "has only blank lines", False),
        ("header.csv", HEADER.encode() + b"\n\n", "has a header but no rows", False),
        ("notes.txt", b"minutes of the meeting\nnothing to see\n", "lacks column ZONE", True),
        ("photo.csv", bytes(range(256)) * 4, "it is binary", True),
        ("book.xlsx", b"PK\x03\x04\x14\x00\x06\x00" + b"\x00" * 64, "it is binary", True),
        ("doc.json", b'{\n  "zone": "x",\n  "gdp": 1\n}\n', "no line is a JSON object", True),
        ("list.jsonl", b"[1, 2]\n42\n", "no line is a JSON object", True),
    ],
)
def test_what_a_file_is_not(
    tmp_path: Path, name: str, data: bytes, what: str, dead_letter: bool
) -> None:
    refused = not_a_feed(write(tmp_path / name, data))
    assert refused is not None and what in refused.what
    assert (refused.dead_letter is not None) == dead_letter
    if refused.dead_letter is not None:
        dead = to_deadletter(refused.dead_letter, name, "parkpulse.observations")
        assert (dead.reason, dead.line, dead.origin) == ("malformed", 1, name)
        assert what in dead.detail


def test_a_folder_is_no_feed(tmp_path: Path) -> None:
    refused = not_a_feed(tmp_path)
    assert refused is not None and refused.what == "is a folder, not a feed file"
    assert refused.dead_letter is None


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("feed.csv", f"{HEADER}\n{DESIGN_LINE}\n".encode()),
        # a binary line under a good header costs only itself (the reader rejects it)
        ("junk.csv", f"{HEADER}\n".encode() + b"\x00\x01\x02 binary junk \x7f\n"),
        ("feed.csv", f"{HEADER}\n{line(zone='atlantis-hitech')}\n".encode()),  # all rejected
        ("feed.jsonl", b'{broken\n{"zone": "jinan-hitech"}\n'),  # one bad line first
        ("feed.dat", b'{"obs_value": NaN}\n'),  # sniffed as JSON Lines, a bad value
        ("gbk.csv", f"{HEADER}\n{line(unit='亿元')}\n".encode("gbk")),
    ],
)
def test_a_feed_with_bad_rows_is_still_a_feed(tmp_path: Path, name: str, data: bytes) -> None:
    assert not_a_feed(write(tmp_path / name, data)) is None


def test_targets_are_judged_by_their_own_header(tmp_path: Path) -> None:
    targets = write(tmp_path / "t.csv", f"{TARGET_HEADER}\nx,jinan-hitech,gdp,level\n".encode())
    assert not_a_feed(targets, "targets") is None
    refused = not_a_feed(targets, "observations")
    assert refused is not None and "lacks column TIME_PERIOD, BASIS" in refused.what
    feed = write(tmp_path / "f.csv", f"{HEADER}\n{DESIGN_LINE}\n".encode())
    assert not_a_feed(feed, "targets") is not None


LINES = st.sampled_from(
    [HEADER, DESIGN_LINE, line(zone="atlantis-hitech"), TARGET_HEADER, "", " ", '{"a": 1}', "[1]"]
)
CONTENTS = (
    st.binary(max_size=300)
    | st.lists(LINES | st.text(max_size=20), max_size=8).map(lambda ls: "\n".join(ls).encode())
    | st.lists(st.binary(max_size=30) | LINES.map(str.encode), max_size=8).map(b"\n".join)
)


@settings(max_examples=200, deadline=None, suppress_health_check=TEMPORARY)
@given(data=CONTENTS)
def test_a_refused_file_has_no_row_the_reader_accepts(tmp_path: Path, data: bytes) -> None:
    """Refused with a dead letter: the reader would accept none of its rows. Refused without
    one: the reader gives no row at all. Not refused: the reader gives at least one row."""
    for name, kind in (
        ("feed.csv", "observations"),
        ("feed.jsonl", "observations"),
        ("feed.dat", "observations"),
        ("targets.csv", "targets"),
    ):
        path = write(tmp_path / name, data)
        rows = list(
            read_targets(path, CATALOGUE)
            if kind == "targets"
            else read_feed(path, CATALOGUE, now=NOW)
        )
        refused = not_a_feed(path, kind)
        if refused is None:
            assert rows, (name, data)
        elif refused.dead_letter is None:
            assert rows == [], (name, data, refused.what)
        else:
            assert not any(r.accepted for r in rows), (name, data, refused.what)
            dead = to_deadletter(refused.dead_letter, name, "parkpulse.observations")
            assert len(dead.raw.encode()) <= RAW_LIMIT + 64


# -- the dead-letter question -----------------------------------------------------------------


def test_query_string_values_are_checked() -> None:
    since = "2024-05-01T00:00Z"
    asked = DeadLetterQuery.from_params(
        {"limit": "5", "origin": "南宁 feed.csv", "reason": "conflict", "since": since}
    )
    may_day = datetime(2024, 5, 1, tzinfo=UTC)
    assert asked == DeadLetterQuery(5, "南宁 feed.csv", "conflict", may_day)
    assert DeadLetterQuery.from_params(asked.params()) == asked  # what the CLI sends, read back
    assert DeadLetterQuery.from_params({}) == DeadLetterQuery()
    for params, said in [
        ({"limit": "ten"}, "limit must be an integer"),
        ({"limit": "0"}, "limit must be 1..100000"),
        ({"limit": str(MAX_LIMIT + 1)}, "limit must be 1..100000"),
        ({"reason": "bogus"}, "reason must be one of"),
        ({"origin": "a\nb"}, "origin must be"),
        ({"origin": "x" * 257}, "origin must be"),
        ({"since": "last week"}, "since must be an ISO 8601 time"),
        ({"since": "2024-05-01T00:00"}, "since must carry a time zone"),
        ({"zone": "x"}, "unknown parameter zone"),
    ]:
        with pytest.raises(ValueError, match=said):
            DeadLetterQuery.from_params(params)


@given(
    limit=st.integers(1, MAX_LIMIT),
    origin=st.none() | st.text(min_size=1, max_size=256).filter(str.isprintable),
    reason=st.none() | st.sampled_from(REASONS),
)
def test_a_query_survives_its_query_string(
    limit: int, origin: str | None, reason: str | None
) -> None:
    asked = DeadLetterQuery(limit, origin, reason)
    sent = {k: str(v) for k, v in asked.params().items() if v is not None}
    assert DeadLetterQuery.from_params(sent) == asked


def test_page_summary_says_how_many_of_how_many() -> None:
    assert page_summary({"total": 956, "rows": [{}] * 200}) == "200 of 956 shown"
    assert page_summary({"total": 0, "rows": []}) == "0 of 0 shown"
