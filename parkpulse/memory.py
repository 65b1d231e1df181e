"""The worker's heap: glibc malloc tuned for a long-lived process that churns big batches.

A batch decodes tens of megabytes (Kafka envelopes of 75–165 KB, their records, ClickHouse
blocks) on two threads (the event loop and the store's), then frees it. With glibc's defaults
each thread gets its own arenas and the mmap threshold rises after the first large free, so
freed batches stay mapped and the resident set only grows. Measured on the registrations bench
(1.3M events): peak anonymous memory 412 MB by default, 354 MB with the settings below.

Embedded chdb does not allocate through glibc at all: ClickHouse inside it brings its own
jemalloc (built with the ``je_`` prefix, so it reads ``JE_MALLOC_CONF``, not ``MALLOC_CONF``),
configured for a server — freed pages stay resident for ``dirty_decay_ms`` 5 s. Under the
worker's churn that held 40–65 MB of dirty pages at a time on top of the ~55 MB chdb actually
had allocated (its ``system.jemalloc_stats``: resident 113–119 MB against active 56 MB during the
backfill). ``tune_chdb_heap`` sets a decay of 0 (freed pages go back at once) before chdb's
library is loaded. And glibc keeps pages freed inside its main heap unless asked
(``malloc_trim``): ``keep_trimmed`` asks every TRIM_EVERY seconds (40 MB held free after the
registrations backlog without it).

No-ops where glibc is not the C library (musl, macOS).

Python's own cyclic collector is held off while a batch is decoded and worked through
(``gc_paused``): the records are freed by reference counting, and the collector, left on, ran
every 700 new objects and scanned the worker's whole heap again and again. Elsewhere it runs
less often (``tune_collector``): what the worker allocates is freed by reference counting too,
and a full collection walks every object the roll-up holds.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import functools
import gc
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from parkpulse.config import library_default
from parkpulse.logs import get_logger, log_event

log = get_logger("memory")

# mallopt(3) parameters
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8

ARENAS = 2  # the event loop's thread and the store's
MMAP_THRESHOLD = 128 * 1024  # fixed: a freed envelope-sized block goes back to the system
TRIM_THRESHOLD = 256 * 1024
TRIM_EVERY = 2.0  # seconds between malloc_trim calls (a call takes a few ms)

# chdb's jemalloc: freed pages go back to the system at once instead of 5 s later (the rest of
# its build-time configuration stays). An operator's own JE_MALLOC_CONF wins.
CHDB_JEMALLOC_ENV = "JE_MALLOC_CONF"
CHDB_JEMALLOC_CONF = "dirty_decay_ms:0,muzzy_decay_ms:0"


@functools.cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


def tune_malloc() -> bool:
    """Apply the settings above for this process; True when glibc took them."""
    libc = _libc()
    if libc is None:
        return False
    ok = all(
        libc.mallopt(param, value) == 1
        for param, value in (
            (M_ARENA_MAX, ARENAS),
            (M_MMAP_THRESHOLD, MMAP_THRESHOLD),
            (M_TRIM_THRESHOLD, TRIM_THRESHOLD),
        )
    )
    if not ok:
        log_event(log, "malloc_not_tuned", level=logging.WARNING)
    return ok


def tune_chdb_heap() -> bool:
    """Set chdb's jemalloc options for this process (``CHDB_JEMALLOC_CONF``) unless the
    environment already names some; they are read when chdb's library loads, so this must run
    before anything imports ``chdb``. True when chdb will take the options set here."""
    if "chdb" in sys.modules:
        log_event(log, "chdb_heap_not_tuned", level=logging.WARNING, reason="chdb already loaded")
        return False
    return library_default(CHDB_JEMALLOC_ENV, CHDB_JEMALLOC_CONF) == CHDB_JEMALLOC_CONF


# Collections of the young generation every 100,000 allocations net (Python's default: 700). Over
# the 647,224-figure backfill run in-process (scripts/profile_rollup.py, embedded chdb), all of
# the process's CPU 54.3 → 48.5 s, mostly the store thread's inserts (clickhouse-connect builds a
# Python object per value) and the reads; anonymous peak unchanged (465 → 466 MB): the worker
# makes little cyclic garbage once the driver's insert contexts no longer hold themselves
# (sinks/connection.Connection.insert).
GC_THRESHOLDS = (100_000, 50, 100)


def tune_collector() -> None:
    """Collect once, set aside what exists now (modules, the catalogue, the app: never garbage)
    where no collection walks it again (``gc.freeze``), and collect less often from here on."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def trim() -> None:
    """Give the pages glibc holds free anywhere in its heaps back to the system
    (``malloc_trim(0)``)."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


async def keep_trimmed(every: float = TRIM_EVERY) -> None:
    """``trim`` every ``every`` seconds until cancelled (a worker's background job)."""
    while True:
        await asyncio.sleep(every)
        trim()


@contextmanager
def gc_paused() -> Iterator[None]:
    """Python's cyclic collector held off while a batch is decoded, validated and rolled up.

    Decoding makes a dict per record: left on, the collector ran every 700 of them and scanned
    the worker's whole heap again and again (23 % of the worker's Python time on the
    registrations, py-spy --native; a fifth of the roll-up's CPU over a backfill). Paused, the
    dicts are freed by reference counting before it runs. Callers hold it over code that does
    not await, so only one batch's objects wait for it.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
