"""The worker's malloc tuning (parkpulse/memory.py)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from parkpulse.memory import CHDB_JEMALLOC_ENV, tune_malloc


def test_glibc_takes_the_settings_and_others_are_left_alone() -> None:
    # mallopt(3) returns 1 for each setting glibc accepts; elsewhere nothing is changed.
    assert tune_malloc() is (platform.libc_ver()[0] == "glibc")


def _run(code: str, env: dict[str, str] | None = None, *args: str) -> str:
    """``code`` in a fresh interpreter (chdb's allocator reads its options once, at load),
    ``args`` as its ``sys.argv[1:]``."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=True,
    )
    return done.stdout.strip()


DECAY_OF_CHDB = """
    from parkpulse.memory import tune_chdb_heap
    took = tune_chdb_heap()
    import chdb
    stats = chdb.connect(":memory:").query("SELECT * FROM system.jemalloc_stats", "TSVRaw")
    line = [ln for ln in stats.bytes().decode().splitlines() if "opt.dirty_decay_ms" in ln][0]
    print(took, line.split()[1])
"""


def test_chdb_frees_its_pages_at_once_when_tuned_before_it_loads() -> None:
    env = {k: v for k, v in os.environ.items() if k != CHDB_JEMALLOC_ENV}
    assert _run(DECAY_OF_CHDB, env) == "True 0"


def test_an_operators_own_chdb_allocator_options_win() -> None:
    env = dict(os.environ) | {CHDB_JEMALLOC_ENV: "dirty_decay_ms:1234"}
    assert _run(DECAY_OF_CHDB, env) == "False 1234"


def test_chdb_already_loaded_is_said_not_tuned() -> None:
    out = _run("""
        import chdb
        from parkpulse.memory import tune_chdb_heap
        print(tune_chdb_heap())
    """)
    assert out == "False"


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_keep_trimmed_gives_back_what_glibc_holds_free_inside_its_heap() -> None:
    # 60 MB in 64 KB blocks (below the mmap threshold: inside the heap), the last one kept, so
    # the free space is not at the top of the heap, where glibc would trim it by itself.
    out = _run("""
        import asyncio, ctypes
        from parkpulse.memory import keep_trimmed, tune_malloc

        def anon_mb():
            for line in open("/proc/self/status"):
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) // 1024

        tune_malloc()
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc.restype = ctypes.c_void_p
        libc.free.argtypes = [ctypes.c_void_p]
        blocks = [libc.malloc(64 * 1024) for _ in range(960)]
        for b in blocks:
            ctypes.memset(b, 1, 64 * 1024)
        for b in blocks[:-1]:
            libc.free(b)
        before = anon_mb()

        async def trim_a_while():
            task = asyncio.create_task(keep_trimmed(every=0.01))
            await asyncio.sleep(0.2)
            task.cancel()

        asyncio.run(trim_a_while())
        print(before, anon_mb())
    """)
    before, after = map(int, out.split())
    assert before - after >= 50, (before, after)


INSERT_THEN_LOOK = """
    import gc, sys
    from pathlib import Path
    from parkpulse.config import ClickHouseTarget
    from parkpulse.schemas.records import Observation
    from parkpulse.sinks.batch import SinkBatch
    from parkpulse.sinks.clickhouse import ClickHouseStore

    store = ClickHouseStore.open(ClickHouseTarget(embedded_path=Path(sys.argv[1])))
    marker = "".join(["2021-04-15T09:00:00", "+08:00"])  # one object, found by identity
    batch = SinkBatch()
    batch.observations = [
        Observation("jinan-hitech", "gdp", f"2021-{m:02d}", "YTD", 1.0 * m, "cny_100m",
                    published_at=marker)
        for m in range(1, 13)
    ]
    gc.collect()
    gc.disable()  # what is still alive now waits for no collector: only references hold it
    store.run(store.write, batch)
    del batch
    held = [o for o in gc.get_objects() if type(o) in (list, tuple) and any(v is marker for v in o)]
    rows = store.run(store.query, "SELECT count() AS n FROM {db}.observations")[0]["n"]
    print(len(held), rows)
    store.close()
"""


def test_an_insert_holds_no_batch_once_written(tmp_path: Path) -> None:
    # the driver's insert context refers to itself; what it was given is emptied, so the
    # batch's columns go at once, not at the next full collection
    out = _run(INSERT_THEN_LOOK, None, str(tmp_path / "ch"))
    assert out.split()[-2:] == ["0", "12"]


def test_the_collector_runs_less_often_and_skips_what_the_worker_started_with() -> None:
    out = _run("""
        import gc
        from parkpulse.memory import GC_THRESHOLDS, tune_collector
        tune_collector()
        print(gc.get_threshold() == GC_THRESHOLDS, gc.get_freeze_count() > 1000)
    """)
    assert out == "True True"
