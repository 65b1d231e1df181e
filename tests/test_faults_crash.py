"""A worker stopped in the middle of a backfill — SIGKILL, or a clean SIGTERM — and restarted.

Each scenario has its own Tansu broker, started apart from the worker so that it outlives it and
still holds the messages the worker had not committed, and its own DATA_DIR with the worker's
embedded chdb (``parkpulse worker --broker kafka://… --data-dir …``). The three scenarios run side
by side: undisturbed; SIGKILL once the first rows reached ClickHouse; SIGTERM at the same point.
The disturbed workers are restarted on the same DATA_DIR and broker. Nothing lost, nothing double
counted means: every table ends exactly as in the undisturbed run, which equals the pure engine.
A restarted worker asks the broker to let go of the member its predecessor left in the group
(parkpulse/group_member.py) instead of waiting for the broker to expire it.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
import pytest

from parkpulse.broker import TansuBroker, free_port
from parkpulse.group_member import member_file
from parkpulse.producers.feed import read_targets
from parkpulse.schemas.catalogue import load_catalogue
from tests.conftest import RunningStack
from tests.fault_support import (
    INDICATORS,
    ZONES,
    Backfill,
    dump_store,
    engine_statuses,
    kill,
    publish,
    rows_written,
    sorted_rows,
    split_feed,
    start_worker,
    tail,
    write_backfill,
)

pytestmark = pytest.mark.integration

FIGURES = 5 * 6 * 7 * 12  # zones × indicators × years × months
KILL_AFTER = 600  # observation rows in ClickHouse before the worker is stopped


@dataclass
class Outcome:
    """What a scenario left behind, and what happened on the way."""

    name: str
    dump: dict[str, Any]
    written_before: float = 0.0  # observation rows in ClickHouse when the worker was stopped
    exit_code: int | None = None
    stop_seconds: float = 0.0
    settle_seconds: float = 0.0
    inputs_after_restart: float = 0.0  # observation messages the restarted worker consumed
    stopped_member: str = ""  # the member id the stopped worker wrote down
    removed: list[dict[str, Any]] = field(default_factory=list)  # predecessor_removed events
    notes: list[str] = field(default_factory=list)


def api_statuses(worker: RunningStack, zones: tuple[str, ...]) -> list[dict[str, Any]]:
    rows = worker.get_json("/api/status/history")
    return sorted_rows(r for r in rows if r["zone"] in zones)


def bundled_targets() -> int:
    """The plan targets every worker publishes at start (parkpulse/reference/plan_targets.csv)."""
    path = Path(str(resources.files("parkpulse.reference").joinpath("plan_targets.csv")))
    return sum(row.accepted for row in read_targets(path, load_catalogue()))


def settle(
    worker: RunningStack, expected: list[dict[str, Any]], zones: tuple[str, ...], targets: int
) -> float:
    """Wait until the worker's status rows of ``zones`` equal ``expected`` and all ``targets``
    are in (with them, the status rows of the bundled ones: they are written together, and the
    tables are compared whole); seconds it took."""
    started = time.monotonic()
    rows: list[dict[str, Any]] = []
    while time.monotonic() - started < 150:
        rows = api_statuses(worker, zones)
        landed = worker.get_json("/api/counts")["plan_targets"] >= targets
        if rows == expected and landed:
            return time.monotonic() - started
        assert worker.proc.poll() is None, tail(worker.data_dir / "stderr.log")
        time.sleep(0.5)
    keys = {(r["zone"], r["indicator"], r["plan"], r["period"]): r for r in rows}
    want = {(r["zone"], r["indicator"], r["plan"], r["period"]): r for r in expected}
    missing = sorted(set(want) - set(keys))
    differ = [k for k in want if k in keys and keys[k] != want[k]]
    raise AssertionError(
        f"status rows never matched: {len(missing)} missing (e.g. {missing[:3]}),"
        f" {len(set(keys) - set(want))} extra, {len(differ)} differ (e.g. {differ[:3]})"
    )


def scenario(
    name: str,
    root: Path,
    backfill: Backfill,
    halves: list[Path],
    expected: list[dict[str, Any]],
    sig: int | None,
) -> Outcome:
    broker = TansuBroker(free_port(), root / f"{name}-tansu.log").start()
    data_dir = root / name
    worker = start_worker(data_dir, broker.url)
    first, rest = halves
    try:
        publish(broker.url, data_dir, backfill.targets, verb="targets")
        publish(broker.url, data_dir, first)
        outcome = Outcome(name, {})
        if sig is not None:
            # Stop it once some batches are in ClickHouse: the rest of the first half is in the
            # broker, fetched or not, and not committed.
            deadline = time.monotonic() + 60
            while rows_written(worker) < KILL_AFTER and time.monotonic() < deadline:
                time.sleep(0.02)
            outcome.written_before = rows_written(worker)
            outcome.stopped_member = orjson.loads(member_file(data_dir).read_bytes())["member_id"]
            started = time.monotonic()
            outcome.exit_code = kill(worker, sig)
            outcome.stop_seconds = time.monotonic() - started
            publish(broker.url, data_dir, rest)  # the bureau does not wait for us
            worker = start_worker(data_dir, broker.url)
        else:
            publish(broker.url, data_dir, rest)
        targets = bundled_targets() + backfill.target_rows
        outcome.settle_seconds = settle(worker, expected, backfill.zones, targets)
        outcome.inputs_after_restart = worker.metric(
            "parkpulse_events_total", topic="parkpulse.observations", direction="in"
        )
        outcome.removed = worker.log_events("predecessor_removed")
        assert worker.stop() == 0
        outcome.dump = dump_store(data_dir)
        return outcome
    finally:
        worker.stop()
        broker.stop()


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Outcome]]:
    root = tmp_path_factory.mktemp("crash")
    backfill = write_backfill(root / "feeds", ZONES[:5], INDICATORS[:6], range(2018, 2025))
    expected = engine_statuses(backfill)
    halves = split_feed(backfill, 2)
    plan = {"undisturbed": None, "sigkill": signal.SIGKILL, "sigterm": signal.SIGTERM}
    with ThreadPoolExecutor(len(plan)) as pool:
        futures = {
            name: pool.submit(scenario, name, root, backfill, halves, expected, sig)
            for name, sig in plan.items()
        }
        failures = {name: f.exception() for name, f in futures.items() if f.exception()}
        if failures:
            raise AssertionError(
                "; ".join(f"{name}: {exc!r}" for name, exc in failures.items())
            ) from next(iter(failures.values()))
        done = {name: f.result() for name, f in futures.items()}
    for o in done.values():
        print(
            f"{o.name}: {backfill.rows} figures; {o.written_before:.0f} observation rows in"
            f" ClickHouse when stopped (exit {o.exit_code}, {o.stop_seconds:.1f}s);"
            f" restarted worker consumed {o.inputs_after_restart:.0f} figure messages;"
            f" settled in {o.settle_seconds:.1f}s; raw rows {o.dump['raw_rows']}"
        )
    done["engine"] = Outcome("engine", {"statuses": expected})
    yield done


def mine(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if r["plan"] == "fault-plan"]


def test_an_undisturbed_backfill_ends_as_the_engine_says(outcomes: dict[str, Outcome]) -> None:
    dump = outcomes["undisturbed"].dump
    assert sorted_rows(mine(dump["statuses"])) == outcomes["engine"].dump["statuses"]
    assert len(dump["observations"]) == FIGURES
    assert dump["deadletters"] == []
    assert outcomes["undisturbed"].removed == []  # nobody was here before it


@pytest.mark.parametrize("name", ["sigkill", "sigterm"])
def test_a_stopped_worker_restarted_loses_nothing_and_counts_nothing_twice(
    outcomes: dict[str, Outcome], name: str
) -> None:
    outcome, baseline = outcomes[name], outcomes["undisturbed"].dump
    # Stopped in the middle: some of the backfill was in ClickHouse, not all of it.
    assert 0 < outcome.written_before < FIGURES, outcome.written_before
    if name == "sigkill":
        assert outcome.exit_code == -signal.SIGKILL
    else:
        assert outcome.exit_code == 0 and outcome.stop_seconds < 30
    # The restarted worker got the un-committed rest from the broker …
    assert outcome.inputs_after_restart >= FIGURES - outcome.written_before
    # … and every table ends exactly as in the undisturbed run: no figure lost, none counted
    # twice (a double count would change an actual, a loss would drop or stale a row).
    for table in ("statuses", "observations", "targets", "scorecards", "deadletters"):
        assert outcome.dump[table] == baseline[table], table
    # The restarted worker asked the broker to let go of its predecessor's member: a killed
    # one's was still in the group and is removed at once (Kafka's error 0); a worker stopped
    # cleanly had left the group itself.
    assert [e["member"] for e in outcome.removed] == [outcome.stopped_member]
    if name == "sigkill":
        assert outcome.removed[0]["error_code"] == 0
