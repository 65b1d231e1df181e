"""`make run`: the embedded stack with the demo feed, from outside and against the engine."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import pytest

from parkpulse.producers.feed import read_feed
from parkpulse.schemas.catalogue import load_catalogue, load_plan_targets
from parkpulse.schemas.records import Observation
from parkpulse.streams.plan import evaluate, scorecard
from parkpulse.vocabulary import text
from tests.browser import render
from tests.conftest import DemoRun

pytestmark = pytest.mark.integration

NUMBERS = ("actual", "expected", "annual_target", "attainment", "gap_pp", "required_growth_pct")


def test_run_prints_ready_publishes_and_stops_cleanly(demo_run: DemoRun) -> None:
    out = "".join(demo_run.lines)
    assert demo_run.exit_code == 0
    assert sum("ready" in line for line in demo_run.lines) == 1
    assert "published plan_targets.csv: 33 accepted, 0 rejected" in out
    assert "published demo-feed.csv: 1243 accepted, 3 rejected" in out
    assert text("scoreboard", "zh") in out and "济南高新技术产业开发区" in out  # the scoreboard
    assert not (demo_run.data_dir / "run.json").exists()  # removed on a clean stop


def test_every_status_row_equals_the_engine_on_the_demo_feed(demo_run: DemoRun) -> None:
    """Feed → Kafka → Faust → ClickHouse gives exactly what the pure engine gives the feed."""
    catalogue = load_catalogue()
    feed = demo_run.data_dir / "demo" / "demo-feed.csv"
    now = datetime(2026, 11, 21, tzinfo=UTC)
    by_indicator: dict[tuple[str, str], list[Observation]] = defaultdict(list)
    for row in read_feed(feed, catalogue, now=now):
        if row.error is None:
            assert isinstance(row.record, Observation)
            by_indicator[(row.record.zone, row.record.indicator)].append(row.record)
    targets = load_plan_targets()
    expected = {}
    for zone, indicator in {(t.zone, t.indicator) for t in targets}:
        for r in evaluate(
            zone, catalogue.indicators[indicator], by_indicator[(zone, indicator)], targets
        ):
            expected[(r.zone, r.indicator, r.plan, r.period)] = r
    stored = {(r["zone"], r["indicator"], r["plan"], r["period"]): r for r in demo_run.history}
    assert set(stored) == set(expected)
    for key, want in expected.items():
        got = stored[key]
        assert got["status"] == want.status, key
        for name in NUMBERS:
            value = getattr(want, name)
            if value is None:
                assert got[name] is None, (key, name)
            else:
                assert got[name] == pytest.approx(value, rel=1e-9), (key, name)
    # The scorecards in ClickHouse are the engine's roll-up of those rows.
    for card in demo_run.scorecards:
        rows = [r for k, r in expected.items() if k[0] == card["zone"]]
        want = scorecard(card["zone"], rows)
        assert {s: card[s] for s in want.counts} == want.counts
        assert card["worst_binding_indicator"] == want.worst_binding_indicator
        assert card["median_attainment"] == pytest.approx(want.median_attainment)


def test_report_renders_in_a_headless_browser(demo_run: DemoRun, tmp_path: Path) -> None:
    report = demo_run.data_dir / "report.html"
    text = report.read_text(encoding="utf-8")
    assert "济南高新技术产业开发区" in text
    shot = tmp_path / "report.png"
    dom = render(report.as_uri(), tmp_path, shot)
    # Every (zone, indicator, plan) with a row has a chart and a table row in the rendered DOM.
    targets = {(t.zone, t.indicator, t.plan) for t in load_plan_targets()}
    assert dom.count("<figure>") == len(targets)
    assert dom.count('class="status"') == len(targets)
    assert dom.count("<polyline") >= 2 * 25  # actual and plan path lines
