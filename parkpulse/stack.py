"""``parkpulse run`` and ``parkpulse worker``: the pipeline as processes.

Against a configured broker (``--broker``, production) one process does the work (``work``):
it opens ClickHouse (chdb under DATA_DIR, or a server, connected to lazily so a ClickHouse that
is down does not stop the worker from starting), runs the Faust worker with its HTTP API and
the metrics endpoint, publishes the bundled plan targets (and with ``run`` the demo feed), and
keeps the report (and with ``run`` a scoreboard on the terminal) up to date.

On the embedded default this process supervises two children instead (``supervise``): Tansu,
and a worker (``python -m parkpulse.stack``) pointed at it. Tansu keeps topics in memory, so
whenever it dies the supervisor kills the worker (whose consumer positions no longer mean
anything), starts Tansu again on the same port, recreates the topics and starts a new worker,
which re-publishes the feeds kept under DATA_DIR/feeds that have not landed in ClickHouse yet
(producers/kept.py): ClickHouse is the durable record and re-publication is idempotent, so it
ends up as if nothing had happened. A worker that crashes is restarted with backoff and
re-publishes nothing (the broker still holds its uncommitted tail). Both children die with the
supervisor, even on SIGKILL.

Offsets are committed only while the worker runs normally (``CommitGuard``): a batch that was
interrupted — the worker stopping while ClickHouse is down, an agent raising — is never
committed, and the broker hands it out again.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import faust
import orjson
from rich.console import Console
from rich.live import Live

from parkpulse.broker import TansuBroker, die_with_parent
from parkpulse.config import Settings, child_environment
from parkpulse.group_member import let_go_of_predecessor, remember_member
from parkpulse.logs import get_logger, log_event, setup_logging
from parkpulse.memory import keep_trimmed, tune_chdb_heap, tune_collector, tune_malloc
from parkpulse.producers import kept
from parkpulse.producers.demo import write_demo_feed
from parkpulse.producers.publish import publish
from parkpulse.report import keep_report_fresh
from parkpulse.schemas.catalogue import Catalogue, load_catalogue
from parkpulse.scoreboard import status_table
from parkpulse.sinks.clickhouse import ClickHouseStore
from parkpulse.sinks.metrics import PipelineMetrics
from parkpulse.sinks.retry import retry_store
from parkpulse.streams.faust_internals import replace_commits
from parkpulse.streams.landing import keep_marking_landed
from parkpulse.streams.pipeline import build_app
from parkpulse.topics import ensure_topics
from parkpulse.vocabulary import DEFAULT_LANG, Lang, text

log = get_logger("run")

SCOREBOARD_EVERY = 2.0
EX_SOFTWARE = 70  # a worker that stopped because an agent crashed (sysexits.h)
WATCH_EVERY = 0.25  # how often the supervisor looks at its children
WORKER_STOP_TIMEOUT = 60.0  # SIGTERM → SIGKILL for the worker child
RESTART_DELAY_MAX = 30.0
BACKGROUND_DELAY_MAX = 30.0


def bundled_targets_file(settings: Settings) -> Path:
    """The shipped plan_targets.csv as a real file (publish reads paths)."""
    dest = settings.data_dir / "reference" / "plan_targets.csv"
    dest.parent.mkdir(parents=True, exist_ok=True)
    text = resources.files("parkpulse.reference").joinpath("plan_targets.csv").read_bytes()
    dest.write_bytes(text)
    return dest


def write_run_file(
    settings: Settings,
    metrics_addr: tuple[str, int],
    store: ClickHouseStore,
    pid: int | None = None,
) -> None:
    """DATA_DIR/run.json: where the running stack listens (never any secret)."""
    info = {
        "pid": pid or os.getpid(),
        "host": socket.gethostname(),  # replicas sharing one DATA_DIR have the same pid (1)
        "broker": settings.broker_url,
        "api": f"http://{settings.api_host}:{settings.api_port}",
        "metrics": f"http://{metrics_addr[0]}:{metrics_addr[1]}/metrics",
        "clickhouse": settings.clickhouse.display,
        "data_dir": str(settings.data_dir.resolve()),
        "broker_epoch": settings.broker_epoch,
    }
    settings.run_file.write_bytes(orjson.dumps(info, option=orjson.OPT_INDENT_2))


def remove_run_file(settings: Settings, pid: int | None = None) -> None:
    """Remove DATA_DIR/run.json if this process (``pid``, on this host) wrote it: replicas
    sharing a DATA_DIR (``docker compose up --scale worker=3``) each write it when ready, and
    one stopping must not take away the others' (the last one written points at a live one)."""
    try:
        info = orjson.loads(settings.run_file.read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError):
        return
    if info.get("pid") == (pid or os.getpid()) and info.get("host") == socket.gethostname():
        settings.run_file.unlink(missing_ok=True)


