"""``parkpulse bench``: the speed of the national-scale paths, measured on the embedded stack.

One run, in this order:

1. ``simulate`` 178 zones × ten years (reused when ``WORK/sim/manifest.json`` matches).
2. Start Tansu (the embedded broker binary) and create the topics. The bench owns the broker so
   it can load a backlog before the worker starts.
3. Publish N registrations as envelopes of ``--batch-size`` (the backlog).
4. **Ceiling**: a raw aiokafka consumer reads and ``orjson``-decodes that whole topic.
5. Start the worker as users do — ``parkpulse run --no-demo --broker … --reference-dir …`` — in
   a subprocess: it has its own interpreter (and GIL) as in production, and its peak RSS
   (``VmHWM``) is its own, chdb included — or, with ``--clickhouse-url``, against a ClickHouse
   server as in production, with no database engine in the worker.
6. **Registrations, backlog**: seconds from the worker's ``ready`` line until all N are in
   ClickHouse (the worker's ``parkpulse_sink_rows_total{table="registrations"}``, then the
   table) → events/s end to end, broker → worker → ClickHouse.
7. **Registrations, live**: ``--live-rate`` events/s for ``--live-seconds`` with envelopes
   flushed per zone every ``--live-flush`` seconds (0.5), as a live producer would; latency per
   registration is ``ingested_at`` (ClickHouse's clock at the insert) − ``sent_at`` (the
   producer's stamp), same host clock; p50/p99 over every registration of the phase. It keeps
   up when the p50 latency of the phase's last third is within KEEP_UP_SLACK_MS of its first
   third's (a pipeline slower than the offered rate falls further behind every second).
8. **Backfill**: the simulated plan targets, then the ten-year feed through the ``produce`` path
   (validated row by row in this process, sent as envelopes of 100 figures of one zone);
   seconds from the first row published until every status row the pure engine expects for
   those inputs is in ClickHouse (``FINAL`` count).
9. Worker peak RSS (and its anonymous part, sampled every 0.25 s, apart from chdb's mapped
   library), then stop. Results are printed and written to ``bench/results.json``.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import math
import os
import platform
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
from aiokafka import AIOKafkaConsumer
from rich.console import Console
from rich.table import Table

from parkpulse.broker import TansuBroker, free_port
from parkpulse.config import Settings, child_environment
from parkpulse.producers import simulate as sim
from parkpulse.producers.publish import publish
from parkpulse.schemas.catalogue import load_catalogue, parse_target_row
from parkpulse.schemas.records import Observation, PlanTarget
from parkpulse.sinks.metrics import read_metric, read_statuses
from parkpulse.streams.plan import evaluate
from parkpulse.topics import REGISTRATIONS, STATUS, client_options, ensure_topics

GOALS = {
    "registrations_events_per_s": 20_000,
    "backfill_seconds": 60,
    "worker_rss_mb": 500,
    "recovery_worker_restart_s": 10,
}
POLL = 0.1
# Each look at the gauges reads /api/status (the worker's store thread, which the restarted worker
# itself needs) and /metrics: looking ten times a second would slow what is being measured.
SIGNALS_POLL = 0.5
SAMPLE_EVERY = 0.25
KEEP_UP_SLACK_MS = 500
BACKFILL_TIMEOUT = 3600.0


class BenchError(RuntimeError):
    """A phase did not finish in time, or the worker died."""


@dataclass
class Worker:
    """The ``parkpulse run`` subprocess under measurement."""

    proc: subprocess.Popen[str]
    api: str
    metrics: str
    stderr: Path
    ready_at: float = 0.0
    lines: list[str] = field(default_factory=list)
    peak_anon_mb: float = 0.0  # RssAnon's high-water mark, sampled every SAMPLE_EVERY

    def sample_memory(self) -> None:
        """Sample RssAnon (the worker's own heap: Python, Faust, chdb's data) until it exits."""

        def run() -> None:
            while self.proc.poll() is None:
                with contextlib.suppress(OSError, BenchError):
                    self.peak_anon_mb = max(self.peak_anon_mb, self._status_mb("RssAnon"))
                time.sleep(SAMPLE_EVERY)

        threading.Thread(target=run, name="rss-sampler", daemon=True).start()

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.api + path, timeout=60) as resp:
            return orjson.loads(resp.read())

    def metric(self, name: str, **labels: str) -> float:
        return read_metric(self.metrics, name, **labels)

    def peak_rss_mb(self) -> float:
        """VmHWM: the resident set's high-water mark, chdb included."""
        return self._status_mb("VmHWM")

    def rss_file_mb(self) -> float:
        """RssFile now: mapped files (chdb's library), shared and reclaimable."""
        return self._status_mb("RssFile")

    def _status_mb(self, field: str) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
        raise BenchError(f"no {field} in /proc status")

    def alive(self) -> None:
        if self.proc.poll() is not None:
            tail = self.stderr.read_text()[-3000:]
            raise BenchError(f"the worker exited with {self.proc.returncode}:\n{tail}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return int(self.proc.returncode)


def start_worker(
    broker: str | None,
    data_dir: Path,
    reference_dir: Path,
    partitions: int,
    log_level: str = "WARNING",
    clickhouse_url: str | None = None,
) -> Worker:
    """``parkpulse run --no-demo`` against the bench's broker (and ClickHouse server, when
    given; embedded chdb otherwise); with no broker, the embedded stack (its own Tansu under a
    supervisor). Returns once it is ready."""
    api, metrics = free_port(), free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    env = child_environment(
        Settings(partitions=partitions, log_level=log_level, clickhouse_url=clickhouse_url)
    )
    command = [
        str(Path(sys.executable).with_name("parkpulse")),
        *("run", "--no-demo", "--no-scoreboard"),
        *(("--broker", broker) if broker else ("--broker-port", str(free_port()))),
        *("--data-dir", str(data_dir), "--reference-dir", str(reference_dir)),
        *("--api-port", str(api), "--metrics-port", str(metrics)),
    ]
    stderr = data_dir / "worker.log"
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=stderr.open("w"),
        text=True,
        env=env,
    )
    worker = Worker(proc, f"http://127.0.0.1:{api}", f"http://127.0.0.1:{metrics}/metrics", stderr)
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            worker.lines.append(line)
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    worker.sample_memory()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.2)
        except queue.Empty:
            worker.alive()
            continue
        if "ready" in line:
            worker.ready_at = time.monotonic()
            return worker
    worker.stop()
    raise BenchError("the worker did not become ready within 120 s")


