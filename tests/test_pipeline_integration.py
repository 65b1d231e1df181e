"""The whole pipeline on the embedded stack: real Tansu broker, real Faust worker, real chdb.

Each test uses its own zone so the shared session stack can serve them all.
"""

from __future__ import annotations

import asyncio
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner

from parkpulse.schemas.catalogue import load_catalogue
from parkpulse.schemas.records import Observation, PlanTarget
from parkpulse.schemas.wire import observation_to_wire
from parkpulse.scoreboard import STATUS_JSON_KEYS
from parkpulse.streams.plan import evaluate
from parkpulse.topics import OBSERVATIONS, STATUS
from tests.conftest import RunningStack, wait_until

pytestmark = pytest.mark.integration

HEADER = (
    "STRUCTURE,STRUCTURE_ID,ACTION,ZONE,INDICATOR,TIME_PERIOD,BASIS,OBS_VALUE,UNIT_MEASURE,"
    "YOY_PCT,OBS_STATUS,REVISION,PUBLISHED_AT"
)
TARGET_HEADER = (
    "plan,zone,indicator,kind,base_year,base_value,target_year,target_value,"
    "annual_growth_pct,binding,unit,source"
)


def feed_line(
    zone: str,
    indicator: str,
    period: str,
    value: str,
    *,
    basis: str = "YTD",
    unit: str = "CNY_100M",
    action: str = "I",
    revision: int = 0,
    yoy: str = "",
) -> str:
    return (
        f"dataflow,PARKPULSE:ZONE_MONTHLY(1.0),{action},{zone},{indicator},{period},{basis},"
        f"{value},{unit},{yoy},A,{revision},2022-01-15T09:00:00+08:00"
    )


def write(path: Path, header: str, lines: list[str]) -> Path:
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return path


def status_rows(stack: RunningStack, zone: str) -> list[dict]:
    result = stack.cli("status", "--zone", zone, "--format", "json")
    assert result.returncode == 0, result.stderr
    return orjson.loads(result.stdout)


def series_of(stack: RunningStack, **labels: str) -> list[str]:
    """The metrics endpoint's sample lines carrying all of ``labels``."""
    with urllib.request.urlopen(stack.metrics_url, timeout=10) as resp:
        text = resp.read().decode()
    return [
        line
        for line in text.splitlines()
        if not line.startswith("#") and all(f'{k}="{v}"' in line for k, v in labels.items())
    ]


def observations_in(stack: RunningStack) -> float:
    return stack.metric("parkpulse_events_total", topic=OBSERVATIONS, direction="in")


def test_ready_line_and_run_file_hold_no_secret(stack: RunningStack) -> None:
    assert any("ready" in line for line in stack.lines)
    info = orjson.loads((stack.data_dir / "run.json").read_bytes())
    assert info["broker"] == stack.broker
    assert info["api"] == stack.api
    assert info["metrics"] == stack.metrics_url
    assert "password" not in (stack.data_dir / "run.json").read_text().lower()
    assert stack.get_json("/api/health")["ok"] is True


def test_feed_in_status_rows_out(stack: RunningStack, tmp_path: Path) -> None:
    zone = "xian-hitech"
    targets = write(
        tmp_path / "targets.csv",
        TARGET_HEADER,
        [f"it-plan,{zone},retail_sales,level,2020,100,2025,200,,false,CNY_100M,test"],
    )
    result = stack.cli("targets", str(targets))
    assert result.returncode == 0, result.stderr
    months = {"2020-06": "45", "2020-12": "100", "2021-02": "15", "2021-06": "50"}
    feed = write(
        tmp_path / "feed.csv",
        HEADER,
        [feed_line(zone, "retail_sales", p, v) for p, v in months.items()],
    )
    started = time.monotonic()
    result = stack.cli("produce", str(feed))
    assert result.returncode == 0, result.stderr
    assert "4 published, 0 rejected" in result.stdout

    def june_row() -> dict | None:
        rows = [r for r in status_rows(stack, zone) if r["plan"] == "it-plan"]
        return rows[0] if rows and rows[0]["period"] == "2021-06" else None

    row = wait_until(june_row, timeout=30)
    latency = time.monotonic() - started
    assert list(row) == list(STATUS_JSON_KEYS)
    # The same numbers the pure engine gives for these inputs.
    catalogue = load_catalogue()
    target = PlanTarget(
        "it-plan", zone, "retail_sales", "level", 2020, 100.0, 2025, 200.0, None, False, "CNY_100M"
    )
    observations = [
        Observation(zone, "retail_sales", p, "YTD", float(v), "CNY_100M") for p, v in months.items()
    ]
    expected = next(
        r
        for r in evaluate(zone, catalogue.indicators["retail_sales"], observations, [target])
        if r.period == "2021-06"
    )
    assert row["status"] == expected.status
    assert row["actual"] == pytest.approx(expected.actual)
    assert row["expected"] == pytest.approx(expected.expected)
    assert row["attainment"] == pytest.approx(expected.attainment)
    assert row["annual_target"] == pytest.approx(100 * 2 ** (1 / 5))
    # s(6) from the prior year: 45 / 100.
    assert row["expected"] == pytest.approx(100 * 2 ** (1 / 5) * 0.45)
    print(f"feed → status visible via CLI in {latency:.2f}s")


