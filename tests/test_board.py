"""The planners' board on a running stack (Tansu + Faust worker + chdb, the demo feed),
rendered in headless Chromium: the overview, a zone page, and ``parkpulse explain``."""

from __future__ import annotations

import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from parkpulse.schemas.catalogue import load_catalogue, load_plan_targets
from parkpulse.vocabulary import STATUS_LABELS
from tests.browser import render
from tests.conftest import RunningStack, start_stack, wait_until

pytestmark = pytest.mark.integration
JINAN = "jinan-hitech"


@pytest.fixture(scope="module")
def board(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """``parkpulse run`` with the demo feed, once every bundled target has its 2023 rows."""
    running = start_stack(tmp_path_factory.mktemp("board"), "--no-scoreboard")
    targets = {(t.zone, t.indicator, t.plan) for t in load_plan_targets()}

    def settled() -> bool:
        rows = running.get_json("/api/status")
        latest = {(r["zone"], r["indicator"], r["plan"]): r["period"] for r in rows}
        return set(latest) == targets and latest[(JINAN, "budget_revenue", "14th-fyp")] == "2023-12"

    try:
        wait_until(settled, timeout=120, every=0.5)
        time.sleep(1.5)
        yield running
    finally:
        assert running.stop() == 0


def test_overview_ranks_zones_and_puts_binding_indicators_first(
    board: RunningStack, tmp_path: Path
) -> None:
    rows = board.get_json("/api/status")
    dom = render(board.api + "/", tmp_path, tmp_path / "overview.png")
    zones = re.findall(r'<tr class="zone" data-zone="([^"]+)"', dom)
    assert sorted(zones) == sorted({r["zone"] for r in rows})
    shares = []
    for zone in zones:
        mine = [r["status"] for r in rows if r["zone"] == zone]
        evaluated = [s for s in mine if s in ("achieved", "on_track", "at_risk", "behind")]
        good = [s for s in evaluated if s in ("achieved", "on_track")]
        shares.append(len(good) / len(evaluated))
    assert shares == sorted(shares, reverse=True)
    headers = re.findall(r'<th class="ind" data-indicator="([^"]+)"', dom)
    binding = {r["indicator"] for r in rows if r["binding"]}
    assert binding and set(headers[: len(binding)]) == binding
    assert set(headers) == {r["indicator"] for r in rows}
    cells = re.findall(r'<td class="cell" data-status="([a-z_]+)"', dom)
    assert len(cells) == len({(r["zone"], r["indicator"]) for r in rows})
    assert "济南高新技术产业开发区" in dom and "正常及以上占比" in dom


def test_zone_page_has_every_indicator_a_chart_and_this_months_figures(
    board: RunningStack, tmp_path: Path
) -> None:
    rows = [r for r in board.get_json("/api/status") if r["zone"] == JINAN]
    dom = render(f"{board.api}/zone/{JINAN}", tmp_path, tmp_path / "zone.png", "1400,4000")
    listed = re.findall(r'<tr data-indicator="([^"]+)" data-plan="([^"]+)"', dom)
    assert sorted(listed) == sorted((r["indicator"], r["plan"]) for r in rows)
    assert dom.count("<figure") == len(rows)
    assert dom.count('class="actual"') >= len(rows) - 2  # qualitative rows have no plan path
    # Units on every chart, gridlines, and a zero baseline on all but growth-rate charts.
    catalogue = load_catalogue()
    assert dom.count('class="unit"') == len(rows)
    assert dom.count('class="baseline"') >= sum(r["kind"] != "growth" for r in rows)
    assert "亿元" in dom and "万人" in dom
    budget = next(r for r in rows if r["indicator"] == "budget_revenue")
    row_html = dom[dom.index('data-indicator="budget_revenue"') :]
    row_html = row_html[: row_html.index("</tr>")]
    assert f"{budget['actual']:,.2f}" in row_html and f"{budget['expected']:,.2f}" in row_html
    assert STATUS_LABELS["zh"][budget["status"]] in row_html
    assert catalogue.indicators["budget_revenue"].name_zh in row_html
    english = render(f"{board.api}/zone/{JINAN}?lang=en", tmp_path)
    assert STATUS_LABELS["en"][budget["status"]] in english and "CNY 100M" in english
    # Every row links to its explanation; a growth target's row shows its gap.
    links = re.findall(r'class="explain" href="([^"]+)"', dom)
    assert len(links) == len(rows)
    growth = next(r for r in rows if r["kind"] == "growth" and r["gap_pp"] is not None)
    row_html = dom[dom.index(f'data-indicator="{growth["indicator"]}"') :]
    assert f'<td class="gap">{growth["gap_pp"]:+.1f}</td>' in row_html[: row_html.index("</tr>")]


def test_the_explanation_page_of_a_growth_target(board: RunningStack, tmp_path: Path) -> None:
    """The zone page's link leads to the row's formulas with its numbers (the issue's 93.7 %)."""
    rows = [r for r in board.get_json("/api/status") if r["zone"] == JINAN]
    growth = next(r for r in rows if r["kind"] == "growth" and r["attainment"] is not None)
    url = f"{board.api}/zone/{JINAN}/explain/{growth['indicator']}?plan={growth['plan']}"
    dom = render(url, tmp_path, tmp_path / "explain.png", "1200,700")
    steps = dict(re.findall(r"<tr data-step=\"([a-z_]+)\">(.*?)</tr>", dom))
    assert set(steps) == {"actual", "expected", "attainment", "gap_pp", "status"}
    assert (
        f"(1 + {growth['actual']:.1f}/100) / (1 + {growth['expected']:.1f}/100)"
        in steps["attainment"]
    )
    assert STATUS_LABELS["zh"][growth["status"]] in steps["status"] and "公式" in dom
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(f"{board.api}/zone/{JINAN}/explain/no_such_thing", timeout=10)
    assert caught.value.code == 400


def test_unknown_zone_is_a_404(board: RunningStack) -> None:
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(f"{board.api}/zone/nowhere", timeout=10)
    assert caught.value.code == 404


def _explain(board: RunningStack, *args: str) -> dict[str, Any]:
    result = board.cli("explain", *args, "--format", "json")
    assert result.returncode == 0, result.stderr
    return orjson.loads(result.stdout)


def test_explain_fills_the_formulas_with_the_rows_numbers(board: RunningStack) -> None:
    history = {
        (r["indicator"], r["period"]): r
        for r in board.get_json(f"/api/status/history?zone={JINAN}")
    }
    doc = _explain(board, JINAN, "budget_revenue", "14th-fyp", "--period", "2023-06")
    row = history[("budget_revenue", "2023-06")]
    steps = {s["name"]: s for s in doc["steps"]}
    assert steps["expected"]["value"] == pytest.approx(row["expected"])
    assert steps["expected"]["formula"] == "A(2023) × s(6)"
    annual = steps["annual_target"]["value"]
    assert steps["expected"]["numbers"].startswith(f"{annual:.1f} × ")
    assert steps["attainment"]["value"] == pytest.approx(row["attainment"])
    assert steps["required_growth_pct"]["value"] == pytest.approx(row["required_growth_pct"])
    assert (steps.get("out_of_reach") or {}).get("value") == row["out_of_reach"]
    table = board.cli("explain", JINAN, "budget_revenue", "--period", "2023-06")
    assert table.returncode == 0 and "序时进度" in table.stdout and "A(2023) × s(6)" in table.stdout
    bad = board.cli("explain", JINAN, "no_such_indicator")
    assert bad.returncode == 1 and bad.stderr.strip().count("\n") == 0
    assert "unknown indicator" in bad.stderr
    missing = board.cli("explain", JINAN, "budget_revenue", "--period", "2030-06")
    assert missing.returncode == 1 and "no status row" in missing.stderr
    # Names as status --zone takes them, for the same row.
    named = _explain(board, "济南高新区", "一般公共预算收入", "14th-fyp", "--period", "2023-06")
    assert named == doc


def test_status_filters_and_sorts(board: RunningStack) -> None:
    result = board.cli(
        "status", "--status", "behind,at_risk", "--sort", "attainment", "--format", "json"
    )
    assert result.returncode == 0, result.stderr
    rows = orjson.loads(result.stdout)
    every = board.get_json("/api/status")
    assert len(rows) == sum(r["status"] in ("behind", "at_risk") for r in every)
    ratios = [r["attainment"] for r in rows if r["attainment"] is not None]
    assert ratios == sorted(ratios)
    binding = orjson.loads(board.cli("status", "--binding", "--format", "json").stdout)
    assert binding and all(r["binding"] for r in binding)
    assert "out_of_reach" in rows[0]
    bad = board.cli("status", "--status", "late")
    assert bad.returncode == 2 and "unknown status" in bad.stderr


def test_the_monthly_brief_asks_the_running_stack(board: RunningStack, tmp_path: Path) -> None:
    """``report --month`` while ``run`` holds the store: through ``/api/status/history``."""
    out = tmp_path / "brief.html"
    result = board.cli("report", "--month", "2023-06", "--zone", JINAN, "--out", str(out))
    assert result.returncode == 0, result.stderr
    page = out.read_text(encoding="utf-8")
    assert re.findall(r'<section class="zone" data-zone="([^"]+)"', page) == [JINAN]
    history = board.get_json(f"/api/status/history?zone={JINAN}")
    evaluated = ("achieved", "on_track", "at_risk", "behind")
    june = {
        (r["indicator"], r["plan"])
        for r in history
        if r["period"] == "2023-06" and r["status"] in evaluated
    }
    listed = set(re.findall(r'<tr data-indicator="([^"]+)" data-plan="([^"]+)"', page))
    assert june and june <= listed
    unknown = board.cli("report", "--month", "2023-06", "--zone", "不存在")
    assert unknown.returncode == 1 and unknown.stderr.strip().count("\n") == 0
    assert "'不存在' is not a known zone" in unknown.stderr
