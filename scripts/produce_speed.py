"""Rows per second of the produce path without a broker: read, validate, encode, envelope.

Runs ``publish._queue_file`` against a producer that only counts what it is given, so what
is timed is everything ``parkpulse produce`` does in Python per row, in CPU seconds of this
process (the VM is shared: wall time varies with the other processes). Usage::

    .venv/bin/python scripts/produce_speed.py FILE... [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from parkpulse.producers.publish import Published, _progress, _queue_file
from parkpulse.producers.readers import ReadOptions
from parkpulse.schemas.catalogue import load_catalogue


class _Meta:
    __slots__ = ("offset", "partition", "topic")

    def __init__(self, topic: str, offset: int) -> None:
        self.topic, self.partition, self.offset = topic, 0, offset


class CountingProducer:
    """Takes every message like aiokafka's producer (one at a time or in record batches),
    delivers none."""

    def __init__(self) -> None:
        self.messages = 0
        self.bytes = 0

    def _delivered(self, topic: str) -> asyncio.Future[Any]:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        fut.set_result(_Meta(topic, self.messages))
        return fut

    async def send(self, topic: str, value: bytes, key: bytes) -> asyncio.Future[Any]:
        self.messages += 1
        self.bytes += len(value)
        return self._delivered(topic)

    async def partitions_for(self, topic: str) -> set[int]:
        return {0}

    def create_batch(self) -> _Batch:
        return _Batch()

    async def send_batch(self, batch: _Batch, topic: str, *, partition: int) -> Any:
        self.messages += batch.count
        self.bytes += batch.size
        return self._delivered(topic)


class _Batch:
    def __init__(self) -> None:
        self.count = self.size = 0

    def append(self, *, key: bytes, value: bytes, timestamp: None) -> object:
        self.count += 1
        self.size += len(value)
        return self

    def record_count(self) -> int:
        return self.count

    def close(self) -> None:
        pass


async def run(files: list[Path], reference: Path | None) -> tuple[int, float, int]:
    catalogue = load_catalogue(reference)
    producer = CountingProducer()
    now = datetime(2026, 11, 30, tzinfo=UTC)
    rows = 0
    start = time.process_time()  # CPU seconds: the VM is shared, wall time is noisy
    with _progress(False) as bar:
        for path in files:
            queued = await _queue_file(
                producer,  # type: ignore[arg-type]
                path,
                "observations",
                catalogue,
                now,
                bar,
                100,
                ReadOptions(),  # type: ignore[arg-type]
            )
            done = queued if isinstance(queued, Published) else await queued.delivered()
            rows += done.summary.accepted + done.summary.rejected
    return rows, time.process_time() - start, producer.messages


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--reference", type=Path, default=None)
    args = parser.parse_args()
    rates = []
    for _ in range(args.runs):
        rows, seconds, messages = asyncio.run(run(args.files, args.reference))
        rates.append(rows / seconds)
        print(
            f"{rows} rows in {seconds:.2f} CPU s = {rows / seconds:,.0f} rows/s"
            f" ({messages} messages)"
        )
    print(f"min {min(rates):,.0f} rows/s, median {statistics.median(rates):,.0f} rows/s")


if __name__ == "__main__":
    main()
