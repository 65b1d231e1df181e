"""When the worker's readers of the status table (the HTML report, the status gauges) may read it.

Both read through the store's one thread, which the roll-up needs for its writes. While a backlog
streams in (a backfill: a batch every few milliseconds) every read delays the roll-up, and what
it shows is stale a moment later anyway; once the backlog has drained, the readers must catch up
within seconds. The decisions are pure functions of what the caller saw, so they can be tested
with worked examples; the callers (``report.keep_report_fresh``, ``streams.signals``) only
measure and sleep.
"""

from __future__ import annotations

import math


def report_due(
    fingerprint: int | None,
    written: int | None,
    seen: int | None,
    since_write: float,
    gap: float,
    busy_gap: float,
) -> bool:
    """Whether the report should be rewritten now.

    ``fingerprint`` is the status table's fingerprint now, ``written`` the one the page on disk
    was made from, ``seen`` the one of the previous check (a few seconds ago), ``since_write``
    seconds since the last rewrite (``math.inf`` if none in this process). Unchanged since the
    page → no. Fewer than ``gap`` seconds since the last rewrite → no. Changed, and still
    changing since the last check (rows streaming in) → only once ``busy_gap`` seconds have
    passed since the last rewrite. Changed and settled → yes.
    """
    if fingerprint == written or since_write < gap:
        return False
    streaming = seen is not None and fingerprint != seen
    return not streaming or since_write >= busy_gap


def gauge_wait(
    took: float, busy: bool, min_every: float, cost_factor: float, busy_every: float
) -> float:
    """Seconds to wait after a status read that took ``took`` seconds before the next one.

    At least ``min_every`` and ``cost_factor`` times the read; while batches keep arriving
    (``busy``: another change came in during the last wait) at least ``busy_every``, so a backlog
    costs the roll-up at most one read per ``busy_every`` — and the gauges are still at most
    that long behind once it drains.
    """
    wait = max(min_every, cost_factor * took)
    if busy:
        wait = max(wait, busy_every)
    return wait if math.isfinite(wait) else busy_every
