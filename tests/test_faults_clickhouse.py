"""ClickHouse goes away and comes back: the worker neither crashes nor drops anything.

ClickHouse here is a real HTTP endpoint, ``chdb_http_shim`` (chdb behind ClickHouse's HTTP
interface, in its own process), reached by the worker through ``--clickhouse http://…`` exactly as
a server would be. Stopping the shim is an outage (connection refused); starting it again on the
same port, with the same data, is the recovery.

1. The worker starts while ClickHouse is down (nothing listens on the port): it comes up, holds
   what it consumed, retries with backoff, counts every failure, answers /api/health, and answers
   /api/status with 503 rather than an error page.
2. ClickHouse comes back: the held batch and the backlog land, and the status rows equal the
   engine's.
3. ClickHouse goes down again mid-stream and the worker is stopped (SIGTERM) while holding a
   batch it cannot write: it stops promptly without committing that batch, and a worker started
   after ClickHouse is back ends with every row.
"""

from __future__ import annotations

import signal
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from parkpulse.broker import TansuBroker, free_port
from parkpulse.procfs import status_mb
from parkpulse.schemas.envelope import ENVELOPE_MAX
from parkpulse.streams.app import ROLLUP_TAKE
from tests.chdb_http_shim import ClickHouseShim
from tests.conftest import RunningStack, wait_until
from tests.fault_support import (
    INDICATORS,
    ZONES,
    clean_env,
    engine_statuses,
    publish,
    sorted_rows,
    split_feed,
    start_worker,
    write_backfill,
)

pytestmark = pytest.mark.integration

PASSWORD = "ch-outage-pw-93f1"


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


@dataclass
class Outage:
    """Figures sampled while ClickHouse was down, and after."""

    ready_s: float = 0.0
    errors: list[float] = field(default_factory=list)  # parkpulse_sink_errors_total, sampled
    buffered: list[float] = field(default_factory=list)  # parkpulse_sink_buffered_rows
    consumed: float = 0.0  # figures handed to the roll-up while down
    alive: bool = False
    health: int = 0
    status_api: int = 0
    rss_ready: float = 0.0
    rss_peak: float = 0.0
    catch_up_s: float = 0.0
    after_recovery: list[dict[str, Any]] = field(default_factory=list)
    stop_code: int | None = None
    stop_s: float = 0.0
    held_before_stop: float = 0.0
    final: list[dict[str, Any]] = field(default_factory=list)
    expected: list[dict[str, Any]] = field(default_factory=list)
    expected_first: list[dict[str, Any]] = field(default_factory=list)


def statuses(worker: RunningStack, zones: tuple[str, ...]) -> list[dict[str, Any]]:
    return sorted_rows(r for r in worker.get_json("/api/status/history") if r["zone"] in zones)


