"""``parkpulse run`` and ``parkpulse worker``: the whole pipeline in one process.

``run`` on the embedded default starts Tansu on loopback, opens chdb under DATA_DIR, starts the
Faust worker with its HTTP API and the metrics endpoint, publishes the bundled plan targets and
the demo feed, and keeps a scoreboard on the terminal. ``worker`` is the same process against
configured servers, without the demo and the scoreboard.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable
from importlib import resources
from pathlib import Path
from typing import Any

import faust
import orjson
from rich.console import Console
from rich.live import Live

from parkpulse.broker import TansuBroker
from parkpulse.config import Settings
from parkpulse.logs import get_logger, log_event
from parkpulse.producers.demo import write_demo_feed
from parkpulse.producers.publish import publish
from parkpulse.report import keep_report_fresh
from parkpulse.schemas.catalogue import Catalogue, load_catalogue
from parkpulse.scoreboard import status_table
from parkpulse.sinks.clickhouse import ClickHouseStore
from parkpulse.sinks.metrics import PipelineMetrics
from parkpulse.streams.app import build_app
from parkpulse.topics import ensure_topics

log = get_logger("run")

SCOREBOARD_EVERY = 2.0


def bundled_targets_file(settings: Settings) -> Path:
    """The shipped plan_targets.csv as a real file (publish reads paths)."""
    dest = settings.data_dir / "reference" / "plan_targets.csv"
    dest.parent.mkdir(parents=True, exist_ok=True)
    text = resources.files("parkpulse.reference").joinpath("plan_targets.csv").read_bytes()
    dest.write_bytes(text)
    return dest


def write_run_file(
    settings: Settings, metrics_addr: tuple[str, int], store: ClickHouseStore
) -> None:
    """DATA_DIR/run.json: where the running stack listens (never any secret)."""
    info = {
        "pid": os.getpid(),
        "broker": settings.broker_url,
        "api": f"http://{settings.api_host}:{settings.api_port}",
        "metrics": f"http://{metrics_addr[0]}:{metrics_addr[1]}/metrics",
        "clickhouse": settings.clickhouse.display,
        "data_dir": str(settings.data_dir.resolve()),
    }
    settings.run_file.write_bytes(orjson.dumps(info, option=orjson.OPT_INDENT_2))


async def _scoreboard(store: ClickHouseStore, console: Console) -> None:
    """Redraw the status table whenever it changes (in place on a terminal)."""
    last: list[dict[str, Any]] | None = None
    live = Live(console=console, auto_refresh=False) if console.is_terminal else None
    with live or contextlib.nullcontext():
        while True:
            await asyncio.sleep(SCOREBOARD_EVERY)
            rows = await store.arun(store.latest_status)
            if rows == last:
                continue
            last = rows
            table = status_table(rows, title=f"parkpulse scoreboard — {len(rows)} targets")
            if live is not None:
                live.update(table, refresh=True)
            else:
                console.print(table)


def serve(
    settings: Settings,
    *,
    demo: bool,
    scoreboard: bool,
    console: Console | None = None,
    catalogue: Catalogue | None = None,
) -> int:
    """Run the worker (and on the embedded default, the broker) until Ctrl-C or SIGTERM."""
    console = console or Console()
    catalogue = catalogue or load_catalogue(settings.reference_dir)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    broker: TansuBroker | None = None
    store: ClickHouseStore | None = None
    background: list[asyncio.Task[Any]] = []
    try:
        if settings.embedded_broker:
            broker = TansuBroker(settings.broker_port, settings.data_dir / "tansu.log").start()
        asyncio.run(ensure_topics(settings))
        store = ClickHouseStore.open(settings.clickhouse)
        store.run(store.write_reference, catalogue)
        metrics = PipelineMetrics()
        metrics_addr = metrics.serve(settings.metrics_host, settings.metrics_port)
        ready_store = store

        async def on_ready(app: faust.App) -> None:
            write_run_file(settings, metrics_addr, ready_store)
            print(
                f"parkpulse ready broker={settings.broker_url}"
                f" api=http://{settings.api_host}:{settings.api_port}"
                f" metrics=http://{metrics_addr[0]}:{metrics_addr[1]}/metrics"
                f" clickhouse={settings.clickhouse.display}",
                flush=True,
            )
            log_event(log, "ready", broker=settings.broker_url, data_dir=str(settings.data_dir))
            files = [(bundled_targets_file(settings), "targets")]
            if demo:
                feed = settings.data_dir / "demo" / "demo-feed.csv"
                feed.parent.mkdir(parents=True, exist_ok=True)
                write_demo_feed(feed)
                files.append((feed, "observations"))
            background.append(asyncio.create_task(_publish_reference(settings, files, catalogue)))
            report = keep_report_fresh(ready_store, catalogue, settings.data_dir / "report.html")
            background.append(asyncio.create_task(report))
            if scoreboard:
                background.append(asyncio.create_task(_scoreboard(ready_store, console)))

        app = build_app(settings, store, metrics, catalogue, on_ready=_guarded(on_ready))
        worker = faust.Worker(
            app,
            loglevel=settings.log_level,
            quiet=True,
            override_logging=False,
            redirect_stdouts=False,
        )
        with contextlib.suppress(SystemExit):
            worker.execute_from_commandline()
        return 0
    finally:
        for task in background:
            task.cancel()
        with contextlib.suppress(FileNotFoundError):
            settings.run_file.unlink()
        if store is not None:
            store.close()
        if broker is not None:
            broker.stop()
        log_event(log, "stopped")


async def _publish_reference(
    settings: Settings, files: list[tuple[Path, str]], catalogue: Catalogue
) -> None:
    results = await publish(settings, files, catalogue, progress=False)
    for item in results:
        s = item.summary
        print(
            f"published {item.path.name}: {s.accepted} accepted, {s.rejected} rejected"
            + (
                f" ({', '.join(f'{k}={v}' for k, v in sorted(s.by_reason.items()))})"
                if s.rejected
                else ""
            ),
            flush=True,
        )


def _guarded(
    fn: Callable[[faust.App], Awaitable[None]],
) -> Callable[[faust.App], Awaitable[None]]:
    async def wrapper(app: faust.App) -> None:
        try:
            await fn(app)
        except Exception as exc:  # a failed demo must not take the worker down
            log_event(log, "on_ready_failed", level=40, error=repr(exc))

    return wrapper