async def _scoreboard(
    store: ClickHouseStore,
    console: Console,
    lang: Lang = DEFAULT_LANG,
    catalogue: Catalogue | None = None,
) -> None:
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
            title = f"{text('scoreboard', lang)} — {len(rows)}"
            table = status_table(rows, title=title, lang=lang, catalogue=catalogue)
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
    """``run`` / ``worker``: supervise the embedded stack, or work against a configured broker."""
    if settings.embedded_broker:
        return Supervisor(settings, demo=demo, scoreboard=scoreboard).run()
    return work(settings, demo=demo, scoreboard=scoreboard, console=console, catalogue=catalogue)


# -- the worker ---------------------------------------------------------------------------


class CommitGuard:
    """Lets the Faust consumer commit offsets only while the worker runs normally.

    Faust acks the events of a batch whose agent loop was interrupted (``take_events`` acks in a
    ``finally``), and on an agent error it commits at once, skipping the batch (its documented
    poison-message behaviour). Either would drop a batch that never reached ClickHouse. So:
    no commit once the worker is stopping (the last second of work is redelivered, which is
    idempotent), and an agent error holds all commits and stops the worker with EX_SOFTWARE, so
    the batch goes to the restarted worker instead of being skipped.
    """

    def __init__(self, app: faust.App) -> None:
        self.app = app
        self.crashed: BaseException | None = None
        self._commit = replace_commits(app.consumer, self.commit, self.on_task_error)

    @property
    def holding(self) -> bool:
        return self.crashed is not None or bool(self.app.should_stop)

    async def commit(self, *args: Any, **kwargs: Any) -> bool:
        if self.holding:
            return False
        return bool(await self._commit(*args, **kwargs))

    async def on_task_error(self, exc: BaseException) -> None:
        if self.app.should_stop:  # a batch given up on the way out (ClickHouse down, say)
            log_event(log, "batch_left_for_redelivery", level=logging.WARNING, error=repr(exc))
            return
        if self.crashed is None:
            self.crashed = exc
            log_event(log, "agent_crashed", level=logging.ERROR, error=repr(exc)[:500])
            os.kill(os.getpid(), signal.SIGTERM)  # the ordinary, graceful way out


