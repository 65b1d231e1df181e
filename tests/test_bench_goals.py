"""The bench's verdicts on issue 14's goals, from a results dict (no run)."""

from __future__ import annotations

import copy
from typing import Any

from rich.console import Console

from parkpulse.bench import _goals_met, results_table

RESULTS: dict[str, Any] = {
    "clickhouse": "embedded chdb",
    "ceiling": {"events_per_s": 500_000},
    "registrations_backlog": {"events_per_s": 120_000},
    "ratio_backlog_to_ceiling": 0.24,
    "registrations_live": {
        "offered_events_per_s": 20_000,
        "ingest_events_per_s": 19_900,
        "events_per_s": 19_500,
        "latency_p50_ms": 400.0,
        "latency_p99_ms": 1200.0,
        "latency_p50_first_third_ms": 410.0,
        "latency_p50_last_third_ms": 395.0,
    },
    "backfill": {
        "zones": 178,
        "years": 10,
        "feed_rows": 647_224,
        "status_rows": 192_240,
        "seconds": 19.5,
        "publish_seconds": 4.0,
        "publish_rows_per_s": 161_806,
    },
    "recovery": {
        "worker_restart_s": 9.0,
        "broker_restart_s": 10.0,
        "kept_files": 12,
        "replayed_files": 0,
    },
    "worker_peak_rss_mb_after_registrations": 600.0,
    "worker_peak_rss_mb": 700.0,
    "worker_rss_file_backed_mb": 250.0,
    "worker_peak_rss_anon_mb": 351.0,
}


def test_each_goal_is_judged_on_its_own_measure() -> None:
    met = _goals_met(RESULTS)
    assert met == {
        "ratio_backlog_to_ceiling": True,  # 24 % ≥ 20 %
        "registrations_live_p99_ms": False,  # 1.2 s > 1 s
        "backfill_seconds": True,
        "produce_rows_per_s": False,  # 162k < 200k
        "worker_peak_rss_anon_mb": False,  # 351 > 350
        "recovery_worker_restart_s": True,
        "registrations_live_keeps_up": True,
    }


def test_limits_are_inclusive_and_missing_phases_are_not_judged() -> None:
    results = copy.deepcopy(RESULTS)
    results["worker_peak_rss_anon_mb"] = 350
    results["backfill"] = {"error": "the status rows did not arrive"}
    del results["recovery"]
    met = _goals_met(results)
    assert met["worker_peak_rss_anon_mb"] is True
    assert met["backfill_seconds"] is None and met["produce_rows_per_s"] is None
    assert met["recovery_worker_restart_s"] is None


def test_the_table_shows_each_goal_beside_its_measure() -> None:
    results = {**RESULTS, "goals_met": _goals_met(RESULTS)}
    console = Console(width=200, record=True)
    console.print(results_table(results))
    text = console.export_text()
    assert "24.0%" in text and "≥ 20% of the ceiling" in text
    assert "1,200 ms ✗" in text and "≤ 1,000 ms" in text
    assert "19.5 s ✓" in text and "≤ 20 s" in text
    assert "161,806 rows/s ✗" in text and "≥ 200,000 rows/s" in text
    assert "351 MB ✗" in text and "≤ 350 MB" in text
