"""A register's export (新登记市场主体): rows in, registrations out, each credit code once."""

from __future__ import annotations

import random
import tempfile
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parkpulse.producers.feed import FeedRow, summarize
from parkpulse.producers.read_options import ReadOptions
from parkpulse.producers.readers import kind_of, rows_of
from parkpulse.producers.register_export import (
    SECTIONS,
    entity_type_of,
    industry_code_of,
    parse_date,
    read_export,
    zone_of_authority,
)
from parkpulse.schemas.catalogue import load_catalogue
from parkpulse.schemas.periods import SHANGHAI
from parkpulse.schemas.records import Registration
from parkpulse.schemas.wire import registration_to_wire
from tests.sheets import write_sheet, write_table_csv, write_xls
from tests.test_bulletin import JINING_2021
from tests.test_bulletin import write_xlsx as write_bulletin

CATALOGUE = load_catalogue()
NOW = datetime(2024, 4, 10, 12, 0, tzinfo=UTC)
TITLE = "2024年3月新登记市场主体明细"
HEADER = [
    "序号",
    "统一社会信用代码",
    "企业名称",
    "登记机关",
    "所属园区",
    "成立日期",
    "市场主体类型",
    "行业代码",
    "注册资本(万元)",
]
JINAN_BUREAU = "济南高新技术产业开发区市场监督管理局"
ROWS: list[list[Any]] = [
    [1, "91370100MACXYZ0001", "济南某软件有限公司", JINAN_BUREAU, "", date(2024, 3, 5),
     "有限责任公司(自然人投资或控股)", "I6510", 500],
    [2, "91370100MACXYZ0002", "济南某科技股份有限公司", "济南市市场监督管理局高新区分局", "",
     "2024/3/6", "股份有限公司(非上市、自然人投资或控股)", 6520, "1,000.5"],
    [3, "92370100MACXYZ0003", "历下区某某便利店", JINAN_BUREAU, "", "2024年3月7日",
     "个体工商户", "F5211", None],
    [4, "93370600MACXYZ0004", "烟台某果蔬专业合作社", "", "烟台高新区", "2024-03-08",
     "农民专业合作社", "A0111", 100],
    [5, "91370100MACXYZ0001", "济南某软件有限公司", JINAN_BUREAU, "", date(2024, 3, 5),
     "有限责任公司(自然人投资或控股)", "I6510", 500],  # the same row again
]  # fmt: skip


def reg(
    zone: str, code: str, day: int, kind: str, industry: str, capital: float | None
) -> Registration:
    when = f"2024-03-{day:02d}T00:00:00+08:00"
    return Registration(zone, code, when, kind, industry, capital, "2024-03")


EXPECTED = [
    reg("jinan-hitech", "91370100MACXYZ0001", 5, "enterprise", "I6510", 500.0),
    reg("jinan-hitech", "91370100MACXYZ0002", 6, "enterprise", "I6520", 1000.5),
    reg("jinan-hitech", "92370100MACXYZ0003", 7, "individual_business", "F5211", None),
    reg("yantai-hitech", "93370600MACXYZ0004", 8, "farmers_cooperative", "A0111", 100.0),
]


def write_xlsx(
    path: Path, rows: list[list[Any]], *, header: list[str] = HEADER, sheet: str = "登记"
) -> Path:
    return write_sheet(path, [[TITLE], header, *rows], sheet=sheet)


def write_csv(path: Path, rows: list[list[Any]], encoding: str = "gbk") -> Path:
    return write_table_csv(path, [HEADER, *rows], encoding)


def read(path: Path, **options: Any) -> list[FeedRow]:
    return list(read_export(path, CATALOGUE, now=NOW, options=ReadOptions(**options)))


def published(rows: list[FeedRow]) -> list[Registration]:
    return [r.record for r in rows if isinstance(r.record, Registration)]


def as_set(registrations: list[Registration]) -> set[tuple[Any, ...]]:
    """Registrations as a set (the record type is mutable, so unhashable)."""
    return {tuple(sorted(registration_to_wire(r).items())) for r in registrations}