def work(
    settings: Settings,
    *,
    demo: bool,
    scoreboard: bool,
    replay: bool = False,
    console: Console | None = None,
    catalogue: Catalogue | None = None,
    supervisor_pid: int | None = None,
) -> int:
    """The Faust worker against ``settings.broker`` until Ctrl-C or SIGTERM; its exit status."""
    tune_malloc()
    tune_chdb_heap()
    console = console or Console()
    catalogue = catalogue or load_catalogue(settings.reference_dir)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store: ClickHouseStore | None = None
    metrics: PipelineMetrics | None = None
    background: list[asyncio.Task[Any]] = []
    code = 0
    try:
        asyncio.run(ensure_topics(settings))
        asyncio.run(let_go_of_predecessor(settings))  # a killed worker's member, if it was here
        store = ClickHouseStore.open(settings.clickhouse)
        metrics = PipelineMetrics()
        metrics.show_names(catalogue, settings.lang)
        metrics_addr = metrics.serve(settings.metrics_host, settings.metrics_port)
        ready_store, ready_metrics = store, metrics

        async def on_ready(app: faust.App) -> None:
            write_run_file(settings, metrics_addr, ready_store, supervisor_pid)
            _announce_ready(settings, metrics_addr)
            jobs = _background_jobs(
                settings, ready_store, ready_metrics, catalogue, console, demo, replay, scoreboard
            )
            for name, factory in jobs.items():
                background.append(asyncio.create_task(_keep_going(name, factory)))

        app = build_app(settings, store, metrics, catalogue, on_ready=_guarded(on_ready))
        remember_member(app, settings.data_dir)
        tune_collector()
        code = _run_worker(app, settings)
        return code
    finally:
        for task in background:
            task.cancel()
        if supervisor_pid is None:  # a supervised worker leaves run.json to its supervisor
            remove_run_file(settings)
        if store is not None:
            store.close()
        if metrics is not None:
            metrics.close()
        log_event(log, "stopped", code=code)


def _announce_ready(settings: Settings, metrics_addr: tuple[str, int]) -> None:
    """The line a supervisor (and a person) waits for: where the worker listens."""
    print(
        f"parkpulse ready broker={settings.broker_url}"
        f" api=http://{settings.api_host}:{settings.api_port}"
        f" metrics=http://{metrics_addr[0]}:{metrics_addr[1]}/metrics"
        f" clickhouse={settings.clickhouse.display}",
        flush=True,
    )
    log_event(log, "ready", broker=settings.broker_url, data_dir=str(settings.data_dir))


def _background_jobs(
    settings: Settings,
    store: ClickHouseStore,
    metrics: PipelineMetrics,
    catalogue: Catalogue,
    console: Console,
    demo: bool,
    replay: bool,
    scoreboard: bool,
) -> dict[str, Callable[[], Awaitable[None]]]:
    """What a ready worker does beside its agents, by name, in the order they start."""
    report = settings.data_dir / "report.html"
    jobs: dict[str, Callable[[], Awaitable[None]]] = {
        "reference": lambda: _write_reference(store, metrics, catalogue),
        "publish": lambda: _publish_startup(settings, store, metrics, catalogue, demo, replay),
        "landing": lambda: _mark_landed(settings, store, metrics),
        "trim": keep_trimmed,
        "report": lambda: keep_report_fresh(
            store, catalogue, report, lang=settings.lang, after=metrics.statuses.shown
        ),
    }
    if scoreboard:
        jobs["scoreboard"] = lambda: _scoreboard(store, console, settings.lang, catalogue)
    return jobs


def _run_worker(app: faust.App, settings: Settings) -> int:
    """Run the Faust worker until it stops; EX_SOFTWARE when an agent crashed (CommitGuard)."""
    guard = CommitGuard(app)
    worker = faust.Worker(
        app,
        loglevel=settings.log_level,
        quiet=True,
        override_logging=False,
        redirect_stdouts=False,
    )
    code = 0
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0
    if guard.crashed is not None:
        code = EX_SOFTWARE
    return code


async def _keep_going(name: str, factory: Callable[[], Awaitable[None]]) -> None:
    """Run a background job; if it fails (ClickHouse down, say) log it and start it again."""
    delay = 1.0
    while True:
        try:
            await factory()
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log_event(
                log, "background_retry", level=logging.WARNING, task=name, error=repr(exc)[:300]
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKGROUND_DELAY_MAX)


async def _write_reference(
    store: ClickHouseStore, metrics: PipelineMetrics, catalogue: Catalogue
) -> None:
    """Zones and indicators, once ClickHouse can be reached."""
    await retry_store(store, store.write_reference, catalogue, metrics=metrics, stopping=_never)


def _never() -> bool:
    return False