def wait_for(
    fn: Callable[[], bool], timeout: float, what: str, worker: Worker, every: float = POLL
) -> float:
    """Poll until ``fn()``; returns the monotonic time it first held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if fn():
                return time.monotonic()
        except (OSError, TimeoutError) as exc:  # a busy worker may answer late; keep asking
            worker.alive()
            print(f"  (worker did not answer: {exc})", file=sys.stderr)
        worker.alive()
        time.sleep(every)
    raise BenchError(f"timed out after {timeout:.0f} s waiting for {what}")


# -- the ceiling --------------------------------------------------------------------------


async def raw_consume(settings: Settings, registrations: int) -> dict[str, Any]:
    """Read and decode the registrations topic with aiokafka alone: what the hardware allows."""
    consumer = AIOKafkaConsumer(
        REGISTRATIONS,
        **client_options(settings),
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_partition_fetch_bytes=8 << 20,
        fetch_max_bytes=64 << 20,
    )
    await consumer.start()
    events = messages = 0
    try:
        started = time.monotonic()
        while events < registrations:
            batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            for records in batches.values():
                for record in records:
                    doc = orjson.loads(record.value)
                    events += len(doc["registrations"])
                    messages += 1
            if time.monotonic() - started > 300:
                raise BenchError("raw consumer did not read the backlog in 300 s")
        seconds = time.monotonic() - started
    finally:
        await consumer.stop()
    return {
        "events": events,
        "messages": messages,
        "seconds": round(seconds, 3),
        "events_per_s": round(events / seconds),
    }


# -- the backfill ----------------------------------------------------------------------------


class StatusWatcher:
    """Follows ``parkpulse.status``: how many (zone, indicator, plan, month) rows are live."""

    def __init__(self, settings: Settings, prefix: str) -> None:
        self.settings = settings
        self.prefix = prefix
        self.rows: dict[tuple[str, str, str, str], bool] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._follow()), daemon=True)

    @property
    def live(self) -> int:
        return sum(self.rows.values())

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    async def _follow(self) -> None:
        consumer = AIOKafkaConsumer(
            STATUS,
            **client_options(self.settings),
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            while not self._stop.is_set():
                batches = await consumer.getmany(timeout_ms=500, max_records=20_000)
                for records in batches.values():
                    for record in records:
                        doc = orjson.loads(record.value)
                        if doc["zone"].startswith(self.prefix):
                            key = (doc["zone"], doc["indicator"], doc["plan"], doc["period"])
                            self.rows[key] = not doc.get("deleted", False)
        finally:
            await consumer.stop()


def expected_status_rows(simulated: sim.Simulated, seed: str, first_year: int, years: int) -> int:
    """How many status rows the pure engine gives for the simulated feed and targets."""
    catalogue = load_catalogue(simulated.reference_dir)
    with simulated.targets_file.open(encoding="utf-8") as fh:
        targets = [parse_target_row(row) for row in csv.DictReader(fh)]
    by_zone: dict[str, list[PlanTarget]] = {}
    for t in targets:
        by_zone.setdefault(t.zone, []).append(t)
    rows = 0
    for zone in sim.sim_zones(simulated.zones, seed):
        zone_targets = by_zone.get(zone.id, [])
        for indicator in sorted({t.indicator for t in zone_targets}):
            series = sim.simulate_series(zone, indicator, first_year, years, seed)
            observations = [
                _observation(row) for row in sim.feed_rows(series, first_year, years, seed)
            ]
            rows += len(
                evaluate(zone.id, catalogue.indicators[indicator], observations, zone_targets)
            )
    return rows


def _observation(row: list[str]) -> Observation:
    _, _, action, zone, indicator, period, basis, value, unit, yoy, status, rev, stamp = row
    number = float(value)
    if unit == "CNY_10K":
        number, unit = number * 1e-4, "CNY_100M"
    return Observation(
        zone,
        indicator,
        period,
        basis,
        number,
        unit,
        float(yoy) if yoy else None,
        status,
        int(rev),
        action,
        stamp,
    )


# -- the run ------------------------------------------------------------------------------


@dataclass
class BenchOptions:
    work_dir: Path = Path("var/bench")
    results: Path = Path("bench/results.json")
    registrations: int = 1_000_000
    batch_size: int = sim.BATCH_SIZE
    live_rate: float = 20_000
    live_seconds: float = 15
    live_flush: float = 0.5  # a live producer sends each zone's envelope at least this often
    zones: int = sim.ZONES
    years: int = sim.YEARS
    first_year: int = sim.FIRST_YEAR
    partitions: int = 4
    backfill: bool = True
    registrations_phase: bool = True  # False: time only the backfill (and recovery)
    seed: str = sim.SEED
    # A ClickHouse server (an empty database) instead of embedded chdb: the production layout,
    # where the worker's memory holds no database engine.
    clickhouse_url: str | None = field(default=None, repr=False)

    @property
    def layout(self) -> str:
        return "ClickHouse server" if self.clickhouse_url else "embedded chdb"


def _simulated(options: BenchOptions, console: Console) -> sim.Simulated:
    out = options.work_dir / "sim"
    manifest = out / "manifest.json"
    wanted = {
        "version": sim.VERSION,
        "seed": options.seed,
        "first_year": options.first_year,
        "years": options.years,
    }
    if manifest.exists():
        have = orjson.loads(manifest.read_bytes())
        same = all(have.get(k) == v for k, v in wanted.items())
        if same and have["zones"] == options.zones and have["observations"]:
            done = sim.Simulated(out, zones=have["zones"], indicators=have["indicators"])
            done.observations, done.revisions = have["observations"], have["revisions"]
            done.targets = have["targets"]
            console.print(f"[dim]reusing the simulated data in {out}[/]")
            return done
    console.print(f"simulating {options.zones} zones × {options.years} years into {out} …")
    return sim.simulate(
        out,
        zones=options.zones,
        first_year=options.first_year,
        years=options.years,
        seed=options.seed,
    )


def run_bench(options: BenchOptions, console: Console) -> dict[str, Any]:
    """Every phase in one run; returns the results (also written to ``options.results``).

    A phase that fails is recorded with its error and the run goes on to the next.
    """
    simulated = _simulated(options, console)
    data_dir = options.work_dir / f"run-{int(time.time())}"
    broker = TansuBroker(free_port(), options.work_dir / "tansu.log").start()
    # Published files are kept in the worker's DATA_DIR, as `produce` keeps them (the recovery
    # phase replays what has not landed).
    settings = Settings(broker=broker.url, partitions=options.partitions, data_dir=data_dir)
    results: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average_at_start": os.getloadavg(),
        },
        "parameters": {
            k: str(v) if isinstance(v, Path) else v
            for k, v in options.__dict__.items()
            if k != "clickhouse_url"  # may hold a password
        },
        "clickhouse": options.layout,
        "goals": GOALS,
    }
    worker: Worker | None = None
    try:
        asyncio.run(ensure_topics(settings))
        if options.registrations_phase:
            n = options.registrations
            stream = sim.RegistrationStream(
                sim.sim_zones(options.zones, options.seed), seed=options.seed
            )
            console.print(f"publishing a backlog of {n:,} registrations …")
            backlog = asyncio.run(
                sim.publish_registrations(settings, stream, n, batch_size=options.batch_size)
            )
            console.print(f"  {backlog.messages:,} envelopes, {backlog.bytes / 1e6:.0f} MB")
            console.print("ceiling: raw aiokafka consume + orjson decode …")
            results["ceiling"] = asyncio.run(raw_consume(settings, n))
        console.print("starting the worker …")
        worker = start_worker(
            broker.url,
            data_dir,
            simulated.reference_dir,
            options.partitions,
            clickhouse_url=options.clickhouse_url,
        )
        if options.registrations_phase:
            try:
                results.update(_registrations(options, settings, stream, backlog, worker, console))
                ceiling = results["ceiling"]["events_per_s"]
                rate = results["registrations_backlog"]["events_per_s"]
                results["ratio_backlog_to_ceiling"] = round(rate / ceiling, 4)
            except BenchError as exc:
                results["registrations_error"] = str(exc)
                console.print(f"[red]registrations: {exc}[/]")
        results["worker_peak_rss_mb_after_registrations"] = round(worker.peak_rss_mb(), 1)
        if options.backfill:
            try:
                results["backfill"] = _backfill(options, simulated, settings, worker, console)
            except BenchError as exc:
                results["backfill"] = {"error": str(exc)}
                console.print(f"[red]backfill: {exc}[/]")
        results["worker_peak_rss_mb"] = round(worker.peak_rss_mb(), 1)
        results["worker_rss_file_backed_mb"] = round(worker.rss_file_mb(), 1)
        results["worker_peak_rss_anon_mb"] = round(worker.peak_anon_mb, 1)
        if options.backfill and "error" not in results["backfill"]:
            try:
                results["recovery"] = _recovery(
                    options, broker, worker, data_dir, simulated.reference_dir, console
                )
            except BenchError as exc:
                results["recovery"] = {"error": str(exc)}
                console.print(f"[red]recovery: {exc}[/]")
    finally:
        if worker is not None:
            worker.stop()
        broker.stop()
        results["goals_met"] = _goals_met(results)
        options.results.parent.mkdir(parents=True, exist_ok=True)
        options.results.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    return results


def _registrations(
    options: BenchOptions,
    settings: Settings,
    stream: sim.RegistrationStream,
    backlog: sim.PublishedRegistrations,
    worker: Worker,
    console: Console,
) -> dict[str, Any]:
    """The backlog drained from the worker's start, then a live stream at a set rate."""
    n = options.registrations

    def written() -> float:
        return worker.metric("parkpulse_sink_rows_total", table="registrations")

    done_at = wait_for(lambda: written() >= n, 600, "the registrations backlog", worker, 0.25)
    seconds = done_at - worker.ready_at
    drained = worker.get("/api/registrations/stats")
    if drained["registrations"] != n:
        raise BenchError(f"{drained['registrations']} registrations in ClickHouse, not {n}")
    console.print(f"  backlog: {n / seconds:,.0f} events/s")
    out: dict[str, Any] = {
        "registrations_backlog": {
            "events": n,
            "messages": backlog.messages,
            "seconds": round(seconds, 3),
            "events_per_s": round(n / seconds),
        }
    }
    live_n = int(options.live_rate * options.live_seconds)
    console.print(f"live: {options.live_rate:,.0f} events/s for {options.live_seconds:.0f} s …")
    since = datetime.now(UTC)
    live = asyncio.run(
        sim.publish_registrations(
            settings,
            stream,
            live_n,
            first=n,
            rate=options.live_rate,
            batch_size=options.batch_size,
            flush_every=options.live_flush,
        )
    )
    wait_for(lambda: written() >= n + live_n, 300, "the live registrations", worker, 0.25)
    stats = worker.get(f"/api/registrations/stats?since={quote(since.isoformat())}")
    first_sent = datetime.fromisoformat(stats["first_sent"]).replace(tzinfo=UTC)
    last_in = datetime.fromisoformat(stats["last_ingested"]).replace(tzinfo=UTC)
    span = (last_in - first_sent).total_seconds()
    first_in = datetime.fromisoformat(stats["first_ingested"]).replace(tzinfo=UTC)
    ingest_span = (last_in - first_in).total_seconds()
    out["registrations_live"] = {
        "offered_events_per_s": options.live_rate,
        "producer_flush_s": options.live_flush,
        "published_events_per_s": round(live.rate),
        "events": stats["registrations"],
        "messages": live.messages,
        "events_per_s": round(stats["registrations"] / span),
        # While they arrive: ClickHouse's first to last insert of the phase (events_per_s above
        # also counts the last one's latency).
        "ingest_events_per_s": round(stats["registrations"] / max(ingest_span, 1e-3)),
        "latency_p50_ms": round(stats["latency_p50_ms"], 1),
        "latency_p99_ms": round(stats["latency_p99_ms"], 1),
        "latency_p50_first_third_ms": round(stats["latency_p50_first_third_ms"], 1),
        "latency_p50_last_third_ms": round(stats["latency_p50_last_third_ms"], 1),
    }
    console.print(
        f"  live: p50 {stats['latency_p50_ms']:.0f} ms, p99 {stats['latency_p99_ms']:.0f} ms"
    )
    return out


