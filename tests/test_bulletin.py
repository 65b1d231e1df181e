"""Bulletins (统计月报): the seeds' figures as bulletin sheets give the SDMX feed's records."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parkpulse.producers.bulletin import parse_period, read_bulletin
from parkpulse.producers.feed import FeedRow, read_feed
from parkpulse.producers.read_options import ReadOptions
from parkpulse.producers.readers import rows_of
from parkpulse.schemas.catalogue import load_catalogue, reference_observation_rows
from parkpulse.schemas.records import Observation
from parkpulse.schemas.validation import validate_observation
from tests.sheets import write_sheet, write_table_csv, write_xls

CATALOGUE = load_catalogue()
NOW = datetime(2021, 11, 15, 10, 0, tzinfo=UTC)
TITLE = "济宁高新区2021年1-10月主要经济指标"
HEADER = ["指标名称", "计量单位", "本月", "1-10月", "同比增长(%)"]
# Seed 003 (济宁高新新闻, 2021-11-05): "今年以来" figures, October assumed as observations.csv does.
JINING_2021: list[list[Any]] = [
    ["外贸进出口总额", "亿元", "—", 105.4, ""],
    ["  其中:出口总额", "亿元", "", 60.1, ""],  # a breakdown the catalogue does not carry
    ["实际利用外资", "万美元", "", 27000, "…"],
    ["高新技术企业数", "家", "", 140, ""],
    ["其中:完成高新技术企业申报", "家", "", 94, ""],
    ["注:本表为快报数据。", "", "", "", ""],
]


def seed_records() -> set[Observation]:
    """Jining's 2021 figures as observations.csv gives them, through the feed validation."""
    rows = [
        r
        for r in reference_observation_rows()
        if r["zone"] == "jining-hitech" and r["time_period"].startswith("2021")
    ]
    return {validate_observation(r, CATALOGUE, now=NOW) for r in rows}


def write_xlsx(
    path: Path, rows: list[list[Any]], *, title: str = TITLE, sheet: str = "1-10月"
) -> Path:
    return write_sheet(path, [*([[title]] if title else []), HEADER, *rows], sheet=sheet)


def write_csv(path: Path, rows: list[list[Any]], encoding: str) -> Path:
    return write_table_csv(path, [[TITLE], HEADER, *rows], encoding)


def accepted(rows: list[FeedRow]) -> set[Observation]:
    assert [(r.place, r.error) for r in rows if r.error] == []
    return {r.record for r in rows if isinstance(r.record, Observation)}


def test_jining_2021_as_a_bulletin_is_the_seed_figures(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "bulletin.xlsx", JINING_2021)
    got = accepted(list(read_bulletin(path, CATALOGUE, now=NOW)))
    assert got == seed_records()
    assert len(got) == 4


def test_jining_2021_as_an_xls_bulletin_is_the_seed_figures(tmp_path: Path) -> None:
    """The Excel 97-2003 format (.xls) reads as the xlsx does (python-calamine)."""
    path = write_xls(tmp_path / "bulletin.xls", [[TITLE], HEADER, *JINING_2021], sheet="1-10月")
    rows = list(rows_of(path, "observations", CATALOGUE, now=NOW))
    assert accepted(rows) == seed_records()
    assert {r.place for r in rows} == {"1-10月!D3", "1-10月!D5", "1-10月!D6", "1-10月!D7"}


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk"])
def test_a_csv_bulletin_in_utf8_or_gbk(tmp_path: Path, encoding: str) -> None:
    path = write_csv(tmp_path / "bulletin.csv", JINING_2021, encoding)
    rows = list(rows_of(path, "observations", CATALOGUE, now=NOW))
    assert accepted(rows) == seed_records()


def test_zone_and_period_options_win_over_the_title(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "b.xlsx", JINING_2021, title="烟台高新区2020年1-6月主要经济指标")
    options = ReadOptions(zone="济宁高新技术产业开发区", period="2021年1-10月")
    assert accepted(list(read_bulletin(path, CATALOGUE, now=NOW, options=options))) == (
        seed_records()
    )


def test_the_sheet_name_gives_the_period_when_the_title_has_only_the_year(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "b.xlsx", JINING_2021, title="济宁高新区2021年主要经济指标")
    assert accepted(list(read_bulletin(path, CATALOGUE, now=NOW))) == seed_records()


