"""Reproduce just the registrations backlog phase of ``make bench``, for profiling (issue 14).

Starts a Tansu broker, publishes N simulated registrations (as the bench does), reads them back
with a raw aiokafka consumer (the bench's ceiling), then starts ``parkpulse run`` as the bench
does and waits until all N are in ClickHouse. Prints wall seconds and — less noisy on a shared
machine — CPU seconds: the worker's (``/proc/PID/stat`` utime + stime, chdb's threads included)
against this process's own for the ceiling, as µs per event and their ratio, and the worker's
CPU per thread (Python threads by name: ``MainThread`` is the event loop, ``clickhouse_0`` the
store's thread). With ``--py-spy`` it records the worker's stacks per thread while it drains the
backlog (``--format raw``: collapsed stacks, one line per stack, the thread first) or a flame
graph (``.svg``); ``PYSPY_NATIVE=1`` adds native frames (the collector shows as
``gc_collect_main``), ``PYSPY_GIL=1`` samples only the thread holding the interpreter lock
(what the worker's threads wait for). To measure other code against the same run conditions,
run it from outside the worktree with ``PYTHONPATH`` set to that code's checkout (the worker
inherits it).

    .venv/bin/python scripts/profile_registrations.py [-n 300000] [--py-spy prof.txt]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

from parkpulse.bench import children_with, raw_consume, start_worker, wait_for
from parkpulse.broker import TansuBroker, free_port
from parkpulse.config import Settings
from parkpulse.procfs import cpu_seconds
from parkpulse.producers import simulate as sim
from parkpulse.streams.batch_reader import HELPER_MODULE
from parkpulse.topics import ensure_topics

NATIVE = ("--native",) if os.environ.get("PYSPY_NATIVE") else ()
GIL = ("--gil",) if os.environ.get("PYSPY_GIL") else ()  # only the thread holding the lock


def python_threads(pid: int) -> dict[int, str]:
    """OS thread id → Python thread name, from ``py-spy dump --json``."""
    py_spy = str(Path(sys.executable).with_name("py-spy"))
    dump = subprocess.run(
        [py_spy, "dump", "--pid", str(pid), "--json", "--nonblocking"],
        capture_output=True,
        check=False,
    )
    try:
        return {t["os_thread_id"]: t["thread_name"] or "?" for t in orjson.loads(dump.stdout)}
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return {}


def thread_cpu(pid: int, names: dict[int, str]) -> dict[str, float]:
    """CPU seconds per thread name (threads of one name summed; Python threads by their
    Python name)."""
    out: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:  # the thread ended
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        name = names.get(int(task.name)) or name.rstrip("0123456789") or name
        fields = stat.rsplit(")", 1)[1].split()
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12]))
    tick = os.sysconf("SC_CLK_TCK")
    return {name: ticks / tick for name, ticks in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--registrations", type=int, default=300_000)
    parser.add_argument("--batch-size", type=int, default=sim.BATCH_SIZE)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--py-spy", type=Path, help="record the worker into this file")
    parser.add_argument("--rate", type=int, default=97, help="py-spy samples per second")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="parkpulse-regprof-"))
    simulated = sim.simulate(work / "sim", feeds=False)
    broker = TansuBroker(free_port(), work / "tansu.log").start()
    settings = Settings(broker=broker.url, partitions=args.partitions, data_dir=work / "data")
    worker = spy = None
    try:
        asyncio.run(ensure_topics(settings))
        n = args.registrations
        stream = sim.RegistrationStream(sim.sim_zones(), seed=sim.SEED)
        asyncio.run(sim.publish_registrations(settings, stream, n, batch_size=args.batch_size))
        cpu0 = time.process_time()
        ceiling = asyncio.run(raw_consume(settings, n))
        ceiling_cpu = time.process_time() - cpu0
        worker = start_worker(broker.url, work / "data", simulated.reference_dir, args.partitions)
        pid = worker.proc.pid
        cpu_start = cpu_seconds(pid)
        names = python_threads(pid)
        threads_start = thread_cpu(pid, names)
        if args.py_spy:
            fmt = "raw" if args.py_spy.suffix != ".svg" else "flamegraph"
            spy = subprocess.Popen(
                [
                    str(Path(sys.executable).with_name("py-spy")),
                    *("record", "--pid", str(pid), "--rate", str(args.rate)),
                    *("--format", fmt, "-o", str(args.py_spy), "--threads", *NATIVE, *GIL),
                ]
            )

        def written() -> bool:
            return worker.metric("parkpulse_sink_rows_total", table="registrations") >= n

        done = wait_for(written, 900, "the backlog", worker, 0.25)
        cpu = cpu_seconds(pid) - cpu_start
        helpers = 0.0  # the reader process's CPU since its start
        for helper in children_with(pid, HELPER_MODULE):
            with contextlib.suppress(OSError):  # it stopped meanwhile
                helpers += cpu_seconds(helper)
        threads = thread_cpu(pid, names | python_threads(pid))
        wall = done - worker.ready_at
        print(
            f"ceiling: {ceiling['events_per_s']:,} events/s, "
            f"{ceiling_cpu / n * 1e6:.2f} µs CPU/event"
        )
        print(
            f"backlog: {n / wall:,.0f} events/s ({wall:.1f} s wall), "
            f"{cpu / n * 1e6:.2f} µs CPU/event"
        )
        by_thread = {k: v - threads_start.get(k, 0.0) for k, v in threads.items()}
        for name, seconds in sorted(by_thread.items(), key=lambda kv: -kv[1])[:8]:
            print(f"  thread {name:24s} {seconds / n * 1e6:6.2f} µs CPU/event")
        print(f"  reader process   {helpers / n * 1e6:6.2f} µs CPU/event (not in the worker's)")
        print(
            f"ratio wall {n / wall / ceiling['events_per_s']:.1%}, "
            f"CPU {ceiling_cpu / (cpu + helpers):.1%}"
        )
    finally:
        if spy is not None:
            spy.send_signal(2)
            spy.wait(timeout=60)
        if worker is not None:
            worker.stop()
        broker.stop()


if __name__ == "__main__":
    main()