def _backfill(
    options: BenchOptions,
    simulated: sim.Simulated,
    settings: Settings,
    worker: Worker,
    console: Console,
) -> dict[str, Any]:
    console.print("backfill: computing the status rows the engine expects …")
    expected = expected_status_rows(simulated, options.seed, options.first_year, options.years)
    before = worker.get("/api/counts")
    target = before["indicator_status"] + expected
    catalogue = load_catalogue(simulated.reference_dir)
    # Plans exist before their history is loaded: targets first, landed, then the feed.
    console.print(f"backfill: publishing {simulated.targets:,} plan targets …")
    asyncio.run(publish(settings, [(simulated.targets_file, "targets")], catalogue, progress=False))
    wait_for(
        lambda: (
            worker.get("/api/counts")["plan_targets"] >= before["plan_targets"] + simulated.targets
        ),
        300,
        "the plan targets",
        worker,
    )
    files = [(path, "observations") for path in simulated.feed_files]
    rows = simulated.observations + simulated.revisions
    console.print(
        f"backfill: publishing {rows:,} figures in {len(files)} files (the produce path) while"
        f" the worker consumes; expecting {expected:,} status rows …"
    )
    published: list[Any] = []
    watcher = StatusWatcher(settings, prefix="sim-")
    watcher.start()
    started = time.monotonic()
    publisher = threading.Thread(
        target=lambda: published.append(
            (
                asyncio.run(publish(settings, files, catalogue, progress=False)),
                time.monotonic(),
            )
        ),
        daemon=True,
    )
    publisher.start()
    # Every status row goes to parkpulse.status after it is in ClickHouse: watching the topic
    # costs the worker nothing (polling its API or its 20,000-series /metrics does).
    try:
        wait_for(lambda: watcher.live >= expected, BACKFILL_TIMEOUT, "the status rows", worker, 1.0)
        done_at = time.monotonic()
    except BenchError as exc:
        seconds = time.monotonic() - started
        raise BenchError(
            f"{exc}: {watcher.live:,} of {expected:,} status rows after {seconds:.0f} s"
        ) from None
    finally:
        watcher.stop()
    final = worker.get("/api/counts")["indicator_status"]
    if final < target:
        raise BenchError(f"{final} status rows in ClickHouse (FINAL), expected {target}")
    publisher.join(timeout=60)
    if not published:
        raise BenchError("publishing the backfill did not finish")
    summaries, published_at = published[0]
    seconds = done_at - started
    publish_seconds = published_at - started
    console.print(f"  backfill: {seconds:.1f} s (publishing took {publish_seconds:.1f} s)")
    return {
        "zones": simulated.zones,
        "years": options.years,
        "feed_rows": rows,
        "targets": simulated.targets,
        "rejected": sum(p.summary.rejected for p in summaries),
        "status_rows": expected,
        "publish_seconds": round(publish_seconds, 2),
        "seconds": round(seconds, 2),
        "figures_per_s": round(rows / seconds),
    }


