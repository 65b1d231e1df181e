"""Scale out: two workers in one consumer group count exactly what one worker counts.

The brokers are real (Tansu); so are the workers (``parkpulse worker``) and their ClickHouse.
chdb is one process per data path, so two workers cannot share one embedded ClickHouse as two
workers share a ClickHouse server in production. Each worker here gets its own chdb: the
registrations topic is partitioned by zone, so the group splits the zones disjointly and the
union of the two workers' tables is what one shared server would hold. That union is compared
with the session's single worker (``stack``) fed the same messages.
"""

from __future__ import annotations

import asyncio
import os
import queue
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from parkpulse.broker import TansuBroker, free_port
from parkpulse.config import Settings
from parkpulse.schemas.catalogue import load_catalogue
from parkpulse.schemas.wire import registration_envelope
from parkpulse.topics import REGISTRATIONS, ensure_topics
from tests.conftest import PARKPULSE, RunningStack, wait_until

pytestmark = pytest.mark.integration

PARTITIONS = 4
MONTHS = ("2019-01", "2019-02", "2019-03")  # this test's own months on the shared stack
KINDS = ("enterprise", "individual_business", "farmers_cooperative")


@dataclass
class Worker:
    proc: subprocess.Popen[str]
    api: str
    log: Path
    metrics: str = ""

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.api + path, timeout=30) as resp:
            return orjson.loads(resp.read())

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        return self.wait()

    def wait(self) -> int:
        if self.proc.poll() is None:
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return int(self.proc.returncode)


def start_worker(
    broker: TansuBroker,
    data_dir: Path,
    *,
    partitions: int = PARTITIONS,
    clickhouse_url: str | None = None,
    metrics_port: int | None = None,
) -> Worker:
    """``parkpulse worker`` on its own chdb (or the given ClickHouse server), in the group every
    worker of this broker joins."""
    data_dir.mkdir(parents=True, exist_ok=True)
    api, metrics = free_port(), metrics_port or free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARKPULSE_")}
    env["PARKPULSE_PARTITIONS"] = str(partitions)
    if clickhouse_url:
        env["PARKPULSE_CLICKHOUSE_URL"] = clickhouse_url
    log = data_dir / "stderr.log"
    proc = subprocess.Popen(
        [
            PARKPULSE,
            "worker",
            "--broker",
            broker.url,
            "--data-dir",
            str(data_dir),
            "--api-port",
            str(api),
            "--metrics-port",
            str(metrics),
        ],
        stdout=subprocess.PIPE,
        stderr=log.open("w"),
        text=True,
        env=env,
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    worker = Worker(proc, f"http://127.0.0.1:{api}", log, f"http://127.0.0.1:{metrics}/metrics")
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if "ready" in lines.get(timeout=0.5):
                return worker
        except queue.Empty:
            continue
    worker.stop()
    raise AssertionError(f"worker did not become ready:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def two_workers(
    tansu_broker: TansuBroker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Worker, Worker]]:
    asyncio.run(ensure_topics(Settings(broker=tansu_broker.url, partitions=PARTITIONS)))
    base = tmp_path_factory.mktemp("scale-out")
    first = start_worker(tansu_broker, base / "a")
    alone = wait_until(lambda: first.get("/api/health")["assigned"], timeout=30)
    second = start_worker(tansu_broker, base / "b")
    try:
        # A stable group: both own partitions, together every partition the first owned alone.
        wait_until(
            lambda: (
                0 < first.get("/api/health")["assigned"] < alone
                and first.get("/api/health")["assigned"] + second.get("/api/health")["assigned"]
                == alone
            ),
            timeout=60,
            every=0.5,
        )
        time.sleep(1.0)
        yield first, second
    finally:
        for worker in (second, first):  # both at once: a worker takes seconds to leave
            worker.proc.terminate()
        assert second.wait() == 0
        assert first.wait() == 0


