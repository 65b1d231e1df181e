"""``parkpulse bench`` end to end, small: every phase runs and its numbers hold together.

The speed goals are the bench's to report (``make bench``), not these tests'. Here a few
thousand registrations and a 3-zone, one-year backfill go through the real parts — Tansu, the
worker, embedded chdb or a ClickHouse server — and the results file must say what happened.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import orjson
import pytest

from parkpulse.bench import GOALS
from parkpulse.broker import free_port
from tests.chdb_http_shim import ClickHouseShim
from tests.conftest import PARKPULSE

pytestmark = pytest.mark.integration

REGISTRATIONS = 3000
LIVE = 2000  # 1,000 a second for 2 s


def _bench(work: Path, *extra: str) -> dict[str, Any]:
    out = work / "results.json"
    done = subprocess.run(
        [
            PARKPULSE,
            "bench",
            *("--work-dir", str(work), "--out", str(out)),
            *("--registrations", str(REGISTRATIONS), "--batch-size", "200"),
            *("--live-rate", "1000", "--live-seconds", "2"),
            *("--zones", "3", "--years", "1"),
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "parkpulse bench" in done.stdout  # the table people read
    return orjson.loads(out.read_bytes())


def _holds_together(results: dict[str, Any]) -> None:
    assert not [k for k in results if k.endswith("_error")], results
    backlog, live, backfill = (
        results["registrations_backlog"],
        results["registrations_live"],
        results["backfill"],
    )
    assert backlog["events"] == REGISTRATIONS and backlog["events_per_s"] > 0
    assert live["events"] == LIVE and live["latency_p50_ms"] <= live["latency_p99_ms"]
    ratio = backlog["events_per_s"] / results["ceiling"]["events_per_s"]
    assert results["ratio_backlog_to_ceiling"] == pytest.approx(ratio, abs=1e-4)
    # every status row the pure engine expects was counted in ClickHouse (FINAL) in time
    assert "error" not in backfill and backfill["status_rows"] > 0
    assert backfill["feed_rows"] > 0 and backfill["rejected"] == 0
    assert backfill["seconds"] >= backfill["publish_seconds"] > 0
    assert results["worker_peak_rss_mb"] >= results["worker_peak_rss_mb_after_registrations"] > 0
    assert set(results["goals_met"]) == {*GOALS, "registrations_live_keeps_up"}
    assert None not in results["goals_met"].values()  # every goal was measured
    # publish_seconds is rounded to 10 ms: the rate lies between the rates of its rounding bounds
    rows, rounded = backfill["feed_rows"], backfill["publish_seconds"]
    assert rows / (rounded + 0.005) - 1 <= backfill["publish_rows_per_s"]
    assert backfill["publish_rows_per_s"] <= rows / max(rounded - 0.005, 1e-9) + 1
    # one thread's CPU time cannot exceed the wall time it ran: per CPU second is the higher rate
    assert backfill["publish_rows_per_cpu_s"] >= backfill["publish_rows_per_s"] * 0.95
    assert backfill["worker_cpu_seconds"] > 0
    # Recovery with the history loaded: a killed worker's successor exports the stored status;
    # a killed broker gets only the files that had not landed (all had: none).
    recovery = results["recovery"]
    assert "error" not in recovery, recovery
    assert recovery["kept_files"] > 1
    assert 0 < recovery["worker_restart_ready_s"] <= recovery["worker_restart_s"]
    assert recovery["broker_restart_s"] > 0
    assert recovery["replayed_files"] == 0


def test_bench_on_the_embedded_stack(tmp_path: Path) -> None:
    results = _bench(tmp_path)
    _holds_together(results)
    assert results["clickhouse"] == "embedded chdb"
    assert results["worker_rss_file_backed_mb"] > 150  # chdb's library is in the worker


def test_bench_against_a_clickhouse_server(tmp_path: Path) -> None:
    shim = ClickHouseShim(free_port(), tmp_path / "server", tmp_path / "shim.log").start()
    try:
        results = _bench(tmp_path / "work", "--clickhouse-url", shim.url())
        counted = int(shim.query("SELECT count() FROM parkpulse.registrations FINAL")[0][0])
    finally:
        shim.stop()
    _holds_together(results)
    assert results["clickhouse"] == "ClickHouse server"
    assert "default@" not in orjson.dumps(results).decode()  # the URL is not recorded
    assert counted == REGISTRATIONS + LIVE  # the worker wrote to the server, not to its own chdb
    assert results["worker_rss_file_backed_mb"] < 150