def stored_statuses(worker: Worker) -> set[tuple[str, str, str, str]]:
    """(zone, indicator, plan, status) of every key as ``parkpulse status`` shows it."""
    return {(r["zone"], r["indicator"], r["plan"], r["status"]) for r in worker.get("/api/status")}


def signals_match(worker: Worker, stored: set[tuple[str, str, str, str]] | None = None) -> bool:
    """Whether the worker exports exactly the statuses ClickHouse holds (``parkpulse status``;
    or ``stored``, read before a kill: nothing changes the data meanwhile, and asking the API
    would queue the question behind the restarted worker's own ClickHouse work)."""
    stored = stored_statuses(worker) if stored is None else stored
    return bool(stored) and read_statuses(worker.metrics, timeout=60) == stored


def _recovery(
    options: BenchOptions,
    broker: TansuBroker,
    worker: Worker,
    data_dir: Path,
    reference_dir: Path,
    console: Console,
) -> dict[str, Any]:
    """With the national history loaded: seconds from a worker's ``kill -9`` until a new worker
    exports exactly the stored statuses; then the embedded stack on the same DATA_DIR, and
    seconds from a ``kill -9`` of its Tansu until the same (replaying what had not landed)."""
    kept = sum(1 for p in (data_dir / "feeds" / "ledger").glob("*.json"))
    console.print(f"recovery: waiting for the {kept} kept files to land …")
    wait_for(lambda: worker.get("/api/counts")["feed_ledger"] >= kept, 300, "landing", worker)
    wait_for(lambda: signals_match(worker), 120, "the gauges before the kill", worker, 1.0)
    stored = stored_statuses(worker)
    worker.proc.kill()
    worker.proc.wait()
    killed = time.monotonic()
    out: dict[str, Any] = {"kept_files": kept}
    again = start_worker(
        broker.url,
        data_dir,
        reference_dir,
        options.partitions,
        clickhouse_url=options.clickhouse_url,
    )
    try:
        out["worker_restart_ready_s"] = round(again.ready_at - killed, 2)
        done = wait_for(
            lambda: signals_match(again, stored),
            120,
            "the restarted worker's gauges",
            again,
            SIGNALS_POLL,
        )
        out["worker_restart_s"] = round(done - killed, 2)
    finally:
        again.stop()
    broker.stop()
    console.print(f"  worker kill → gauges back: {out['worker_restart_s']:.1f} s")
    embedded = start_worker(
        None,
        data_dir,
        reference_dir,
        options.partitions,
        clickhouse_url=options.clickhouse_url,
    )
    try:
        wait_for(lambda: signals_match(embedded), 300, "the embedded stack's gauges", embedded)
        stored = stored_statuses(embedded)
        tansu = _child(embedded.proc.pid, "--listener-url")
        os.kill(tansu, signal.SIGKILL)
        killed = time.monotonic()
        wait_for(
            lambda: sum("ready" in line for line in embedded.lines) >= 2,
            300,
            "the new broker",
            embedded,
        )
        done = wait_for(
            lambda: signals_match(embedded, stored),
            300,
            "the gauges after the broker kill",
            embedded,
            SIGNALS_POLL,
        )
        out["broker_restart_s"] = round(done - killed, 2)
        out["replayed_files"] = sum(line.startswith("replayed") for line in embedded.lines)
    finally:
        embedded.stop()
    console.print(
        f"  broker kill → gauges back: {out['broker_restart_s']:.1f} s"
        f" ({out['replayed_files']} of {kept} kept files replayed)"
    )
    return out