def test_status_rows_reach_the_status_topic(stack: RunningStack, tmp_path: Path) -> None:
    zone = "wuxi-hitech"
    write(
        tmp_path / "t.csv",
        TARGET_HEADER,
        [f"it-plan,{zone},hitech_enterprises,level,2020,100,2025,200,,true,COUNT,test"],
    )
    assert stack.cli("targets", str(tmp_path / "t.csv")).returncode == 0
    feed = write(
        tmp_path / "f.csv",
        HEADER,
        [feed_line(zone, "hitech_enterprises", "2021-06", "90", basis="LEVEL", unit="COUNT")],
    )
    assert stack.cli("produce", str(feed)).returncode == 0

    async def read_status() -> list[dict]:
        consumer = AIOKafkaConsumer(
            STATUS,
            bootstrap_servers=f"127.0.0.1:{stack.broker_port}",
            auto_offset_reset="earliest",
            group_id=None,
        )
        await consumer.start()
        found: list[dict] = []
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not found:
                batches = await consumer.getmany(timeout_ms=500)
                for messages in batches.values():
                    for m in messages:
                        doc = orjson.loads(m.value)
                        # keyed like Kafka's default partitioner: a key's rows stay in order
                        every = sorted(consumer.partitions_for_topic(STATUS) or ())
                        assert m.partition == DefaultPartitioner()(m.key, every, every)
                        key = f"{zone}|hitech_enterprises|it-plan".encode()
                        # The target alone first gives a no_data row; wait for the figure's.
                        if m.key == key and doc["period"] == "2021-06":
                            found.append(doc)
        finally:
            await consumer.stop()
        return found

    found = asyncio.run(read_status())
    assert found and found[0]["status"] == "behind"
    assert found[0]["binding"] is True


def test_replay_changes_nothing(stack: RunningStack, tmp_path: Path) -> None:
    zone = "yantai-hitech"
    write(
        tmp_path / "t.csv",
        TARGET_HEADER,
        [f"it-plan,{zone},import_export_total,level,2020,50,2025,100,,false,CNY_100M,test"],
    )
    assert stack.cli("targets", str(tmp_path / "t.csv")).returncode == 0
    lines = [
        feed_line(zone, "import_export_total", f"2020-{m:02d}", str(4 * m)) for m in range(2, 13)
    ]
    lines += [
        feed_line(zone, "import_export_total", f"2021-{m:02d}", str(5 * m)) for m in range(2, 8)
    ]
    feed = write(tmp_path / "feed.csv", HEADER, lines)
    assert stack.cli("produce", str(feed)).returncode == 0
    rows = wait_until(
        lambda: len(status_rows_all(stack, zone)) == 6 and status_rows_all(stack, zone)
    )
    counted = observations_in(stack)
    assert stack.cli("produce", str(feed)).returncode == 0
    wait_until(lambda: observations_in(stack) >= counted + len(lines))
    time.sleep(1.0)  # one more batch window: a replay must not have changed anything
    assert status_rows_all(stack, zone) == rows
    obs = stack.get_json(f"/api/status?zone={zone}")
    assert len(obs) == 1


def status_rows_all(stack: RunningStack, zone: str) -> list[dict]:
    """Every month's status row for a zone, read straight from ClickHouse via the API."""
    from urllib.request import urlopen

    with urlopen(f"{stack.api}/api/status/history?zone={zone}", timeout=30) as resp:
        return orjson.loads(resp.read())


