"""Shared fixtures: the real parts, started once per session where they can be shared."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pytest
from hypothesis import settings

from parkpulse.broker import TansuBroker, free_port
from parkpulse.procfs import children
from parkpulse.sinks.metrics import read_metric, read_statuses

# No per-example deadline: the suite runs in two processes beside real brokers and workers, and
# an example's wall time says nothing about its correctness (speed goals live in `make bench`).
settings.register_profile("parkpulse", deadline=None)
settings.load_profile("parkpulse")

T = TypeVar("T")
PARKPULSE = str(Path(sys.executable).with_name("parkpulse"))


def wait_until(fn: Callable[[], T], timeout: float = 30.0, every: float = 0.1) -> T:
    """Poll ``fn`` until it returns something truthy; fail the test on timeout."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"condition not met within {timeout}s (last value: {last!r})")


@dataclass
class RunningStack:
    """A ``parkpulse run`` subprocess: the whole embedded stack, as a user starts it."""

    data_dir: Path
    broker_port: int
    api_port: int
    metrics_port: int
    proc: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def log_events(self, event: str) -> list[dict[str, Any]]:
        """The JSON log lines of ``event`` in its stderr log (every start on this DATA_DIR)."""
        lines = (self.data_dir / "stderr.log").read_text().splitlines()
        events = (orjson.loads(line) for line in lines if line.startswith("{"))
        return [e for e in events if e.get("event") == event]

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    @property
    def broker(self) -> str:
        return f"kafka://127.0.0.1:{self.broker_port}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PARKPULSE_")}
        env["PARKPULSE_DATA_DIR"] = str(self.data_dir)
        return env

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run a ``parkpulse`` verb against this stack (found through DATA_DIR/run.json)."""
        return subprocess.run(
            [PARKPULSE, *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def get_json(self, path: str) -> Any:
        with urllib.request.urlopen(self.api + path, timeout=30) as resp:
            return orjson.loads(resp.read())

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples of ``name`` matching ``labels`` on the metrics endpoint."""
        return read_metric(self.metrics_url, name, **labels)

    def worker_pid(self) -> int | None:
        """The pid of the supervised worker child (``python -m parkpulse.stack``), if running."""
        found = [p for p, cmd in children(self.proc.pid).items() if "parkpulse.stack" in cmd]
        return found[0] if found else None

    def broker_pid(self) -> int | None:
        """The pid of the embedded Tansu child, if running."""
        found = [p for p, cmd in children(self.proc.pid).items() if "--listener-url" in cmd]
        return found[0] if found else None

    def exported_statuses(self) -> set[tuple[str, str, str, str]] | None:
        """(zone, indicator, plan, status) of every key the metrics endpoint shows (None while
        the endpoint does not answer)."""
        try:
            return read_statuses(self.metrics_url)
        except OSError:
            return None

    def stored_statuses(self) -> set[tuple[str, str, str, str]] | None:
        """(zone, indicator, plan, status) of every key as ``parkpulse status`` shows it (None
        while the API does not answer)."""
        try:
            rows = self.get_json("/api/status")
        except OSError:
            return None
        return {(r["zone"], r["indicator"], r["plan"], r["status"]) for r in rows}

    def signals_match_status(self) -> bool:
        """Whether /metrics exports exactly the statuses ``parkpulse status`` shows."""
        exported = self.exported_statuses()
        return bool(exported) and exported == self.stored_statuses()

    def stop(self, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return int(self.proc.returncode)


def start_stack(
    data_dir: Path, *extra: str, ready_timeout: float = 120, settings: dict[str, str] | None = None
) -> RunningStack:
    """Start ``parkpulse run`` on free ports and wait for its ``ready`` line (``settings``: the
    PARKPULSE_* variables it runs with, none by default)."""
    ports = [free_port() for _ in range(3)]
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARKPULSE_")}
    env.update(settings or {})
    proc = subprocess.Popen(
        [
            PARKPULSE,
            "run",
            "--data-dir",
            str(data_dir),
            "--broker-port",
            str(ports[0]),
            "--api-port",
            str(ports[1]),
            "--metrics-port",
            str(ports[2]),
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=open(data_dir / "stderr.log", "w"),  # noqa: SIM115
        text=True,
        env=env,
    )
    stack = RunningStack(data_dir, ports[0], ports[1], ports[2], proc)
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            stack.lines.append(line)
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            if proc.poll() is not None:
                break
            continue
        if "ready" in line:
            return stack
    stack.stop()
    log = (data_dir / "stderr.log").read_text()[-4000:]
    raise AssertionError(f"parkpulse run did not become ready; stderr tail:\n{log}")


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """One embedded stack (Tansu + Faust worker + chdb) for the integration tests."""
    running = start_stack(tmp_path_factory.mktemp("stack"), "--no-demo", "--no-scoreboard")
    yield running
    assert running.stop() == 0


@pytest.fixture(scope="session")
def tansu_broker() -> Iterator[TansuBroker]:
    """A bare Tansu broker on a free loopback port."""
    broker = TansuBroker(free_port()).start()
    yield broker
    broker.stop()


@dataclass
class DemoRun:
    """``parkpulse run`` with the demo feed, run until every demo row landed, then stopped."""

    data_dir: Path
    lines: list[str]
    exit_code: int
    scorecards: list[dict[str, Any]]
    statuses: list[dict[str, Any]]  # the latest month per key
    history: list[dict[str, Any]]  # every status row in ClickHouse


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """The `make run` experience, as a user gets it (scoreboard on a pipe, demo feed, report)."""
    from parkpulse.schemas.catalogue import load_plan_targets

    running = start_stack(tmp_path_factory.mktemp("demo"))
    expected_targets = {(t.zone, t.indicator, t.plan) for t in load_plan_targets()}

    def settled() -> list[dict[str, Any]] | None:
        rows = running.get_json("/api/status")
        latest = {(r["zone"], r["indicator"], r["plan"]): r["period"] for r in rows}
        done = (
            set(latest) == expected_targets
            and latest[("jinan-hitech", "budget_revenue", "14th-fyp")] == "2023-12"
        )
        return rows if done and (running.data_dir / "report.html").exists() else None

    try:
        wait_until(settled, timeout=120, every=0.5)
        time.sleep(1.5)  # let the last batch land
        # The report is rewritten once the status has settled (report.REWRITE_BUSY_EVERY while
        # it streams in): wait for the page that holds every target's chart.
        report = running.data_dir / "report.html"
        wait_until(
            lambda: report.read_text(encoding="utf-8").count("<figure>") == len(expected_targets),
            timeout=30,
            every=0.5,
        )
        statuses = running.get_json("/api/status")
        scorecards = running.get_json("/api/scorecard")
        history = running.get_json("/api/status/history")
    finally:
        code = running.stop()
    return DemoRun(running.data_dir, list(running.lines), code, scorecards, statuses, history)


def exported_metric_names() -> set[str]:
    """Every sample name a PipelineMetrics registry exposes (one key shown, every counter
    touched), plus Prometheus' own ``up``: what alert rules and boards may read."""
    from parkpulse.schemas.catalogue import load_catalogue
    from parkpulse.schemas.records import IndicatorStatus
    from parkpulse.sinks.metrics import PipelineMetrics

    m = PipelineMetrics()
    m.show_statuses(
        [
            IndicatorStatus(
                zone="jinan-hitech",
                indicator="gdp",
                plan="14th-fyp",
                period="2021-06",
                kind="growth",
                status="at_risk",
                attainment=0.987,
                gap_pp=-1.4,
            )
        ]
    )
    m.count_events("parkpulse.observations", "in")
    m.count_sink_rows("observations", 1)
    m.count_sink_error("observations")
    m.show_consumer_lag({("parkpulse.observations", 0): 1})
    m.show_names(load_catalogue(), "zh")
    return {s.name for family in m.registry.collect() for s in family.samples} | {"up"}
