"""Hostile input through the real pipeline: the worker never crashes, every input is accounted.

A worker against a separate Tansu, writing to a ClickHouse server (``chdb_http_shim``) the test
queries directly while it runs. Three kinds of input:

- hostile feed files through ``parkpulse produce`` (malformed CSV, GBK, huge fields, NaN/inf,
  negative counts, future periods, unknown zones, SQL-looking strings, JSON Lines with nested
  junk): every line is either a figure in ClickHouse or a dead letter with its line and reason;
- hypothesis-generated messages sent straight to the topics, bypassing the producer's checks:
  each is a figure / target in ClickHouse or a dead letter with the reason validation gives;
- raw garbage bytes on every topic the worker consumes: each becomes a ``malformed`` dead letter.

accepted + rejected = input, for every file, example and topic, and the worker is still up.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from parkpulse.broker import TansuBroker, free_port
from parkpulse.producers.feed import read_feed
from parkpulse.schemas.catalogue import load_catalogue
from parkpulse.schemas.deadletter import RAW_LIMIT
from parkpulse.schemas.errors import REASONS, RejectedInput
from parkpulse.schemas.targets import validate_target
from parkpulse.schemas.validation import validate_observation
from parkpulse.topics import DEADLETTER, OBSERVATIONS, REGISTRATIONS, TARGETS, TARGETS_BY_ZONE
from tests.chdb_http_shim import ClickHouseShim
from tests.conftest import PARKPULSE, RunningStack, wait_until
from tests.fault_support import HEADER, clean_env, start_worker, tail

pytestmark = pytest.mark.integration

CATALOGUE = load_catalogue()


@dataclass
class Hostile:
    worker: RunningStack
    shim: ClickHouseShim
    broker: TansuBroker
    root: Path


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hostile]:
    root = tmp_path_factory.mktemp("hostile")
    shim = ClickHouseShim(free_port(), root / "server-data", root / "shim.log").start()
    broker = TansuBroker(free_port(), root / "tansu.log").start()
    env = clean_env(PARKPULSE_CLICKHOUSE_URL=shim.url())
    worker = start_worker(root / "worker", broker.url, env=env)
    try:
        yield Hostile(worker, shim, broker, root)
        # Whatever came in, the worker is still there, and no agent ever crashed.
        assert worker.proc.poll() is None
        log = (root / "worker" / "stderr.log").read_text(errors="replace")
        assert "agent_crashed" not in log and "Crashed reason" not in log, tail(
            root / "worker" / "stderr.log"
        )
        assert worker.stop() == 0
    finally:
        worker.stop()
        broker.stop()
        shim.stop()


def sql_str(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def deadletters(h: Hostile, where: str) -> list[dict[str, Any]]:
    return h.shim.rows(
        "SELECT source_topic, reason, detail, raw, origin, line FROM parkpulse.deadletter FINAL"
        f" WHERE {where}"
    )


def observation_keys(h: Hostile, zones: set[str]) -> set[tuple[str, ...]]:
    if not zones:
        return set()
    listed = ", ".join(sql_str(z) for z in sorted(zones))
    rows = h.shim.rows(
        "SELECT DISTINCT zone, indicator, basis, period, source FROM parkpulse.observations"
        f" WHERE zone IN ({listed})"
    )
    return {(r["zone"], r["indicator"], r["basis"], r["period"], r["source"]) for r in rows}


def target_keys(h: Hostile, plans: set[str]) -> set[tuple[str, ...]]:
    if not plans:
        return set()
    listed = ", ".join(sql_str(p) for p in sorted(plans))
    rows = h.shim.rows(
        "SELECT DISTINCT plan, zone, indicator FROM parkpulse.plan_targets"
        f" WHERE plan IN ({listed})"
    )
    return {(r["plan"], r["zone"], r["indicator"]) for r in rows}


# -- hostile files through the CLI --------------------------------------------------------


def line(
    zone: str = "xian-hitech",
    indicator: str = "retail_sales",
    period: str = "2021-03",
    value: str = "12.5",
    unit: str = "CNY_100M",
    basis: str = "YTD",
) -> str:
    return (
        f"dataflow,PARKPULSE:ZONE_MONTHLY(1.0),I,{zone},{indicator},{period},{basis},{value},"
        f"{unit},,A,0,2021-04-15T09:00:00+08:00"
    )


def hostile_files(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, bytes] = {}
    files["malformed.csv"] = "\n".join(
        [
            HEADER,
            line(period="2020-01"),
            'dataflow,"unterminated,I,xian-hitech,retail_sales,2020-02,YTD,1,CNY_100M,,A,0,x',
            "only,three,fields",
            line(period="2020-03") + ",extra,columns",
            "",
            "\x00\x01\x02 binary junk \x7f",
            line(period="2020-04"),
        ]
    ).encode()
    gbk_rows = [
        HEADER,
        line(zone="nanning-hitech", period="2020-05", unit="亿元"),
        line(zone="nanning-hitech", period="2020-06", unit="万元", value="125000"),
        line(zone="南宁高新区", period="2020-07"),
    ]
    files["gbk.csv"] = "\n".join(gbk_rows).encode("gbk") + b"\n\xff\xfe\xfa broken bytes\n"
    files["huge.csv"] = "\n".join(
        [
            HEADER,
            line(period="2020-08", value="9" * 200),
            line(period="2020-09", value="1" + "0" * 400),
            line(zone="x" * 200_000, period="2020-10"),
            line(period="2020-11", value="1e308"),
            line(period="2020-12"),
        ]
    ).encode()
    files["numbers.csv"] = "\n".join(
        [
            HEADER,
            line(zone="wuxi-hitech", period="2021-01", value="NaN"),
            line(zone="wuxi-hitech", period="2021-02", value="inf"),
            line(zone="wuxi-hitech", period="2021-03", value="-inf"),
            line(zone="wuxi-hitech", period="2021-04", value="-5"),
            line(
                zone="wuxi-hitech",
                indicator="new_enterprises",
                period="2021-05",
                value="-3",
                unit="COUNT",
            ),
            line(
                zone="wuxi-hitech",
                indicator="new_enterprises",
                period="2021-06",
                value="41.5",
                unit="COUNT",
            ),
            line(zone="wuxi-hitech", period="2021-07", value="1,234"),
            line(zone="wuxi-hitech", period="2021-08", value="0x10"),
            line(zone="wuxi-hitech", period="2021-09", value="12.75"),
        ]
    ).encode()
    now = datetime.now(UTC)
    files["periods.csv"] = "\n".join(
        [
            HEADER,
            line(zone="yantai-hitech", period="2099-01"),
            line(zone="yantai-hitech", period=f"{now.year + 1}-{now.month:02d}"),
            line(zone="yantai-hitech", period="2021-13"),
            line(zone="yantai-hitech", period="1800-01"),
            line(zone="yantai-hitech", period="2021-Q5"),
            line(zone="yantai-hitech", period="yesterday"),
            line(zone="yantai-hitech", period="2021-Q2", basis="QUARTER"),
        ]
    ).encode()
    files["unknown.csv"] = "\n".join(
        [
            HEADER,
            line(zone="atlantis-hitech", period="2021-05"),
            line(zone="xian-hitech", indicator="happiness", period="2021-05"),
            line(zone="xian-hitech", period="2021-05", unit="USD_100M"),
            line(zone="xian-hitech", period="2021-05", basis="FOREVER"),
        ]
    ).encode()
    files["sql.csv"] = "\n".join(
        [
            HEADER,
            line(zone="x'); DROP TABLE parkpulse.observations; --", period="2021-06"),
            line(indicator="gdp' OR '1'='1", period="2021-06"),
            line(period="2021-06'); DELETE FROM parkpulse.deadletter; --"),
            line(value="1; DROP DATABASE parkpulse", period="2021-07"),
            line(unit="CNY_100M' UNION SELECT 1 --", period="2021-08"),
            line(period="2021-09"),
        ]
    ).encode()
    docs: list[Any] = [
        {
            "zone": "shizuishan-hitech",
            "indicator": "retail_sales",
            "time_period": "2021-10",
            "basis": "YTD",
            "obs_value": 3.5,
            "unit_measure": "CNY_100M",
        },
        {"zone": {"nested": ["x"]}, "indicator": "retail_sales", "time_period": "2021-10"},
        ["a", "list", "not", "an", "object"],
        {
            "zone": "shizuishan-hitech",
            "indicator": "retail_sales",
            "time_period": "2021-11",
            "basis": "YTD",
            "obs_value": "x" * 100_000,
            "unit_measure": "CNY_100M",
        },
        {
            "zone": "shizuishan-hitech",
            "indicator": "retail_sales",
            "time_period": "2021-12",
            "basis": "YTD",
            "obs_value": 10**30,
            "unit_measure": "CNY_100M",
        },
        "just a string",
        None,
    ]
    jsonl = b"\n".join(json.dumps(d).encode() for d in docs) + b'\n{"obs_value": NaN}\n{broken\n'
    files["hostile.jsonl"] = jsonl
    paths = []
    for name, data in files.items():
        path = folder / name
        path.write_bytes(data)
        paths.append(path)
    return paths


def test_hostile_files_every_line_is_a_figure_or_a_dead_letter(
    hostile: Hostile, tmp_path: Path
) -> None:
    files = hostile_files(tmp_path / "feeds")
    result = subprocess.run(
        [PARKPULSE, "produce", "--broker", hostile.broker.url, *map(str, files)],
        capture_output=True,
        text=True,
        env=clean_env(PARKPULSE_DATA_DIR=str(hostile.root / "producer")),
        timeout=120,
    )
    assert result.returncode == 2, result.stderr  # something was rejected; the rest went out
    now = datetime.now(UTC)
    total_lines = total_rejected = 0
    for path in files:
        rows = list(read_feed(path, CATALOGUE, now=now))
        accepted = [r for r in rows if r.error is None]
        rejected = {(r.line, r.error.reason) for r in rows if r.error is not None}
        assert f"{path.name}: {len(accepted)} published, {len(rejected)} rejected" in result.stdout
        keys = {r.record.key for r in accepted}  # type: ignore[union-attr]
        zones = {k[0] for k in keys}

        def landed(
            path: Path = path,
            rejected: set[tuple[int, str]] = rejected,
            keys: set[Any] = keys,
            zones: set[str] = zones,
        ) -> bool:
            dead = deadletters(hostile, f"origin = {sql_str(path.name)}")
            got = {(d["line"], d["reason"]) for d in dead}
            return got == rejected and keys <= observation_keys(hostile, zones)

        wait_until(landed, timeout=60, every=0.5)
        for d in deadletters(hostile, f"origin = {sql_str(path.name)}"):
            assert d["reason"] in REASONS and d["detail"]
            assert len(d["raw"].encode()) <= RAW_LIMIT + 64  # the line, cut to 4 KiB
        total_lines += len(rows)
        total_rejected += len(rejected)
    # The SQL-looking strings were data, never SQL: the tables are all still there.
    counts = hostile.shim.query("SELECT count() FROM parkpulse.observations")
    assert int(counts[0][0]) >= total_lines - total_rejected - 10
    print(f"{len(files)} hostile files, {total_lines} lines, {total_rejected} dead letters")


# -- fuzzed messages straight to the topics -----------------------------------------------

HOSTILE_TEXT = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        [
            "",
            " ",
            "x'); DROP TABLE parkpulse.observations; --",
            "' OR '1'='1",
            "\x00",
            "南宁高新区",
            "🏭" * 20,
            "y" * 70_000,
            "NaN",
            "Infinity",
            "-0",
        ]
    ),
)
NUMBERS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.decimals(allow_nan=False, allow_infinity=False).map(str),
    HOSTILE_TEXT,
    st.none(),
    st.booleans(),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
PERIODS = st.one_of(
    st.builds(lambda y, m: f"{y}-{m:02d}", st.integers(2015, 2024), st.integers(1, 12)),
    st.sampled_from(["2021-13", "2099-01", "2021-Q2", "2021", "1900-01", "2021-00", "21-03"]),
    HOSTILE_TEXT,
)
ZONE = st.one_of(st.sampled_from(sorted(CATALOGUE.zones)), HOSTILE_TEXT)
INDICATOR = st.one_of(st.sampled_from(["retail_sales", "gdp", "new_enterprises"]), HOSTILE_TEXT)


def maybe(value: st.SearchStrategy[Any], hostile: st.SearchStrategy[Any]) -> Any:
    """Mostly a plausible value, sometimes a hostile one."""
    return st.one_of(value, value, hostile)


OBSERVATION = st.fixed_dictionaries(
    {
        "zone": maybe(st.sampled_from(sorted(CATALOGUE.zones)), ZONE),
        "indicator": maybe(st.sampled_from(["retail_sales", "gdp"]), INDICATOR),
        "time_period": maybe(
            st.builds(lambda y, m: f"{y}-{m:02d}", st.integers(2016, 2024), st.integers(1, 12)),
            PERIODS,
        ),
        "basis": maybe(st.just("YTD"), st.sampled_from(["MONTH", "LEVEL", "", "YTD; --"])),
        "obs_value": maybe(st.floats(0, 1e6, allow_nan=False), NUMBERS),
        "unit_measure": maybe(st.just("CNY_100M"), st.sampled_from(["COUNT", "亿元", "??"])),
        "revision": maybe(st.integers(0, 3), NUMBERS),
        "action": maybe(st.just("I"), st.sampled_from(["R", "D", "X", ""])),
    },
    optional={"yoy_pct": NUMBERS, "obs_status": HOSTILE_TEXT, "source": HOSTILE_TEXT},
)
TARGET = st.fixed_dictionaries(
    {
        "zone": maybe(st.sampled_from(sorted(CATALOGUE.zones)), ZONE),
        "indicator": maybe(st.just("retail_sales"), INDICATOR),
        "kind": maybe(st.just("level"), st.sampled_from(["growth", "share", "vibes"])),
        "base_year": maybe(st.integers(2015, 2020), NUMBERS),
        "base_value": maybe(st.floats(1, 1e4), NUMBERS),
        "target_year": maybe(st.integers(2021, 2030), NUMBERS),
        "target_value": maybe(st.floats(1, 1e5), NUMBERS),
        "unit": maybe(st.just("CNY_100M"), HOSTILE_TEXT),
        "binding": maybe(st.booleans(), NUMBERS),
    }
)
# A message is a document (sent as JSON) or raw bytes that only look like one.
RAW_JSONISH = st.sampled_from(
    [b'{"obs_value": NaN}', b"{", b"[]", b"null", b'"zone"', b"\xff\xfe{}", b'{"zone": 1e999}']
)

_run = itertools.count()


async def send_all(broker: str, messages: list[tuple[str, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=broker.split("://", 1)[1], acks="all")
    await producer.start()
    try:
        for topic, value in messages:
            # keyed as a producer keys a figure (by its zone, which the worker checks); the
            # rest under random keys
            verdict, key = fate("observation", value) if topic == OBSERVATIONS else ("", None)
            zone = key[0].encode() if verdict == "accepted" else os.urandom(4)
            await producer.send_and_wait(topic, value, key=zone)
    finally:
        await producer.stop()


def fate(kind: str, payload: bytes) -> tuple[str, Any]:
    """What the worker's validation does with the message: ("accepted", key) or
    ("rejected", reason), worked out here from the same bytes the worker reads."""
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return "rejected", "malformed"
    try:
        if kind == "observation":
            return "accepted", validate_observation(doc, CATALOGUE, now=datetime.now(UTC)).key
        target = validate_target(doc, CATALOGUE)
        return "accepted", (target.plan, target.zone, target.indicator)
    except RejectedInput as exc:
        return "rejected", exc.reason


@settings(
    max_examples=4,  # × up to 34 messages each; a new draw on every run
    deadline=None,
    # Each example is a round trip through Kafka, Faust and ClickHouse: report the failing
    # example as generated rather than spend minutes shrinking it.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    observations=st.lists(OBSERVATION, min_size=1, max_size=25),
    targets=st.lists(TARGET, max_size=6),
    jsonish=st.lists(RAW_JSONISH, max_size=3),
)
def test_fuzzed_messages_are_each_accepted_or_dead_lettered(
    hostile: Hostile,
    observations: list[dict[str, Any]],
    targets: list[dict[str, Any]],
    jsonish: list[bytes],
) -> None:
    origin = f"fuzz-{os.getpid()}-{next(_run)}"
    messages: list[tuple[str, bytes]] = []
    expect: dict[int, tuple[str, str, Any]] = {}
    plan = f"fuzz-plan-{origin}"
    for n, doc in enumerate(observations + targets, start=1):
        kind = "observation" if n <= len(observations) else "target"
        doc = {**doc, "origin": origin, "line": n}
        if kind == "target":
            doc["plan"] = plan
        # json, not orjson: it writes integers past 64 bits (the worker reads them as floats).
        payload = json.dumps(doc, ensure_ascii=False).encode("utf-8", "surrogatepass")
        expect[n] = (kind, *fate(kind, payload))
        messages.append((OBSERVATIONS if kind == "observation" else TARGETS, payload))
    tag = f"jsonish-{origin}-".encode()
    for value in jsonish:
        messages.append((OBSERVATIONS, value + b" " + tag))  # never valid JSON with the tag
    asyncio.run(send_all(hostile.broker.url, messages))

    zones = {e[2][0] for e in expect.values() if e[0] == "observation" and e[1] == "accepted"}
    want_obs = {e[2] for e in expect.values() if e[0] == "observation" and e[1] == "accepted"}
    want_targets = {e[2] for e in expect.values() if e[0] == "target" and e[1] == "accepted"}

    def accounted() -> tuple[dict[int, str]] | None:
        dead = {d["line"]: d["reason"] for d in deadletters(hostile, f"origin = {sql_str(origin)}")}
        tagged = deadletters(hostile, f"position(raw, {sql_str(tag.decode())}) > 0")
        obs_ok = want_obs <= observation_keys(hostile, zones) | {
            expect[n][2] for n in dead if expect[n][0] == "observation"
        }
        targets_ok = want_targets <= target_keys(hostile, {plan})
        rejected_ok = all(n in dead for n, e in expect.items() if e[1] == "rejected")
        done = obs_ok and targets_ok and rejected_ok and len(tagged) == len(jsonish)
        return (dead,) if done else None

    (dead,) = wait_until(accounted, timeout=60, every=0.3) or ({},)
    for n, (kind, outcome, detail) in expect.items():
        if outcome == "rejected":
            assert dead[n] == detail, (n, kind, detail, dead[n])
        elif n in dead:  # valid, but contradicts a figure already known: same key, same revision
            assert kind == "observation" and dead[n] == "conflict", (n, dead[n])
    assert hostile.worker.proc.poll() is None


# -- raw garbage on every topic -----------------------------------------------------------


def test_raw_garbage_on_every_topic_is_dead_lettered(hostile: Hostile) -> None:
    topics = (OBSERVATIONS, TARGETS, TARGETS_BY_ZONE, DEADLETTER, REGISTRATIONS)
    messages = []
    for n, topic in enumerate(topics * 4):
        tag = f"garbage-{n}-{os.urandom(4).hex()}|".encode()
        body = os.urandom(16 + n * 37) if n % 4 else b"\xff" * (RAW_LIMIT * 3)
        messages.append((topic, tag + body))
    started = time.monotonic()
    asyncio.run(send_all(hostile.broker.url, messages))

    def found() -> list[dict[str, Any]] | None:
        rows = deadletters(hostile, "startsWith(raw, 'garbage-')")
        return rows if len(rows) >= len(messages) else None

    rows = wait_until(found, timeout=60, every=0.5) or []
    by_tag = {r["raw"].split("|", 1)[0]: r for r in rows}
    for _topic, value in messages:
        row = by_tag[value.split(b"|", 1)[0].decode()]
        assert row["reason"] == "malformed", row
        assert len(row["raw"].encode()) <= RAW_LIMIT * 3  # cut, not the whole message
    assert len(by_tag) == len(messages)
    assert hostile.worker.proc.poll() is None
    print(
        f"{len(messages)} garbage messages on {len(topics)} topics dead-lettered in"
        f" {time.monotonic() - started:.1f}s"
    )


def test_nothing_hostile_reached_the_metrics_labels(hostile: Hostile) -> None:
    """Label values stay bounded by the catalogue: nothing from the input becomes a label."""
    import urllib.request

    with urllib.request.urlopen(hostile.worker.metrics_url, timeout=10) as resp:
        text = resp.read().decode()
    for word in ("DROP", "atlantis", "garbage", "happiness", "fuzz-"):
        assert word not in text
