"""The columnar fast reader gives exactly the line reader's verdicts: the same accepted wire
records (grouped by zone, in line order) and the same rejected (line, reason, detail)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parkpulse.producers.columnar import ZoneFigures, _arrow, _by_lines, _np, read_feed_columns
from parkpulse.producers.feed import FeedRow, read_feed
from parkpulse.schemas.envelope import envelope_records
from parkpulse.schemas.wire import COLUMNS_FIELD, OBSERVATION_WIRE_FIELDS, observation_envelope
from tests.test_feed import CATALOGUE, HEADER, NOW, PREFIX, line, write

ORIGIN = "feed.csv"


def verdicts(items: Any) -> tuple[list[tuple[int, str, str, str]], dict[str, list[Any]]]:
    rejected, zones = [], {}
    for item in items:
        if isinstance(item, ZoneFigures):
            assert item.zone not in zones
            zones[item.zone] = [orjson.dumps(r) for r in item.records]  # types and all
        else:
            assert isinstance(item, FeedRow) and item.error is not None
            rejected.append((item.line, item.text, item.error.reason, item.error.detail))
    return sorted(rejected), zones


def both(path: Path) -> tuple[Any, Any]:
    columns = verdicts(read_feed_columns(path, CATALOGUE, now=NOW, origin=ORIGIN))
    lines = verdicts(_by_lines(read_feed(path, CATALOGUE, now=NOW), ORIGIN))
    return columns, lines


GOOD = st.builds(
    line,
    zone=st.sampled_from(["jinan-hitech", "jining-hitech", "济南高新区", "nowhere"]),
    indicator=st.sampled_from(["gdp", "hitech_enterprises", "rd_intensity", "pm25", "x"]),
    period=st.sampled_from(["2021-03", "2021-3", "2021-13", "2099-01", " 2021-04", "2021-Q1"]),
    value=st.sampled_from(["180.2", "", "-1", "12", "1e3", "1,0", "0.5", "150", "7.", ".25"]),
    unit=st.sampled_from(["CNY_100M", "CNY_10K", "COUNT", "PCT", "", "亿元", "UG_PER_M3"]),
    basis=st.sampled_from(["YTD", "ytd", "MONTH", "YEAR", "X", ""]),
    yoy=st.sampled_from(["35.1", "", "-100", "-101", "nan", "3"]),
    revision=st.sampled_from(["0", "1", "", "-1", "x", "99999999999999999999"]),
    action=st.sampled_from(["I", "R", "D", "M", "", "x", "a"]),
)
ODD = st.sampled_from(
    [
        "",
        "   ",
        PREFIX + "I,jinan-hitech,gdp",
        PREFIX + 'I,"jinan-hitech",gdp,2021-03,YTD,1,CNY_100M,1,A,0,',
        PREFIX + "I,jinan-hitech,gdp,2021-03,YTD,1,CNY_100M,1,A,0,2021-04-15,extra",
        PREFIX + "I,jinan-hitech,gdp,2021-03,YTD,1,CNY_100M,1,A,0,not-a-date",
        PREFIX + "I,jinan-hitech,gdp,2021-03,YTD,1,CNY_100M,1,A,0,2021-04-15T09:00:00+08:00",
        PREFIX + "I,jinan-hitech,gdp,2021-03,YTD," + "9" * 70 + ",CNY_100M,1,A,0,",
        "x" * 70_000
        + ",PARKPULSE:ZONE_MONTHLY(1.0),I,jinan-hitech,gdp,2021-03,YTD,1,CNY_100M,1,A,0,",
        PREFIX + "I," + "j" * 5000 + ",gdp,2021-03,YTD,1,CNY_100M,1,A,0,",  # long: line reader
        PREFIX + "I,jinan-hitech,gdp,2021-03,YTD,1\r,CNY_100M,1,A,0,",  # a lone CR: the line
        PREFIX + "I,jinan-hitech,gdp,2021-05,YTD,1,CNY_100M,1,A,0,\r",  # reader's, file whole
    ]
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(st.one_of(GOOD, GOOD, ODD), min_size=1, max_size=30), crlf=st.booleans())
def test_columns_and_lines_agree(tmp_path_factory: Any, rows: list[str], crlf: bool) -> None:
    path = tmp_path_factory.mktemp("feed") / "feed.csv"
    body = ("\r\n" if crlf else "\n").join([HEADER, *rows]) + "\n"
    path.write_bytes(body.encode())
    columns, lines = both(path)
    assert columns == lines


def test_a_backfill_like_file_is_read_as_columns(tmp_path: Path) -> None:
    rows = [line(period=f"20{y}-{m:02d}") for y in range(16, 20) for m in range(1, 13)]
    rows[5] = line(value="-3")  # bad_value
    rows[9] = rows[3]  # an exact repeat: accepted twice
    rows[10] = line(period="2016-04", value="1")  # conflicts with line 5 (2016-04, revision 0)
    path = write(tmp_path / "feed.csv", HEADER, *rows)
    columns, lines = both(path)
    assert columns == lines
    reasons = [reason for _, _, reason, _ in columns[0]]
    assert reasons == ["bad_value", "conflict"]
    assert len(columns[1]["jinan-hitech"]) == len(rows) - 2


def test_files_it_does_not_take_go_to_the_line_reader(tmp_path: Path) -> None:
    gbk = write(tmp_path / "gbk.csv", HEADER, line(zone="济南高新区"), encoding="gbk")
    bom_inside = tmp_path / "bom.csv"
    bom_inside.write_text(HEADER + "\n\ufeff" + line() + "\n", encoding="utf-8")
    jsonl = tmp_path / "feed.jsonl"
    jsonl.write_text('{"zone": "jinan-hitech"}\n', encoding="utf-8")
    for path in (gbk, bom_inside, jsonl):
        columns, lines = both(path)
        assert columns == lines


def test_figures_travel_as_column_envelopes_of_their_records(tmp_path: Path) -> None:
    rows = [line(period=f"2021-{m:02d}", value=f"{m}.25") for m in range(1, 8)]
    rows.append(line(zone="jining-hitech", yoy=""))
    path = write(tmp_path / "feed.csv", HEADER, *rows)
    zones = [i for i in read_feed_columns(path, CATALOGUE, now=NOW, origin=ORIGIN)]
    assert [z.zone for z in zones] == ["jinan-hitech", "jining-hitech"]
    jinan = zones[0]
    assert [tuple(record) for record in jinan.records] == [OBSERVATION_WIRE_FIELDS] * 7
    assert [r["obs_value"] for r in jinan.records] == [m + 0.25 for m in range(1, 8)]
    assert [r["line"] for r in jinan.records] == list(range(2, 9))
    assert jinan.envelopes(1) == [orjson.dumps(r) for r in jinan.records]
    for size in (3, 100):
        chunks = [jinan.records[at : at + size] for at in range(0, 7, size)]
        envelopes = [orjson.loads(e) for e in jinan.envelopes(size)]
        decoded = [envelope_records(e) for e in envelopes]
        assert orjson.dumps(decoded) == orjson.dumps(chunks)  # values, JSON types and order
        for envelope, chunk in zip(envelopes, chunks, strict=True):  # what all share, once
            assert envelope[COLUMNS_FIELD]["zone"] == "jinan-hitech"
            lines = [r["line"] for r in chunk]
            assert envelope[COLUMNS_FIELD]["line"] == (lines if len(chunk) > 1 else lines[0])
    whole = jinan.envelopes(100)[0]
    assert len(whole) * 3 < len(orjson.dumps(observation_envelope(jinan.records)))
    assert zones[1].records[0]["yoy_pct"] is None


def test_reading_a_feed_does_not_import_pandas(tmp_path: Path) -> None:
    # pyarrow imports pandas to ask whether it was handed pandas data (~0.6 s of a produce):
    # the columnar reader goes through buffers instead. A fresh interpreter reads a file with a
    # unit to convert, a quoted field and a long one, and a file without YOY_PCT.
    rows = [line(period=f"2020-{m:02d}", value="18020", unit="CNY_10K") for m in range(1, 13)]
    quoted = write(tmp_path / "quoted.csv", HEADER, *rows, line(zone='"jinan-hitech"'))
    long = write(tmp_path / "long.csv", HEADER, *rows, line(zone="j" * 5000))
    short_header = HEADER.replace(",YOY_PCT", "")
    no_yoy = write(tmp_path / "no_yoy.csv", short_header, *(r.replace(",35.1,", ",") for r in rows))
    code = (
        "import sys\n"
        "from parkpulse.producers.columnar import read_feed_columns\n"
        "from tests.test_feed import CATALOGUE, NOW\n"
        "from pathlib import Path\n"
        "for name in sys.argv[1:]:\n"
        "    items = list(read_feed_columns(Path(name), CATALOGUE, now=NOW, origin='f'))\n"
        "    assert sum(len(i) for i in items if hasattr(i, 'zone')) >= 12, name\n"
        "print('pandas' in sys.modules)\n"
    )
    files = [str(p) for p in (quoted, long, no_yoy)]
    done = subprocess.run(
        [sys.executable, "-c", code, *files],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).parent.parent,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


@given(
    values=st.one_of(
        st.lists(st.booleans(), max_size=40).map(lambda v: pa.array(v, pa.bool_())),
        st.lists(st.integers(-(2**31), 2**31 - 1), max_size=40).map(
            lambda v: pa.array(v, pa.int32())
        ),
        st.lists(st.integers(-(2**63), 2**63 - 1), max_size=40).map(
            lambda v: pa.array(v, pa.int64())
        ),
        st.lists(st.floats(allow_nan=False), max_size=40).map(lambda v: pa.array(v, pa.float64())),
    ),
    cut=st.tuples(st.integers(0, 40), st.integers(0, 40)),
    chunks=st.integers(1, 3),
)
def test_arrow_and_numpy_meet_through_buffers(
    values: Any, cut: tuple[int, int], chunks: int
) -> None:
    sliced = values.slice(min(cut), max(cut) - min(cut))  # an offset into the buffers
    whole = pa.chunked_array([sliced] * chunks, sliced.type)
    expected = np.concatenate([sliced.to_numpy(zero_copy_only=False)] * chunks)
    assert _np(whole).tolist() == expected.tolist() and _np(whole).dtype == expected.dtype
    if sliced.type in (pa.bool_(), pa.int64()):
        assert _arrow(expected).equals(pa.chunked_array([sliced] * chunks).combine_chunks())
