"""ClickHouse refuses rows under a running worker: those rows are dead-lettered, the rest lands.

A real ClickHouse endpoint (``chdb_http_shim``: chdb behind ClickHouse's HTTP interface, in its
own process) serves the worker. An operator adds a CHECK constraint to ``observations`` that two
published figures break: ClickHouse refuses every insert carrying them (VIOLATED_CONSTRAINT).
The worker keeps running, the other figures land, the two appear among the dead letters with
the reason ``clickhouse_rejected`` at their feed line, the statuses of the indicators they do
not touch are the engine's and so are those they do (recomputed from what ClickHouse holds),
and publishing the same feed again changes no table.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from parkpulse.broker import TansuBroker, free_port
from parkpulse.config import parse_clickhouse_url
from parkpulse.sinks.clickhouse import ClickHouseStore
from tests.chdb_http_shim import ClickHouseShim
from tests.conftest import RunningStack, wait_until
from tests.fault_support import (
    INDICATORS,
    PLAN,
    ZONES,
    clean_env,
    engine_statuses,
    publish,
    sorted_rows,
    start_worker,
    write_backfill,
)
from tests.test_register_export import write_csv

pytestmark = pytest.mark.integration

LIMIT = 100_000  # CNY 100M: the operator's sanity bound; the backfill's figures are far below
POISONED_LINES = (9, 30)  # 1-based lines of the feed (the header is line 1)
CAPITAL_LIMIT = 100_000  # 万元, on registrations
TABLES = ("observations", "indicator_status", "plan_targets", "deadletter")


@dataclass
class Refusal:
    worker: RunningStack
    shim: ClickHouseShim
    broker: str
    feed: Path
    poisoned: dict[int, tuple[str, str]]  # line -> (zone, indicator)
    expected: list[dict[str, Any]]  # the engine's statuses for the feed without those lines
    rows: int  # figures in the feed


def counts(shim: ClickHouseShim) -> dict[str, int]:
    return {t: int(shim.query(f"SELECT count() FROM parkpulse.{t} FINAL")[0][0]) for t in TABLES}


def plan_statuses(refusal: Refusal) -> list[dict[str, Any]]:
    """The stored status rows of the backfill's plan (the worker also holds the seeded plans')."""
    names = refusal.expected[0]
    rows = refusal.worker.get_json("/api/status/history")
    return sorted_rows({k: r[k] for k in names} for r in rows if r["plan"] == PLAN)


def refused_letters(worker: RunningStack) -> list[dict[str, Any]]:
    page = worker.get_json("/api/deadletter?reason=clickhouse_rejected&limit=100")
    return list(page["rows"])


@pytest.fixture(scope="module")
def refusal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Refusal]:
    root = tmp_path_factory.mktemp("clickhouse-refuses")
    backfill = write_backfill(root / "feeds", ZONES[:2], INDICATORS[:3], range(2023, 2025))
    header, *rows = backfill.feed.read_text(encoding="utf-8").splitlines()
    poisoned = {}
    for line in POISONED_LINES:
        cells = rows[line - 2].split(",")
        poisoned[line] = (cells[3], cells[4])
        cells[7] = f"{LIMIT * 3.5:.1f}"  # a valid figure the constraint refuses
        rows[line - 2] = ",".join(cells)
    feed = root / "feeds" / "poisoned.csv"
    feed.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    clean = root / "feeds" / "clean.csv"
    kept = [r for n, r in enumerate(rows, start=2) if n not in poisoned]
    clean.write_text("\n".join([header, *kept]) + "\n", encoding="utf-8")

    shim = ClickHouseShim(free_port(), root / "server-data", root / "shim.log").start()
    broker = TansuBroker(free_port(), root / "tansu.log").start()
    url = shim.url()
    store = ClickHouseStore.open(parse_clickhouse_url(url))
    try:
        store.run(store.connect)  # the schema, then the operator's constraint on it
    finally:
        store.close()
    shim.query_text(
        "ALTER TABLE parkpulse.observations ADD CONSTRAINT sane"
        f" CHECK value IS NULL OR value < {LIMIT}"
    )
    shim.query_text(
        "ALTER TABLE parkpulse.registrations ADD CONSTRAINT capital_sane"
        f" CHECK registered_capital IS NULL OR registered_capital < {CAPITAL_LIMIT}"
    )
    worker = start_worker(root / "worker", broker.url, env=clean_env(PARKPULSE_CLICKHOUSE_URL=url))
    try:
        publish(broker.url, root / "worker", backfill.targets, verb="targets")
        publish(broker.url, root / "worker", feed)
        yield Refusal(
            worker,
            shim,
            broker.url,
            feed,
            poisoned,
            engine_statuses(replace(backfill, feed=clean)),
            len(rows),
        )
    finally:
        worker.stop()
        broker.stop()
        shim.stop()


def test_the_refused_figures_are_dead_lettered_once_at_their_line(refusal: Refusal) -> None:
    letters = wait_until(
        lambda: (found := refused_letters(refusal.worker)) and len(found) >= 2 and found,
        timeout=120,
    )
    assert sorted(d["line"] for d in letters) == sorted(refusal.poisoned)
    assert {d["origin"] for d in letters} == {refusal.feed.name}
    assert all("VIOLATED_CONSTRAINT" in d["detail"] for d in letters)
    assert all(str(LIMIT * 3.5) in d["raw"] for d in letters)
    wait_until(
        lambda: (
            refusal.worker.metric("parkpulse_deadletters_total", reason="clickhouse_rejected") == 2
        ),
        timeout=30,
    )


def test_the_worker_keeps_running_and_the_other_figures_land(refusal: Refusal) -> None:
    wait_until(
        lambda: counts(refusal.shim)["observations"] == refusal.rows - len(refusal.poisoned),
        timeout=120,
    )
    assert refusal.worker.proc.poll() is None
    values = refusal.shim.query("SELECT max(value) FROM parkpulse.observations")
    assert float(values[0][0]) < LIMIT


def test_every_status_is_the_engines_without_the_refused_figures(refusal: Refusal) -> None:
    """The indicators the refused figures do not touch, and those they do: their status rows,
    written with them before ClickHouse refused them, are recomputed from what it holds."""
    expected = refusal.expected
    touched = set(refusal.poisoned.values())
    assert {(r["zone"], r["indicator"]) for r in expected} > touched

    wait_until(lambda: plan_statuses(refusal) == expected, timeout=120)


def test_publishing_the_same_feed_again_changes_nothing(refusal: Refusal) -> None:
    wait_until(lambda: len(refused_letters(refusal.worker)) >= 2, timeout=120)
    wait_until(
        lambda: counts(refusal.shim)["observations"] == refusal.rows - len(refusal.poisoned),
        timeout=120,
    )
    before = counts(refusal.shim)
    figures_in = "parkpulse_events_total"
    seen = refusal.worker.metric(figures_in, topic="parkpulse.observations", direction="in")
    sunk = refusal.worker.metric(figures_in, topic="parkpulse.deadletter", direction="in")
    publish(refusal.broker, refusal.worker.data_dir, refusal.feed)
    wait_until(
        lambda: (
            refusal.worker.metric(figures_in, topic="parkpulse.observations", direction="in")
            >= seen + refusal.rows
        ),
        timeout=120,
    )
    # the refused figures are refused again: their dead letters are sunk (once more, as one)
    wait_until(
        lambda: (
            refusal.worker.metric(figures_in, topic="parkpulse.deadletter", direction="in")
            >= sunk + 2
        ),
        timeout=60,
    )
    assert counts(refusal.shim) == before
    assert plan_statuses(refusal) == refusal.expected
    assert len(refused_letters(refusal.worker)) == 2
    assert refusal.worker.proc.poll() is None


BUREAU = "烟台高新技术产业开发区市场监督管理局"
REGISTER = [
    [1, "91370600MAXR000001", "烟台甲公司", BUREAU, "", "2017-05-04", "有限责任公司", "I6510", 100],
    [2, "91370600MAXR000002", "烟台乙公司", BUREAU, "", "2017-05-05", "有限责任公司", "C3981",
     CAPITAL_LIMIT * 9],  # line 3: ClickHouse refuses it
    [3, "91370600MAXR000003", "烟台丙公司", BUREAU, "", "2017-05-06", "有限责任公司", "M7320", 50],
]  # fmt: skip


def test_a_refused_registration_is_dead_lettered_and_the_others_land(
    refusal: Refusal, tmp_path: Path
) -> None:
    export = write_csv(tmp_path / "register.csv", REGISTER)
    produced = refusal.worker.cli("produce", "--broker", refusal.broker, str(export))
    assert "Traceback" not in produced.stderr, produced.stderr

    def landed() -> int:
        sql = "SELECT count() FROM parkpulse.registrations FINAL WHERE month = '2017-05'"
        return int(refusal.shim.query(sql)[0][0])

    def letter() -> dict[str, Any] | None:
        found = [d for d in refused_letters(refusal.worker) if "MAXR000002" in d["raw"]]
        return found[0] if found else None

    dead = wait_until(letter, timeout=120)
    assert dead["source_topic"] == "parkpulse.registrations"
    assert dead["origin"].startswith("batch:") and "VIOLATED_CONSTRAINT" in dead["detail"]
    wait_until(lambda: landed() == 2, timeout=60)
    rows = refusal.worker.get_json("/api/registrations?zone=yantai-hitech&month=2017-05")
    assert sum(int(r["registrations"]) for r in rows) == 2
    assert refusal.worker.proc.poll() is None
