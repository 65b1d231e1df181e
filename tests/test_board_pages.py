"""The board's pages as HTML (pure): what a planner reads on a zone page and an explanation
page — the gap beside the attainment, the out-of-reach flag, the formulas with their numbers —
in Chinese by default and in English."""

from __future__ import annotations

import re
from typing import Any

import pytest
from rich.console import Console

from parkpulse.board.pages import explain_page, overview, zone_page
from parkpulse.explain import ExplainError, as_doc, check_request, render
from parkpulse.schemas.catalogue import load_catalogue, load_plan_targets
from parkpulse.schemas.records import Observation
from parkpulse.scoreboard import status_table, suspect_table
from parkpulse.streams.plan import evaluate, explain
from parkpulse.vocabulary import STATUS_LABELS

CATALOGUE = load_catalogue()
JINAN = "jinan-hitech"


def figure(indicator: str, period: str, value: float, **kw: Any) -> Observation:
    unit = CATALOGUE.indicators[indicator].unit
    return Observation(JINAN, indicator, period, "YTD", value, unit, **kw)


# The example: GDP growth 7.8 % against the 10 %-a-year plan target is 1.078/1.10.
GDP = [figure("gdp", "2021-06", 660.0, yoy_pct=7.8)]
# Budget revenue far under its path, with 2019..2021 on record: out of reach by 2021-06.
BUDGET = [
    figure("budget_revenue", f"{year}-{month:02d}", value)
    for year, june, december in ((2019, 50.0, 100.0), (2020, 55.0, 110.0), (2021, 40.0, 0.0))
    for month, value in ((6, june), (12, december))
    if value
]


def rows_of(indicator: str, observations: list[Observation]) -> list[dict[str, Any]]:
    found = evaluate(JINAN, CATALOGUE.indicators[indicator], observations, load_plan_targets())
    return [r.to_dict() for r in found]


def entry(page: str, indicator: str) -> str:
    """The zone page's table row of ``indicator``."""
    start = page.index(f'<tr data-indicator="{indicator}"')
    return page[start : page.index("</tr>", start)]


def test_a_growth_targets_row_shows_its_gap_and_the_page_says_how_to_read_it() -> None:
    (gdp,) = rows_of("gdp", GDP)
    assert gdp["status"] == "behind" and gdp["gap_pp"] == pytest.approx(-2.2)
    page = zone_page(JINAN, [gdp], CATALOGUE, "zh", "zh")
    row = entry(page, "gdp")
    assert "<td class='attainment'>98.0%</td>" in row  # 1.078 / 1.10
    assert "<td class='gap'>-2.2</td>" in row
    assert "差距(百分点)" in page and "7.8% 对 15% 为 93.7%" in page
    english = zone_page(JINAN, [gdp], CATALOGUE, "en", "zh")
    assert "gap pp" in english and "a gap of −7.2 pp" in english


def test_out_of_reach_is_flagged_on_its_row_and_nowhere_else() -> None:
    budget = rows_of("budget_revenue", BUDGET)
    june = next(r for r in budget if r["period"] == "2021-06")
    assert june["out_of_reach"] is True  # needs far more than 2020's +10 % rest of year
    (gdp,) = rows_of("gdp", GDP)
    page = zone_page(JINAN, [*budget, gdp], CATALOGUE, "zh", "zh")
    assert "⚠ 年度目标难以实现" in entry(page, "budget_revenue")
    assert "难以实现" not in entry(page, "gdp")
    assert f"{june['required_growth_pct']:+.1f}" in entry(page, "budget_revenue")
    assert f"{june['best_rest_growth_pct']:+.1f}" in entry(page, "budget_revenue")
    assert "⚠ out of reach" in entry(
        zone_page(JINAN, budget, CATALOGUE, "en", "zh"), "budget_revenue"
    )


def test_every_row_links_to_its_explanation_in_the_pages_language() -> None:
    (gdp,) = rows_of("gdp", GDP)
    link = re.compile(r'class="explain" href="([^"]+)"')
    zh = link.findall(zone_page(JINAN, [gdp], CATALOGUE, "zh", "zh"))
    assert zh == ["/zone/jinan-hitech/explain/gdp?plan=14th-fyp"]
    en = link.findall(zone_page(JINAN, [gdp], CATALOGUE, "en", "zh"))
    assert en == ["/zone/jinan-hitech/explain/gdp?plan=14th-fyp&amp;lang=en"]