def _child(pid: int, marker: str) -> int:
    """The child process of ``pid`` whose command line holds ``marker``."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if ppid == pid and marker.encode() in (entry / "cmdline").read_bytes():
                return int(entry.name)
    raise BenchError(f"no child of {pid} with {marker!r}")


def _goals_met(results: dict[str, Any]) -> dict[str, bool | None]:
    backlog = results.get("registrations_backlog", {}).get("events_per_s")
    live = results.get("registrations_live")
    backfill = results.get("backfill")
    rss = results.get("worker_peak_rss_mb")
    restart = results.get("recovery", {}).get("worker_restart_s")
    return {
        "recovery_worker_restart_s": None
        if restart is None
        else restart <= GOALS["recovery_worker_restart_s"],
        "registrations_events_per_s": None
        if backlog is None
        else backlog >= GOALS["registrations_events_per_s"],
        # A pipeline that keeps up has the same latency at the end of the phase as at its start;
        # one that does not falls further behind with every second.
        "registrations_live_keeps_up": None
        if live is None
        else live["latency_p50_last_third_ms"]
        <= live["latency_p50_first_third_ms"] + KEEP_UP_SLACK_MS,
        "backfill_seconds": None
        if backfill is None
        else backfill.get("seconds", math.inf) <= GOALS["backfill_seconds"],
        "worker_rss_mb": None if rss is None else rss <= GOALS["worker_rss_mb"],
    }


def results_table(results: dict[str, Any]) -> Table:
    """The results as people read them."""
    table = Table(title="parkpulse bench", show_lines=False)
    table.add_column("measure")
    table.add_column("result", justify="right")
    table.add_column("goal", justify="right")
    met = results.get("goals_met", {})

    def mark(key: str) -> str:
        value = met.get(key)
        return "" if value is None else (" [green]✓[/]" if value else " [red]✗[/]")

    backlog = results.get("registrations_backlog")
    if backlog:
        table.add_row(
            "registrations, backlog (broker → worker → ClickHouse)",
            f"{backlog['events_per_s']:,} events/s" + mark("registrations_events_per_s"),
            f"≥ {GOALS['registrations_events_per_s']:,}",
        )
    live = results.get("registrations_live")
    if live:
        table.add_row(
            f"registrations, live at {live['offered_events_per_s']:,.0f}/s",
            f"{live['ingest_events_per_s']:,} events/s" + mark("registrations_live_keeps_up"),
            "keeps up",
        )
        table.add_row(
            "  sent → all in ClickHouse (first sent to last in)",
            f"{live['events_per_s']:,} events/s",
            "",
        )
        latency = f"{live['latency_p50_ms']:,.0f} / {live['latency_p99_ms']:,.0f} ms"
        table.add_row("  latency p50 / p99 (sent → in ClickHouse)", latency, "")
        first, last = live["latency_p50_first_third_ms"], live["latency_p50_last_third_ms"]
        thirds = f"{first:,.0f} → {last:,.0f} ms"
        table.add_row(
            "  latency p50, first third → last third", thirds, f"+{KEEP_UP_SLACK_MS} ms at most"
        )
    ceiling = results.get("ceiling")
    if ceiling:
        table.add_row(
            "ceiling: raw aiokafka consume + orjson decode",
            f"{ceiling['events_per_s']:,} events/s",
            "",
        )
        if "ratio_backlog_to_ceiling" in results:  # not when the registrations phase failed
            ratio = f"{results['ratio_backlog_to_ceiling']:.1%}"
            table.add_row("  pipeline / ceiling", ratio, "")
    backfill = results.get("backfill")
    if backfill and "error" in backfill:
        table.add_row(
            "backfill", f"[red]{backfill['error']}[/]", f"≤ {GOALS['backfill_seconds']} s"
        )
    elif backfill:
        table.add_row(
            f"backfill: {backfill['zones']} zones × {backfill['years']} years "
            f"({backfill['feed_rows']:,} figures → {backfill['status_rows']:,} status rows)",
            f"{backfill['seconds']:.1f} s" + mark("backfill_seconds"),
            f"≤ {GOALS['backfill_seconds']} s",
        )
        publishing = f"{backfill['publish_seconds']} s"
        table.add_row("  of which publishing (produce path)", publishing, "")
    recovery = results.get("recovery")
    if recovery and "error" in recovery:
        table.add_row("recovery", f"[red]{recovery['error']}[/]", "")
    elif recovery:
        table.add_row(
            "recovery: worker kill -9 → gauges = stored status (history loaded)",
            f"{recovery['worker_restart_s']:.1f} s" + mark("recovery_worker_restart_s"),
            f"≤ {GOALS['recovery_worker_restart_s']} s",
        )
        table.add_row(
            f"recovery: broker kill -9 → the same ({recovery['replayed_files']} of"
            f" {recovery['kept_files']} kept files replayed)",
            f"{recovery['broker_restart_s']:.1f} s",
            "",
        )
    if "worker_peak_rss_mb_after_registrations" in results:
        table.add_row(
            "worker peak RSS after the registrations (VmHWM)",
            f"{results['worker_peak_rss_mb_after_registrations']:.0f} MB",
            "",
        )
    if "worker_peak_rss_mb" in results:
        embedded = results.get("clickhouse") == "embedded chdb"
        table.add_row(
            "worker peak RSS, whole run (VmHWM, "
            + ("chdb included)" if embedded else "ClickHouse a server)"),
            f"{results['worker_peak_rss_mb']:.0f} MB" + mark("worker_rss_mb"),
            f"≤ {GOALS['worker_rss_mb']} MB",
        )
        table.add_row(
            "  anonymous memory, peak (sampled; everything but mapped files)",
            f"{results['worker_peak_rss_anon_mb']:.0f} MB",
            "",
        )
        table.add_row(
            "  mapped files now" + (" (chdb's library)" if embedded else ""),
            f"{results['worker_rss_file_backed_mb']:.0f} MB",
            "",
        )
    return table