@pytest.mark.parametrize("suffix", [".xlsx", ".xls"])
def test_a_workbook_export_gives_each_entity_once(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"export{suffix}"
    if suffix == ".xls":
        rows = read(write_xls(path, [[TITLE], HEADER, *ROWS], sheet="登记"))
    else:
        rows = read(write_xlsx(path, ROWS))
    assert [(r.place, r.error) for r in rows if r.error] == []
    assert sorted(published(rows), key=lambda r: r.registration_id) == EXPECTED
    summary = summarize(rows)
    assert (summary.accepted, summary.rejected, summary.duplicates) == (4, 0, 1)
    assert [r.line for r in rows if r.duplicate] == [7]  # title, header, then rows 3..7


@pytest.mark.parametrize("encoding", ["gbk", "utf-8-sig"])
def test_a_csv_export_in_gbk_or_utf8(tmp_path: Path, encoding: str) -> None:
    rows = read(write_csv(tmp_path / "export.csv", ROWS, encoding))
    assert as_set(published(rows)) == as_set(EXPECTED)
    assert summarize(rows).duplicates == 1


def test_an_export_is_recognised_by_its_header(tmp_path: Path) -> None:
    book = write_xlsx(tmp_path / "export.xlsx", ROWS)
    text = write_csv(tmp_path / "export.csv", ROWS)
    bulletin = write_bulletin(tmp_path / "bulletin.xlsx", JINING_2021)
    assert kind_of(book, "observations") == "registrations"
    assert kind_of(text, "observations") == "registrations"
    assert kind_of(bulletin, "observations") == "observations"
    assert kind_of(book, "targets") == "targets"  # `targets` never reads an export
    got = rows_of(text, "registrations", CATALOGUE, now=NOW)
    assert as_set(published(list(got))) == as_set(EXPECTED)


def test_bad_rows_are_rejected_with_their_line_and_cell(tmp_path: Path) -> None:
    good = ROWS[0]
    bad = [
        good[:1] + ["91370100MACXYZ0010"] + good[2:5] + ["2024-02-30"] + good[6:],  # F3
        good[:1] + ["91370100MACXYZ0011"] + good[2:6] + ["事业单位"] + good[7:],  # G4
        good[:1] + ["91370100MACXYZ0012"] + good[2:7] + ["C6510"] + good[8:],  # H5
        good[:1] + ["91370100MACXYZ0013"] + good[2:3] + ["", "济南高薪区"] + good[5:],  # E6
        good[:1] + ["91370100MACXYZ0014"] + good[2:5] + ["2024-05-01"] + good[6:],  # F7
        good[:1] + ["91370100MACXYZ0015"] + good[2:8] + ["很多"],  # I8
        good[:1] + [""] + good[2:],  # B9
        good,  # line 10: accepted
    ]
    rows = read(write_xlsx(tmp_path / "bad.xlsx", bad))
    got = [(r.line, r.place, r.error.reason) for r in rows if r.error]
    assert got == [
        (3, "登记!F3", "bad_period"),
        (4, "登记!G4", "malformed"),
        (5, "登记!H5", "bad_value"),
        (6, "登记!E6", "unknown_zone"),
        (7, "登记!F7", "future_period"),
        (8, "登记!I8", "bad_value"),
        (9, "登记!B9", "malformed"),
    ]
    unknown = next(r for r in rows if r.line == 6)
    assert unknown.error is not None and "nearest: jinan-hitech" in unknown.error.detail
    assert [r.registration_id for r in published(rows)] == ["91370100MACXYZ0001"]
    text = read(write_csv(tmp_path / "bad.csv", bad))
    assert [(r.line, r.place) for r in text if r.error][:2] == [(2, ""), (3, "")]


def test_one_code_with_other_details_keeps_the_earliest(tmp_path: Path) -> None:
    later = ROWS[0][:5] + [date(2024, 3, 9)] + ROWS[0][6:]
    rows = read(write_xlsx(tmp_path / "conflict.xlsx", [later, ROWS[0]]))
    assert [r.registered_at for r in published(rows)] == ["2024-03-05T00:00:00+08:00"]
    (conflict,) = [r for r in rows if r.error]
    assert (conflict.line, conflict.error.reason) == (3, "conflict")  # type: ignore[union-attr]
    assert "line 4" in conflict.error.detail  # type: ignore[union-attr]


def test_the_zone_option_wins_and_a_header_without_columns_is_one_rejection(
    tmp_path: Path,
) -> None:
    rows = read(write_xlsx(tmp_path / "export.xlsx", ROWS), zone="无锡高新区")
    assert {r.zone for r in published(rows)} == {"wuxi-hitech"}
    no_zone = [c for i, c in enumerate(HEADER) if i not in (3, 4)]
    trimmed = [[v for i, v in enumerate(row) if i not in (3, 4)] for row in ROWS]
    rows = read(write_xlsx(tmp_path / "nozone.xlsx", trimmed, header=no_zone))
    assert len(rows) == 1 and rows[0].error is not None and rows[0].place == "登记!A2"
    assert "所属园区 or 登记机关" in rows[0].error.detail
    assert (
        len(read(write_xlsx(tmp_path / "nozone.xlsx", trimmed, header=no_zone), zone="济南高新区"))
        == 5
    )
    other = read(write_bulletin(tmp_path / "bulletin.xlsx", JINING_2021))
    assert len(other) == 1 and "no register export found" in str(other[0].error)


def test_capital_in_other_units(tmp_path: Path) -> None:
    header = HEADER[:-1] + ["注册资本(亿元)"]
    row = ROWS[0][:-1] + [0.05]
    (got,) = published(read(write_xlsx(tmp_path / "a.xlsx", [row], header=header)))
    assert got.registered_capital == pytest.approx(500.0)
    row = ROWS[0][:-1] + ["50万美元"]
    (bad,) = read(write_xlsx(tmp_path / "b.xlsx", [row]))
    assert bad.error is not None and (bad.error.reason, bad.place) == ("unit_mismatch", "登记!I3")


@pytest.mark.parametrize(
    ("written", "iso"),
    [
        ("2024-03-05", "2024-03-05T00:00:00+08:00"),
        ("2024/3/5", "2024-03-05T00:00:00+08:00"),
        ("2024年3月5日", "2024-03-05T00:00:00+08:00"),
        ("２０２４年３月５日", "2024-03-05T00:00:00+08:00"),
        ("2024.3.5 10:30", "2024-03-05T10:30:00+08:00"),
        (20240305, "2024-03-05T00:00:00+08:00"),
        (date(2024, 3, 5), "2024-03-05T00:00:00+08:00"),
        (datetime(2024, 3, 5, 9, 1), "2024-03-05T09:01:00+08:00"),
        ("2024-02-30", None),
        ("3月5日", None),
        ("", None),
    ],
)
def test_dates(written: Any, iso: str | None) -> None:
    got = parse_date(written)
    assert (got.isoformat() if got else None) == iso


@pytest.mark.parametrize(
    ("written", "code"),
    [
        ("I6510", "I6510"),
        (6510, "I6510"),
        (6510.0, "I6510"),
        (111, "A0111"),  # 0111 with its leading zero lost
        ("0111", "A0111"),
        ("i65", "I65"),
        ("I", "I"),
        ("6510-软件开发", "I6510"),
        ("I6510 软件开发", "I6510"),
        ("C6510", None),  # 65 is section I's
        ("65101", None),
        ("99", None),
        ("软件开发", None),
        ("", None),
    ],
)
def test_industry_codes(written: Any, code: str | None) -> None:
    assert industry_code_of(written) == code


@pytest.mark.parametrize(
    ("written", "kind"),
    [
        ("有限责任公司(自然人投资或控股)", "enterprise"),
        ("股份有限公司(上市、国有控股)", "enterprise"),
        ("个人独资企业", "enterprise"),
        ("有限合伙企业", "enterprise"),
        ("全民所有制", "enterprise"),
        ("个体工商户", "individual_business"),
        ("农民专业合作社", "farmers_cooperative"),
        ("农民专业合作社分社", "farmers_cooperative"),
        ("事业单位", None),
    ],
)
def test_entity_types(written: str, kind: str | None) -> None:
    assert entity_type_of(written) == kind


@pytest.mark.parametrize(
    ("authority", "zone"),
    [
        (JINAN_BUREAU, "jinan-hitech"),
        ("济南市市场监督管理局高新区分局", "jinan-hitech"),
        ("济南市市场监督管理局高新技术产业开发区分局", "jinan-hitech"),
        ("烟台高新区市场监管局", "yantai-hitech"),
        ("济南市市场监督管理局", None),  # a city's bureau is no zone
    ],
)
def test_registration_authorities(authority: str, zone: str | None) -> None:
    assert zone_of_authority(authority, CATALOGUE) == zone


# -- properties ---------------------------------------------------------------------------

_ZONES = ("济南高新区", "烟台高新区", "无锡高新技术产业开发区")
_TYPES = ("有限责任公司", "个体工商户", "农民专业合作社")
_ENTITY = st.tuples(
    st.integers(min_value=0, max_value=12),  # credit code: a small pool, so codes repeat
    st.sampled_from(_ZONES),
    st.integers(min_value=1, max_value=28),
    st.sampled_from(_TYPES),
    st.sampled_from(("I6510", "6520", "C3511", "A0111")),
    st.one_of(st.none(), st.integers(min_value=0, max_value=10_000)),
)


@settings(max_examples=40, deadline=None)
@given(st.lists(_ENTITY, min_size=1, max_size=25), st.randoms(use_true_random=False))
def test_a_credit_code_counts_once_whatever_the_row_order(
    entities: list[tuple[Any, ...]], shuffle: random.Random
) -> None:
    rows = [
        [n, f"91370100MA{code:08d}", "某公司", "", zone, f"2024-03-{day:02d}", kind, ind, cap]
        for n, (code, zone, day, kind, ind, cap) in enumerate(entities, start=1)
    ]
    shuffled = rows[:]
    shuffle.shuffle(shuffled)
    with tempfile.TemporaryDirectory() as folder:
        first = read(write_xlsx(Path(folder) / "a.xlsx", rows))
        second = read(write_xlsx(Path(folder) / "b.xlsx", shuffled))
    codes = {row[1] for row in rows}
    for got in (first, second):
        ids = [r.registration_id for r in published(got)]
        assert sorted(ids) == sorted(codes)  # each code once, none lost
        summary = summarize(got)
        assert summary.accepted + summary.rejected + summary.duplicates == len(rows)
        assert all(r.error.reason == "conflict" for r in got if r.error)  # type: ignore[union-attr]
    assert as_set(published(first)) == as_set(published(second))
    # The one kept is the earliest registration of its code.
    for kept in published(first):
        days = [int(row[5][-2:]) for row in rows if row[1] == kept.registration_id]
        assert kept.registered_at[8:10] == f"{min(days):02d}"


@given(st.dates(min_value=date(1949, 10, 1), max_value=date(2100, 12, 31)))
def test_every_written_form_of_a_date_is_the_same_day(day: date) -> None:
    y, m, d = day.year, day.month, day.day
    forms = [
        day,
        day.isoformat(),
        f"{y}/{m}/{d}",
        f"{y}.{m}.{d}",
        f"{y}年{m}月{d}日",
        f"{y}{m:02d}{d:02d}",
        f"{y}-{m}-{d} 00:00:00",
    ]
    assert {parse_date(form) for form in forms} == {datetime(y, m, d, tzinfo=SHANGHAI)}


@given(
    st.sampled_from(sorted({(letter, lo, hi) for letter, lo, hi in SECTIONS})),
    st.integers(min_value=0, max_value=99),
)
def test_a_class_code_without_its_letter_gets_its_divisions_section(
    section: tuple[str, int, int], rest: int
) -> None:
    letter, lo, hi = section
    for division in range(lo, hi + 1):
        digits = f"{division:02d}{rest:02d}"
        assert industry_code_of(digits) == industry_code_of(letter + digits) == letter + digits
        assert industry_code_of(int(digits)) == letter + digits  # a number cell lost its zero


def test_a_registration_date_column_stands_in_for_the_founding_date(tmp_path: Path) -> None:
    """An export with 登记日期 and no 成立日期; with both, an empty 成立日期 takes 登记日期."""
    only = [h if h != "成立日期" else "登记日期" for h in HEADER]
    rows = read(write_xlsx(tmp_path / "only.xlsx", ROWS, header=only))
    assert sorted(published(rows), key=lambda r: r.registration_id) == EXPECTED
    both = [*HEADER, "登记日期"]
    lines = [[*row[:5], "", *row[6:], row[5]] for row in ROWS[:1]]  # 成立日期 empty
    lines.append([*ROWS[3], "2024-03-31"])  # both given: 成立日期 wins
    rows = read(write_xlsx(tmp_path / "both.xlsx", lines, header=both))
    assert [r.registered_at[:10] for r in published(rows)] == ["2024-03-05", "2024-03-08"]


def test_a_footnote_under_an_export_is_skipped(tmp_path: Path) -> None:
    rows = read(write_xlsx(tmp_path / "export.xlsx", [*ROWS, ["注:本表为登记机关导出数据。"]]))
    assert [r.place for r in rows if r.error] == []
    assert sorted(published(rows), key=lambda r: r.registration_id) == EXPECTED