REPLAYED_FILE = "replayed-epoch"  # under DATA_DIR/feeds: the broker epoch last replayed into


async def _publish_startup(
    settings: Settings,
    store: ClickHouseStore,
    metrics: PipelineMetrics,
    catalogue: Catalogue,
    demo: bool,
    replay: bool,
) -> None:
    """Into a fresh embedded broker, re-publish the kept feeds that have not landed (once per
    broker epoch, so a restarted worker re-publishes nothing); then the bundled targets and the
    demo feed unless they were published before."""
    fresh = [(bundled_targets_file(settings), "targets")]
    if demo:
        feed = settings.data_dir / "demo" / "demo-feed.csv"
        feed.parent.mkdir(parents=True, exist_ok=True)
        write_demo_feed(feed)
        fresh.append((feed, "observations"))
    marker = settings.data_dir / kept.ARCHIVE_DIR / REPLAYED_FILE
    epoch = settings.broker_epoch or ""
    if replay and _read_text(marker) != epoch:
        landed = await retry_store(store, store.landed_files, metrics=metrics, stopping=_never)
        todo = kept.archived(settings, skip=landed)
        log_event(log, "replay", files=len(todo), landed=len(landed))
        if todo:
            await _publish_and_report(settings, todo, catalogue, verb="replayed")
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(epoch)
    names = {p.name for p, _ in kept.archived(settings)}
    fresh = [(p, kind) for p, kind in fresh if kept.kept_name(p) not in names]
    if fresh:
        await _publish_and_report(settings, fresh, catalogue, verb="published")


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text()
    except FileNotFoundError:
        return None


async def _mark_landed(
    settings: Settings, store: ClickHouseStore, metrics: PipelineMetrics
) -> None:
    """Record kept files as landed in ClickHouse once the group committed past them."""
    await keep_marking_landed(
        settings,
        lambda: retry_store(store, store.landed_files, metrics=metrics, stopping=_never),
        lambda files: retry_store(
            store, store.mark_landed, files, metrics=metrics, stopping=_never
        ),
    )