def messages() -> list[tuple[str, bytes]]:
    """Registrations of every bundled zone over three months, duplicated and replayed."""
    sent = "2026-01-01T00:00:00+00:00"
    out: list[tuple[str, bytes]] = []
    for z, zone in enumerate(sorted(load_catalogue().zones)):
        records = [
            {
                "zone": zone,
                "registration_id": f"SO{z}X{i:04d}",
                "registered_at": f"{MONTHS[i % 3]}-{1 + i % 28:02d}T09:00:00+08:00",
                "entity_type": KINDS[(i * 7 + z) % 3],
                "industry_code": "I65",
                "registered_capital": 10 + i,
            }
            for i in range(40 + 10 * z)
        ]
        envelopes = [records[:30], records[20:], records[5:15]]  # overlapping batches
        out += [(zone, orjson.dumps(registration_envelope(e, sent_at=sent))) for e in envelopes]
        out.append(out[-3])  # a whole envelope again
    return out


def send(broker: str, batch: list[tuple[str, bytes]]) -> None:
    async def run() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=broker)
        await producer.start()
        try:
            for key, value in batch:
                await producer.send_and_wait(REGISTRATIONS, value, key=key.encode())
        finally:
            await producer.stop()

    asyncio.run(run())


def counts(rows: list[dict[str, Any]]) -> dict[tuple[str, str, str], int]:
    return {
        (r["zone"], r["month"], r["entity_type"]): r["registrations"]
        for r in rows
        if r["month"] in MONTHS
    }


def figures(rows: list[dict[str, Any]]) -> dict[tuple[str, str, str], tuple[float, int]]:
    return {
        (r["zone"], r["indicator"], r["period"]): (r["value"], r["revision"])
        for r in rows
        if r["period"] in MONTHS
    }


def expected_counts() -> dict[tuple[str, str, str], int]:
    seen: dict[tuple[str, str], tuple[str, str]] = {}
    for _, value in messages():
        for r in orjson.loads(value)["registrations"]:
            seen[(r["zone"], r["registration_id"])] = (r["registered_at"][:7], r["entity_type"])
    out: dict[tuple[str, str, str], int] = {}
    for (zone, _), (month, kind) in seen.items():
        out[(zone, month, kind)] = out.get((zone, month, kind), 0) + 1
    return out


def test_two_workers_count_what_one_counts(
    two_workers: tuple[Worker, Worker], tansu_broker: TansuBroker, stack: RunningStack
) -> None:
    first, second = two_workers
    batch = messages()
    send(tansu_broker.bootstrap, batch)
    send(f"127.0.0.1:{stack.broker_port}", batch)
    expected = expected_counts()

    def union() -> dict[tuple[str, str, str], int]:
        a = counts(first.get("/api/registrations"))
        b = counts(second.get("/api/registrations"))
        assert not {k[0] for k in a} & {k[0] for k in b}, "a zone was counted by both workers"
        return {**a, **b}

    wait_until(lambda: union() == expected, timeout=60, every=0.5)
    one = wait_until(
        lambda: (c := counts(stack.get_json("/api/registrations"))) == expected and c, timeout=60
    )
    assert union() == one
    # The group did split the zones: each worker counted some of them.
    zones = [{k[0] for k in counts(w.get("/api/registrations"))} for w in two_workers]
    assert all(zones) and zones[0] | zones[1] == {k[0] for k in expected}

    # The derived monthly figures are the same too (each worker's roll-up keeps its zones').
    def derived_union() -> dict[tuple[str, str, str], tuple[float, int]]:
        return {
            **figures(first.get("/api/registrations/figures")),
            **figures(second.get("/api/registrations/figures")),
        }

    def derived_one() -> dict[tuple[str, str, str], tuple[float, int]]:
        return figures(stack.get_json("/api/registrations/figures"))

    totals = {
        (zone, month): sum(n for (z, m, _), n in expected.items() if (z, m) == (zone, month))
        for zone, month, _ in expected
    }
    want = {(z, "new_market_entities", m): (float(n), n) for (z, m), n in totals.items()}
    wait_until(
        lambda: {k: v for k, v in derived_union().items() if k[1] == "new_market_entities"} == want,
        timeout=60,
        every=0.5,
    )
    wait_until(lambda: derived_one() == derived_union(), timeout=60, every=0.5)
