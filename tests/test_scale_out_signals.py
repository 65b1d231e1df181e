"""Scale out keeps the signals right: each key is exported by exactly one live worker, with the
status ClickHouse holds, through joins, leaves and kills; lag only for owned partitions.

Real parts: a Tansu broker of its own (8 partitions), one ClickHouse server (``chdb_http_shim``,
chdb behind ClickHouse's HTTP interface) shared by the workers as in production, and
``parkpulse worker`` processes. The bundled plan targets and the demo feed give every bundled
zone a status.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from parkpulse.broker import TansuBroker, free_port
from parkpulse.config import Settings
from parkpulse.producers.demo import write_demo_feed
from parkpulse.sinks.metrics import read_samples, read_statuses
from parkpulse.topics import ensure_topics
from tests.chdb_http_shim import ClickHouseShim
from tests.conftest import PARKPULSE, wait_until
from tests.test_scale_out import Worker, start_worker

pytestmark = pytest.mark.integration

PARTITIONS = 8
Key = tuple[str, str, str, str]


def exported(worker: Worker) -> set[Key] | None:
    """(zone, indicator, plan, status) this worker exports; None if it does not answer."""
    try:
        return read_statuses(worker.metrics)
    except OSError:
        return None


def lag_partitions(worker: Worker) -> set[tuple[str, str]]:
    return {
        (s.labels["topic"], s.labels["partition"])
        for s in _scrape(worker) or []
        if s.name == "parkpulse_consumer_lag"
    }


def lag_split(a: Worker, b: Worker) -> bool:
    """Both workers export lag, each for its own partitions only (none for the other's)."""
    mine, theirs = lag_partitions(a), lag_partitions(b)
    return bool(mine) and bool(theirs) and not (mine & theirs)


def _scrape(worker: Worker) -> list | None:
    try:
        return read_samples(worker.metrics)
    except OSError:
        return None


def stored(worker: Worker) -> set[Key]:
    return {(r["zone"], r["indicator"], r["plan"], r["status"]) for r in worker.get("/api/status")}


def assigned(worker: Worker) -> int:
    try:
        return int(worker.get("/api/health")["assigned"])
    except OSError:
        return -1


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TansuBroker, str, Path]]:
    root = tmp_path_factory.mktemp("scale-signals")
    broker = TansuBroker(free_port(), root / "tansu.log").start()
    shim = ClickHouseShim(free_port(), root / "server", root / "shim.log").start()
    try:
        asyncio.run(ensure_topics(Settings(broker=broker.url, partitions=PARTITIONS)))
        yield broker, shim.url(), root
    finally:
        shim.stop()
        broker.stop()


def publish(broker: TansuBroker, root: Path) -> None:
    from parkpulse.stack import bundled_targets_file

    targets = bundled_targets_file(Settings(data_dir=root / "producer"))
    feed = root / "demo-feed.csv"
    write_demo_feed(feed)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARKPULSE_")}
    env["PARKPULSE_DATA_DIR"] = str(root / "producer")
    for verb, path in (("targets", targets), ("produce", feed)):
        done = subprocess.run(
            [PARKPULSE, verb, "--broker", broker.url, "--no-progress", str(path)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode in (0, 2), done.stderr  # the demo feed has three bad rows


def exactly_once(workers: list[Worker], want: set[Key]) -> bool:
    """Every stored key exported by exactly one of ``workers``, and nothing else."""
    seen = [exported(w) for w in workers]
    if any(s is None for s in seen):
        return False
    union: set[Key] = set().union(*seen)  # type: ignore[arg-type]
    return union == want and sum(len(s) for s in seen) == len(want)  # type: ignore[arg-type]


def settled(workers: list[Worker], keys: int) -> set[Key] | None:
    """The stored statuses once they cover ``keys`` keys and ``workers`` export each exactly
    once (statuses may still move while the feed lands: read them afresh each time)."""
    try:
        want = stored(workers[0])
    except OSError:
        return None
    return want if len(want) >= keys and exactly_once(workers, want) else None


def test_each_key_is_exported_by_exactly_one_live_worker(
    cluster: tuple[TansuBroker, str, Path],
) -> None:
    broker, clickhouse, root = cluster
    opts = {"partitions": PARTITIONS, "clickhouse_url": clickhouse}
    a = start_worker(broker, root / "a", **opts)
    b: Worker | None = None
    try:
        wait_until(lambda: assigned(a) > 0, timeout=30)
        publish(broker, root)
        # Alone, A owns every zone and exports every stored key.
        want = wait_until(lambda: settled([a], 33), timeout=120, every=0.5)

        # B joins: the keys split between them, each exported once; lag only for owned partitions.
        b = start_worker(broker, root / "b", **opts)
        wait_until(lambda: assigned(a) > 0 and assigned(b) > 0, timeout=60, every=0.5)
        want = wait_until(lambda: settled([a, b], len(want)), timeout=30, every=0.5)
        assert exported(a) and exported(b)  # both own zones with figures
        wait_until(lambda: lag_split(a, b), timeout=30, every=0.5)

        # B leaves gracefully: A takes every key back within seconds.
        b.proc.send_signal(signal.SIGTERM)
        assert b.wait() == 0
        b = None
        want = wait_until(lambda: settled([a], len(want)), timeout=30, every=0.5)

        # A is killed; a restarted worker exports every key without any new figure.
        a.proc.kill()
        a.wait()
        a = start_worker(broker, root / "a", **opts)
        assert wait_until(lambda: settled([a], len(want)), timeout=30, every=0.5) == want
        assert any(k[3] == "behind" for k in want)

        # B joins again and is killed (-9) while A runs: once the group gives up on B, A exports
        # B's keys too, and lag for B's partitions.
        b = start_worker(broker, root / "b", **opts)
        wait_until(lambda: assigned(a) > 0 and assigned(b) > 0, timeout=60, every=0.5)
        wait_until(lambda: settled([a, b], len(want)), timeout=30, every=0.5)
        wait_until(lambda: lag_split(a, b), timeout=30, every=0.5)
        theirs = lag_partitions(b)
        b.proc.kill()
        b.wait()
        b = None
        assert wait_until(lambda: settled([a], len(want)), timeout=30, every=0.5) == want
        wait_until(lambda: theirs <= lag_partitions(a), timeout=30, every=0.5)
    finally:
        for worker in (b, a):
            if worker is not None:
                worker.stop()