def test_rejected_cells_are_named(tmp_path: Path) -> None:
    rows = [
        ["外贸进出口总额", "亿元", "", "abc", ""],
        ["进出口总量", "亿元", "", 105.4, ""],
        ["实际利用外资", "千美元", "", 27000, ""],
        ["固定资产投资", "亿元", "", 50, "-150"],
    ]
    out = list(read_bulletin(write_xlsx(tmp_path / "b.xlsx", rows), CATALOGUE, now=NOW))
    assert [(r.place, r.error.reason if r.error else None) for r in out] == [
        ("1-10月!D3", "bad_value"),
        ("1-10月!A4", "unknown_indicator"),
        ("1-10月!B5", "unit_mismatch"),
        ("1-10月!E6", "bad_value"),
    ]
    assert "nearest: import_export_total" in str(out[1].error)


def test_no_period_is_one_rejection_per_row(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "b.xlsx", JINING_2021[:1], title="济宁高新区", sheet="Sheet1")
    out = list(read_bulletin(path, CATALOGUE, now=NOW))
    assert [r.error.reason for r in out if r.error] == ["bad_period"]
    assert "--period" in str(out[0].error)


def test_a_multi_zone_sheet(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    ws = book.active
    assert ws is not None
    ws.title = "上半年"
    ws.append(["2020年上半年各高新区主要指标"])
    ws.append(["园区", "指标", "单位", "本年累计", "同比"])
    ws.append(["南宁高新区", "新增市场主体", "户", 4165, None])
    ws.append(["济南高新区", "进出口总额", "亿元", 300.5, 20.1])
    ws.append(["济南高薪区", "进出口总额", "亿元", 300.5, 20.1])
    book.save(tmp_path / "zones.xlsx")
    out = list(read_bulletin(tmp_path / "zones.xlsx", CATALOGUE, now=NOW))
    got = [(r.record.zone, r.record.indicator, r.record.period, r.record.value) for r in out[:2]]
    assert got == [
        ("nanning-hitech", "new_market_entities", "2020-06", 4165.0),
        ("jinan-hitech", "import_export_total", "2020-06", 300.5),
    ]
    assert out[2].place == "上半年!A5" and out[2].error is not None
    assert out[2].error.reason == "unknown_zone" and "jinan-hitech" in out[2].error.detail


def test_a_month_column_and_a_month_yoy(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    ws = book.active
    assert ws is not None
    ws.append(["烟台高新区2024年1—2月主要经济指标"])
    ws.append(["指标", "单位", "当月", "当月同比", "累计", "累计同比"])
    ws.append(["一般公共预算收入", "亿元", 3.2, 5.5, 7.1, 6.6])
    book.save(tmp_path / "b.xlsx")
    out = accepted(list(read_bulletin(tmp_path / "b.xlsx", CATALOGUE, now=datetime.now(UTC))))
    assert {(o.basis, o.period, o.value, o.yoy_pct) for o in out} == {
        ("YTD", "2024-02", 7.1, 6.6),
        ("MONTH", "2024-02", 3.2, 5.5),
    }


def _two_row_bulletin(path: Path, upper: list[Any], lower: list[Any], spans: list[str]) -> Path:
    """A bulletin whose period row (merged cells ``spans``) stands above its sub-headers."""
    book = openpyxl.Workbook()
    ws = book.active
    assert ws is not None
    ws.title = "月报"
    ws.append(["烟台高新区2024年主要经济指标"])  # the year only: the period row names the rest
    ws.append(upper)
    ws.append(lower)
    ws.append(["一般公共预算收入", "亿元", 3.2, 20.7, 6.6])
    ws.append(["外贸进出口总额", "亿元", 41.0, 230.5, 12.3])
    for span in spans:
        ws.merge_cells(span)
    book.save(path)
    return path


def test_a_period_row_above_month_and_ytd_sub_headers(tmp_path: Path) -> None:
    path = _two_row_bulletin(
        tmp_path / "b.xlsx",
        ["指标名称", "计量单位", "1-6月", None, None],
        [None, None, "本月", "累计", "同比增长(%)"],
        ["C2:E2", "A2:A3", "B2:B3"],
    )
    out = list(read_bulletin(path, CATALOGUE, now=datetime.now(UTC)))
    got = {(o.indicator, o.basis, o.period, o.value, o.yoy_pct) for o in accepted(out)}
    assert got == {
        ("budget_revenue", "MONTH", "2024-06", 3.2, None),
        ("budget_revenue", "YTD", "2024-06", 20.7, 6.6),
        ("import_export_total", "MONTH", "2024-06", 41.0, None),
        ("import_export_total", "YTD", "2024-06", 230.5, 12.3),
    }
    assert {r.place for r in out if r.record and r.record.basis == "YTD"} == {"月报!D4", "月报!D5"}


def test_period_labels_above_value_and_growth_sub_headers(tmp_path: Path) -> None:
    path = _two_row_bulletin(
        tmp_path / "b.xlsx",
        ["指标", "单位", "6月", "1-6月", None],
        [None, None, "绝对值", "绝对值", "同比±%"],
        ["D2:E2"],
    )
    got = {
        (o.indicator, o.basis, o.period, o.value, o.yoy_pct)
        for o in accepted(list(read_bulletin(path, CATALOGUE, now=datetime.now(UTC))))
    }
    assert got == {
        ("budget_revenue", "MONTH", "2024-06", 3.2, None),
        ("budget_revenue", "YTD", "2024-06", 20.7, 6.6),
        ("import_export_total", "MONTH", "2024-06", 41.0, None),
        ("import_export_total", "YTD", "2024-06", 230.5, 12.3),
    }


def test_a_one_row_header_is_not_read_as_two(tmp_path: Path) -> None:
    """The row under a one-row header is figures, even when its indicator column is empty."""
    book = openpyxl.Workbook()
    ws = book.active
    assert ws is not None
    ws.append(["烟台高新区2024年1-6月主要经济指标"])
    ws.append(["指标", "单位", "本月", "1-6月", "同比"])
    ws.append([None, "亿元", 1.0, 2.0, 3.0])
    ws.append(["一般公共预算收入", "亿元", 3.2, 20.7, 6.6])
    book.save(tmp_path / "b.xlsx")
    got = accepted(list(read_bulletin(tmp_path / "b.xlsx", CATALOGUE, now=datetime.now(UTC))))
    assert {(o.basis, o.value) for o in got} == {("MONTH", 3.2), ("YTD", 20.7)}


@pytest.mark.parametrize(
    ("text", "period"),
    [
        ("烟台高新区2024年1-6月主要经济指标", "2024-06"),
        ("2024年1—2月", "2024-02"),
        ("2021年一季度", "2021-03"),
        ("2021年上半年", "2021-06"),
        ("2021年前三季度", "2021-09"),
        ("2021年1-12月", "2021-12"),
        ("2021年全年", "2021-12"),
        ("2021年10月", "2021-10"),
        ("2021-07", "2021-07"),
        ("济宁高新区主要经济指标", None),
        ("2021年1-13月", None),
    ],
)
def test_periods(text: str, period: str | None) -> None:
    assert parse_period(text) == period


def test_same_workbook_twice_changes_nothing_and_a_changed_value_is_a_revision(
    tmp_path: Path,
) -> None:
    ledger = tmp_path / "ledger"
    options = ReadOptions(ledger=ledger)
    first = write_xlsx(tmp_path / "first.xlsx", JINING_2021)
    once = list(read_bulletin(first, CATALOGUE, now=NOW, options=options))
    twice = list(read_bulletin(first, CATALOGUE, now=NOW, options=options))
    assert once == twice and {r.record.revision for r in once if r.record} == {0}
    changed = [list(JINING_2021[0]), *JINING_2021[1:]]
    changed[0][3] = 106.0
    second = list(
        read_bulletin(
            write_xlsx(tmp_path / "second.xlsx", changed), CATALOGUE, now=NOW, options=options
        )
    )
    revised = [r for r in second if r.revised]
    assert [(r.record.indicator, r.record.value, r.record.revision) for r in revised] == [
        ("import_export_total", 106.0, 1)
    ]
    assert {r.record.revision for r in second if r.record and not r.revised} == {0}
    # The first file replayed (produce --replay) still gives what it gave: revision 0.
    again = list(read_bulletin(first, CATALOGUE, now=NOW, options=options))
    assert again == once


# -- a bulletin and the SDMX feed of the same figures give the same records -------------------

FLOWS = sorted(
    i.id for i in CATALOGUE.indicators.values() if i.kind == "flow" and i.unit == "CNY_100M"
)
SDMX_HEADER = (
    "STRUCTURE,STRUCTURE_ID,ACTION,ZONE,INDICATOR,TIME_PERIOD,BASIS,OBS_VALUE,UNIT_MEASURE,YOY_PCT"
)
_FIGURES = st.dictionaries(
    st.sampled_from(FLOWS),
    st.tuples(
        st.decimals(min_value=0, max_value=99999, places=2).map(str),
        st.one_of(st.none(), st.decimals(min_value=-99, max_value=500, places=1).map(str)),
        st.booleans(),  # written in 万元 rather than 亿元
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=30, deadline=None)
@given(
    st.sampled_from(sorted(CATALOGUE.zones)),
    st.integers(min_value=2016, max_value=2021),
    st.integers(min_value=1, max_value=10),
    _FIGURES,
)
def test_a_bulletin_and_the_sdmx_feed_of_the_same_figures_give_the_same_records(
    zone: str, year: int, month: int, figures: dict[str, tuple[str, str | None, bool]]
) -> None:
    name_zh = CATALOGUE.zones[zone].name_zh
    rows, lines = [], [SDMX_HEADER]
    for indicator, (value, yoy, in_10k) in figures.items():
        shown = str(Decimal(value) * 10_000) if in_10k else value
        rows.append(
            [
                CATALOGUE.indicators[indicator].name_zh,
                "万元" if in_10k else "亿元",
                "",
                shown,
                yoy or "",
            ]
        )
        lines.append(
            f"dataflow,PARKPULSE:ZONE_MONTHLY(1.0),I,{zone},{indicator},{year}-{month:02d},YTD,"
            f"{value},CNY_100M,{yoy or ''}"
        )
    with tempfile.TemporaryDirectory() as folder:
        sheet = write_xlsx(
            Path(folder) / "b.xlsx",
            rows,
            title=f"{name_zh}{year}年1-{month}月主要指标",
            sheet="月报",
        )
        feed = Path(folder) / "feed.csv"
        feed.write_text("\n".join(lines) + "\n", encoding="utf-8")
        from_bulletin = accepted(list(read_bulletin(sheet, CATALOGUE, now=NOW)))
        from_feed = accepted(list(read_feed(feed, CATALOGUE, now=NOW)))
    assert from_bulletin == from_feed


# -- the same figures through both layouts give the same status rows ----------------------

_SERIES = st.dictionaries(
    st.sampled_from(FLOWS),
    st.tuples(
        # YTD figures (亿元, 2 places) and the bureau's YoY: December of the year before, then
        # months of the year evaluated
        st.dictionaries(
            st.integers(min_value=0, max_value=10),  # 0 = December last year, else month
            st.tuples(
                st.decimals(min_value=1, max_value=9999, places=2).map(str),
                st.one_of(st.none(), st.decimals(min_value=-50, max_value=80, places=1).map(str)),
                st.booleans(),  # written in 万元 in the bulletin
            ),
            min_size=1,
            max_size=5,
        ),
        st.sampled_from(("level", "growth")),
        st.decimals(min_value=1, max_value=9999, places=1).map(float),  # base value
        st.decimals(min_value=-5, max_value=30, places=1).map(float),  # annual growth %
        st.booleans(),  # the level target gives its value (else it follows from the growth)
    ),
    min_size=1,
    max_size=3,
)


@settings(max_examples=25, deadline=None)
@given(
    st.sampled_from(sorted(CATALOGUE.zones)),
    st.integers(min_value=2017, max_value=2021),
    _SERIES,
)
def test_a_bulletin_and_the_sdmx_feed_of_the_same_figures_give_the_same_status_rows(
    zone: str, year: int, series: dict[str, tuple[Any, ...]]
) -> None:
    from parkpulse.schemas.records import PlanTarget

    targets = []
    sheets: dict[tuple[int, int], list[list[Any]]] = {}
    lines = [SDMX_HEADER]
    for indicator, (figures, kind, base, growth, with_value) in series.items():
        targets.append(
            PlanTarget(
                "prop-plan",
                zone,
                indicator,
                kind,
                year - 1,
                base if kind == "level" else None,
                year + 2,
                round(base * 1.1**3, 1) if kind == "level" and with_value else None,
                growth,
                False,
                "CNY_100M" if kind == "level" else "PCT",
            )
        )
        for at, (value, yoy, in_10k) in figures.items():
            y, m = (year - 1, 12) if at == 0 else (year, at)
            shown = str(Decimal(value) * 10_000) if in_10k else value
            name = CATALOGUE.indicators[indicator].name_zh
            sheets.setdefault((y, m), []).append(
                [name, "万元" if in_10k else "亿元", "", shown, yoy or ""]
            )
            lines.append(
                f"dataflow,PARKPULSE:ZONE_MONTHLY(1.0),I,{zone},{indicator},{y}-{m:02d},YTD,"
                f"{value},CNY_100M,{yoy or ''}"
            )
    from_bulletin, from_feed = _both_statuses(zone, year, targets, sheets, lines)
    assert from_bulletin  # every indicator has a target and a figure in its plan's years
    assert from_bulletin == from_feed


def _both_statuses(
    zone: str,
    year: int,
    targets: list[Any],
    sheets: dict[tuple[int, int], list[list[Any]]],
    lines: list[str],
) -> tuple[list[Any], list[Any]]:
    """The status rows of the same figures as a bulletin (a sheet per month) and as the SDMX
    feed's ``lines``, rolled up with ``targets`` (evaluated in March of the year after)."""
    from parkpulse.schemas.wire import observation_to_wire, target_to_wire
    from parkpulse.streams.rollup import Input, Rollup
    from parkpulse.topics import OBSERVATIONS, TARGETS

    book = openpyxl.Workbook()
    book.remove(book.active)  # type: ignore[arg-type]
    for (y, m), rows in sorted(sheets.items()):
        ws = book.create_sheet(f"{y}-{m}")
        ws.append([f"{CATALOGUE.zones[zone].name_zh}{y}年1-{m}月主要经济指标"])
        ws.append(HEADER)
        for row in rows:
            ws.append([None if v == "" else v for v in row])
    now = datetime(year + 1, 3, 1, tzinfo=UTC)

    def statuses(observations: set[Observation]) -> list[Any]:
        rollup = Rollup(CATALOGUE)
        inputs = [Input(TARGETS, "target", orjson.dumps(target_to_wire(t))) for t in targets]
        inputs += [
            Input(OBSERVATIONS, "observation", orjson.dumps(observation_to_wire(o)))
            for o in sorted(observations, key=lambda o: o.key)
        ]
        result = rollup.apply(inputs, now)
        assert result.deadletters == []
        return sorted(rollup.current_statuses(zone), key=lambda r: (r.indicator, r.plan, r.period))

    with tempfile.TemporaryDirectory() as folder:
        book.save(Path(folder) / "b.xlsx")
        feed = Path(folder) / "feed.csv"
        feed.write_text("\n".join(lines) + "\n", encoding="utf-8")
        from_bulletin = statuses(
            accepted(list(read_bulletin(Path(folder) / "b.xlsx", CATALOGUE, now=now)))
        )
        from_feed = statuses(accepted(list(read_feed(feed, CATALOGUE, now=now))))
    return from_bulletin, from_feed


# Stocks and ratios: a bulletin's figure is the level at the period's end (LEVEL in the feed).
LEVELS = sorted(i.id for i in CATALOGUE.indicators.values() if i.kind != "flow")
UNIT_WRITTEN = {
    "COUNT": "个",
    "PCT": "%",
    "UG_PER_M3": "微克/立方米",
    "PERSON_10K": "万人",
    "CNY_10K": "万元",
    "CNY_10K_PER_MU": "万元/亩",
}
_LEVEL = st.decimals(min_value=1, max_value=99, places=1).map(str)
_LEVEL_SERIES = st.dictionaries(
    st.sampled_from(LEVELS),
    st.tuples(
        st.dictionaries(st.integers(min_value=0, max_value=10), _LEVEL, min_size=1, max_size=4),
        _LEVEL,  # base level (the December before the plan's base year's end)
        _LEVEL,  # target level
    ),
    min_size=1,
    max_size=3,
)


@settings(max_examples=20, deadline=None)
@given(
    st.sampled_from(sorted(CATALOGUE.zones)),
    st.integers(min_value=2017, max_value=2021),
    _LEVEL_SERIES,
)
def test_stocks_and_ratios_from_a_bulletin_and_the_sdmx_feed_give_the_same_status_rows(
    zone: str, year: int, series: dict[str, tuple[Any, ...]]
) -> None:
    from parkpulse.schemas.records import PlanTarget

    targets = []
    sheets: dict[tuple[int, int], list[list[Any]]] = {}
    lines = [SDMX_HEADER]
    for indicator, (figures, base, target) in series.items():
        ind = CATALOGUE.indicators[indicator]
        whole = ind.unit == "COUNT"
        level = (lambda v: str(int(float(v)))) if whole else str
        kind = "share" if ind.kind == "ratio" else "level"
        targets.append(
            PlanTarget(
                "prop-plan", zone, indicator, kind, year - 1, float(level(base)), year + 2,
                float(level(target)), None, False, ind.unit,
            )
        )  # fmt: skip
        for at, value in figures.items():
            y, m = (year - 1, 12) if at == 0 else (year, at)
            sheets.setdefault((y, m), []).append(
                [ind.name_zh, UNIT_WRITTEN[ind.unit], "", level(value), ""]
            )
            lines.append(
                f"dataflow,PARKPULSE:ZONE_MONTHLY(1.0),I,{zone},{indicator},{y}-{m:02d},LEVEL,"
                f"{level(value)},{ind.unit},"
            )
    from_bulletin, from_feed = _both_statuses(zone, year, targets, sheets, lines)
    assert from_bulletin
    assert from_bulletin == from_feed


@pytest.mark.parametrize(
    ("verb", "option", "said"),
    [
        (
            "produce",
            ["--zone", "济宁高薪区"],
            "--zone '济宁高薪区' is not a known zone; nearest: jining",
        ),
        (
            "targets",
            ["--zone", "济宁高薪区"],
            "--zone '济宁高薪区' is not a known zone; nearest: jining",
        ),
        ("produce", ["--period", "1-13月"], "--period '1-13月' names no period"),
    ],
)
def test_a_mistyped_zone_or_period_option_is_one_line_and_nothing_is_published(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], verb: str, option: list[str], said: str
) -> None:
    """Checked before any broker is asked for (there is none here: publishing would exit 3)."""
    from parkpulse import cli

    path = write_xlsx(tmp_path / "b.xlsx", JINING_2021)
    assert cli.main([verb, "--data-dir", str(tmp_path / "var"), *option, str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"parkpulse: {said}")
    assert err.count("\n") == 1 and err.rstrip().endswith("nothing published")
    assert not (tmp_path / "var" / "feeds").exists()


# -- every header keyword, zone column, no-figure spelling and unit of the issue --------------


@pytest.mark.parametrize("indicator", ["指标", "指标名称"])
@pytest.mark.parametrize("unit", ["单位", "计量单位"])
@pytest.mark.parametrize("month", ["本月", "当月", "6月"])
@pytest.mark.parametrize("ytd", ["1-6月", "累计", "本年累计"])
@pytest.mark.parametrize("yoy", ["同比", "同比增长(%)", "增长%"])
def test_every_header_keyword(
    tmp_path: Path, indicator: str, unit: str, month: str, ytd: str, yoy: str
) -> None:
    path = write_sheet(
        tmp_path / "b.xlsx",
        [
            ["烟台高新区2024年1-6月主要经济指标"],
            [indicator, unit, month, ytd, yoy],
            ["一般公共预算收入", "亿元", 3.2, 20.7, 6.6],
        ],
        sheet="月报",
    )
    got = accepted(list(read_bulletin(path, CATALOGUE, now=datetime.now(UTC))))
    assert {(o.zone, o.indicator, o.basis, o.period, o.value, o.yoy_pct) for o in got} == {
        ("yantai-hitech", "budget_revenue", "YTD", "2024-06", 20.7, 6.6),
        ("yantai-hitech", "budget_revenue", "MONTH", "2024-06", 3.2, None),
    }


@pytest.mark.parametrize("column", ["园区", "区域"])
def test_a_zone_column_by_either_name(tmp_path: Path, column: str) -> None:
    path = write_sheet(
        tmp_path / "b.xlsx",
        [
            ["2021年一季度各园区主要指标"],
            [column, "指标名称", "计量单位", "累计"],
            ["济宁高新区", "外贸进出口总额", "亿元", 30.5],
            ["西安高新技术产业开发区", "外贸进出口总额", "亿元", 500.0],
        ],
        sheet="Sheet1",
    )
    got = accepted(list(read_bulletin(path, CATALOGUE, now=NOW)))
    assert {(o.zone, o.period, o.value) for o in got} == {
        ("jining-hitech", "2021-03", 30.5),
        ("xian-hitech", "2021-03", 500.0),
    }


@pytest.mark.parametrize("blank", ["", "—", "-", "…", "——", "--"])
def test_no_figure_cells_publish_nothing_and_reject_nothing(tmp_path: Path, blank: str) -> None:
    rows = [
        ["外贸进出口总额", "亿元", blank, 105.4, blank],
        ["实际利用外资", "万美元", blank, blank, blank],
    ]
    out = list(read_bulletin(write_xlsx(tmp_path / "b.xlsx", rows), CATALOGUE, now=NOW))
    assert [(o.indicator, o.basis, o.value, o.yoy_pct) for o in accepted(out)] == [
        ("import_export_total", "YTD", 105.4, None)
    ]


@pytest.mark.parametrize(
    ("name", "unit", "written", "value", "code"),
    [
        ("地区生产总值", "亿元", 300.5, 300.5, "CNY_100M"),
        ("一般公共预算收入", "万元", 702000, 70.2, "CNY_100M"),
        ("实际利用外资", "亿美元", 2.7, 2.7, "USD_100M"),
        ("实际利用外资", "万美元", 27000, 2.7, "USD_100M"),
        ("新增市场主体", "户", 4165, 4165.0, "COUNT"),
        ("高新技术企业数", "家", 140, 140.0, "COUNT"),
        ("外资研发机构数量", "个", 26, 26.0, "COUNT"),
        ("新增加全职工作的国内外高端人才数", "人", 3933, 3933.0, "PERSON"),
        ("城镇新增就业", "人", 17700, 1.77, "PERSON_10K"),
        ("基本养老保险参保人数", "万人", 11.1, 11.1, "PERSON_10K"),
        ("空气质量优良天数比率", "%", 62.0, 62.0, "PCT"),
        ("PM2.5平均浓度", "微克/立方米", 43, 43.0, "UG_PER_M3"),
    ],
)
def test_every_chinese_unit_converts_to_the_catalogues(
    tmp_path: Path, name: str, unit: str, written: float, value: float, code: str
) -> None:
    out = list(
        read_bulletin(
            write_xlsx(tmp_path / "b.xlsx", [[name, unit, "", written, ""]]), CATALOGUE, now=NOW
        )
    )
    (obs,) = accepted(out)
    assert (obs.value, obs.unit) == (pytest.approx(value), code)


@pytest.mark.parametrize(
    "note", ["注:本表为快报数据。", "注：快报", "注", "注①以考核口径为准", "注1.快报"]
)
def test_footnotes_are_skipped_but_a_name_beginning_with_zhu_is_read(
    tmp_path: Path, note: str
) -> None:
    rows = [["外贸进出口总额", "亿元", "", 105.4, ""], ["注册企业数", "家", "", 12, ""], [note]]
    out = list(read_bulletin(write_xlsx(tmp_path / "b.xlsx", rows), CATALOGUE, now=NOW))
    assert [(r.place, r.error.reason if r.error else None) for r in out] == [
        ("1-10月!D3", None),
        ("1-10月!A4", "unknown_indicator"),  # not dropped as a footnote: the clerk is told
    ]
    assert out[1].error is not None and "nearest: new_enterprises" in out[1].error.detail


@pytest.mark.parametrize(
    "title", ["濟寧高新區2021年1-10月主要經濟指標", "济宁高新技术产业开发区２０２１年１－１０月"]
)
def test_a_title_in_traditional_or_full_width_characters_names_the_zone(
    tmp_path: Path, title: str
) -> None:
    path = write_xlsx(tmp_path / "b.xlsx", JINING_2021, title=title)
    assert accepted(list(read_bulletin(path, CATALOGUE, now=NOW))) == seed_records()