@pytest.fixture(scope="module")
def outage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outage]:
    root = tmp_path_factory.mktemp("clickhouse-outage")
    backfill = write_backfill(root / "feeds", ZONES[:4], INDICATORS[:6], range(2019, 2025))
    first, second = split_feed(backfill, 2)
    shim = ClickHouseShim(free_port(), root / "server-data", root / "shim.log")
    broker = TansuBroker(free_port(), root / "tansu.log").start()
    env = clean_env(PARKPULSE_CLICKHOUSE_URL=shim.url(PASSWORD))
    data_dir = root / "worker"
    out = Outage(
        expected=engine_statuses(backfill),
        expected_first=engine_statuses(replace(backfill, feed=first)),
    )
    started = time.monotonic()
    worker = start_worker(data_dir, broker.url, env=env)
    try:
        # 1. Down from the start.
        out.ready_s = time.monotonic() - started
        out.rss_ready = status_mb(worker.proc.pid, "VmRSS")
        publish(broker.url, data_dir, backfill.targets, verb="targets")
        publish(broker.url, data_dir, first)
        for _ in range(8):
            time.sleep(0.5)
            out.errors.append(worker.metric("parkpulse_sink_errors_total"))
            out.buffered.append(worker.metric("parkpulse_sink_buffered_rows"))
            out.rss_peak = max(out.rss_peak, status_mb(worker.proc.pid, "VmRSS"))
        out.consumed = worker.metric(
            "parkpulse_events_total", topic="parkpulse.observations", direction="in"
        )
        out.alive = worker.proc.poll() is None
        out.health = http_status(worker.api + "/api/health")
        out.status_api = http_status(worker.api + "/api/status")

        # 2. Back.
        shim.start()
        back = time.monotonic()
        wait_until(lambda: statuses(worker, backfill.zones) == out.expected_first, timeout=90)
        out.catch_up_s = time.monotonic() - back
        out.after_recovery = statuses(worker, backfill.zones)

        # 3. Down again, the rest of the feed arrives, and the worker is told to stop.
        shim.stop()
        errors = worker.metric("parkpulse_sink_errors_total")
        publish(broker.url, data_dir, second)
        # Reads (the gauges' status read, the registrations' tick) fail and count too: wait for
        # the roll-up's write itself to be held, not just for any failed call.
        wait_until(
            lambda: (
                worker.metric("parkpulse_sink_errors_total") > errors + 1
                and worker.metric("parkpulse_sink_buffered_rows") > 0
            ),
            timeout=60,
        )
        out.held_before_stop = worker.metric("parkpulse_sink_buffered_rows")
        stopping = time.monotonic()
        worker.proc.send_signal(signal.SIGTERM)
        out.stop_code = worker.proc.wait(timeout=60)
        out.stop_s = time.monotonic() - stopping
        shim.start()
        worker = start_worker(data_dir, broker.url, env=env)
        wait_until(lambda: statuses(worker, backfill.zones) == out.expected, timeout=90)
        out.final = statuses(worker, backfill.zones)
        print(
            f"ClickHouse down: worker ready in {out.ready_s:.1f}s; sink errors"
            f" {out.errors[0]:.0f}→{out.errors[-1]:.0f} in 4s; buffered rows"
            f" {max(out.buffered):.0f}; figures consumed {out.consumed:.0f}; RSS"
            f" {out.rss_ready:.0f}→{out.rss_peak:.0f} MB; back: caught up in"
            f" {out.catch_up_s:.1f}s; stopped while down in {out.stop_s:.1f}s"
            f" (exit {out.stop_code}, {out.held_before_stop:.0f} rows held)"
        )
        yield out
    finally:
        worker.stop()
        broker.stop()
        shim.stop()


def test_a_worker_starts_and_stays_up_while_clickhouse_is_down(outage: Outage) -> None:
    assert outage.ready_s < 60
    assert outage.alive
    assert outage.health == 200
    assert outage.status_api == 503  # "retry later", not a 500 with a traceback


def test_it_retries_with_backoff_and_reports_it(outage: Outage) -> None:
    errors = outage.errors
    assert errors[-1] > errors[0] > 0  # ClickHouseSinkFailing: rate(sink_errors_total) > 0
    # Backoff: a few attempts in 4 s, not a busy loop (at most one per 0.2 s … 5 s).
    assert errors[-1] - errors[0] < 30
    assert max(outage.buffered) > 0  # the rows it holds show in parkpulse_sink_buffered_rows


def test_it_holds_a_bounded_batch_instead_of_consuming_on(outage: Outage) -> None:
    # The roll-up waits on the batch it holds; Faust's buffers behind it are bounded, so it
    # neither consumes the whole topic into memory nor commits past what it could not write.
    assert outage.consumed <= ROLLUP_TAKE * ENVELOPE_MAX  # figures in one batch at most
    assert outage.rss_peak - outage.rss_ready < 150


def test_it_catches_up_when_clickhouse_returns(outage: Outage) -> None:
    assert outage.after_recovery == outage.expected_first
    assert outage.catch_up_s < 60


def test_stopping_while_clickhouse_is_down_loses_nothing(outage: Outage) -> None:
    assert outage.held_before_stop > 0
    assert outage.stop_code == 0 and outage.stop_s < 30
    assert outage.final == outage.expected


def test_shim_is_a_real_endpoint(tmp_path: Path) -> None:
    """The shim answers clickhouse-connect like a server (guards the guard)."""
    from parkpulse.config import parse_clickhouse_url
    from parkpulse.sinks.batch import SinkBatch
    from parkpulse.sinks.clickhouse import ClickHouseStore
    from parkpulse.sinks.connection import ClickHouseUnavailable

    shim = ClickHouseShim(free_port(), tmp_path / "data")
    store = ClickHouseStore.open(parse_clickhouse_url(shim.url("pw")))
    try:
        with pytest.raises(ClickHouseUnavailable):
            store.run(store.counts)
        shim.start()
        assert store.run(store.counts)["observations"] == 0
        assert store.run(store.write, SinkBatch()) == dict.fromkeys(
            (
                "observations",
                "plan_targets",
                "indicator_status",
                "zone_scorecard",
                "deadletter",
                "suspect_figures",
            ),
            0,
        )
    finally:
        store.close()
        shim.stop()
