"""The bench's status watcher (parkpulse/status_watch.py), in a process of its own against a real
broker: it counts the live status rows of the zones it watches, a removed row no longer."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from parkpulse.broker import TansuBroker
from parkpulse.config import Settings
from parkpulse.status_watch import StatusWatcher, StatusWatchError
from parkpulse.topics import STATUS, ensure_topics
from tests.conftest import wait_until


def _row(zone: str, period: str, deleted: bool = False) -> bytes:
    doc = {"zone": zone, "indicator": "gdp", "plan": "14th-fyp", "period": period}
    return orjson.dumps({**doc, "deleted": deleted} if deleted else doc)


async def _send(bootstrap: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(STATUS, value, key=b"k")
    finally:
        await producer.stop()


def test_it_counts_live_rows_of_its_zones(tansu_broker: TansuBroker, tmp_path: Path) -> None:
    settings = Settings(broker=tansu_broker.url, data_dir=tmp_path)
    asyncio.run(ensure_topics(settings))
    prefix = f"w{time.time_ns()}-"  # rows other tests of the session sent are not its zones
    watcher = StatusWatcher(settings, prefix=prefix)
    watcher.start()
    try:
        assert watcher.live == 0
        rows = [_row(f"{prefix}a", "2021-01"), _row(f"{prefix}a", "2021-02")]
        rows += [_row(f"{prefix}a", "2021-01"), _row("other-a", "2021-01")]  # again; not its
        junk = [b"not json", b"[1]", b'{"zone": "x"}', orjson.dumps({"zone": [prefix]})]
        asyncio.run(_send(tansu_broker.bootstrap, [*rows, *junk, _row(f"{prefix}b", "2021-01")]))
        wait_until(lambda: watcher.live == 3)
        asyncio.run(_send(tansu_broker.bootstrap, [_row(f"{prefix}a", "2021-02", deleted=True)]))
        wait_until(lambda: watcher.live == 2)
        assert watcher.counted() == 2
    finally:
        watcher.stop()
    assert watcher.exitcode == 0  # told to stop, it stopped


def test_a_watcher_that_died_says_so(tansu_broker: TansuBroker, tmp_path: Path) -> None:
    watcher = StatusWatcher(Settings(broker=tansu_broker.url, data_dir=tmp_path), prefix="x-")
    watcher.start()
    try:
        watcher._process.kill()  # as the OOM killer would
        watcher._process.join(10)
        with pytest.raises(StatusWatchError, match="stopped"):
            watcher.counted()
    finally:
        watcher.stop()


def test_a_watcher_that_cannot_start_says_so(tmp_path: Path) -> None:
    watcher = StatusWatcher(Settings(broker="kafka://127.0.0.1:1", data_dir=tmp_path), "x-")
    with pytest.raises(StatusWatchError, match="did not start"):
        watcher.start()
    assert watcher.exitcode not in (None, 0)