def test_revision_and_delete(stack: RunningStack, tmp_path: Path) -> None:
    zone = "shizuishan-hitech"
    write(
        tmp_path / "t.csv",
        TARGET_HEADER,
        [f"it-plan,{zone},hitech_enterprises,level,2020,100,2025,200,,false,COUNT,test"],
    )
    assert stack.cli("targets", str(tmp_path / "t.csv")).returncode == 0
    first = write(
        tmp_path / "f1.csv",
        HEADER,
        [
            feed_line(zone, "hitech_enterprises", "2021-03", "90", basis="LEVEL", unit="COUNT"),
            feed_line(zone, "hitech_enterprises", "2021-04", "95", basis="LEVEL", unit="COUNT"),
        ],
    )
    assert stack.cli("produce", str(first)).returncode == 0
    wait_until(lambda: any(r["period"] == "2021-04" for r in status_rows(stack, zone)))
    fixes = write(
        tmp_path / "f2.csv",
        HEADER,
        [
            feed_line(
                zone,
                "hitech_enterprises",
                "2021-03",
                "200",
                basis="LEVEL",
                unit="COUNT",
                action="R",
                revision=1,
            ),
            feed_line(
                zone,
                "hitech_enterprises",
                "2021-04",
                "",
                basis="LEVEL",
                unit="COUNT",
                action="D",
                revision=1,
            ),
        ],
    )
    assert stack.cli("produce", str(fixes)).returncode == 0
    row = wait_until(
        lambda: [
            r for r in status_rows(stack, zone) if r["period"] == "2021-03" and r["actual"] == 200
        ]
    )[0]
    assert row["status"] == "achieved" or row["attainment"] > 1
    # An older revision arriving late changes nothing.
    stale = write(
        tmp_path / "f3.csv",
        HEADER,
        [feed_line(zone, "hitech_enterprises", "2021-03", "90", basis="LEVEL", unit="COUNT")],
    )
    counted = observations_in(stack)
    assert stack.cli("produce", str(stale)).returncode == 0
    wait_until(lambda: observations_in(stack) >= counted + 1)
    time.sleep(0.5)
    rows = status_rows(stack, zone)
    assert [r["actual"] for r in rows] == [200]
    # The gauges went back to 2021-03 with the deleted month, and go with a withdrawn target.
    key = {"zone": zone, "indicator": "hitech_enterprises", "plan": "it-plan"}
    shown = stack.metric("parkpulse_indicator_last_period_timestamp_seconds", **key)
    assert shown == datetime(2021, 2, 28, 16, tzinfo=UTC).timestamp()  # 2021-03-01 Beijing
    assert stack.metric("parkpulse_indicator_attainment_ratio", **key) == rows[0]["attainment"]
    assert series_of(stack, **key)
    withdraw = write(
        tmp_path / "t2.csv",
        "plan,zone,indicator,action,revision",
        [f"it-plan,{zone},hitech_enterprises,D,1"],
    )
    assert stack.cli("targets", str(withdraw)).returncode == 0
    wait_until(lambda: status_rows(stack, zone) == [])
    wait_until(lambda: not series_of(stack, **key))


def test_bad_rows_reach_the_deadletter_table(stack: RunningStack, tmp_path: Path) -> None:
    zone = "nanning-hitech"
    feed = write(
        tmp_path / "bad.csv",
        HEADER,
        [
            feed_line(zone, "new_market_entities", "2021-06", "4165", unit="COUNT"),
            feed_line("atlantis-hitech", "new_market_entities", "2021-06", "1", unit="COUNT"),
            feed_line(zone, "not_an_indicator", "2021-06", "1", unit="COUNT"),
            feed_line(zone, "retail_sales", "2021-06", "12", unit="USD_100M"),
            feed_line(zone, "retail_sales", "2021-13", "12"),
            feed_line(zone, "retail_sales", "2099-01", "12"),
            feed_line(zone, "retail_sales", "2021-06", "NaN"),
            "this,is,not,a,feed,row",
        ],
    )
    result = stack.cli("produce", str(feed))
    assert result.returncode == 2
    assert "1 published, 7 rejected" in result.stdout
    for code in (
        "unknown_zone",
        "unknown_indicator",
        "unit_mismatch",
        "bad_period",
        "future_period",
        "bad_value",
        "malformed",
    ):
        assert code in result.stderr
    assert "bad.csv:3" in result.stderr  # line numbers point at the physical line

    # A message that bypasses the producer is rejected by the worker, which keeps running.
    stray = orjson.dumps(
        observation_to_wire(
            Observation(zone, "retail_sales", "2021-05", "YTD", 12.0, "CNY_100M", source="bureau")
        )
    )

    async def send_garbage() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=f"127.0.0.1:{stack.broker_port}")
        await producer.start()
        await producer.send_and_wait(OBSERVATIONS, b"{not json", key=b"x")
        await producer.send_and_wait(OBSERVATIONS, orjson.dumps({"zone": zone}), key=zone.encode())
        await producer.send_and_wait(OBSERVATIONS, stray, key=b"wuxi-hitech")  # not its zone
        await producer.stop()

    asyncio.run(send_garbage())

    def dead() -> list[dict]:
        rows = orjson.loads(stack.cli("deadletter", "--format", "json").stdout)["rows"]
        sent = ("{not json", '{"zone":"nanning-hitech"}', stray.decode())
        mine = [r for r in rows if r["origin"] == "bad.csv" or r["raw"] in sent]
        return mine if len(mine) >= 10 else []

    rows = wait_until(dead, timeout=30)
    by_line = {r["line"]: r["reason"] for r in rows if r["origin"] == "bad.csv"}
    assert by_line == {
        3: "unknown_zone",
        4: "unknown_indicator",
        5: "unit_mismatch",
        6: "bad_period",
        7: "future_period",
        8: "bad_value",
        9: "malformed",
    }
    worker_rejects = [r for r in rows if r["origin"] != "bad.csv"]
    assert {r["reason"] for r in worker_rejects} == {"malformed"}
    (keyed_wrong,) = [r for r in worker_rejects if r["raw"] == stray.decode()]
    assert "message key must be its zone" in keyed_wrong["detail"]
    assert stack.proc.poll() is None
    assert stack.metric("parkpulse_deadletters_total", reason="malformed") >= 3
    assert datetime.now(UTC)  # the worker is still answering:
    assert stack.get_json("/api/health")["ok"]
