"""What the fault tests share: a backfill feed, workers against a separate broker, the engine's
answer for a feed, and a dump of everything a stopped worker left in its embedded ClickHouse."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from parkpulse.broker import free_port
from parkpulse.config import Settings
from parkpulse.producers.feed import read_feed, read_targets
from parkpulse.producers.publish import Published
from parkpulse.producers.publish import publish as publish_files
from parkpulse.schemas.catalogue import load_catalogue
from parkpulse.schemas.records import Observation, PlanTarget
from parkpulse.sinks.tables import STATUS_COLUMNS
from parkpulse.streams.plan import evaluate
from tests.conftest import PARKPULSE, RunningStack

# Figures per message: a roll-up batch (ROLLUP_TAKE = 100 messages) then holds 200 figures, so
# a worker stopped after its first batches still has most of these small backfills to do.
ENVELOPE = 2

HEADER = (
    "STRUCTURE,STRUCTURE_ID,ACTION,ZONE,INDICATOR,TIME_PERIOD,BASIS,OBS_VALUE,UNIT_MEASURE,"
    "YOY_PCT,OBS_STATUS,REVISION,PUBLISHED_AT"
)
TARGET_HEADER = (
    "plan,zone,indicator,kind,base_year,base_value,target_year,target_value,"
    "annual_growth_pct,binding,unit,source"
)
# Zones without bundled plan targets: every status row of theirs comes from the test's own plan.
ZONES = (
    "nanning-hitech",
    "xian-hitech",
    "xiamen-torch-hitech",
    "wuxi-hitech",
    "tianjin-binhai-hitech",
    "yantai-hitech",
    "shizuishan-hitech",
)
INDICATORS = (
    "gdp",
    "industrial_value_added",
    "budget_revenue",
    "fixed_asset_investment",
    "retail_sales",
    "import_export_total",
    "online_sales",
    "tech_contract_turnover",
)
PLAN = "fault-plan"


@dataclass(frozen=True)
class Backfill:
    """A feed of monthly YTD figures over years, and the plan targets it is measured against."""

    feed: Path
    targets: Path
    rows: int
    target_rows: int
    zones: tuple[str, ...]


def write_backfill(
    folder: Path,
    zones: Sequence[str] = ZONES,
    indicators: Sequence[str] = INDICATORS,
    years: Iterable[int] = range(2015, 2025),
    seed: int = 7,
    name: str = "backfill",
) -> Backfill:
    """zones × indicators × years × 12 months of YTD figures (CNY 100M), with a level, growth or
    cumulative target per (zone, indicator), some binding."""
    rnd = random.Random(seed)
    years = list(years)
    lines, targets = [HEADER], [TARGET_HEADER]
    for zone in zones:
        for n, indicator in enumerate(indicators):
            base = round(rnd.uniform(50, 500), 1)
            binding = "true" if n % 3 == 0 else "false"
            kind = ("level", "growth", "cumulative")[n % 3]
            first = years[0]
            if kind == "level":
                spec = f"level,{first},{base},2025,{round(base * 2.2, 1)},"
            elif kind == "growth":
                spec = f"growth,{first},,2025,,8.5"  # a rate: its unit is PCT
            else:
                spec = f"cumulative,{first},,2025,{round(base * 12, 1)},"
            unit = "PCT" if kind == "growth" else "CNY_100M"
            targets.append(f"{PLAN},{zone},{indicator},{spec},{binding},{unit},fault test")
            for year in years:
                annual = base * 1.08 ** (year - first) * rnd.uniform(0.85, 1.15)
                for month in range(1, 13):
                    value = annual * month / 12 * rnd.uniform(0.97, 1.03)
                    lines.append(
                        f"dataflow,PARKPULSE:ZONE_MONTHLY(1.0),I,{zone},{indicator},"
                        f"{year}-{month:02d},YTD,{value:.4f},CNY_100M,,A,0,"
                        f"{year + (month == 12)}-{month % 12 + 1:02d}-15T09:00:00+08:00"
                    )
    folder.mkdir(parents=True, exist_ok=True)
    feed, target_file = folder / f"{name}.csv", folder / f"{name}-targets.csv"
    feed.write_text("\n".join(lines) + "\n", encoding="utf-8")
    target_file.write_text("\n".join(targets) + "\n", encoding="utf-8")
    return Backfill(feed, target_file, len(lines) - 1, len(targets) - 1, tuple(zones))


def split_feed(backfill: Backfill, parts: int) -> list[Path]:
    """The feed as ``parts`` files of consecutive rows (each with the header)."""
    header, *rows = backfill.feed.read_text(encoding="utf-8").splitlines()
    size = -(-len(rows) // parts)
    out = []
    for n in range(parts):
        path = backfill.feed.with_name(f"{backfill.feed.stem}-part{n + 1}.csv")
        path.write_text("\n".join([header, *rows[n * size : (n + 1) * size]]) + "\n")
        out.append(path)
    return out


def engine_statuses(backfill: Backfill) -> list[dict[str, Any]]:
    """Every status row the pure engine gives for the feed and its targets, as ClickHouse
    returns them: what any run, disturbed or not, must end with."""
    catalogue = load_catalogue()
    now = datetime.now(UTC)
    observations = [
        r.record
        for r in read_feed(backfill.feed, catalogue, now=now)
        if isinstance(r.record, Observation)
    ]
    targets = [
        r.record
        for r in read_targets(backfill.targets, catalogue)
        if isinstance(r.record, PlanTarget)
    ]
    rows = []
    for zone in backfill.zones:
        touched = {o.indicator for o in observations + targets if o.zone == zone}
        for indicator in sorted(touched):
            for row in evaluate(zone, catalogue.indicators[indicator], observations, targets):
                doc = row.to_dict()
                rows.append({k: doc[k] for k in STATUS_COLUMNS})
    return sorted_rows(rows)


def sorted_rows(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: (r["zone"], r["indicator"], r["plan"], r["period"]))


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARKPULSE_")}
    env.update(extra)
    return env


def start_worker(
    data_dir: Path,
    broker: str,
    *extra: str,
    env: dict[str, str] | None = None,
    ready_timeout: float = 90,
) -> RunningStack:
    """``parkpulse worker --broker …`` on free ports (embedded chdb under ``data_dir`` unless
    ``--clickhouse`` is given), waited for until it prints its ``ready`` line."""
    port = int(broker.rsplit(":", 1)[1])
    return start_parkpulse(
        "worker", data_dir, "--broker", broker, *extra, env=env, port=port, timeout=ready_timeout
    )


def start_parkpulse(
    verb: str,
    data_dir: Path,
    *extra: str,
    env: dict[str, str] | None = None,
    port: int | None = None,
    timeout: float = 90,
) -> RunningStack:
    """``parkpulse run|worker`` with ``env`` on free ports, once it printed ``ready``."""
    api, metrics = free_port(), free_port()
    broker_port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    ports = ["--api-port", str(api), "--metrics-port", str(metrics)]
    if verb == "run":
        ports += ["--broker-port", str(broker_port)]
    log = open(data_dir / "stderr.log", "a")  # noqa: SIM115
    proc = subprocess.Popen(
        [PARKPULSE, verb, "--data-dir", str(data_dir), *ports, *extra],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        env=env or clean_env(),
    )
    log.close()
    started = RunningStack(data_dir, broker_port, api, metrics, proc)
    ready = threading.Event()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            started.lines.append(line)
            if "ready" in line:
                ready.set()

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + timeout
    while not ready.wait(0.2):
        if proc.poll() is not None or time.monotonic() > deadline:
            started.stop()
            raise AssertionError(
                f"parkpulse {verb} did not become ready:\n{tail(data_dir / 'stderr.log')}"
            )
    return started


def publish(broker: str, data_dir: Path, *files: Path, verb: str = "produce") -> list[Published]:
    """What ``parkpulse produce|targets --broker … --envelope ENVELOPE`` does, in this process
    (the CLI costs a second of start-up per call; the integration tests exercise it)."""
    kind = "targets" if verb == "targets" else "observations"
    settings = Settings(data_dir=data_dir, broker=broker)
    files_ = [(f, kind) for f in files]
    return asyncio.run(
        publish_files(settings, files_, load_catalogue(), progress=False, envelope=ENVELOPE)
    )


def kill(worker: RunningStack, sig: int = signal.SIGKILL, timeout: float = 60) -> int:
    worker.proc.send_signal(sig)
    return worker.proc.wait(timeout=timeout)


def rows_written(worker: RunningStack, table: str = "observations") -> float:
    try:
        return worker.metric("parkpulse_sink_rows_total", table=table)
    except OSError:
        return -1.0


# A child process opens the stopped worker's chdb (one data path per process; pytest's own
# process may hold another) and prints every table as parkpulse reads it.
_DUMP = r"""
import sys, orjson
from pathlib import Path
from parkpulse.config import ClickHouseTarget
from parkpulse.sinks.clickhouse import ClickHouseStore
store = ClickHouseStore.open(ClickHouseTarget(embedded_path=Path(sys.argv[1])))
q = lambda sql: store.run(store.query, sql)
out = {
    "statuses": store.run(store.status_rows),
    "observations": q("SELECT zone, indicator, basis, period, source, value, unit, yoy_pct,"
        " obs_status, revision, action FROM {db}.observations FINAL"
        " ORDER BY zone, indicator, basis, period, source"),
    "targets": q("SELECT plan, zone, indicator, kind, base_year, base_value, target_year,"
        " target_value, annual_growth_pct, binding, revision FROM {db}.plan_targets FINAL"
        " ORDER BY plan, zone, indicator"),
    "scorecards": store.run(store.scorecards),
    "deadletters": q("SELECT source_topic, reason, origin, line FROM {db}.deadletter FINAL"
        " ORDER BY source_topic, origin, line, reason"),
    "raw_rows": {t: q("SELECT count() AS n FROM {db}." + t)[0]["n"]
        for t in ("observations", "indicator_status", "plan_targets")},
}
store.close()
sys.stdout.buffer.write(orjson.dumps(out, default=str))
"""


def dump_store(data_dir: Path) -> dict[str, Any]:
    """Everything in the embedded ClickHouse of a stopped worker, read as parkpulse reads it."""
    result = subprocess.run(
        [sys.executable, "-c", _DUMP, str(data_dir / "clickhouse")],
        capture_output=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    return orjson.loads(result.stdout)


def listening(port: int) -> set[str]:
    """Addresses something listens on at ``port`` (IPv4 and IPv6), from /proc/net."""
    found = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            address, hex_port = fields[1].split(":")
            if int(hex_port, 16) == port and fields[3] == "0A":  # LISTEN
                if width == 8:
                    found.add(".".join(str(b) for b in reversed(bytes.fromhex(address))))
                else:
                    found.add("::" if int(address, 16) == 0 else address)
    return found


def tail(path: Path, n: int = 3000) -> str:
    return path.read_text(errors="replace")[-n:] if path.exists() else ""
