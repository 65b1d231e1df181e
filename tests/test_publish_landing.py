"""How ``produce`` confirms and keeps files (producers/publish.py), against a fake producer that
delivers what it is given at known offsets: a file's last offsets are those of its last record
per partition, whether it went as messages or as record batches; files are reported in order
while the next one is read; a failure keeps every file that was delivered and no other."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest

from parkpulse.config import Settings
from parkpulse.producers import publish as publishing
from parkpulse.producers.kept import entries
from parkpulse.streams.keyed_send import partition_of
from parkpulse.topics import DEADLETTER, OBSERVATIONS
from tests.test_feed import CATALOGUE, HEADER, line, write

FAILING_ZONE = b"jining-hitech"


class FakeBatch:
    def __init__(self) -> None:
        self.records: list[tuple[bytes, bytes]] = []
        self.closed = False

    def append(self, *, key: bytes, value: bytes, timestamp: None) -> object | None:
        if self.closed or len(self.records) == 3:  # small batches: a zone takes several
            return None
        self.records.append((key, value))
        return object()

    def record_count(self) -> int:
        return len(self.records)

    def close(self) -> None:
        self.closed = True


class FakeProducer:
    """Gives each record the next offset of its partition; fails the deliveries of one zone."""

    fail: ClassVar[bool] = False  # a test sets it for the producer publish makes

    def __init__(self, **options: Any) -> None:
        self.next: dict[tuple[str, int], int] = {}

    async def start(self) -> None: ...
    async def flush(self) -> None: ...
    async def stop(self) -> None: ...

    async def partitions_for(self, topic: str) -> set[int]:
        return {0, 1, 2, 3}

    def create_batch(self) -> FakeBatch:
        return FakeBatch()

    def _deliver(self, topic: str, partition: int, keys: list[bytes]) -> asyncio.Future[Any]:
        tp = (topic, partition)
        base = self.next.get(tp, 0)
        self.next[tp] = base + len(keys)
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.fail and FAILING_ZONE in keys:
            done.set_exception(ConnectionError("broker gone"))
        else:
            done.set_result(SimpleNamespace(topic=topic, partition=partition, offset=base))
        return done

    async def send(self, topic: str, value: bytes, key: bytes) -> asyncio.Future[Any]:
        return self._deliver(topic, 0, [key])

    async def send_batch(self, batch: FakeBatch, topic: str, *, partition: int) -> Any:
        assert batch.closed  # nothing sent otherwise may join a batch whose count is known
        return self._deliver(topic, partition, [key for key, _ in batch.records])


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> type[FakeProducer]:
    monkeypatch.setattr(publishing, "AIOKafkaProducer", FakeProducer)
    return FakeProducer


def feeds(tmp_path: Path) -> list[tuple[Path, str]]:
    jinan = [line(period=f"2021-{m:02d}", value=f"{m}.5") for m in range(1, 12)]
    jining = [line(zone="jining-hitech", period=f"2021-{m:02d}") for m in range(1, 5)]
    return [
        (write(tmp_path / "a.csv", HEADER, *jinan, line(value="-1")), "observations"),
        (write(tmp_path / "b.csv", HEADER, *jining), "observations"),
        (write(tmp_path / "c.csv", HEADER, *jinan[:2]), "observations"),
        (write(tmp_path / "d.csv", HEADER, *jinan[2:4]), "observations"),
    ]


@pytest.mark.asyncio
async def test_each_file_reports_and_keeps_the_last_offsets_of_its_records(
    tmp_path: Path, fake: type[FakeProducer]
) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    files = feeds(tmp_path)
    results = await publishing.publish(settings, files, CATALOGUE, progress=False, envelope=2)
    assert [r.path for r in results] == [path for path, _ in files]  # in order
    # Envelopes of 2 figures, record batches of 3 envelopes, offsets counted per partition:
    # a.csv 11 figures → 6 envelopes (2 batches) and a dead letter; b.csv 4 → 2 (one batch);
    # c.csv and d.csv 2 → 1 each.
    jinan, jining = (partition_of(zone, 4) for zone in (b"jinan-hitech", FAILING_ZONE))
    taken: dict[int, int] = {}

    def last(partition: int, envelopes: int) -> dict[tuple[str, int], int]:
        taken[partition] = taken.get(partition, 0) + envelopes
        return {(OBSERVATIONS, partition): taken[partition] - 1}

    assert [r.last_offsets for r in results] == [
        {**last(jinan, 6), (DEADLETTER, 0): 0},
        last(jining, 2),
        last(jinan, 1),
        last(jinan, 1),
    ]
    assert [r.summary.accepted for r in results] == [11, 4, 2, 2]
    kept = {e.origin: e.last_offsets for e in entries(settings)}
    assert kept == {r.path.name: r.last_offsets for r in results}


@pytest.mark.asyncio
async def test_a_failed_delivery_keeps_the_files_delivered_and_no_other(
    tmp_path: Path, fake: type[FakeProducer], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    files = feeds(tmp_path)
    monkeypatch.setattr(fake, "fail", True)
    with pytest.raises(ConnectionError):
        await publishing.publish(settings, files, CATALOGUE, progress=False, envelope=2)
    # b.csv failed; a.csv before it was delivered and kept; c.csv, read and sent while b.csv
    # was landing, was delivered too and is kept; d.csv, after the failure, was not read.
    assert sorted(e.origin for e in entries(settings)) == ["a.csv", "c.csv"]
