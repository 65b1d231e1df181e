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
from parkpulse.procfs import children, cpu_seconds, status_mb
from parkpulse.producers import simulate as sim
from parkpulse.producers.publish import publish
from parkpulse.schemas.catalogue import Catalogue, load_catalogue, parse_target_row
from parkpulse.schemas.records import Observation, PlanTarget
from parkpulse.sinks.metrics import read_metric, read_statuses
from parkpulse.status_watch import StatusWatcher, StatusWatchError
from parkpulse.streams.batch_reader import HELPER_MODULE
from parkpulse.streams.plan import evaluate
from parkpulse.topics import REGISTRATIONS, client_options, ensure_topics

# Issue 14's goals, each read from one run's results: where in the results, "≤"/"≥", the limit
# and its unit. Throughput is judged against the ceiling measured in the same run (the VM's speed
# varies twofold between runs); the rest are absolute.
GOALS: dict[str, tuple[tuple[str, ...], str, float, str]] = {
    "ratio_backlog_to_ceiling": (("ratio_backlog_to_ceiling",), "≥", 0.20, "of the ceiling"),
    "registrations_live_p99_ms": (("registrations_live", "latency_p99_ms"), "≤", 1000, "ms"),
    "backfill_seconds": (("backfill", "seconds"), "≤", 20, "s"),
    "produce_rows_per_s": (("backfill", "publish_rows_per_s"), "≥", 200_000, "rows/s"),
    "worker_peak_rss_anon_mb": (("worker_peak_rss_anon_mb",), "≤", 350, "MB"),
    "recovery_worker_restart_s": (("recovery", "worker_restart_s"), "≤", 10, "s"),
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
        """Sample RssAnon (the worker's own heap: Python, Faust, chdb's data, and its reader
        process's: streams/batch_reader.py) until it exits."""

        def run() -> None:
            while self.proc.poll() is None:
                with contextlib.suppress(OSError, BenchError):
                    anon = self._status_mb("RssAnon") + self._reader_anon_mb()
                    self.peak_anon_mb = max(self.peak_anon_mb, anon)
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

    def _reader_anon_mb(self) -> float:
        """RssAnon of the worker's reader process (0 while it has none)."""
        total = 0.0
        for pid in children_with(self.proc.pid, HELPER_MODULE):
            with contextlib.suppress(OSError, KeyError):  # it ended while being read
                total += status_mb(pid, "RssAnon")
        return total

    def _status_mb(self, field: str) -> float:
        try:
            return status_mb(self.proc.pid, field)
        except KeyError as exc:
            raise BenchError(str(exc)) from None

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
    results = _header(options)
    worker: Worker | None = None
    try:
        asyncio.run(ensure_topics(settings))
        backlog = None
        if options.registrations_phase:
            backlog = _load_backlog(options, settings, console)
            console.print("ceiling: raw aiokafka consume + orjson decode …")
            results["ceiling"] = asyncio.run(raw_consume(settings, options.registrations))
        console.print("starting the worker …")
        worker = start_worker(
            broker.url,
            data_dir,
            simulated.reference_dir,
            options.partitions,
            clickhouse_url=options.clickhouse_url,
        )
        _worker_phases(options, results, simulated, settings, backlog, worker, console)
        if options.backfill and "error" not in results["backfill"]:
            results["recovery"] = _attempt(
                "recovery",
                console,
                lambda: _recovery(
                    options, broker, worker, data_dir, simulated.reference_dir, console
                ),
            )
    finally:
        if worker is not None:
            worker.stop()
        broker.stop()
        results["goals_met"] = _goals_met(results)
        options.results.parent.mkdir(parents=True, exist_ok=True)
        options.results.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    return results


def _header(options: BenchOptions) -> dict[str, Any]:
    """What was run, where and when, and the goals it is judged by."""
    return {
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
        "goals": {
            key: f"{sense} {limit:g} {unit}" for key, (_, sense, limit, unit) in GOALS.items()
        },
    }


def _load_backlog(
    options: BenchOptions, settings: Settings, console: Console
) -> tuple[sim.RegistrationStream, sim.PublishedRegistrations]:
    """Publish the registrations backlog before the worker starts."""
    stream = sim.RegistrationStream(sim.sim_zones(options.zones, options.seed), seed=options.seed)
    console.print(f"publishing a backlog of {options.registrations:,} registrations …")
    backlog = asyncio.run(
        sim.publish_registrations(
            settings, stream, options.registrations, batch_size=options.batch_size
        )
    )
    console.print(f"  {backlog.messages:,} envelopes, {backlog.bytes / 1e6:.0f} MB")
    return stream, backlog


def _attempt(name: str, console: Console, phase: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run one phase; a phase that fails gives ``{"error": …}`` and the run goes on."""
    try:
        return phase()
    except BenchError as exc:
        console.print(f"[red]{name}: {exc}[/]")
        return {"error": str(exc)}


def _worker_phases(
    options: BenchOptions,
    results: dict[str, Any],
    simulated: sim.Simulated,
    settings: Settings,
    registrations: tuple[sim.RegistrationStream, sim.PublishedRegistrations] | None,
    worker: Worker,
    console: Console,
) -> None:
    """The registrations (backlog, live; unless skipped) and the backfill on one worker, and
    its memory."""
    if registrations is not None:
        _registration_phases(options, results, settings, registrations, worker, console)
    results["worker_peak_rss_mb_after_registrations"] = round(worker.peak_rss_mb(), 1)
    if options.backfill:
        results["backfill"] = _attempt(
            "backfill", console, lambda: _backfill(options, simulated, settings, worker, console)
        )
    results["worker_peak_rss_mb"] = round(worker.peak_rss_mb(), 1)
    results["worker_rss_file_backed_mb"] = round(worker.rss_file_mb(), 1)
    results["worker_peak_rss_anon_mb"] = round(worker.peak_anon_mb, 1)


def _registration_phases(
    options: BenchOptions,
    results: dict[str, Any],
    settings: Settings,
    registrations: tuple[sim.RegistrationStream, sim.PublishedRegistrations],
    worker: Worker,
    console: Console,
) -> None:
    stream, backlog = registrations
    measured = _attempt(
        "registrations",
        console,
        lambda: _registrations(options, settings, stream, backlog, worker, console),
    )
    if "error" in measured:
        results["registrations_error"] = measured["error"]
        return
    results.update(measured)
    rate, ceiling = measured["registrations_backlog"], results["ceiling"]
    results["ratio_backlog_to_ceiling"] = round(rate["events_per_s"] / ceiling["events_per_s"], 4)


def _registrations(
    options: BenchOptions,
    settings: Settings,
    stream: sim.RegistrationStream,
    backlog: sim.PublishedRegistrations,
    worker: Worker,
    console: Console,
) -> dict[str, Any]:
    """The backlog drained from the worker's start, then a live stream at a set rate."""
    out = {"registrations_backlog": _backlog_phase(options.registrations, backlog, worker)}
    console.print(f"  backlog: {out['registrations_backlog']['events_per_s']:,.0f} events/s")
    console.print(f"live: {options.live_rate:,.0f} events/s for {options.live_seconds:.0f} s …")
    out["registrations_live"] = live = _live_phase(options, settings, stream, worker)
    console.print(
        f"  live: p50 {live['latency_p50_ms']:.0f} ms, p99 {live['latency_p99_ms']:.0f} ms"
    )
    return out


def _registrations_written(worker: Worker) -> float:
    return worker.metric("parkpulse_sink_rows_total", table="registrations")


def _backlog_phase(n: int, backlog: sim.PublishedRegistrations, worker: Worker) -> dict[str, Any]:
    """Seconds from the worker's ``ready`` until all ``n`` are in ClickHouse."""
    done_at = wait_for(
        lambda: _registrations_written(worker) >= n, 600, "the registrations backlog", worker, 0.25
    )
    seconds = done_at - worker.ready_at
    drained = worker.get("/api/registrations/stats")
    if drained["registrations"] != n:
        raise BenchError(f"{drained['registrations']} registrations in ClickHouse, not {n}")
    return {
        "events": n,
        "messages": backlog.messages,
        "seconds": round(seconds, 3),
        "events_per_s": round(n / seconds),
    }


def _live_phase(
    options: BenchOptions, settings: Settings, stream: sim.RegistrationStream, worker: Worker
) -> dict[str, Any]:
    """A live stream at ``--live-rate``; latency per registration as ClickHouse measured it."""
    n, live_n = options.registrations, int(options.live_rate * options.live_seconds)
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
    wait_for(
        lambda: _registrations_written(worker) >= n + live_n,
        300,
        "the live registrations",
        worker,
        0.25,
    )
    stats = worker.get(f"/api/registrations/stats?since={quote(since.isoformat())}")

    def at(key: str) -> datetime:
        return datetime.fromisoformat(stats[key]).replace(tzinfo=UTC)

    span = (at("last_ingested") - at("first_sent")).total_seconds()
    ingest_span = (at("last_ingested") - at("first_ingested")).total_seconds()
    latencies = ("p50", "p99", "p50_first_third", "p50_last_third")
    return {
        "offered_events_per_s": options.live_rate,
        "producer_flush_s": options.live_flush,
        "published_events_per_s": round(live.rate),
        "events": stats["registrations"],
        "messages": live.messages,
        "events_per_s": round(stats["registrations"] / span),
        # While they arrive: ClickHouse's first to last insert of the phase (events_per_s above
        # also counts the last one's latency).
        "ingest_events_per_s": round(stats["registrations"] / max(ingest_span, 1e-3)),
        **{f"latency_{name}_ms": round(stats[f"latency_{name}_ms"], 1) for name in latencies},
    }


def _backfill(
    options: BenchOptions,
    simulated: sim.Simulated,
    settings: Settings,
    worker: Worker,
    console: Console,
) -> dict[str, Any]:
    console.print("backfill: computing the status rows the engine expects …")
    expected = expected_status_rows(simulated, options.seed, options.first_year, options.years)
    target = worker.get("/api/counts")["indicator_status"] + expected
    catalogue = load_catalogue(simulated.reference_dir)
    _backfill_targets(simulated, settings, catalogue, worker, console)
    rows = simulated.observations + simulated.revisions
    console.print(
        f"backfill: publishing {rows:,} figures in {len(simulated.feed_files)} files (the produce"
        f" path) while the worker consumes; expecting {expected:,} status rows …"
    )
    worker_cpu = cpu_seconds(worker.proc.pid)
    summaries, publish_seconds, seconds, publish_cpu = _publish_and_watch(
        simulated, settings, catalogue, worker, expected
    )
    worker_cpu = cpu_seconds(worker.proc.pid) - worker_cpu
    final = worker.get("/api/counts")["indicator_status"]
    if final < target:
        raise BenchError(f"{final} status rows in ClickHouse (FINAL), expected {target}")
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
        "publish_rows_per_s": round(rows / publish_seconds),
        # CPU seconds, which what else runs on the machine barely moves: the worker's (all its
        # threads, chdb's included) from the first figure to the last status row, and the
        # publishing thread's (read, validate, encode, send; pyarrow reads on that thread)
        "worker_cpu_seconds": round(worker_cpu, 2),
        "publish_cpu_seconds": round(publish_cpu, 2),
        "publish_rows_per_cpu_s": round(rows / publish_cpu),
    }


def _backfill_targets(
    simulated: sim.Simulated,
    settings: Settings,
    catalogue: Catalogue,
    worker: Worker,
    console: Console,
) -> None:
    """Plans exist before their history is loaded: the targets first, landed."""
    before = worker.get("/api/counts")["plan_targets"]
    console.print(f"backfill: publishing {simulated.targets:,} plan targets …")
    asyncio.run(publish(settings, [(simulated.targets_file, "targets")], catalogue, progress=False))
    wait_for(
        lambda: worker.get("/api/counts")["plan_targets"] >= before + simulated.targets,
        300,
        "the plan targets",
        worker,
    )


def _publish_and_watch(
    simulated: sim.Simulated,
    settings: Settings,
    catalogue: Catalogue,
    worker: Worker,
    expected: int,
) -> tuple[list[Any], float, float, float]:
    """Publish the feed files (the produce path) while watching ``parkpulse.status`` until the
    ``expected`` status rows went out; returns the publish summaries, the seconds publishing
    took, the seconds until the last status row and the publishing thread's CPU seconds."""
    files = [(path, "observations") for path in simulated.feed_files]
    published: list[Any] = []
    watcher = StatusWatcher(settings, prefix="sim-")
    try:
        watcher.start()  # a process of its own: decoding the rows here would slow the publishing
    except StatusWatchError as exc:
        raise BenchError(str(exc)) from None
    started = time.monotonic()

    def run_publish() -> None:
        cpu = time.thread_time()
        summaries = asyncio.run(publish(settings, files, catalogue, progress=False))
        published.append((summaries, time.monotonic(), time.thread_time() - cpu))

    publisher = threading.Thread(target=run_publish, daemon=True)
    publisher.start()
    # Every status row goes to parkpulse.status after it is in ClickHouse: watching the topic
    # costs the worker nothing (polling its API or its 20,000-series /metrics does).
    try:
        wait_for(
            lambda: watcher.counted() >= expected, BACKFILL_TIMEOUT, "the status rows", worker, 1.0
        )
        done_at = time.monotonic()
    except StatusWatchError as exc:
        raise BenchError(str(exc)) from None
    except BenchError as exc:
        seconds = time.monotonic() - started
        raise BenchError(
            f"{exc}: {watcher.live:,} of {expected:,} status rows after {seconds:.0f} s"
        ) from None
    finally:
        watcher.stop()
    publisher.join(timeout=60)
    if not published:
        raise BenchError("publishing the backfill did not finish")
    summaries, published_at, publish_cpu = published[0]
    return summaries, published_at - started, done_at - started, publish_cpu


def children_with(pid: int, marker: str) -> list[int]:
    """The child processes of ``pid`` whose command lines hold ``marker``."""
    return [child for child, cmd in children(pid).items() if marker in cmd]


def _child_with(pid: int, marker: str) -> int:
    """The child process of ``pid`` whose command line holds ``marker``."""
    found = children_with(pid, marker)
    if not found:
        raise BenchError(f"no child of {pid} with {marker!r}")
    return found[0]


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

    def start(broker_url: str | None) -> Worker:
        return start_worker(
            broker_url,
            data_dir,
            reference_dir,
            options.partitions,
            clickhouse_url=options.clickhouse_url,
        )

    out: dict[str, Any] = {"kept_files": kept, **_worker_kill(worker, lambda: start(broker.url))}
    broker.stop()
    console.print(f"  worker kill → gauges back: {out['worker_restart_s']:.1f} s")
    out.update(_broker_kill(start(None)))
    console.print(
        f"  broker kill → gauges back: {out['broker_restart_s']:.1f} s"
        f" ({out['replayed_files']} of {kept} kept files replayed)"
    )
    return out


def _worker_kill(worker: Worker, start: Callable[[], Worker]) -> dict[str, float]:
    """``kill -9`` the worker; seconds until its successor is ready and exports the statuses."""
    stored = stored_statuses(worker)
    worker.proc.kill()
    worker.proc.wait()
    killed = time.monotonic()
    again = start()
    try:
        ready = again.ready_at - killed
        done = wait_for(
            lambda: signals_match(again, stored),
            120,
            "the restarted worker's gauges",
            again,
            SIGNALS_POLL,
        )
    finally:
        again.stop()
    return {"worker_restart_ready_s": round(ready, 2), "worker_restart_s": round(done - killed, 2)}


def _broker_kill(embedded: Worker) -> dict[str, float]:
    """On the embedded stack, ``kill -9`` its Tansu; seconds until the supervisor's new broker
    has the worker export the stored statuses again, and how many kept files it replayed."""
    try:
        wait_for(lambda: signals_match(embedded), 300, "the embedded stack's gauges", embedded)
        stored = stored_statuses(embedded)
        os.kill(_child_with(embedded.proc.pid, "--listener-url"), signal.SIGKILL)
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
    finally:
        embedded.stop()
    return {
        "broker_restart_s": round(done - killed, 2),
        "replayed_files": sum(line.startswith("replayed") for line in embedded.lines),
    }


def _measured(results: dict[str, Any], path: tuple[str, ...]) -> float | None:
    value: Any = results
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value if isinstance(value, int | float) else None


def _goals_met(results: dict[str, Any]) -> dict[str, bool | None]:
    """Each goal met (True), missed (False) or not measured in this run (None)."""
    met: dict[str, bool | None] = {}
    for key, (path, sense, limit, _unit) in GOALS.items():
        value = _measured(results, path)
        met[key] = None if value is None else value <= limit if sense == "≤" else value >= limit
    # A pipeline that keeps up has the same latency at the end of the phase as at its start;
    # one that does not falls further behind with every second.
    live = results.get("registrations_live")
    met["registrations_live_keeps_up"] = (
        None
        if live is None
        else live["latency_p50_last_third_ms"]
        <= live["latency_p50_first_third_ms"] + KEEP_UP_SLACK_MS
    )
    return met


Row = tuple[str, str, str]  # measure, result, goal


def _goal(key: str) -> str:
    _path, sense, limit, unit = GOALS[key]
    return (
        f"{sense} {limit:.0%} {unit}" if unit == "of the ceiling" else f"{sense} {limit:,g} {unit}"
    )


def _registration_rows(results: dict[str, Any], mark: Callable[[str], str]) -> list[Row]:
    rows: list[Row] = []
    if backlog := results.get("registrations_backlog"):
        rows.append(
            (
                "registrations, backlog (broker → worker → ClickHouse)",
                f"{backlog['events_per_s']:,} events/s",
                "",
            )
        )
    if ceiling := results.get("ceiling"):
        rows.append(
            ("ceiling: raw aiokafka consume + orjson decode", f"{ceiling['events_per_s']:,}", "")
        )
    if "ratio_backlog_to_ceiling" in results:  # not when the registrations phase failed
        ratio = f"{results['ratio_backlog_to_ceiling']:.1%}" + mark("ratio_backlog_to_ceiling")
        rows.append(("  backlog / ceiling", ratio, _goal("ratio_backlog_to_ceiling")))
    if live := results.get("registrations_live"):
        first, last = live["latency_p50_first_third_ms"], live["latency_p50_last_third_ms"]
        rows += [
            (
                f"registrations, live at {live['offered_events_per_s']:,.0f}/s",
                f"{live['ingest_events_per_s']:,} events/s" + mark("registrations_live_keeps_up"),
                "keeps up",
            ),
            ("  sent → all in ClickHouse (first sent to last in)", f"{live['events_per_s']:,}", ""),
            ("  latency p50 (sent → in ClickHouse)", f"{live['latency_p50_ms']:,.0f} ms", ""),
            (
                "  latency p99",
                f"{live['latency_p99_ms']:,.0f} ms" + mark("registrations_live_p99_ms"),
                _goal("registrations_live_p99_ms"),
            ),
            (
                "  latency p50, first third → last third",
                f"{first:,.0f} → {last:,.0f} ms",
                f"+{KEEP_UP_SLACK_MS} ms at most",
            ),
        ]
    return rows


def _backfill_rows(results: dict[str, Any], mark: Callable[[str], str]) -> list[Row]:
    backfill = results.get("backfill")
    if not backfill:
        return []
    if "error" in backfill:
        return [("backfill", f"[red]{backfill['error']}[/]", _goal("backfill_seconds"))]
    rows: list[Row] = [
        (
            f"backfill: {backfill['zones']} zones × {backfill['years']} years "
            f"({backfill['feed_rows']:,} figures → {backfill['status_rows']:,} status rows)",
            f"{backfill['seconds']:.1f} s" + mark("backfill_seconds"),
            _goal("backfill_seconds"),
        ),
        ("  of which publishing (produce path)", f"{backfill['publish_seconds']} s", ""),
    ]
    if "publish_rows_per_s" in backfill:
        rows.append(
            (
                "  produce path",
                f"{backfill['publish_rows_per_s']:,} rows/s" + mark("produce_rows_per_s"),
                _goal("produce_rows_per_s"),
            )
        )
    if "publish_rows_per_cpu_s" in backfill:
        rows += [
            (
                "  produce path per CPU second of its thread",
                f"{backfill['publish_rows_per_cpu_s']:,} rows/s",
                "",
            ),
            (
                "  worker CPU, first figure → last status row (all threads)",
                f"{backfill['worker_cpu_seconds']} s",
                "",
            ),
        ]
    return rows


def _recovery_rows(results: dict[str, Any], mark: Callable[[str], str]) -> list[Row]:
    recovery = results.get("recovery")
    if not recovery:
        return []
    if "error" in recovery:
        return [("recovery", f"[red]{recovery['error']}[/]", "")]
    return [
        (
            "recovery: worker kill -9 → gauges = stored status (history loaded)",
            f"{recovery['worker_restart_s']:.1f} s" + mark("recovery_worker_restart_s"),
            _goal("recovery_worker_restart_s"),
        ),
        (
            f"recovery: broker kill -9 → the same ({recovery['replayed_files']} of"
            f" {recovery['kept_files']} kept files replayed)",
            f"{recovery['broker_restart_s']:.1f} s",
            "",
        ),
    ]


def _memory_rows(results: dict[str, Any], mark: Callable[[str], str]) -> list[Row]:
    rows: list[Row] = []
    if "worker_peak_rss_mb_after_registrations" in results:
        after = f"{results['worker_peak_rss_mb_after_registrations']:.0f} MB"
        rows.append(("worker peak RSS after the registrations (VmHWM)", after, ""))
    if "worker_peak_rss_mb" in results:
        embedded = results.get("clickhouse") == "embedded chdb"
        rows += [
            (
                "worker peak RSS, whole run (VmHWM, "
                + ("chdb included)" if embedded else "ClickHouse a server)"),
                f"{results['worker_peak_rss_mb']:.0f} MB",
                "",
            ),
            (
                "  anonymous memory, peak (sampled; everything but mapped files)",
                f"{results['worker_peak_rss_anon_mb']:.0f} MB" + mark("worker_peak_rss_anon_mb"),
                _goal("worker_peak_rss_anon_mb"),
            ),
            (
                "  mapped files now" + (" (chdb's library)" if embedded else ""),
                f"{results['worker_rss_file_backed_mb']:.0f} MB",
                "",
            ),
        ]
    return rows


def results_table(results: dict[str, Any]) -> Table:
    """The results as people read them, each goal of issue 14 beside its measure."""
    table = Table(title="parkpulse bench", show_lines=False)
    table.add_column("measure")
    table.add_column("result", justify="right")
    table.add_column("goal", justify="right")
    met = results.get("goals_met", {})

    def mark(key: str) -> str:
        value = met.get(key)
        return "" if value is None else (" [green]✓[/]" if value else " [red]✗[/]")

    for rows in (_registration_rows, _backfill_rows, _recovery_rows, _memory_rows):
        for row in rows(results, mark):
            table.add_row(*row)
    return table