def test_the_overview_speaks_english_when_asked() -> None:
    rows = rows_of("gdp", GDP) + rows_of("budget_revenue", BUDGET)
    latest = [r for r in rows if r["period"] == "2021-06"]
    english = overview(latest, CATALOGUE, "en", "zh")
    assert "Jinan" in english and "share on track" in english and "正常及以上占比" not in english
    assert STATUS_LABELS["en"]["behind"] in english and "落后" not in english
    assert 'href="/zone/jinan-hitech?lang=en"' in english
    chinese = overview(latest, CATALOGUE, "zh", "zh")
    assert "济南高新技术产业开发区" in chinese and 'href="/zone/jinan-hitech"' in chinese


def test_the_explanation_page_fills_in_the_growth_formula() -> None:
    found = explain(JINAN, CATALOGUE.indicators["gdp"], GDP, load_plan_targets())
    assert found is not None
    doc = as_doc(found)
    page = explain_page(doc, CATALOGUE, "zh", "zh")
    steps = dict(re.findall(r"<tr data-step='([a-z_]+)'>(.*?)</tr>", page))
    assert set(steps) == {"actual", "expected", "attainment", "gap_pp", "status"}
    assert "(1 + 7.8/100) / (1 + 10.0/100)" in steps["attainment"] and "0.98" in steps["attainment"]
    assert "7.8 − 10.0" in steps["gap_pp"] and "-2.2" in steps["gap_pp"]
    assert "落后" in steps["status"] and "完成度" in steps["attainment"]
    assert "公式" in page and "代入数值" in page and "href='/zone/jinan-hitech'" in page
    english = explain_page(doc, CATALOGUE, "en", "zh")
    assert "formula" in english and "behind" in english and "?lang=en" in english


def test_the_explain_table_has_headers_in_the_language() -> None:
    found = explain(JINAN, CATALOGUE.indicators["gdp"], GDP, load_plan_targets())
    assert found is not None
    console = Console(width=200, record=True)
    console.print(render(as_doc(found), "zh", CATALOGUE))
    out = console.export_text()
    assert "公式" in out and "代入数值" in out and "结果" in out and "formula" not in out
    # The status rule in words, the figure's source too; a growth target's numbers are in %.
    assert "差距(百分点) ≥ 0 → 正常; ≥ -2 → 预警; 否则 落后" in out
    assert "on_track" not in out and "统计局公布的同比" in out
    assert "地区生产总值 (%)" in out and "亿元" not in out


def test_status_tables_give_each_rows_unit_and_say_how_to_read_a_growth_target() -> None:
    budget = [r for r in rows_of("budget_revenue", BUDGET) if r["period"] == "2021-06"]
    rows = budget + rows_of("gdp", GDP)
    console = Console(width=250, record=True)
    console.print(status_table(rows, lang="zh", catalogue=CATALOGUE))
    out = console.export_text()
    lines = {line.split("│")[2].strip(): line for line in out.splitlines() if "│" in line}
    assert "│ 亿元 " in lines["一般公共预算收入"] and "│ % " in lines["地区生产总值"]
    assert "单位" in out and "状态看差距(百分点)" in out
    assert budget[0]["out_of_reach"] and "⚠ 年度目标难以实现" in lines["一般公共预算收入"]
    assert "难以实现" not in lines["地区生产总值"]
    console = Console(width=250, record=True)
    console.print(status_table(budget, lang="en", catalogue=CATALOGUE))
    out = console.export_text()
    assert "CNY 100M" in out and "Growth targets" not in out  # no growth row, no note


def test_explain_takes_names_as_status_does() -> None:
    assert check_request(CATALOGUE, "济南高新区", "一般公共预算收入", None) == (
        JINAN,
        "budget_revenue",
    )
    assert check_request(CATALOGUE, JINAN, "gdp", "2021-06") == (JINAN, "gdp")
    with pytest.raises(ExplainError, match="unknown zone: 'nowhere' is not a known zone"):
        check_request(CATALOGUE, "nowhere", "gdp", None)
    with pytest.raises(ExplainError, match="unknown indicator"):
        check_request(CATALOGUE, JINAN, "no_such_indicator", None)
    with pytest.raises(ExplainError, match="YYYY-MM"):
        check_request(CATALOGUE, JINAN, "gdp", "2021-6")


