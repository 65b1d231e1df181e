"""Property: whatever a bureau table holds, its reader yields rows and never raises; each row is
a record, a duplicate, or a reject with a reason code and the place it names (issue 12: bad
input gets a clear one-line reason and loses nothing)."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl.utils.exceptions import IllegalCharacterError

from parkpulse.producers.bulletin import read_bulletin
from parkpulse.producers.feed import FeedRow
from parkpulse.producers.plan_table import read_plan_table
from parkpulse.producers.read_options import ReadOptions
from parkpulse.producers.register_export import read_export
from parkpulse.schemas.catalogue import load_catalogue
from parkpulse.schemas.errors import REASONS
from tests.sheets import write_sheet, write_table_csv

CATALOGUE = load_catalogue()
NOW = datetime(2025, 1, 1, tzinfo=UTC)
# Header words, names, figures and junk of all three layouts, so headers are often found.
WORDS = [
    "指标", "指标名称", "单位", "计量单位", "本月", "当月", "6月", "1-6月", "累计", "本年累计",
    "同比", "增长%", "园区", "区域", "烟台高新区2024年1-6月", "上半年", "一般公共预算收入",
    "一般公共预算收入(亿元)", "地区生产总值增速", "亿元", "万元", "%", "—", "-", "…", "注:快报",
    "其中:出口", "济南高新区", "2020年", "2025年目标", "年均增长(%)", "属性", "预期性", "约束性",
    "[125]", "--", "完成市下达指标", "主要指标", "序号", "统一社会信用代码", "成立日期",
    "登记日期", "市场主体类型", "行业代码", "注册资本(万元)", "91370100MACXYZ0001",
    "2024-03-05", "个体工商户", "I6510", "十四五", "1e308", "nan", "-1", "9" * 40, "",
]  # fmt: skip
CELL = st.one_of(
    st.sampled_from(WORDS),
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=-(10**15), max_value=10**15),
    st.text(max_size=6),
)


def _write(folder: Path, rows: list[list[Any]], as_csv: bool) -> Path | None:
    path = folder / ("t.csv" if as_csv else "t.xlsx")
    try:
        if as_csv:
            return write_table_csv(path, rows, "utf-8")
        return write_sheet(path, rows, sheet="s")
    except (ValueError, UnicodeEncodeError, IllegalCharacterError):  # not writable as such
        return None


def _read(path: Path, reader: str, option: str | None) -> list[FeedRow]:
    zone = option if option == "烟台高新区" else None
    if reader == "bulletin":
        period = option if option == "上半年" else None
        options = ReadOptions(zone=zone, period=period)
        return list(read_bulletin(path, CATALOGUE, now=NOW, options=options))
    if reader == "plan":
        return list(read_plan_table(path, CATALOGUE, plan=option and "p", zone=zone))
    return list(read_export(path, CATALOGUE, now=NOW, options=ReadOptions(zone=zone)))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.lists(CELL, max_size=8), max_size=10),
    st.booleans(),
    st.sampled_from(["bulletin", "plan", "export"]),
    st.sampled_from([None, "烟台高新区", "上半年"]),
)
def test_any_table_gives_records_or_placed_rejects(
    rows: list[list[Any]], as_csv: bool, reader: str, option: str | None
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = _write(Path(folder), rows, as_csv)
        if path is None:
            return
        out = _read(path, reader, option)
    for row in out:
        assert row.duplicate or (row.record is None) != (row.error is None), row
        if row.error is not None:
            assert row.error.reason in REASONS and row.error.detail
            assert row.place or as_csv  # a workbook's reject names its cell (or the file)
