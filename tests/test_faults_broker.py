"""The embedded broker dies, and ``parkpulse run`` itself is killed, in the middle of a backfill.

Tansu keeps topics in memory, so either loses every message it held. ClickHouse (chdb under
DATA_DIR) and the feeds kept under DATA_DIR/feeds survive, and re-publishing a feed is
idempotent, so ``run`` recovers by publishing the kept feeds again into a fresh broker:

- ``tansu_killed``: Tansu gets SIGKILL. ``run`` notices, starts it again on the same port,
  recreates the topics, replaces its worker (whose consumer positions meant the old broker) and
  replays the kept feeds. The documented manual path, ``parkpulse produce --replay``, then
  changes nothing.
- ``run_killed``: ``parkpulse run`` gets SIGKILL. Its Tansu and worker die with it (the kernel
  kills them: nothing holds the port or the data path), and ``parkpulse run`` on the same
  DATA_DIR replays the kept feeds.

Both run side by side, each on its own DATA_DIR; both must end with the engine's status rows.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from parkpulse.broker import wait_for_port
from tests.conftest import RunningStack, children, start_stack, wait_until
from tests.fault_support import (
    INDICATORS,
    ZONES,
    Backfill,
    engine_statuses,
    listening,
    rows_written,
    sorted_rows,
    write_backfill,
)

pytestmark = pytest.mark.integration

RUN_FLAGS = ("--no-demo", "--no-scoreboard")


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def statuses(stack: RunningStack, zones: tuple[str, ...]) -> list[dict[str, Any]]:
    return sorted_rows(r for r in stack.get_json("/api/status/history") if r["zone"] in zones)


def cli_ok(stack: RunningStack, *args: str) -> str:
    result = stack.cli(*args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def start_mid_backfill(
    stack: RunningStack, backfill: Backfill, hold: bool = False
) -> tuple[float, int | None]:
    """Publish the targets and the feed through the CLI; return the figures in ClickHouse when
    the first landed, once produce is through (the fault follows at once), and the pid of the
    worker held (None unless ``hold``). ``--wait 0``: produce
    must not wait for the worker's verdict. The figures are watched while produce still runs,
    one figure per message (a batch of the roll-up takes 100 of ~1,500): a worker may take the
    whole feed before produce's process has exited. ``hold``: the worker is stopped (SIGSTOP)
    once the first figures landed and until the caller continues it, so the feed cannot have
    landed when the fault comes, however fast the worker is against produce. The caller
    continues the pid it was given: once the broker is killed, the supervisor may kill that
    worker (a SIGKILL ends a stopped process) before the caller can look it up again."""
    cli_ok(stack, "targets", str(backfill.targets))
    producing = ThreadPoolExecutor(1).submit(
        cli_ok, stack, "produce", "--wait", "0", "--envelope", "1", str(backfill.feed)
    )
    wait_until(lambda: rows_written(stack) > 0, timeout=60, every=0.01)
    written = rows_written(stack)  # asked of the worker, so before it is held
    held = _worker(stack) if hold else None
    if held is not None:
        os.kill(held, signal.SIGSTOP)
    producing.result(timeout=120)
    return written, held


def _worker(stack: RunningStack) -> int:
    pid = stack.worker_pid()
    assert pid is not None
    return pid


@dataclass
class Recovery:
    name: str
    rows: int
    expected: list[dict[str, Any]]
    written_before: float = 0.0
    seconds: float = 0.0
    final: list[dict[str, Any]] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)


def tansu_killed(root: Path, backfill: Backfill) -> Recovery:
    out = Recovery("tansu_killed", backfill.rows, engine_statuses(backfill))
    stack = start_stack(root / "tansu-killed", *RUN_FLAGS)
    try:
        run_children = children(stack.proc.pid)
        tansu = next(pid for pid, cmd in run_children.items() if "--listener-url" in cmd)
        out.written_before, held = start_mid_backfill(stack, backfill, hold=True)
        assert held is not None
        os.kill(tansu, signal.SIGKILL)
        killed = time.monotonic()
        with contextlib.suppress(ProcessLookupError):  # the supervisor may have killed it
            os.kill(held, signal.SIGCONT)
        wait_until(lambda: sum("ready" in line for line in stack.lines) >= 2, timeout=90)
        wait_until(lambda: statuses(stack, backfill.zones) == out.expected, timeout=90)
        out.seconds = time.monotonic() - killed
        out.final = statuses(stack, backfill.zones)
        new_tansu = [pid for pid, cmd in children(stack.proc.pid).items() if "--listener" in cmd]
        out.facts["tansu_replaced"] = len(new_tansu) == 1 and new_tansu[0] != tansu
        out.facts["same_port"] = wait_for_port("127.0.0.1", stack.broker_port, 1)
        out.facts["replayed"] = [line for line in stack.lines if line.startswith("replayed")]
        # The documented manual path: re-publish everything kept. It changes nothing.
        consumed = stack.metric(
            "parkpulse_events_total", topic="parkpulse.observations", direction="in"
        )
        result = stack.cli("produce", "--replay")
        out.facts["replay_exit"] = result.returncode
        out.facts["replay_stdout"] = result.stdout
        wait_until(
            lambda: (
                stack.metric(
                    "parkpulse_events_total", topic="parkpulse.observations", direction="in"
                )
                >= consumed + backfill.rows
            ),
            timeout=60,
        )
        time.sleep(1.0)  # one more batch window
        out.facts["after_replay"] = statuses(stack, backfill.zones)
        out.facts["exit"] = stack.stop()
        return out
    finally:
        stack.stop()


def run_killed(root: Path, backfill: Backfill) -> Recovery:
    out = Recovery("run_killed", backfill.rows, engine_statuses(backfill))
    data_dir = root / "run-killed"
    stack = start_stack(data_dir, *RUN_FLAGS)
    try:
        family = children(stack.proc.pid)
        out.written_before, _ = start_mid_backfill(stack, backfill)
        stack.proc.kill()
        stack.proc.wait()
        killed = time.monotonic()
        out.facts["children_died"] = wait_until(
            lambda: not any(alive(pid) for pid in family), timeout=10
        )
        out.facts["port_freed"] = wait_until(
            lambda: not listening(stack.broker_port), timeout=10, every=0.1
        )
        again = start_stack(data_dir, *RUN_FLAGS)
        try:
            wait_until(lambda: statuses(again, backfill.zones) == out.expected, timeout=90)
            out.seconds = time.monotonic() - killed
            out.final = statuses(again, backfill.zones)
            out.facts["replayed"] = [line for line in again.lines if line.startswith("replayed")]
            out.facts["exit"] = again.stop()
        finally:
            again.stop()
        return out
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def recoveries(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Recovery]]:
    root = tmp_path_factory.mktemp("broker")
    first = write_backfill(root / "a", ZONES[:3], INDICATORS[:6], range(2018, 2025), name="a")
    second = write_backfill(root / "b", ZONES[3:6], INDICATORS[:6], range(2018, 2025), name="b")
    with ThreadPoolExecutor(2) as pool:
        jobs = [pool.submit(tansu_killed, root, first), pool.submit(run_killed, root, second)]
        done = {r.name: r for r in (job.result() for job in jobs)}
    for r in done.values():
        print(
            f"{r.name}: {r.rows} figures, {r.written_before:.0f} in ClickHouse while produce ran;"
            f" all {len(r.expected)} status rows back {r.seconds:.1f}s after the kill"
        )
    yield done


def test_run_restarts_a_dead_broker_and_replays_the_kept_feeds(
    recoveries: dict[str, Recovery],
) -> None:
    r = recoveries["tansu_killed"]
    # figures were landing while produce still ran: the fault hits a live pipeline, and the
    # feed had not landed when Tansu died (it is replayed from DATA_DIR/feeds)
    assert 0 < r.written_before < r.rows
    assert r.facts["tansu_replaced"] and r.facts["same_port"]
    assert any("a.csv: " in line for line in r.facts["replayed"])  # the feed, from DATA_DIR/feeds
    assert r.final == r.expected
    assert r.facts["exit"] == 0


def test_produce_replay_after_recovery_changes_nothing(recoveries: dict[str, Recovery]) -> None:
    r = recoveries["tansu_killed"]
    assert r.facts["replay_exit"] == 0
    assert f"a.csv: {r.rows} published, 0 rejected" in r.facts["replay_stdout"]
    assert r.facts["after_replay"] == r.expected


def test_a_killed_run_takes_its_broker_and_worker_with_it_and_recovers_on_restart(
    recoveries: dict[str, Recovery],
) -> None:
    r = recoveries["run_killed"]
    assert r.facts["children_died"] and r.facts["port_freed"]
    assert any("b.csv: " in line for line in r.facts["replayed"])
    assert r.final == r.expected
    assert r.facts["exit"] == 0