async def _publish_and_report(
    settings: Settings,
    files: Sequence[tuple[Path, str]],
    catalogue: Catalogue,
    *,
    verb: str,
) -> None:
    results = await publish(settings, files, catalogue, progress=False)
    for item in results:
        s = item.summary
        print(
            f"{verb} {kept.origin_of(item.path)}: {s.accepted} accepted, {s.rejected} rejected"
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


# -- the supervisor of the embedded stack -------------------------------------------------


class Supervisor:
    """Tansu and a worker child: restarts the worker when it crashes, and both (with a replay of
    the kept feeds) when Tansu dies. Stops both on SIGTERM / SIGINT."""

    def __init__(self, settings: Settings, *, demo: bool, scoreboard: bool) -> None:
        self.settings = settings
        self.demo = demo
        self.scoreboard = scoreboard
        self.broker = TansuBroker(settings.broker_port, settings.data_dir / "tansu.log")
        self.worker_settings = settings.with_overrides(broker=self.broker.url)
        self.child: subprocess.Popen[bytes] | None = None
        self._stop = threading.Event()

    def _on_signal(self, signum: int, frame: Any) -> None:
        self._stop.set()

    def run(self) -> int:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        failures = 0
        try:
            self.broker.start()
            self._new_epoch()
            while not self._stop.is_set():
                self._ensure_topics()
                self.child = self._start_worker()
                started = time.monotonic()
                why = self._watch()
                if why == "stop":
                    break
                if why == "broker":
                    log_event(log, "broker_died", level=logging.ERROR, broker=self.broker.url)
                    print(
                        f"parkpulse: the embedded broker died; restarting it on {self.broker.url}"
                        f" and re-publishing the feeds kept under {self.settings.data_dir}",
                        file=sys.stderr,
                        flush=True,
                    )
                    self._kill_worker()
                    self.broker.restart()
                    self._new_epoch()
                    log_event(log, "broker_restarted", broker=self.broker.url)
                    failures = 0
                    continue
                assert self.child is not None
                code = self.child.returncode
                if code == 0:  # stopped on purpose (someone signalled it): so do we
                    log_event(log, "worker_stopped", code=code)
                    break
                # A first crash restarts at once (the broker holds the uncommitted tail, so a
                # worker is back in seconds); a crash loop backs off 1 s, 2 s, … up to 30 s.
                failures = 0 if time.monotonic() - started > 60 else failures + 1
                delay = 0.0 if failures <= 1 else min(2.0 ** (failures - 2), RESTART_DELAY_MAX)
                log_event(log, "worker_restart", level=logging.ERROR, code=code, delay_s=delay)
                self._stop.wait(delay)
            return self._stop_worker()
        finally:
            self._kill_worker()
            self.broker.stop()
            remove_run_file(self.settings)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            log_event(log, "stopped")

    def _new_epoch(self) -> None:
        """A fresh Tansu holds nothing: its workers replay the kept files that have not landed,
        once (see ``_publish_startup``), and offsets are only compared within one epoch."""
        epoch = f"{time.time_ns():x}"
        self.worker_settings = self.worker_settings.with_overrides(broker_epoch=epoch)

    def _ensure_topics(self, attempts: int = 5) -> None:
        for attempt in range(1, attempts + 1):
            try:
                asyncio.run(ensure_topics(self.worker_settings))
                return
            except Exception as exc:  # a broker that has just started may not answer yet
                if attempt == attempts:
                    raise
                log_event(log, "topics_retry", level=logging.WARNING, error=repr(exc)[:300])
                time.sleep(0.5 * attempt)

    def _start_worker(self) -> subprocess.Popen[bytes]:
        args = [sys.executable, "-m", "parkpulse.stack", "--supervisor-pid", str(os.getpid())]
        args += ["--replay"]  # done once per broker epoch: a restarted worker skips it
        args += ["--demo"] if self.demo else []
        args += ["--scoreboard"] if self.scoreboard else []
        child = subprocess.Popen(
            args,
            env=child_environment(self.worker_settings),
            start_new_session=True,  # signals reach it through us, in order
            preexec_fn=die_with_parent(),
        )
        log_event(log, "worker_started", pid=child.pid)
        return child

    def _watch(self) -> str:
        assert self.child is not None
        while True:
            if self._stop.wait(WATCH_EVERY):
                return "stop"
            if not self.broker.running:
                return "broker"
            if self.child.poll() is not None:
                return "worker"

    def _stop_worker(self) -> int:
        child = self.child
        if child is None:
            return 0
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(timeout=WORKER_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                log_event(log, "worker_kill", level=logging.ERROR, pid=child.pid)
                child.kill()
                child.wait()
        return 0 if child.returncode in (0, -signal.SIGTERM) else int(child.returncode)

    def _kill_worker(self) -> None:
        # Safe at any moment: the worker commits nothing it has not written to ClickHouse.
        child = self.child
        if child is not None and child.poll() is None:
            child.kill()
            child.wait()


def _worker_main(argv: Sequence[str] | None = None) -> int:
    """``python -m parkpulse.stack``: the worker child of ``Supervisor`` (settings from env)."""
    parser = argparse.ArgumentParser(prog="python -m parkpulse.stack")
    parser.add_argument("--supervisor-pid", type=int)
    parser.add_argument("--replay", action="store_true")
    parser.add_argument("--demo", action="store_true")
    parser.add_argument("--scoreboard", action="store_true")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    setup_logging(settings.log_level)
    console = Console() if sys.stdout.isatty() else Console(width=200)
    return work(
        settings,
        demo=args.demo,
        scoreboard=args.scoreboard,
        replay=args.replay,
        console=console,
        supervisor_pid=args.supervisor_pid,
    )


if __name__ == "__main__":
    sys.exit(_worker_main())
