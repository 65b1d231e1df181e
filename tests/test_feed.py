"""The feed reader on real files: formats, encodings, broken lines, conflicts, summaries."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parkpulse.producers.feed import (
    MAX_EXAMPLES,
    FeedRow,
    FeedSummary,
    format_summary,
    read_feed,
    read_targets,
    summarize,
    to_deadletter,
)
from parkpulse.schemas.catalogue import load_catalogue, load_plan_targets
from parkpulse.schemas.records import Observation
from parkpulse.schemas.wire import observation_to_wire, target_to_wire
from tests.test_validation import DESIGN_OBS, NOW, observations

CATALOGUE = load_catalogue()
HEADER = (
    "STRUCTURE,STRUCTURE_ID,ACTION,ZONE,INDICATOR,TIME_PERIOD,BASIS,OBS_VALUE,UNIT_MEASURE,"
    "YOY_PCT,OBS_STATUS,REVISION,PUBLISHED_AT"
)
PREFIX = "dataflow,PARKPULSE:ZONE_MONTHLY(1.0),"
DESIGN_LINE = (
    PREFIX + "I,jinan-hitech,import_export_total,2021-03,YTD,180.2,CNY_100M,35.1,A,0,"
    "2021-04-15T09:00:00+08:00"
)
TEMPORARY = [HealthCheck.function_scoped_fixture]


def line(
    zone: str = "jinan-hitech",
    indicator: str = "import_export_total",
    period: str = "2021-03",
    value: str = "180.2",
    unit: str = "CNY_100M",
    *,
    basis: str = "YTD",
    yoy: str = "35.1",
    revision: str = "0",
    action: str = "I",
) -> str:
    return (
        f"{PREFIX}{action},{zone},{indicator},{period},{basis},{value},{unit},{yoy},A,{revision},"
    )


def write(path: Path, *lines: str, encoding: str = "utf-8") -> Path:
    path.write_bytes("\n".join(lines).encode(encoding) + b"\n")
    return path


def read(path: Path) -> list[FeedRow]:
    return list(read_feed(path, CATALOGUE, now=NOW))


def outcome(rows: list[FeedRow]) -> list[tuple[int, str]]:
    """(line, "ok" or the reason code) per row."""
    return [(r.line, r.error.reason if r.error else "ok") for r in rows]


# --- formats -------------------------------------------------------------------------------


def test_csv_design_row(tmp_path: Path) -> None:
    rows = read(write(tmp_path / "feed.csv", HEADER, DESIGN_LINE))
    assert [(r.line, r.record, r.error) for r in rows] == [(2, DESIGN_OBS, None)]
    assert rows[0].text == DESIGN_LINE and rows[0].accepted


def test_jsonl_design_row(tmp_path: Path) -> None:
    wire = orjson.dumps(observation_to_wire(DESIGN_OBS)).decode()
    for name in ("feed.jsonl", "feed.ndjson", "feed.json", "feed.txt"):  # .txt is sniffed
        rows = read(write(tmp_path / name, wire))
        assert [(r.line, r.record) for r in rows] == [(1, DESIGN_OBS)]


def test_csv_is_sniffed_without_a_suffix(tmp_path: Path) -> None:
    rows = read(write(tmp_path / "feed", HEADER, DESIGN_LINE))
    assert [r.record for r in rows] == [DESIGN_OBS]


def test_header_names_are_case_insensitive_any_order_extra_columns_ignored(tmp_path: Path) -> None:
    path = write(
        tmp_path / "feed.csv",
        "note,unit_measure,Obs_Value,zone,indicator,time_period,basis,yoy_pct,published_at",
        "海关口径,CNY_100M,180.2,jinan-hitech,import_export_total,2021-03,YTD,35.1,"
        "2021-04-15T09:00:00+08:00",
    )
    assert [r.record for r in read(path)] == [DESIGN_OBS]


def test_blank_lines_and_crlf_keep_physical_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "feed.csv"
    text = f"\r\n{HEADER}\r\n\r\n   \r\n{DESIGN_LINE}\r\n\n{line(period='2021-02')}\r\n"
    path.write_bytes(text.encode())
    assert outcome(read(path)) == [(5, "ok"), (7, "ok")]


def test_the_reference_observations_file_reads_as_a_feed() -> None:
    # zone,indicator,time_period,basis,value,unit,yoy_pct,seed,phrase,notes
    path = Path(__file__).parents[1] / "parkpulse" / "reference" / "observations.csv"
    rows = read(path)
    rejected = [(r.line, r.error.reason) for r in rows if r.error]
    assert len(rows) == 29 and rejected == [(12, "unit_mismatch")]  # 2015 trade in 亿美元
    gdp_2019 = next(r.record for r in rows if r.line == 3)
    assert (gdp_2019.value, gdp_2019.yoy_pct) == (1150.2, 10.5)


def test_empty_and_header_only_files_give_no_rows(tmp_path: Path) -> None:
    assert read(write(tmp_path / "empty.csv", "")) == []
    assert read(write(tmp_path / "header.csv", HEADER)) == []
    assert read(write(tmp_path / "blank.jsonl", "", "  ", "")) == []


def test_missing_file_raises_at_once(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        read_feed(tmp_path / "nope.csv", CATALOGUE, now=NOW)


# --- encodings -----------------------------------------------------------------------------


def test_utf8_bom(tmp_path: Path) -> None:
    path = tmp_path / "feed.csv"
    path.write_bytes(b"\xef\xbb\xbf" + f"{HEADER}\n{DESIGN_LINE}\n".encode())
    assert [r.record for r in read(path)] == [DESIGN_OBS]
    jsonl = tmp_path / "feed.jsonl"
    jsonl.write_bytes(b"\xef\xbb\xbf" + orjson.dumps(observation_to_wire(DESIGN_OBS)))
    assert [r.record for r in read(jsonl)] == [DESIGN_OBS]


@pytest.mark.parametrize("encoding", ["gbk", "gb18030"])
def test_gbk_feed_with_traditional_characters(tmp_path: Path, encoding: str) -> None:
    # Seed 000 is in Traditional characters: 進出口總額 … 億元.
    path = write(
        tmp_path / "feed.csv",
        HEADER + ",說明",
        DESIGN_LINE + ",進出口總額180.2億元",
        line(period="2021-02", value='"1,502,000"', unit="萬元") + ",一至二月",
        encoding=encoding,
    )
    rows = read(path)
    assert [r.record.value for r in rows if r.record] == [180.2, 150.2]
    assert "進出口總額" in rows[0].text


def test_gb18030_bom_and_jsonl(tmp_path: Path) -> None:
    doc = observation_to_wire(DESIGN_OBS) | {"note": "高新區"}
    path = tmp_path / "feed.jsonl"
    path.write_bytes(b"\x84\x31\x95\x33" + orjson.dumps(doc).decode().encode("gb18030"))
    rows = read(path)
    assert [r.record for r in rows] == [DESIGN_OBS] and "高新區" in rows[0].text


def test_undecodable_line_costs_only_itself(tmp_path: Path) -> None:
    path = tmp_path / "feed.csv"
    path.write_bytes(f"{HEADER}\n".encode() + b"\xff\xfe\xfd,\x80\n" + f"{DESIGN_LINE}\n".encode())
    rows = read(path)
    assert outcome(rows) == [(2, "malformed"), (3, "ok")]
    assert "neither UTF-8 nor GB18030" in rows[0].error.detail


# --- broken rows ---------------------------------------------------------------------------


def test_malformed_csv_rows(tmp_path: Path) -> None:
    path = write(
        tmp_path / "feed.csv",
        HEADER,
        line(zone='"jinan-hitech'),  # 2: an opening quote never closed
        line(period="2021-02"),  # 3: still read: the quote did not swallow the file
        '"jinan"-hitech,' + DESIGN_LINE,  # 4: text after a closing quote
        "dataflow,PARKPULSE:ZONE_MONTHLY(1.0),I,jinan-hitech,import_export_total,2021-03,YTD",  # 5
        DESIGN_LINE + ",extra,fields",  # 6
        ",,,,,,,,,,,,",  # 7: thirteen empty fields
        '"only, one field"',  # 8
    )
    rows = read(path)
    assert outcome(rows) == [(n, "malformed") for n in (2,)] + [(3, "ok")] + [
        (n, "malformed") for n in (4, 5, 6, 7, 8)
    ]
    assert "unbalanced quote" in rows[0].error.detail
    assert "7 fields where the header (line 1) has 13" in rows[3].error.detail
    assert "ZONE is missing" in rows[5].error.detail


def test_a_header_without_key_columns_rejects_every_row(tmp_path: Path) -> None:
    rows = read(write(tmp_path / "feed.csv", DESIGN_LINE, DESIGN_LINE, line(period="2021-02")))
    assert outcome(rows) == [(2, "malformed"), (3, "malformed")]
    assert "lacks column ZONE, INDICATOR, TIME_PERIOD, BASIS" in rows[0].error.detail


def test_duplicate_header_columns(tmp_path: Path) -> None:
    rows = read(write(tmp_path / "feed.csv", HEADER + ",zone", DESIGN_LINE + ",nanning-hitech"))
    assert outcome(rows) == [(2, "malformed")] and "zone twice" in rows[0].error.detail


def test_malformed_json_lines(tmp_path: Path) -> None:
    good = orjson.dumps(observation_to_wire(DESIGN_OBS)).decode()
    path = write(
        tmp_path / "feed.jsonl", good, good[:-1], "[1, 2]", "42", "{'zone': 1}", "[" * 5000
    )
    rows = read(path)
    assert outcome(rows) == [(1, "ok")] + [(n, "malformed") for n in range(2, 7)]
    assert "expected one JSON object per line, found a list" in rows[2].error.detail


def test_nan_and_infinity(tmp_path: Path) -> None:
    csv_rows = read(
        write(tmp_path / "feed.csv", HEADER, line(value="NaN"), line(value="inf"), line(yoy="-inf"))
    )
    assert outcome(csv_rows) == [(2, "bad_value"), (3, "bad_value"), (4, "bad_value")]
    wire = observation_to_wire(DESIGN_OBS)
    lines = [orjson.dumps(wire).decode().replace("180.2", token) for token in ("NaN", "Infinity")]
    lines.append(orjson.dumps(wire).decode().replace("180.2", "1e999"))
    assert outcome(read(write(tmp_path / "feed.jsonl", *lines))) == [
        (1, "bad_value"),
        (2, "bad_value"),
        (3, "bad_value"),
    ]


def test_huge_fields_and_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path / "feed.csv",
        HEADER,
        line(value="9" * 70_000),  # 2: a 70 KB field
        line(zone="z" * 300_000),  # 3: a 300 KB line
        DESIGN_LINE,  # 4
        line(value="9" * 1000),  # 5: a long number
    )
    rows = read(path)
    assert outcome(rows) == [(2, "malformed"), (3, "malformed"), (4, "ok"), (5, "bad_value")]
    assert "70000 characters long" in rows[0].error.detail
    assert "bytes long" in rows[1].error.detail and len(rows[1].text) <= 4096
    jsonl = orjson.dumps(observation_to_wire(DESIGN_OBS) | {"zone": "x" * 70_000}).decode()
    assert outcome(read(write(tmp_path / "feed.jsonl", jsonl))) == [(1, "malformed")]


def test_value_rules_per_row(tmp_path: Path) -> None:
    count = {"indicator": "new_market_entities", "unit": "COUNT", "yoy": ""}
    path = write(
        tmp_path / "feed.csv",
        HEADER,
        line(value="-4165", period="2020-06", zone="nanning-hitech", **count),  # 2
        line(value="4165", period="2020-06", zone="nanning-hitech", **count),  # 3
        line(period="2021-12"),  # 4: next month
        line(period="2030-01"),  # 5
        line(zone="atlantis-hitech"),  # 6
        line(zone="'; DROP TABLE observations; --"),  # 7
        line(indicator="gdp_per_capita"),  # 8
        line(period="2021-13"),  # 9
        line(unit="USD_100M"),  # 10
        line(value="", yoy=""),  # 11
    )
    assert outcome(read(path)) == [
        (2, "bad_value"),
        (3, "ok"),
        (4, "future_period"),
        (5, "future_period"),
        (6, "unknown_zone"),
        (7, "unknown_zone"),
        (8, "unknown_indicator"),
        (9, "bad_period"),
        (10, "unit_mismatch"),
        (11, "bad_value"),
    ]


# --- conflicts -----------------------------------------------------------------------------


def test_same_key_and_revision_with_another_value_is_a_conflict(tmp_path: Path) -> None:
    path = write(
        tmp_path / "feed.csv",
        HEADER,
        DESIGN_LINE,  # 2
        DESIGN_LINE,  # 3: an exact repeat is harmless
        line(value="181.0"),  # 4: same revision, other value
        line(value="181.0", revision="1"),  # 5: a revision
        line(value='"1,810,000"', unit="CNY_10K", revision="1"),  # 6: the same figure, other unit
        line(value="181.0", basis="MONTH"),  # 7: another key
        line(yoy="36.0"),  # 8: other growth
        line(action="D"),  # 9: a delete at the same revision
    )
    rows = read(path)
    assert outcome(rows) == [
        (2, "ok"),
        (3, "ok"),
        (4, "conflict"),
        (5, "ok"),
        (6, "ok"),
        (7, "ok"),
        (8, "conflict"),
        (9, "conflict"),
    ]
    detail = rows[2].error.detail
    assert "revision 0 was given differently on line 2" in detail
    assert "obs_value 180.2 → 181.0" in detail and "REVISION" in detail


def test_a_registrations_figure_does_not_conflict_with_the_bureaus(tmp_path: Path) -> None:
    doc = observation_to_wire(DESIGN_OBS)
    lines = [orjson.dumps(doc), orjson.dumps(doc | {"source": "registrations", "obs_value": 1.0})]
    path = tmp_path / "feed.jsonl"
    path.write_bytes(b"\n".join(lines))
    assert outcome(read(path)) == [(1, "ok"), (2, "ok")]


# --- dead letters and summaries ------------------------------------------------------------


def test_dead_letter(tmp_path: Path) -> None:
    rows = read(write(tmp_path / "feed.csv", HEADER, line(unit="USD_100M"), line(zone="é" * 9000)))
    dead = to_deadletter(rows[0], origin="feed.csv", source_topic="parkpulse.observations")
    assert (dead.reason, dead.line, dead.origin, dead.raw) == (
        "unit_mismatch",
        2,
        "feed.csv",
        rows[0].text,
    )
    assert dead.source_topic == "parkpulse.observations"
    assert datetime.fromisoformat(dead.received_at).utcoffset().total_seconds() == 0
    long = to_deadletter(rows[1], "feed.csv", "parkpulse.observations")
    assert len(long.raw.encode()) < 4200 and long.raw.endswith("bytes]")
    fixed = datetime(2021, 4, 15, 1, 0, tzinfo=UTC)
    assert to_deadletter(rows[0], "f", "t", received_at=fixed).received_at.startswith(
        "2021-04-15T01"
    )
    accepted = read(write(tmp_path / "ok.csv", HEADER, DESIGN_LINE))[0]
    with pytest.raises(ValueError):
        to_deadletter(accepted, "ok.csv", "parkpulse.observations")


def test_summary_names_line_reason_and_detail(tmp_path: Path) -> None:
    lines = [HEADER] + [line(period=f"2021-{m:02d}") for m in range(1, 6)]
    lines.append(line(unit="USD_100M", period="2020-12"))  # line 7
    path = write(tmp_path / "feed.csv", *lines)
    summary = summarize(read(path))
    assert (summary.accepted, summary.rejected, summary.by_reason) == (5, 1, {"unit_mismatch": 1})
    text = format_summary(summary, "feed.csv")
    assert (
        "feed.csv:7 unit_mismatch: UNIT_MEASURE 'USD_100M' does not convert to CNY_100M "
        "for import_export_total"
    ) in text.splitlines()
    assert text.splitlines()[0] == "feed.csv: 5 accepted, 1 rejected"


def test_summary_is_capped(tmp_path: Path) -> None:
    bad = [line(zone=f"zone-{n}") for n in range(30)]
    path = write(tmp_path / "feed.csv", HEADER, *bad, line(period="2031-01"))
    summary = summarize(read(path))
    assert summary.by_reason == {"unknown_zone": 30, "future_period": 1}
    assert len(summary.examples) == MAX_EXAMPLES
    text = format_summary(summary, path)
    assert len(text.splitlines()) == MAX_EXAMPLES + 3
    assert "unknown_zone 30, future_period 1" in text and "11 more rejected rows" in text
    assert format_summary(FeedSummary(accepted=3), path) == f"{path}: 3 accepted, 0 rejected"


def test_summary_escapes_control_characters(tmp_path: Path) -> None:
    doc = observation_to_wire(DESIGN_OBS) | {"zone": "evil\x1b[2J\nzone"}
    summary = summarize(read(write(tmp_path / "feed.jsonl", orjson.dumps(doc).decode())))
    assert "\x1b" not in format_summary(summary, "feed.jsonl")


# --- plan targets --------------------------------------------------------------------------

REFERENCE_TARGETS = Path(__file__).parents[1] / "parkpulse" / "reference" / "plan_targets.csv"


def test_reference_targets_read_as_csv_and_jsonl(tmp_path: Path) -> None:
    rows = list(read_targets(REFERENCE_TARGETS, CATALOGUE))
    assert tuple(r.record for r in rows) == load_plan_targets()
    assert [r.line for r in rows] == list(range(2, len(rows) + 2))
    jsonl = tmp_path / "targets.jsonl"
    jsonl.write_bytes(b"\n".join(orjson.dumps(target_to_wire(t)) for t in load_plan_targets()))
    assert tuple(r.record for r in read_targets(jsonl, CATALOGUE)) == load_plan_targets()


def test_target_rows_rejected_and_conflicting(tmp_path: Path) -> None:
    header, *rows = REFERENCE_TARGETS.read_text(encoding="utf-8").splitlines()
    imports = next(r for r in rows if ",import_export_total," in r)
    path = write(
        tmp_path / "targets.csv",
        header.upper() + ",revision",
        imports + ",0",  # 2
        imports + ",0",  # 3: repeat
        imports.replace(",2140,", ",2200,") + ",0",  # 4: conflict
        imports.replace(",2140,", ",2200,") + ",1",  # 5: revised
        imports.replace("jinan-hitech", "atlantis-hitech") + ",0",  # 6
        imports.replace(",2025,", ",2019,") + ",0",  # 7
        imports,  # 8: a field short
    )
    result = list(read_targets(path, CATALOGUE))
    assert outcome(result) == [
        (2, "ok"),
        (3, "ok"),
        (4, "conflict"),
        (5, "ok"),
        (6, "unknown_zone"),
        (7, "bad_value"),
        (8, "malformed"),
    ]
    assert "target_value 2140.0 → 2200.0" in result[2].error.detail


# --- properties ----------------------------------------------------------------------------

FRAGMENTS = [
    HEADER,
    DESIGN_LINE,
    ",",
    '"',
    "\n",
    "\r\n",
    "{",
    "}",
    '{"zone": "jinan-hitech"}',
    "jinan-hitech",
    "2021-03",
    "NaN",
    "\ufeff",
    "進出口",
    "\x00",
    " ",
]


def non_blank(text: str) -> list[str]:
    return [ln for ln in text.split("\n") if ln.removeprefix("\ufeff").strip()]


texts = st.lists(st.text(max_size=30) | st.sampled_from(FRAGMENTS), max_size=30).map("".join)


@settings(max_examples=150, deadline=None, suppress_health_check=TEMPORARY)
@given(text=texts)
def test_every_non_blank_line_is_accepted_or_rejected(tmp_path: Path, text: str) -> None:
    for name, header_lines in (("feed.csv", 1), ("feed.jsonl", 0)):
        path = tmp_path / name
        path.write_bytes(text.encode("utf-8"))
        rows = read(path)
        summary = summarize(rows)
        expected = max(len(non_blank(text)) - header_lines, 0)
        assert summary.accepted + summary.rejected == len(rows) == expected
        assert all((r.record is None) != (r.error is None) for r in rows)
        format_summary(summary, path)


@settings(max_examples=150, deadline=None, suppress_health_check=TEMPORARY)
@given(
    data=st.binary(max_size=400)
    | st.lists(
        st.binary(max_size=20) | st.sampled_from([f.encode("gbk", "replace") for f in FRAGMENTS]),
        max_size=20,
    ).map(b"".join)
)
def test_arbitrary_bytes_never_raise(tmp_path: Path, data: bytes) -> None:
    for name in ("feed.csv", "feed.jsonl", "feed.dat", "targets.csv"):
        path = tmp_path / name
        path.write_bytes(data)
        rows = (
            read_targets(path, CATALOGUE)
            if name == "targets.csv"
            else read_feed(path, CATALOGUE, now=NOW)
        )
        numbers = [r.line for r in rows]
        assert numbers == sorted(set(numbers))
        assert len(numbers) <= data.count(b"\n") + 1


def to_csv(observations: list[Observation]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*HEADER.split(","), "SOURCE"])
    for obs in observations:
        wire = observation_to_wire(obs)
        writer.writerow(
            "" if v is None else repr(v) if isinstance(v, float) else str(v) for v in wire.values()
        )
    return out.getvalue()


@settings(max_examples=60, deadline=None, suppress_health_check=TEMPORARY)
@given(obs=st.lists(observations(), max_size=8), gbk=st.booleans())
def test_csv_and_jsonl_of_the_same_rows_agree(
    tmp_path: Path, obs: list[Observation], gbk: bool
) -> None:
    csv_path = tmp_path / "feed.csv"
    csv_path.write_bytes(to_csv(obs).encode("gbk" if gbk else "utf-8"))
    jsonl_path = tmp_path / "feed.jsonl"
    jsonl_path.write_bytes(b"\n".join(orjson.dumps(observation_to_wire(o)) for o in obs))
    from_csv, from_jsonl = read(csv_path), read(jsonl_path)
    assert [r.line for r in from_csv] == [n + 2 for n in range(len(obs))]
    assert [r.line for r in from_jsonl] == [n + 1 for n in range(len(obs))]
    assert [(r.record, r.error and r.error.reason) for r in from_csv] == [
        (r.record, r.error and r.error.reason) for r in from_jsonl
    ]
    # every row is the observation written, unless it conflicts with an earlier one
    for written, got in zip(obs, from_csv, strict=True):
        assert got.record == written or got.error.reason == "conflict"
