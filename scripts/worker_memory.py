"""Where a worker's anonymous memory peaks: the bench's phases with a timeline of RssAnon.

    .venv/bin/python scripts/worker_memory.py [--registrations N] [--no-backfill] [--live]
        [--env NAME=VALUE ...] [--clickhouse-url URL]

Starts Tansu and a worker exactly as ``parkpulse bench`` does (``bench.start_worker``: ``parkpulse
run`` in a subprocess, embedded chdb), then runs the registrations backlog (and with ``--live``
the live phase) and the backfill, sampling the worker's ``/proc/PID/status`` every 0.25 s.
Prints the anonymous peak of each phase, where in the phase it fell, and ``smaps_rollup`` at the
end of each phase; ``--env`` adds variables to the worker's environment (to try a setting without
editing code). Reuses ``var/bench/sim`` (run ``make bench`` or ``parkpulse bench`` once first).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import threading
import time
from pathlib import Path

from rich.console import Console

from parkpulse import bench
from parkpulse.broker import TansuBroker, free_port
from parkpulse.config import Settings
from parkpulse.producers import simulate as sim
from parkpulse.topics import ensure_topics


def status_kb(pid: int, name: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return int(line.split()[1])
    return 0


def cpu_s(pid: int) -> float:
    """The process's user + system CPU seconds so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rollup(pid: int) -> str:
    keep = ("Rss:", "Anonymous:", "Private_Dirty:", "Shared_Clean:", "Swap:")
    lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
    return ", ".join(" ".join(ln.split()[:2]) for ln in lines if ln.startswith(keep))


class Sampler:
    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.phase = "start"
        self.samples: list[tuple[float, str, int]] = []
        self._stop = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        t0 = time.monotonic()
        while not self._stop.is_set():
            try:
                self.samples.append(
                    (time.monotonic() - t0, self.phase, status_kb(self.pid, "RssAnon"))
                )
            except OSError:
                return
            time.sleep(bench.SAMPLE_EVERY)

    def enter(self, phase: str) -> None:
        print(
            f"[{phase}] worker CPU {cpu_s(self.pid):.1f} s,"
            f" anon now {status_kb(self.pid, 'RssAnon') / 1024:.0f} MB; "
            f"{rollup(self.pid)}",
            flush=True,
        )
        self.phase = phase

    def report(self) -> None:
        phases: dict[str, list[tuple[float, int]]] = {}
        for t, phase, kb in self.samples:
            phases.setdefault(phase, []).append((t, kb))
        for phase, points in phases.items():
            t_peak, peak = max(points, key=lambda p: p[1])
            t0, t1 = points[0][0], points[-1][0]
            where = (t_peak - t0) / max(t1 - t0, 1e-9)
            print(
                f"{phase:14s} {t1 - t0:6.1f} s  anon start {points[0][1] / 1024:5.0f} MB"
                f"  peak {peak / 1024:5.0f} MB at {where:4.0%} of the phase"
                f"  end {points[-1][1] / 1024:5.0f} MB"
            )
        print(f"overall peak {max(kb for _, _, kb in self.samples) / 1024:.0f} MB")


def cache_expected(sim_dir: Path) -> None:
    """The bench's expected status rows, worked out once per simulated data set (minutes of CPU
    on a loaded machine) and kept beside it."""
    cached = sim_dir / "expected-status-rows.json"
    compute = bench.expected_status_rows

    def expected(simulated: sim.Simulated, seed: str, first_year: int, years: int) -> int:
        key = f"{(sim_dir / 'manifest.json').read_text()}|{seed}|{first_year}|{years}"
        if cached.exists() and json.loads(cached.read_text())["key"] == key:
            return int(json.loads(cached.read_text())["rows"])
        rows = compute(simulated, seed, first_year, years)
        cached.write_text(json.dumps({"key": key, "rows": rows}))
        return rows

    bench.expected_status_rows = expected  # type: ignore[assignment]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--work-dir", type=Path, default=Path("var/bench"))
    parser.add_argument("--registrations", type=int, default=1_000_000)
    parser.add_argument("--live", action="store_true")
    parser.add_argument("--no-backfill", action="store_true")
    parser.add_argument("--env", action="append", default=[])
    parser.add_argument(
        "--clickhouse-url",
        help="a ClickHouse server (an empty database), e.g. tests/chdb_http_shim.py's, not chdb",
    )
    args = parser.parse_args()
    for item in args.env:
        name, _, value = item.partition("=")
        os.environ[name] = value
    console = Console()
    options = bench.BenchOptions(
        work_dir=args.work_dir,
        registrations=args.registrations,
        live_seconds=15 if args.live else 0,
        clickhouse_url=args.clickhouse_url,
    )
    simulated = bench._simulated(options, console)
    cache_expected(options.work_dir / "sim")
    data_dir = options.work_dir / f"mem-{int(time.time())}"
    broker = TansuBroker(free_port(), options.work_dir / "tansu-mem.log").start()
    settings = Settings(broker=broker.url, partitions=options.partitions, data_dir=data_dir)
    worker = None
    try:
        asyncio.run(ensure_topics(settings))
        stream = sim.RegistrationStream(
            sim.sim_zones(options.zones, options.seed), seed=options.seed
        )
        backlog = asyncio.run(
            sim.publish_registrations(
                settings, stream, args.registrations, batch_size=options.batch_size
            )
        )
        worker = bench.start_worker(
            broker.url,
            data_dir,
            simulated.reference_dir,
            options.partitions,
            clickhouse_url=args.clickhouse_url,
        )
        sampler = Sampler(worker.proc.pid)
        sampler.enter("registrations")
        started = time.process_time()
        if args.registrations:
            if args.live:
                out = bench._registrations(options, settings, stream, backlog, worker, console)
            else:
                n = args.registrations
                done = bench.wait_for(
                    lambda: worker.metric("parkpulse_sink_rows_total", table="registrations") >= n,
                    600,
                    "the backlog",
                    worker,
                    0.25,
                )
                out = {"seconds": round(done - worker.ready_at, 2)}
            print(out)
        if not args.no_backfill:
            sampler.enter("backfill")
            print(bench._backfill(options, simulated, settings, worker, console))
        sampler.enter("end")
        time.sleep(1)
        print(
            f"VmHWM {status_kb(worker.proc.pid, 'VmHWM') / 1024:.0f} MB, "
            f"bench's own sampler: anon peak {worker.peak_anon_mb:.0f} MB; "
            f"this process CPU {time.process_time() - started:.1f} s"
        )
        sampler.report()
    finally:
        if worker is not None:
            worker.stop()
        broker.stop()


if __name__ == "__main__":
    main()
