"""Profile the worker's roll-up in-process, without Kafka (issue 14).

Reads a simulated feed as the producer does (the columnar reader, column envelopes of 100 per
zone; ``--dicts``: dict envelopes of the same figures), then feeds the messages through
``Rollup.apply`` in batches of ROLLUP_TAKE messages, optionally writing each batch into a
throwaway embedded chdb. Prints the time of each part.

    .venv/bin/python scripts/profile_rollup.py var/bench/sim [--store] [--zones N] [--tracemalloc]
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import pickle
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import orjson

from parkpulse.memory import gc_paused, tune_collector
from parkpulse.producers.columnar import ZoneFigures, read_feed_columns
from parkpulse.producers.feed import read_targets
from parkpulse.producers.publish import _wire
from parkpulse.schemas.catalogue import load_catalogue
from parkpulse.schemas.envelope import ENVELOPE_MAX
from parkpulse.schemas.wire import observation_envelope
from parkpulse.sinks.batch import SinkBatch
from parkpulse.streams.app import ROLLUP_TAKE
from parkpulse.streams.rollup import Rollup
from parkpulse.streams.rollup_stage import EventBatch, status_messages
from parkpulse.topics import OBSERVATIONS, TARGETS_BY_ZONE


def messages(sim: Path, zones: int | None, dicts: bool) -> list[tuple[str, bytes, bytes | None]]:
    """(topic, value, key) in the order the producer sends them: targets, then each feed's
    figures, zone by zone in column envelopes of 100 (``dicts``: as dict envelopes)."""
    form = "dicts" if dicts else "columns"
    name = f"parkpulse-rollup-{sim.resolve().name}-{zones}-{form}.pickle"
    cache = Path(tempfile.gettempdir()) / name
    if cache.exists():
        return pickle.loads(cache.read_bytes())
    catalogue = load_catalogue(sim / "reference")
    now = datetime.now(UTC)
    keep = sorted(catalogue.zones)[:zones] if zones else None
    out: list[tuple[str, bytes, bytes | None]] = []
    for row in read_targets(sim / "targets" / "plan_targets.csv", catalogue):
        if row.record is not None and (keep is None or row.record.zone in keep):
            wire = _wire(row, "plan_targets.csv")[2]
            out.append((TARGETS_BY_ZONE, orjson.dumps(wire), None))
    for path in sorted((sim / "feeds").glob("observations-*.csv")):
        for item in read_feed_columns(path, catalogue, now=now, origin=path.name):
            if not isinstance(item, ZoneFigures) or (keep is not None and item.zone not in keep):
                continue
            if dicts:
                records = item.records
                chunks = [records[i : i + ENVELOPE_MAX] for i in range(0, len(item), ENVELOPE_MAX)]
                values = [orjson.dumps(observation_envelope(chunk)) for chunk in chunks]
            else:
                values = item.envelopes(ENVELOPE_MAX)
            out.extend((OBSERVATIONS, value, item.zone.encode()) for value in values)
    cache.write_bytes(pickle.dumps(out))
    return out


class Durable:
    """What ClickHouse would hand back for a zone: the batches written so far, per key."""

    def __init__(self) -> None:
        self.zones: dict[str, tuple[dict, dict, dict, dict]] = {}

    def write(self, batch: SinkBatch) -> None:
        def held(zone: str) -> tuple[dict, dict, dict, dict]:
            return self.zones.setdefault(zone, ({}, {}, {}, {}))

        for obs in batch.observations:
            held(obs.zone)[0][obs.key] = obs
        for t in batch.targets:
            held(t.zone)[1][(t.plan, t.indicator)] = t
        for row in batch.statuses:
            held(row.zone)[2][(row.indicator, row.plan, row.period)] = row
        for row in batch.status_tombstones:
            held(row.zone)[2].pop((row.indicator, row.plan, row.period), None)
        for f in batch.suspects:
            held(f.zone)[3][(f.indicator, f.period)] = f
        for f in batch.suspect_tombstones:
            held(f.zone)[3].pop((f.indicator, f.period), None)

    def zones_state(self, zones: list[str]) -> dict[str, tuple]:
        return {
            z: tuple(list(d.values()) for d in self.zones.get(z, ({}, {}, {}, {}))) for z in zones
        }


def event(offset: int, topic: str, value: bytes, key: bytes | None) -> SimpleNamespace:
    """A message as the agent gets it from Faust (what ``EventBatch`` reads of it)."""
    return SimpleNamespace(
        message=SimpleNamespace(topic=topic, partition=0, offset=offset, key=key), value=value
    )


def rss_anon_mb() -> float:
    """This process's anonymous resident memory (what the issue's goal counts), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("sim", type=Path)
    parser.add_argument("--store", action="store_true", help="write each batch into a temp chdb")
    parser.add_argument("--zones", type=int, default=None)
    parser.add_argument("--tracemalloc", action="store_true")
    parser.add_argument("--digest", action="store_true", help="hash every batch's output")
    parser.add_argument("--take", type=int, default=ROLLUP_TAKE)
    parser.add_argument("--dicts", action="store_true", help="figures in dict envelopes")
    args = parser.parse_args()
    catalogue = load_catalogue(args.sim / "reference")
    msgs = messages(args.sim, args.zones, args.dicts)
    tune_collector()  # as the worker (stack.py) sets its collector
    inputs_mb = sum(len(value) + 33 for _, value, _ in msgs) / 1e6
    print(
        f"anon before the store {rss_anon_mb():.0f} MB (of it the feed's bytes {inputs_mb:.0f} MB)"
    )
    store = None
    if args.store:
        from parkpulse.config import ClickHouseTarget
        from parkpulse.sinks.clickhouse import ClickHouseStore

        tmp = tempfile.mkdtemp(prefix="pp-chdb-")
        store = ClickHouseStore.open(ClickHouseTarget(embedded_path=Path(tmp)))
    print(f"anon with the store open {rss_anon_mb():.0f} MB")
    peak_anon = held_peak = 0.0
    if args.tracemalloc:
        tracemalloc.start(25)
    rollup = Rollup(catalogue)
    durable = Durable()
    t_read = t_apply = t_send = t_write = t_load = 0.0
    statuses = figures = 0
    digest = hashlib.sha256()
    start, wall = time.process_time(), time.perf_counter()
    for i in range(0, len(msgs), args.take):
        t0 = time.process_time()
        batch = EventBatch(
            [event(i + n, *message) for n, message in enumerate(msgs[i : i + args.take])]
        )
        t1 = time.process_time()
        missing = sorted(
            z for z in batch.zones() if z in catalogue.zones and not rollup.is_loaded(z)
        )
        if missing:
            states = (store or durable).zones_state(missing)
            for zone in missing:
                rollup.load(zone, *states[zone])
        t_load += time.process_time() - t1
        t1 = time.process_time()
        with gc_paused():  # as the agent does; its messages read as apply reaches them
            result = rollup.apply(batch)
        t2 = time.process_time()
        sent = list(status_messages(result))
        t3 = time.process_time()
        result.batch.deadletters = []
        if store is not None and len(result.batch):
            store.write(result.batch)
        elif store is None:
            durable.write(result.batch)
        t4 = time.process_time()
        t_read += t1 - t0
        t_apply += t2 - t1
        t_send += t3 - t2
        t_write += t4 - t3
        if args.digest:
            for key, value in sent:
                digest.update(key + value)
            b = result.batch
            for rows in (b.observations, b.targets, b.scorecards, b.suspects, b.suspect_tombstones):
                digest.update(orjson.dumps([r.to_dict() for r in rows]))
            digest.update(repr(sorted(result.shrunk.items())).encode())
            digest.update(repr(result.newly_suspect).encode())
        statuses += len(sent)
        peak_anon = max(peak_anon, rss_anon_mb())
        held_peak = max(held_peak, sum(z.size for z in rollup._zones.values()))
        figures += len(result.batch.observations)
    total = time.process_time() - start
    wall = time.perf_counter() - wall
    print(
        f"messages {len(msgs)} figures {figures} status msgs {statuses} | cpu {total:.2f}s "
        f"(wall {wall:.2f}s) events {t_read:.2f} load {t_load:.2f} apply {t_apply:.2f} "
        f"status_msgs {t_send:.2f} write {t_write:.2f}"
    )
    print(f"anon peak {peak_anon:.0f} MB, rows held at most {held_peak:.0f}")
    if not args.tracemalloc:  # what the roll-up's state held: anon freed by dropping it
        before = rss_anon_mb()
        rollup.forget()
        result = batch = sent = None  # type: ignore[assignment]
        gc.collect()
        print(
            f"anon at the end {before:.0f} MB, without the roll-up's state {rss_anon_mb():.0f} MB"
        )
    if args.digest:
        print("digest", digest.hexdigest())
    if args.tracemalloc:
        current, peak = tracemalloc.get_traced_memory()
        print(f"tracemalloc current {current / 1e6:.1f} MB peak {peak / 1e6:.1f} MB")
        snap = tracemalloc.take_snapshot()
        for stat in snap.statistics("lineno")[:25]:
            print(stat)
    import resource

    print(
        f"maxrss {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