@pytest.mark.parametrize(
    ("lang", "present", "absent"),
    [
        ("zh", ["园区", "济南高新技术产业开发区", "累计值较前期回落"], ["zone", "ytd_fell"]),
        ("en", ["zone", "Jinan", "YTD fell"], ["园区", "ytd_fell"]),
    ],
)
def test_the_suspect_table_speaks_the_language(
    lang: str, present: list[str], absent: list[str]
) -> None:
    rows = [
        {"zone": JINAN, "indicator": "gdp", "period": "2021-06", "value": 1.0, "previous": 9.0,
         "previous_period": "2021-05", "reason": "ytd_fell"}
    ]  # fmt: skip
    console = Console(width=200, record=True)
    console.print(suspect_table(rows, lang, CATALOGUE))  # type: ignore[arg-type]
    out = console.export_text()
    assert all(word in out for word in present), out
    assert not any(word in out for word in absent), out


def test_the_static_report_speaks_the_language_setting() -> None:
    """DATA_DIR/report.html (parkpulse/report.py) in PARKPULSE_LANG: headers, status words, names,
    units and the gap."""
    from parkpulse.report import render_zone

    rows = rows_of("gdp", GDP) + rows_of("budget_revenue", BUDGET)
    chinese = render_zone(JINAN, rows, CATALOGUE, "zh")
    assert "济南高新技术产业开发区" in chinese and "落后" in chinese and "差距(百分点)" in chinese
    assert "一般公共预算收入" in chinese and "亿元" in chinese and "-2.2" in chinese
    english = render_zone(JINAN, rows, CATALOGUE, "en")
    assert "Jinan High-tech Industrial Development Zone" in english and "gap pp" in english
    assert "General public budget revenue" in english and "CNY 100M" in english
    assert "behind" in english and not re.search(r"[\u4e00-\u9fff]", english)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_pages_render_offline(lang: str) -> None:
    """Nothing to fetch: no script, stylesheet, image or font from anywhere."""
    rows = rows_of("gdp", GDP) + rows_of("budget_revenue", BUDGET)
    found = explain(JINAN, CATALOGUE.indicators["gdp"], GDP, load_plan_targets())
    assert found is not None
    for page in (
        overview(rows, CATALOGUE, lang, "zh"),  # type: ignore[arg-type]
        zone_page(JINAN, rows, CATALOGUE, lang, "zh"),  # type: ignore[arg-type]
        explain_page(as_doc(found), CATALOGUE, lang, "zh"),  # type: ignore[arg-type]
    ):
        assert "<svg" in page or "<table" in page
        assert not re.search(r"<script|<link|<img|@import|url\(|src=", page)
        assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", page)


class _Store:
    """What explanation_doc asks of the store: a zone's figures and targets."""

    def __init__(self, observations: list[Observation], targets: list[Any]) -> None:
        self.state = (observations, targets, [], [])

    def zones_state(self, zones: list[str]) -> dict[str, Any]:
        return dict.fromkeys(zones, self.state)


def test_explain_names_the_plans_when_an_indicator_has_several() -> None:
    from dataclasses import replace

    from parkpulse.explain import explanation_doc

    (five_year,) = [t for t in load_plan_targets() if t.zone == JINAN and t.indicator == "gdp"]
    annual = replace(five_year, plan="annual-2021", base_year=2020, target_year=2021)
    store = _Store(GDP, [five_year, annual])
    with pytest.raises(
        ExplainError, match="gdp has 2 plans in jinan-hitech: 14th-fyp, annual-2021"
    ):
        explanation_doc(CATALOGUE, store, JINAN, "gdp")  # type: ignore[arg-type]
    with pytest.raises(ExplainError, match="no plan '15th-fyp' for gdp"):
        explanation_doc(CATALOGUE, store, JINAN, "gdp", "15th-fyp")  # type: ignore[arg-type]
    doc = explanation_doc(CATALOGUE, store, "济南高新区", "地区生产总值", "annual-2021")  # type: ignore[arg-type]
    assert doc is not None and doc["target"]["plan"] == "annual-2021"
    single = _Store(GDP, [five_year])
    doc = explanation_doc(CATALOGUE, single, JINAN, "gdp")  # type: ignore[arg-type]
    assert doc is not None and doc["row"]["plan"] == "14th-fyp"
