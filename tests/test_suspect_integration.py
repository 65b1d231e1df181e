"""Implausible figures on the real parts: the session ``stack`` (Tansu + Faust worker + chdb),
and a ClickHouse server stand-in (``chdb_http_shim``) holding a table made before the
``suspect`` column existed.

Only zone ``xiamen-torch-hitech`` in 2016, plan ``sus-plan``, is used here: the stack is shared
(and other tests list that zone's status rows of their own plan only).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from parkpulse.broker import free_port
from parkpulse.config import parse_clickhouse_url
from parkpulse.schemas.records import IndicatorStatus, SuspectFigure
from parkpulse.scoreboard import STATUS_JSON_KEYS
from parkpulse.sinks.batch import SinkBatch
from parkpulse.sinks.clickhouse import ClickHouseStore
from parkpulse.vocabulary import DEFAULT_LANG, suspect_label, text
from tests.chdb_http_shim import ClickHouseShim
from tests.conftest import RunningStack, wait_until

pytestmark = pytest.mark.integration

ZONE = "xiamen-torch-hitech"
HEADER = (
    "STRUCTURE,STRUCTURE_ID,ACTION,ZONE,INDICATOR,TIME_PERIOD,BASIS,OBS_VALUE,UNIT_MEASURE,"
    "YOY_PCT,OBS_STATUS,REVISION,PUBLISHED_AT"
)


def feed(path: Path, rows: list[tuple[str, str, float, int]]) -> Path:
    """(indicator, period, YTD value, revision) → an SDMX-shaped feed file."""
    lines = [HEADER] + [
        f"dataflow,PARKPULSE:ZONE_MONTHLY(1.0),{'R' if rev else 'I'},{ZONE},{ind},{period},YTD,"
        f"{value},CNY_100M,,A,{rev},2016-12-15T09:00:00+08:00"
        for ind, period, value, rev in rows
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def history(stack: RunningStack, indicator: str) -> dict[str, dict[str, Any]]:
    rows = stack.get_json(f"/api/status/history?zone={ZONE}")
    return {r["period"]: r for r in rows if r["indicator"] == indicator and r["plan"] == "sus-plan"}


def suspects(stack: RunningStack) -> list[dict[str, Any]]:
    done = stack.cli("suspect", "--zone", ZONE, "--format", "json")
    assert done.returncode == 0, done.stderr
    return orjson.loads(done.stdout)


def test_implausible_figures_are_accepted_marked_listed_and_counted(
    stack: RunningStack, tmp_path: Path
) -> None:
    targets = tmp_path / "targets.csv"
    targets.write_text(
        "plan,zone,indicator,kind,base_year,base_value,target_year,target_value,"
        "annual_growth_pct,binding,unit,source\n"
        f"sus-plan,{ZONE},retail_sales,level,2015,300,2020,500,,false,CNY_100M,test\n",
        encoding="utf-8",
    )
    assert stack.cli("targets", str(targets)).returncode == 0
    jumps = stack.metric("parkpulse_suspect_figures_total", reason="jump")
    falls = stack.metric("parkpulse_suspect_figures_total", reason="ytd_fell")
    figures = [
        ("retail_sales", "2016-02", 20.0, 0),
        ("retail_sales", "2016-03", 35.2, 0),
        ("retail_sales", "2016-04", 1234.5, 0),  # the figure: 35× in a month
        ("tech_contract_turnover", "2016-05", 8.0, 0),
        ("tech_contract_turnover", "2016-06", 6.5, 0),  # a YTD that fell: no target covers it
    ]
    done = stack.cli("produce", str(feed(tmp_path / "feed.csv", figures)))
    assert done.returncode == 0, done.stderr  # accepted: the bureau stays the authority

    def marked() -> dict[str, dict[str, Any]] | None:
        rows = history(stack, "retail_sales")
        return rows if rows.get("2016-04", {}).get("suspect") == "jump" else None

    rows = wait_until(marked, timeout=60)
    assert rows["2016-04"]["status"] == "achieved"  # evaluated all the same …
    assert rows["2016-03"]["suspect"] is None  # … and only its month is marked
    listed = wait_until(lambda: suspects(stack) if len(suspects(stack)) == 2 else None)
    assert [
        (r["indicator"], r["period"], r["value"], r["previous"], r["previous_period"], r["reason"])
        for r in listed
    ] == [
        ("retail_sales", "2016-04", 1234.5, 35.2, "2016-03", "jump"),
        ("tech_contract_turnover", "2016-06", 6.5, 8.0, "2016-05", "ytd_fell"),
    ]
    assert stack.metric("parkpulse_suspect_figures_total", reason="jump") == jumps + 1
    assert stack.metric("parkpulse_suspect_figures_total", reason="ytd_fell") == falls + 1

    # `status`: the documented JSON keys, suspect among them; the table marks the row.
    done = stack.cli("status", "--zone", ZONE, "--plan", "sus-plan", "--format", "json")
    (row,) = orjson.loads(done.stdout)
    assert list(row) == list(STATUS_JSON_KEYS) and "suspect" in row
    assert (row["period"], row["suspect"]) == ("2016-04", "jump")
    table = stack.cli("status", "--zone", ZONE, "--plan", "sus-plan").stdout
    assert f"{text('suspect_mark', DEFAULT_LANG)}: {suspect_label('jump', DEFAULT_LANG)}" in table
    assert suspect_label("ytd_fell", DEFAULT_LANG) in stack.cli("suspect", "--zone", ZONE).stdout

    # Replaying the same feed counts nothing again.
    assert stack.cli("produce", str(tmp_path / "feed.csv")).returncode == 0
    # The bureau revises the figure: the marks go.
    revised = [("retail_sales", "2016-04", 123.4, 1), ("tech_contract_turnover", "2016-06", 9.1, 1)]
    assert stack.cli("produce", str(feed(tmp_path / "revised.csv", revised))).returncode == 0
    wait_until(lambda: suspects(stack) == [], timeout=60)
    assert history(stack, "retail_sales")["2016-04"]["suspect"] is None
    assert stack.metric("parkpulse_suspect_figures_total", reason="jump") == jumps + 1


# indicator_status as it was created before the suspect column (an existing DATA_DIR / server).
OLD_STATUS_TABLE = """
CREATE TABLE parkpulse.indicator_status
(
    zone LowCardinality(String), indicator LowCardinality(String), plan LowCardinality(String),
    period String, kind LowCardinality(String), status LowCardinality(String),
    actual Nullable(Float64), expected Nullable(Float64), annual_target Nullable(Float64),
    attainment Nullable(Float64), gap_pp Nullable(Float64), projected_year_end Nullable(Float64),
    required_growth_pct Nullable(Float64), seasonal_source Nullable(String), binding UInt8,
    evaluated_at DateTime64(3, 'UTC'), version UInt64, is_deleted UInt8
)
ENGINE = ReplacingMergeTree(version, is_deleted)
ORDER BY (zone, indicator, plan, period)
"""


def test_a_store_made_before_suspect_gains_it_and_keeps_its_rows(tmp_path: Path) -> None:
    shim = ClickHouseShim(free_port(), tmp_path / "server").start()
    try:
        shim.query("CREATE DATABASE parkpulse")
        shim.query(OLD_STATUS_TABLE)
        shim.query(
            "INSERT INTO parkpulse.indicator_status VALUES ('jinan-hitech', 'gdp', 'p', '2021-03',"
            " 'growth', 'on_track', 12.1, 10.0, NULL, 1.019, 2.1, NULL, NULL, NULL, 0,"
            " '2021-04-16 02:00:00', 1, 0)"
        )
        store = ClickHouseStore.open(parse_clickhouse_url(shim.url()))
        try:
            (old,) = store.run(store.latest_status, "jinan-hitech")
            assert (old["status"], old["suspect"]) == ("on_track", None)
            row = IndicatorStatus(
                "jinan-hitech", "retail_sales", "p", "2021-04", "level", "achieved", suspect="jump"
            )
            figure = SuspectFigure(
                "jinan-hitech", "retail_sales", "2021-04", "jump", 1234.5, 35.2, "2021-03"
            )
            store.run(store.write, SinkBatch(statuses=[row], suspects=[figure]))
            state = store.run(store.zones_state, ["jinan-hitech"])["jinan-hitech"]
            assert row in state[2] and state[3] == [figure]
            assert store.run(store.suspect_figures, None)[0]["reason"] == "jump"
        finally:
            store.close()
        # Opening it again (every start applies the schema) is harmless.
        again = ClickHouseStore.open(parse_clickhouse_url(shim.url()))
        try:
            assert len(again.run(again.latest_status, "jinan-hitech")) == 2
        finally:
            again.close()
    finally:
        shim.stop()
