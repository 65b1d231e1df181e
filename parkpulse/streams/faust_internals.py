"""Every reach into a private Faust or aiokafka attribute, in one place.

faust-streaming and aiokafka are pinned (pyproject.toml) because parkpulse needs five things
their public APIs do not give:

- the running aiokafka producer (``Producer._ensure_producer``), to send status rows as record
  batches (streams/keyed_send.py);
- the offsets the group has committed (``Consumer._committed_offset``), for the lag gauge;
- the running aiokafka fetcher (``Consumer._thread._ensure_consumer()._fetcher``, its
  ``_fetch_max_bytes`` and ``_fetch_max_wait_ms``), to bound what one fetch answer brings in
  and how long the broker holds a fetch for data;
- the member id the group coordinator gave the consumer (``Consumer._thread._ensure_consumer()
  ._coordinator.member_id``), written down so a restarted worker can ask the broker to let go
  of a killed one's (group_member.py);
- the consumer's ``commit`` and ``on_task_error``, replaced on the instance so a batch that was
  interrupted is never committed (stack.py ``CommitGuard``).

tests/test_faust_internals.py pins each against the installed versions: a version that moves
one fails there, not in production. Nothing else in parkpulse names a private attribute of
either library.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from parkpulse.logs import get_logger, log_event

log = get_logger("worker")

Commit = Callable[..., Awaitable[bool]]


def running_producer(app: faust.App) -> AIOKafkaProducer:
    """The aiokafka producer under ``app``'s Faust producer (raises if it has not started)."""
    return app.producer._ensure_producer()  # type: ignore[attr-defined,no-any-return]


def committed_offsets(app: faust.App) -> Mapping[Any, int | None]:
    """The next offset to read per topic-partition, as the group last committed it (Faust keeps
    it per TP; None or absent: nothing committed yet)."""
    return app.consumer._committed_offset  # type: ignore[attr-defined,no-any-return]


def bound_consumer_fetches(consumer: AIOKafkaConsumer, max_bytes: int, max_wait_ms: int) -> None:
    """Cap one fetch answer of a started aiokafka consumer at ``max_bytes`` (Kafka's
    ``fetch.max.bytes``) and the broker's wait for data at ``max_wait_ms`` (``fetch.max.wait.ms``),
    applied to the running fetcher."""
    consumer._fetcher._fetch_max_bytes = max_bytes  # type: ignore[attr-defined]
    consumer._fetcher._fetch_max_wait_ms = max_wait_ms  # type: ignore[attr-defined]


def bound_fetches(app: faust.App, max_bytes: int, max_wait_ms: int) -> bool:
    """Cap what one Kafka fetch answer brings into the worker at ``max_bytes``, and how long the
    broker may hold a fetch for data at ``max_wait_ms``.

    Faust passes ``consumer_max_fetch_size`` as aiokafka's per-partition limit, which Tansu does
    not honour: it answers with up to aiokafka's ``fetch_max_bytes`` (50 MB by default) per
    partition (measured: 5 MB a partition at the default, 1 MB at 1 MB). Faust holds a whole
    answer, and aiokafka the next one, while their records trickle through the bounded stream
    buffers: 3,466 envelopes (61 MB) were held during the backfill (tracemalloc). Kafka applies
    the same setting to the whole answer. Faust has no setting for it, so it is set on the
    running aiokafka fetcher (tests/test_fetch_bound.py shows it takes).

    Faust also fixes the broker's wait at 1,500 ms, and Tansu holds a fetch that found nothing
    new for a good part of that wait even when records arrive meanwhile (a waiting consumer got a
    record after a median 254–375 ms; 23–28 ms at 250 ms): a live registration's latency was
    mostly this wait. Returns whether both took.
    """
    try:
        consumer = app.consumer._thread._ensure_consumer()  # type: ignore[attr-defined]
        bound_consumer_fetches(consumer, max_bytes, max_wait_ms)
    except AttributeError:
        log_event(
            log,
            "fetch_bound_not_set",
            level=logging.WARNING,
            max_bytes=max_bytes,
            max_wait_ms=max_wait_ms,
        )
        return False
    log_event(log, "fetch_bound", max_bytes=max_bytes, max_wait_ms=max_wait_ms)
    return True


def group_member_id(app: faust.App) -> str:
    """The member id of ``app``'s consumer in its group ("" before it has joined)."""
    consumer = app.consumer._thread._ensure_consumer()  # type: ignore[attr-defined]
    return str(consumer._coordinator.member_id)


def replace_commits(
    consumer: Any,
    commit: Commit,
    on_task_error: Callable[[BaseException], Awaitable[None]],
) -> Commit:
    """Make ``commit`` the Faust consumer's commit and ``on_task_error`` its agent-error
    callback; returns the commit it replaced (for ``commit`` to call).

    Faust's commit loop, rebalance and shutdown call ``self.commit()``, and ``App`` calls
    ``consumer.on_task_error(exc)`` when an agent raises; both are looked up on the instance,
    so replacing them there takes every path.
    """
    original: Commit = consumer.commit
    consumer.commit = commit
    consumer.on_task_error = on_task_error
    return original
