"""The store's one thread (sinks/connection.py ``StoreThread``): urgent calls before ordinary
ones, each kind in order; failures reach the caller; and clickhouse-connect not importing
pandas for parkpulse's inserts (``skip_pandas``), against the real embedded chdb."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from parkpulse.sinks.connection import StoreThread


def run_all(jobs: list[bool]) -> list[int]:
    """Submit ``jobs`` (urgent or not) while the thread is held busy; the order they ran in."""
    thread = StoreThread("test-store")
    gate = threading.Event()
    ran: list[int] = []
    thread.submit(gate.wait)  # running: everything below queues behind it
    futures = [thread.submit(ran.append, i, urgent=urgent) for i, urgent in enumerate(jobs)]
    gate.set()
    for future in futures:
        future.result(timeout=5)
    thread.shutdown()
    return ran


def test_urgent_calls_pass_the_ordinary_ones_queued() -> None:
    assert run_all([False, False, True, False, True]) == [2, 4, 0, 1, 3]


@given(st.lists(st.booleans(), max_size=30))
def test_each_kind_runs_in_submission_order_urgent_first(jobs: list[bool]) -> None:
    urgent = [i for i, u in enumerate(jobs) if u]
    ordinary = [i for i, u in enumerate(jobs) if not u]
    assert run_all(jobs) == urgent + ordinary


def test_a_failure_reaches_the_caller_and_the_thread_goes_on() -> None:
    thread = StoreThread("test-store")

    def fail() -> None:
        raise ValueError("refused")

    with pytest.raises(ValueError, match="refused"):
        thread.submit(fail, urgent=True).result(timeout=5)
    assert thread.submit(sum, [1, 2]).result(timeout=5) == 3
    thread.shutdown()
    with pytest.raises(RuntimeError):
        thread.submit(sum, [1])


def test_shutdown_runs_what_is_queued() -> None:
    thread = StoreThread("test-store")
    gate = threading.Event()
    thread.submit(gate.wait)
    queued = thread.submit(sum, [4, 5])
    gate.set()
    thread.shutdown()
    assert queued.result(timeout=0) == 9


@pytest.mark.asyncio
async def test_an_urgent_write_waits_only_for_the_call_running(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Against embedded chdb: a registration write submitted behind slow ordinary reads runs
    right after the read in progress."""
    from parkpulse.config import ClickHouseTarget
    from parkpulse.sinks.clickhouse import ClickHouseStore

    store = ClickHouseStore.open(ClickHouseTarget(embedded_path=tmp_path / "ch"))
    try:
        order: list[str] = []

        def slow_read(name: str) -> None:
            store.query("SELECT sleep(0.2)")
            order.append(name)

        def write() -> None:
            store.insert(
                "zones", ("id", "name_zh", "name_en", "city", "province"), [["z", "", "", "", ""]]
            )
            order.append("write")

        reads = [asyncio.ensure_future(store.arun(slow_read, f"read{i}")) for i in range(4)]
        await asyncio.sleep(0.05)  # read0 is running
        await store.arun(write, urgent=True)
        assert order == ["read0", "write"]
        assert store.urgent_waited < 0.3
        await asyncio.gather(*reads)
        assert order == ["read0", "write", "read1", "read2", "read3"]
    finally:
        store.close()


def test_an_insert_does_not_import_pandas(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The worker's first insert (the reference tables) into the real embedded chdb."""
    code = (
        "import sys\n"
        "from pathlib import Path\nfrom parkpulse.config import ClickHouseTarget\n"
        "from parkpulse.schemas.catalogue import load_catalogue\n"
        "from parkpulse.sinks.clickhouse import ClickHouseStore\n"
        f"path = Path({str(tmp_path / 'ch')!r})\n"
        "store = ClickHouseStore.open(ClickHouseTarget(embedded_path=path))\n"
        "store.run(store.write_reference, load_catalogue())\n"
        "n = store.run(store.query, 'SELECT count() AS n FROM {db}.zones')[0]['n']\n"
        "store.close()\n"
        "print(n == len(load_catalogue().zones), 'pandas' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "False"]  # the zones landed; pandas never imported


def test_an_exiting_process_finishes_the_queued_calls(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """No ``shutdown``: the process still runs what it queued before it ends."""
    done = tmp_path / "done"
    code = (
        "import time\n"
        "from parkpulse.sinks.connection import StoreThread\n"
        "t = StoreThread('exit-test')\n"
        "t.submit(time.sleep, 0.3)\n"
        f"t.submit(open({str(done)!r}, 'w').write, 'yes')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    assert done.read_text() == "yes"
