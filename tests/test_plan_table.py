"""Plan tables: 表2 of seed 004 as a spreadsheet gives exactly plan_targets.csv's targets."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parkpulse.producers.feed import FeedRow
from parkpulse.producers.plan_table import read_plan_table
from parkpulse.schemas.catalogue import load_catalogue
from parkpulse.schemas.records import PlanTarget
from parkpulse.schemas.targets import validate_target
from tests.sheets import write_sheet, write_table_csv, write_xls

CATALOGUE = load_catalogue()
SHARED = Path("/work/shared/data/plan_targets.csv")
BUNDLED = Path(__file__).parent.parent / "parkpulse" / "reference" / "plan_targets.csv"
TITLE = "表2  济南高新区“十四五”时期发展目标"
HEADER = ["指标体系", "序号", "主要指标", "2020年完成", "2025年目标", "年均增长(%)", "指标属性"]
E, B = "预期性", "约束性"
# 表2 of ../shared/seeds/004_*.txt, row by row as the plan prints it (category rows, 序号,
# the unit in parentheses, -- for no value, [ ] for five-year totals, the 亩产效益 heading).
TABLE_2: list[list[Any]] = [
    ["经济高质量", "", "", "", "", "", ""],
    ["", 1, "地区生产总值增速(%)", 6.5, "--", 10.0, E],
    ["", 2, "规模以上工业增加值增速(%)", 22.4, "--", 13.5, E],
    ["", 3, "一般公共预算收入(亿元)", 130.2, 200, 9.0, E],
    ["", 4, "固定资产投资增速(%)", 6.0, "--", 15.0, E],
    ["", 5, "社会消费品零售总额(亿元)", 351.7, 517, 8.0, E],
    ["", 6, "亩产效益", "", "", "", ""],
    ["", "", "亩均税收(万元/亩)", 18.2, 25.5, "", E],
    ["", "", "投资强度(万元/亩)", 75.0, 87.0, "", E],
    ["产业高能级", "", "", "", "", "", ""],
    ["", 7, "高新技术产业产值占规上工业总产值比重(%)", 83.2, 87, "", E],
    ["", 8, "营业收入中高技术服务业收入占比(%)", 14.1, 25, "", E],
    ["", 9, "高新技术企业数(家)", 1214, 2500, "", E],
    ["", 10, "上市企业数(含新三板)(家)", 116, 130, "", E],
    ["", 11, "“十强”产业固定资产投资额占高新区固定资产投资总额的比重(%)", 67.9, 75.5, "", E],
    ["双创高活力", "", "", "", "", "", ""],
    ["", 12, "全社会研发经费支出占地区生产总值比重(%)", 5.6, 6.5, "", E],
    ["", 13, "国家级研发机构数量(家)", 17, 22, "", E],
    ["", 14, "新型研发机构数量(家)", 34, 68, "", E],
    ["", 15, "新增加全职工作的国内外高端人才数(人)", 3933, 5263, 6.0, E],
    ["", 16, "从业人员中硕博占比(%)", 6.56, 10, "", E],
    ["", 17, "人力资本价值指数(万元)", 600, 800, "", E],
    ["开放高水平", "", "", "", "", "", ""],
    ["", 18, "进出口总额(亿元)", 701.3, 2140, 25.0, E],
    ["", 19, "实际使用外资(亿美元)", 8.6, 14.5, 11.0, E],
    ["", 20, "外资研发机构数量(个)", 26, 50, "", E],
    ["", 21, "境外设立技术研发机构数量(个)", 24, 50, "", E],
    ["生活高品质", "", "", "", "", "", ""],
    ["", 22, "新增城镇就业人数(万人)", 1.77, 2.26, 5.0, E],
    ["", 23, "新增医疗机构数(个)", 28, "[125]", "", E],
    ["", 24, "新增义务教育机构数(个)", 2, "[12]", "", E],
    ["", 25, "群众文体活动中心数(个)", 2, 10, "", E],
    ["", 26, "基本养老保险参保人数(万人)", 11.1, 12, 1.6, E],
    ["", 27, "基本医疗保险参保人数(万人)", 15.6, 17.2, 2.0, E],
    ["", 28, "空气质量优良天数比率(%)", 62, "完成市下达指标", "", B],
    ["", 29, "PM2.5平均浓度(微克/立方米)", 43, "完成市下达指标", "", B],
    ["", 30, "森林覆盖率(%)", 25.6, 26.1, "", B],
    ["注:①具体指标第6、12、16项以考核口径为准。③加“[ ]”的为五年累计。", "", "", "", "", "", ""],
]


def expected_targets(path: Path) -> list[PlanTarget]:
    """The 14th-fyp rows of a plan_targets.csv, validated, without their source notes."""
    with path.open(encoding="utf-8", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["plan"] == "14th-fyp"]
    return [_bare(validate_target(r, CATALOGUE)) for r in rows]


def _bare(target: PlanTarget) -> PlanTarget:
    return dataclasses.replace(target, source="")


def write_xlsx(path: Path, rows: list[list[Any]], *, split_header: bool = False) -> Path:
    if split_header:  # "2020年" over "完成", as the plan's PDF prints it
        header = [
            [h.removesuffix("完成").removesuffix("目标") for h in HEADER],
            ["", "", "", "完成", "目标", "", ""],
        ]
    else:
        header = [HEADER]
    return write_sheet(path, [[TITLE], *header, *rows], sheet="表2")


def write_csv(path: Path, rows: list[list[Any]], encoding: str = "utf-8") -> Path:
    return write_table_csv(path, [[TITLE], HEADER, *rows], encoding)


def records(rows: list[FeedRow]) -> list[PlanTarget]:
    assert [r.error for r in rows if r.error] == []
    return [_bare(r.record) for r in rows if isinstance(r.record, PlanTarget)]


@pytest.mark.parametrize("split_header", [False, True])
def test_table_2_loads_to_exactly_plan_targets_csv(tmp_path: Path, split_header: bool) -> None:
    path = write_xlsx(tmp_path / "plan.xlsx", TABLE_2, split_header=split_header)
    got = records(list(read_plan_table(path, CATALOGUE, plan="14th-fyp", zone="jinan-hitech")))
    assert got == expected_targets(SHARED)
    assert got == expected_targets(BUNDLED)
    assert len(got) == 31


def test_table_2_as_xls(tmp_path: Path) -> None:
    path = write_xls(tmp_path / "plan.xls", [[TITLE], HEADER, *TABLE_2], sheet="表2")
    got = records(list(read_plan_table(path, CATALOGUE, plan="14th-fyp", zone="jinan-hitech")))
    assert got == expected_targets(SHARED)


@pytest.mark.parametrize("encoding", ["utf-8", "gbk"])
def test_table_2_as_csv(tmp_path: Path, encoding: str) -> None:
    path = write_csv(tmp_path / "plan.csv", TABLE_2, encoding)
    got = records(list(read_plan_table(path, CATALOGUE, plan="14th-fyp", zone="济南高新区")))
    assert got == expected_targets(SHARED)


def test_the_title_names_plan_and_zone(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "plan.xlsx", TABLE_2)
    got = records(list(read_plan_table(path, CATALOGUE)))
    assert got == expected_targets(SHARED)


def test_unit_in_its_own_column_and_a_base_year_of_another_name(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "年度任务"
    sheet.append(
        ["序号", "指标名称", "计量单位", "2023年基数", "2024年目标", "年均增长(%)", "属性"]
    )
    sheet.append([1, "外贸进出口总额", "万元", 1_000_000, 1_200_000, None, "约束性"])
    sheet.append([2, "实际利用外资", "万美元", 20_000, None, 10, "预期性"])
    book.save(tmp_path / "tasks.xlsx")
    got = records(
        list(read_plan_table(tmp_path / "tasks.xlsx", CATALOGUE, plan="t", zone="济宁高新区"))
    )
    assert [
        (t.indicator, t.kind, t.base_year, t.base_value, t.target_value, t.binding) for t in got
    ] == [
        ("import_export_total", "level", 2023, 100.0, 120.0, True),
        ("foreign_capital_used", "level", 2023, 2.0, None, False),
    ]
    assert got[1].annual_growth_pct == 10.0 and got[1].target_year == 2024


def test_rejected_rows_name_their_cell(tmp_path: Path) -> None:
    rows = [
        ["", 1, "地区生产总值增速(%)", 6.5, "--", 10.0, E],
        ["", 2, "规模以上工业增加值(亿元)", "abc", 500, "", E],
        ["", 3, "进出口总量(亿元)", 701.3, 2140, 25.0, E],
        ["", 4, "一般公共预算收入(亿元)", 130.2, 200, 9.0, "必须性"],
    ]
    path = write_xlsx(tmp_path / "plan.xlsx", rows)
    out = list(read_plan_table(path, CATALOGUE, plan="14th-fyp", zone="jinan-hitech"))
    assert [(r.place, r.error.reason if r.error else None) for r in out] == [
        ("表2!C3", None),
        ("表2!D4", "bad_value"),
        ("表2!C5", "unknown_indicator"),
        ("表2!G6", "malformed"),
    ]
    assert "nearest: import_export_total" in str(out[2].error)


def test_no_zone_and_no_table(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["序号", "主要指标", "2020年", "2025年目标"])
    sheet.append([1, "一般公共预算收入(亿元)", 130.2, 200])
    book.save(tmp_path / "plan.xlsx")
    out = list(read_plan_table(tmp_path / "plan.xlsx", CATALOGUE, plan="p"))
    assert [r.error.reason for r in out if r.error] == ["malformed"]
    assert "--zone" in str(out[0].error)
    (tmp_path / "empty.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    out = list(read_plan_table(tmp_path / "empty.csv", CATALOGUE, plan="p", zone="jinan-hitech"))
    assert len(out) == 1 and out[0].error is not None and "no plan table" in out[0].error.detail
    (tmp_path / "broken.xlsx").write_bytes(b"PK\x03\x04 not really a workbook")
    out = list(read_plan_table(tmp_path / "broken.xlsx", CATALOGUE, plan="p", zone="jinan-hitech"))
    assert len(out) == 1 and out[0].error is not None and "workbook" in out[0].error.detail


@settings(max_examples=25, deadline=None)
@given(st.permutations(range(len(TABLE_2) - 1)))
def test_row_order_does_not_matter(order: list[int]) -> None:
    """Rows moved about (headings lose their meaning, not the targets) give the same set."""
    import tempfile

    rows = [TABLE_2[i] for i in order]
    with tempfile.TemporaryDirectory() as folder:
        path = write_xlsx(Path(folder) / "plan.xlsx", rows)
        got = records(list(read_plan_table(path, CATALOGUE, plan="14th-fyp", zone="jinan-hitech")))
    key = lambda t: t.key  # noqa: E731
    assert sorted(got, key=key) == sorted(expected_targets(SHARED), key=key)


def test_a_target_year_without_a_value_takes_it_from_the_growth(tmp_path: Path) -> None:
    """一般公共预算收入 130.2 亿元 in 2020, 年均增长 9 %, no 2025 value: the engine's 2025 target is
    130.2·1.09^5, so its statuses are those of the same row with that value written."""
    from parkpulse.schemas.records import Observation
    from parkpulse.streams.plan import evaluate

    rows = [["", 3, "一般公共预算收入(亿元)", 130.2, "", 9.0, E]]
    path = write_xlsx(tmp_path / "plan.xlsx", rows)
    (target,) = records(list(read_plan_table(path, CATALOGUE, plan="p", zone="jinan-hitech")))
    assert (target.kind, target.target_value, target.annual_growth_pct) == ("level", None, 9.0)
    written = dataclasses.replace(target, target_value=130.2 * 1.09**5)
    figures = [
        Observation("jinan-hitech", "budget_revenue", f"2021-{m:02d}", "YTD", 12.0 * m, "CNY_100M")
        for m in (3, 6, 12)
    ]
    budget = CATALOGUE.indicators["budget_revenue"]
    derived = evaluate("jinan-hitech", budget, figures, [target])
    assert derived == evaluate("jinan-hitech", budget, figures, [written])
    assert {round(r.annual_target or 0, 3) for r in derived} == {round(130.2 * 1.09, 3)}


@pytest.mark.parametrize("base", ["2020年", "2020年完成", "2020年基数"])
@pytest.mark.parametrize("suffix", ["增速", "增长"])
def test_base_year_headers_and_growth_rows_by_either_suffix(
    tmp_path: Path, base: str, suffix: str
) -> None:
    path = write_sheet(
        tmp_path / "plan.xlsx",
        [
            ["序号", "指标名称", "单位", base, "2025年目标", "年均增长(%)", "属性"],
            [1, f"规模以上工业增加值{suffix}", "%", 22.4, "--", 13.5, "预期性"],
            [2, "一般公共预算收入", "亿元", 130.2, 200, 9.0, "约束性"],
        ],
        sheet="表2",
    )
    got = records(list(read_plan_table(path, CATALOGUE, plan="p", zone="jinan-hitech")))
    assert [
        (t.indicator, t.kind, t.base_year, t.base_value, t.target_value, t.binding, t.unit)
        for t in got
    ] == [
        ("industrial_value_added", "growth", 2020, 22.4, None, False, "PCT"),
        ("budget_revenue", "level", 2020, 130.2, 200.0, True, "CNY_100M"),
    ]


@pytest.mark.parametrize("plan", ["十四五", "“十四五”规划"])
def test_the_plan_option_by_its_chinese_name(tmp_path: Path, plan: str) -> None:
    path = write_xlsx(tmp_path / "plan.xlsx", TABLE_2)
    got = records(list(read_plan_table(path, CATALOGUE, plan=plan, zone="济南高新区")))
    assert got == expected_targets(SHARED)


def test_a_title_in_traditional_characters_names_the_zone(tmp_path: Path) -> None:
    path = write_sheet(
        tmp_path / "plan.xlsx",
        [["表2  濟南高新區“十四五”時期發展目標"], HEADER, *TABLE_2],
        sheet="表2",
    )
    assert records(list(read_plan_table(path, CATALOGUE))) == expected_targets(SHARED)
