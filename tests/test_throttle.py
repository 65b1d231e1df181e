"""The report's and the gauges' throttle while a backlog streams in (parkpulse/throttle.py)."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from parkpulse.throttle import gauge_wait, report_due

BUSY = 120.0


def test_report_unchanged_since_the_page_is_not_rewritten() -> None:
    assert not report_due(7, 7, 7, math.inf, 0.0, BUSY)
    assert not report_due(7, 7, 5, math.inf, 0.0, BUSY)  # even when it just came back to the page


def test_report_first_check_of_a_fresh_worker_writes() -> None:
    # nothing on disk, nothing seen: write at once (an empty page beats no page)
    assert report_due(3, None, None, math.inf, 0.0, BUSY)


def test_report_settled_change_is_written_at_the_next_check() -> None:
    # the status changed since the page, and not since the last check: the backlog drained
    assert report_due(9, 4, 9, 1.0, 0.5, BUSY)


def test_report_waits_a_multiple_of_its_last_rewrite_even_when_settled() -> None:
    # the last rewrite took 3 s: not again within 20 × 3 s
    assert not report_due(9, 4, 9, 59.0, 60.0, BUSY)
    assert report_due(9, 4, 9, 60.0, 60.0, BUSY)


def test_report_streaming_changes_wait_for_the_busy_gap() -> None:
    # still changing between checks (9 → 10), page written 12 s ago: not yet
    assert not report_due(10, 4, 9, 12.0, 0.5, BUSY)
    # … BUSY s after the last rewrite it is written even though rows still stream in
    assert report_due(10, 4, 9, BUSY, 0.5, BUSY)
    # a restarted worker mid-backlog has no rewrite of its own yet: it writes
    assert report_due(10, 4, 9, math.inf, 0.0, BUSY)


def test_gauges_quiet_wait_is_the_floor_or_a_multiple_of_the_read() -> None:
    assert gauge_wait(0.1, False, 1.0, 4.0, 3.0) == 1.0
    assert gauge_wait(0.5, False, 1.0, 4.0, 3.0) == 2.0


def test_gauges_wait_longer_while_batches_keep_arriving() -> None:
    assert gauge_wait(0.1, True, 1.0, 4.0, 3.0) == 3.0
    # a slow read still sets the pace when it is longer than the busy interval
    assert gauge_wait(1.0, True, 1.0, 4.0, 3.0) == 4.0


finite = st.floats(min_value=0, max_value=1e4, allow_nan=False)


@given(finite, finite, finite, finite)
def test_gauge_wait_is_bounded_and_busy_never_shorter(
    took: float, min_every: float, factor: float, busy_every: float
) -> None:
    quiet = gauge_wait(took, False, min_every, factor, busy_every)
    busy = gauge_wait(took, True, min_every, factor, busy_every)
    assert quiet >= min_every and quiet >= factor * took
    assert busy >= quiet and busy >= busy_every
    assert busy == max(quiet, busy_every)


fp = st.one_of(st.none(), st.integers(0, 5))


@given(
    fp,
    fp,
    fp,
    st.floats(min_value=0, allow_nan=False),
    st.floats(min_value=0, max_value=1e3),
    st.floats(min_value=0, max_value=1e3),
)
def test_report_due_rules(
    fingerprint: int | None,
    written: int | None,
    seen: int | None,
    since: float,
    gap: float,
    busy: float,
) -> None:
    due = report_due(fingerprint, written, seen, since, gap, busy)
    if fingerprint == written or since < gap:
        assert not due  # never rewrites what is on the page, nor sooner than the gap
    elif fingerprint == seen or seen is None or since >= busy:
        assert due  # a settled change, a first check, or the busy gap passed
    else:
        assert not due
