"""The monthly brief's content (parkpulse/brief.py) and its page (parkpulse/brief_page.py):
worked examples of every kind of move, and properties over any status history."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parkpulse.brief import (
    MOVEMENTS,
    RANK,
    BriefError,
    build_brief,
    movement_of,
    parse_month,
)
from parkpulse.brief_page import render_brief
from parkpulse.schemas.catalogue import load_catalogue
from parkpulse.schemas.records import STATUSES

JINAN = "jinan-hitech"


def row(
    indicator: str,
    period: str,
    status: str,
    attainment: float | None = None,
    *,
    zone: str = JINAN,
    plan: str = "14th-fyp",
    kind: str = "level",
    **extra: Any,
) -> dict[str, Any]:
    return {
        "zone": zone,
        "indicator": indicator,
        "plan": plan,
        "period": period,
        "kind": kind,
        "status": status,
        "attainment": attainment,
        "binding": False,
        **extra,
    }


HISTORY = [
    row("budget_revenue", "2023-05", "on_track", 1.02, actual=250.0, expected=245.1),
    row(
        "budget_revenue",
        "2023-06",
        "behind",
        0.90,
        actual=270.0,
        expected=300.0,
        required_growth_pct=24.5,
        best_rest_growth_pct=12.0,
        out_of_reach=True,
        binding=True,
    ),
    row("gdp", "2023-05", "behind", 0.97, kind="growth", gap_pp=-3.0),
    row("gdp", "2023-06", "on_track", 1.004, kind="growth", gap_pp=0.5, actual=10.5, expected=10.0),
    row("import_export_total", "2023-05", "at_risk", 0.96),
    row("import_export_total", "2023-06", "behind", 0.93),
    row("fixed_asset_investment", "2023-05", "behind", 0.80),
    row("fixed_asset_investment", "2023-06", "at_risk", 0.96),
    row("industrial_output", "2023-05", "behind", 0.85),
    row("industrial_output", "2023-06", "behind", 0.84),
    row("forest_coverage", "2022-12", "behind", 0.90),  # yearly: no figure since
    row("innovation_policy", "2023-06", "not_evaluated", plan="annual-2023"),
    row("new_enterprises", "2023-06", "at_risk", 0.95),  # first row this month
    row("patents", "2023-07", "behind", 0.5),  # after the month: not in the brief
    row("budget_revenue", "2023-06", "behind", 0.5, zone="xian-hitech"),
]


def moves(brief_zone: Any) -> dict[str, str]:
    return {c.indicator: c.movement for c in brief_zone.changes}


def test_each_kind_of_move_in_june() -> None:
    brief = build_brief(HISTORY, "2023-06", JINAN)
    assert (brief.month, brief.previous_month) == ("2023-06", "2023-05")
    (zone,) = brief.zones
    assert moves(zone) == {
        "budget_revenue": "fell_behind",
        "gdp": "recovered",
        "import_export_total": "fell_behind",
        "fixed_asset_investment": "improved",
        "industrial_output": "still_lagging",
        "forest_coverage": "still_lagging",
        "new_enterprises": "fell_behind",
    }
    assert zone.counts == {"behind": 4, "on_track": 1, "at_risk": 2, "not_evaluated": 1}
    budget = zone.changes[0]  # binding first
    assert budget.indicator == "budget_revenue" and budget.previous_status == "on_track"
    assert budget.attainment_change_pp == pytest.approx(-12.0)
    assert budget.required_growth_pct == 24.5 and budget.out_of_reach is True
    gdp = next(c for c in zone.changes if c.indicator == "gdp")
    assert gdp.gap_change_pp == pytest.approx(3.5)
    forest = next(c for c in zone.changes if c.indicator == "forest_coverage")
    assert forest.period == "2022-12" and forest.attainment_change_pp == 0
    new = next(c for c in zone.changes if c.indicator == "new_enterprises")
    assert new.previous_status is None and new.attainment_change_pp is None
    assert [c.indicator for c in zone.out_of_reach] == ["budget_revenue"]
    assert zone.share_on_track == pytest.approx(1 / 7)


def test_january_compares_with_december_of_the_year_before() -> None:
    rows = [row("gdp", "2022-12", "on_track", 1.0), row("gdp", "2023-01", "behind", 0.9)]
    brief = build_brief(rows, "2023-01")
    assert brief.previous_month == "2022-12"
    assert moves(brief.zones[0]) == {"gdp": "fell_behind"}


def test_a_month_before_any_row_has_no_zones() -> None:
    assert build_brief(HISTORY, "2020-01").zones == ()


@pytest.mark.parametrize("text", ["2023-13", "2023-6", "June", "2023-06-01", ""])
def test_a_bad_month_is_one_clear_error(text: str) -> None:
    with pytest.raises(BriefError, match="YYYY-MM"):
        parse_month(text)


def test_the_page_says_it_in_chinese() -> None:
    catalogue = load_catalogue()
    page = render_brief(build_brief(HISTORY, "2023-06"), catalogue, "zh")
    jinan = page[page.index(f'data-zone="{JINAN}"') : page.index('data-zone="xian-hitech"')]
    assert "济南高新技术产业开发区" in jinan
    fell = jinan[jinan.index('<ul class="changes" data-list="fell_behind">') :]
    fell = fell[: fell.index("</ul>")]
    budget = fell[fell.index('data-indicator="budget_revenue"') :]
    budget = budget[: budget.index("</li>")]
    assert "一般公共预算收入" in budget and "由正常转为落后" in budget
    assert "完成度 90.0%（-12.0个百分点）" in budget and "剩余月份需增长 +24.5%" in budget
    assert "实际 270.00，序时进度 300.00 亿元" in budget
    recovered = jinan[jinan.index('<ul class="changes" data-list="recovered">') :]
    # A growth target in its own terms: the growth against the target, the gap in pp (a gap
    # above the target is not read as one short of it).
    assert (
        "增速 10.5%，目标 10.0%，差距 +0.5 个百分点（+3.5）"
        in recovered[: recovered.index("</ul>")]
    )
    reach = jinan[jinan.index('<ul class="changes" data-list="out_of_reach">') :]
    assert "需增长 +24.5%，历年剩余月份最高仅 +12.0%" in reach[: reach.index("</ul>")]
    assert "新落后或预警 3 项" in jinan and "恢复正常 1 项" in jinan
    assert jinan.count("<tr data-indicator=") == 7
    english = render_brief(build_brief(HISTORY, "2023-06"), catalogue, "en")
    assert "on track → behind" in english and "monthly brief 2023-06" in english
    assert "growth 10.5% against 10.0%, gap +0.5 pp (+3.5)" in english


# -- properties ---------------------------------------------------------------------------

MONTHS = [f"{y}-{m:02d}" for y in (2022, 2023) for m in range(1, 13)]
keys = st.tuples(st.sampled_from(["a", "b"]), st.sampled_from(["x", "y", "z"]))
histories = st.lists(
    st.builds(
        lambda key, period, status, att: row(key[1], period, status, att, zone=key[0]),
        keys,
        st.sampled_from(MONTHS),
        st.sampled_from(STATUSES),
        st.one_of(st.none(), st.floats(0.5, 1.5)),
    ),
    max_size=40,
).map(lambda rows: list({(r["zone"], r["indicator"], r["period"]): r for r in rows}.values()))


@settings(max_examples=200, deadline=None)
@given(histories, st.sampled_from(MONTHS), st.randoms())
def test_every_key_on_record_is_counted_once_and_order_does_not_matter(
    rows: list[dict[str, Any]], month: str, rnd: random.Random
) -> None:
    brief = build_brief(rows, month)
    on_record = {(r["zone"], r["indicator"]) for r in rows if r["period"] <= month}
    assert sum(sum(z.counts.values()) for z in brief.zones) == len(on_record)
    classed = [(z.zone, c.indicator) for z in brief.zones for c in z.changes]
    assert len(classed) == len(set(classed))
    assert all(c.status in RANK and c.movement in MOVEMENTS for z in brief.zones for c in z.changes)
    shuffled = list(rows)
    rnd.shuffle(shuffled)
    assert build_brief(shuffled, month) == brief
    for zone in brief.zones:
        assert build_brief(rows, month, zone.zone).zones == (zone,)


@settings(max_examples=200, deadline=None)
@given(histories, st.sampled_from(MONTHS[1:]))
def test_changes_are_this_month_minus_last(rows: list[dict[str, Any]], month: str) -> None:
    brief = build_brief(rows, month)
    for zone in brief.zones:
        for change in zone.changes:
            mine = sorted(
                (r for r in rows if (r["zone"], r["indicator"]) == (zone.zone, change.indicator)),
                key=lambda r: r["period"],
            )
            now = [r for r in mine if r["period"] <= month][-1]
            before = [r for r in mine if r["period"] <= brief.previous_month]
            assert change.period == now["period"]
            if before and before[-1]["attainment"] is not None and now["attainment"] is not None:
                want = (now["attainment"] - before[-1]["attainment"]) * 100
                assert change.attainment_change_pp == pytest.approx(want)
            else:
                assert change.attainment_change_pp is None


EVALUATED = st.sampled_from(list(RANK))


@given(EVALUATED, EVALUATED)
def test_a_fall_read_backwards_is_a_recovery_or_an_improvement(before: str, now: str) -> None:
    forward, backward = movement_of(now, before), movement_of(before, now)
    assert (forward == "fell_behind") == (backward in ("recovered", "improved"))
    if before == now:
        assert forward in ("still_lagging", "steady")


@given(st.sampled_from(["no_data", "not_evaluated"]), st.one_of(st.none(), EVALUATED))
def test_what_is_not_evaluated_is_never_classed(now: str, before: str | None) -> None:
    assert movement_of(now, before) is None
