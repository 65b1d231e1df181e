"""The Faust app: topics, the agents that own them, and the HTTP API beside what it reads.

``build_app`` declares everything on one screen; it is a factory rather than module-level code
because the broker, the store and the ports come from Settings at run time.

Flow: ``observations`` + ``targets-by-zone`` (co-partitioned by zone) → ``roll_up`` → ClickHouse,
then ``status`` / ``deadletter``. ``targets`` is re-keyed by zone by ``rekey_targets``;
``deadletter`` is sunk into ClickHouse by ``sink_deadletters``. Offsets are acknowledged only
after a batch is durably written (``take_events`` acks when the loop body returns).
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import faust
import orjson

from parkpulse import board
from parkpulse.config import Settings
from parkpulse.deadletter_query import DeadLetterQuery
from parkpulse.logs import get_logger, log_event
from parkpulse.schemas.catalogue import Catalogue
from parkpulse.schemas.deadletter import dead_letter
from parkpulse.schemas.errors import RejectedInput
from parkpulse.schemas.records import DeadLetter
from parkpulse.sinks.clickhouse import ClickHouseStore, ClickHouseUnavailable, SinkBatch
from parkpulse.sinks.metrics import PipelineMetrics
from parkpulse.streams.keyed_send import send_keyed
from parkpulse.streams.registrations import add_registrations_stage
from parkpulse.streams.rollup import Input, Rollup, read_message, status_wire, zone_of
from parkpulse.streams.signals import LAG_EVERY, StatusSignals, report_lag
from parkpulse.topics import (
    DEADLETTER,
    OBSERVATIONS,
    STATUS,
    TARGETS,
    TARGETS_BY_ZONE,
    client_options,
)

log = get_logger("worker")
T = TypeVar("T")

BATCH_MAX = 5000  # targets or dead letters per batch
# Messages per roll-up batch: a message is one figure or an envelope of up to ENVELOPE_MAX
# (100), so a batch holds at most 10k figures; Faust queues two batches' worth per topic. Bare
# figures (the registrations stage's, every EMIT_EVERY) come 100 to a batch, so a batch's fixed
# cost (a ClickHouse insert per table) is paid a few times per emit, not once per 40 figures.
# Measured on the backfill bench: 100 holds ~60 MB less than 200 and is no slower (38–48 s
# against 47–50 s); 50 is no better.
ROLLUP_TAKE = 100
BATCH_WITHIN = 0.2  # seconds: a figure is in ClickHouse well within 2 s of arriving
RETRY_FIRST_DELAY = 0.2
RETRY_MAX_DELAY = 5.0
# What a worker holds while its sink waits: the batch being written, a take buffer of BATCH_MAX
# events behind it, STREAM_BUFFER messages queued per topic, and what the Kafka fetcher has
# prefetched (one answer of FETCH_RESPONSE_BYTES). Past that, Faust stops fetching.
STREAM_BUFFER = 4096
FETCH_MAX_BYTES = 1 << 20
FETCH_RESPONSE_BYTES = 1 << 20  # one fetch answer (see bound_fetches)
IDENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")


def faust_options(settings: Settings) -> dict[str, Any]:
    """Faust settings tuned so a worker (re)joins its group in seconds on the embedded broker."""
    security = settings.kafka_security
    options: dict[str, Any] = {
        "broker": settings.broker_url,
        "store": "memory://",
        "topic_partitions": settings.partitions,
        "topic_replication_factor": 1,
        "consumer_auto_offset_reset": "earliest",
        "broker_session_timeout": 6.0,
        "broker_heartbeat_interval": 1.0,
        "broker_rebalance_timeout": 10.0,
        "broker_commit_interval": 1.0,
        "broker_request_timeout": 30.0,
        "stream_wait_empty": False,
        "stream_buffer_maxsize": STREAM_BUFFER,
        "consumer_max_fetch_size": FETCH_MAX_BYTES,
        "web_bind": settings.api_host,
        "web_host": settings.api_host,
        "web_port": settings.api_port,
        "web_in_thread": False,
        "producer_linger": 0.005,
        "producer_max_batch_size": 1 << 18,
        "worker_redirect_stdouts": False,
    }
    if security.sasl_mechanism:
        options["broker_credentials"] = faust.SASLCredentials(
            username=security.sasl_username,
            password=security.sasl_password,
            mechanism=security.sasl_mechanism,
            ssl_context=client_options(settings).get("ssl_context"),
        )
    elif "ssl_context" in client_options(settings):
        options["broker_credentials"] = faust.SSLCredentials(
            client_options(settings)["ssl_context"]
        )
    return options


async def write_durably(
    store: ClickHouseStore, batch: SinkBatch, metrics: PipelineMetrics, stopping: Callable[[], bool]
) -> None:
    """Write the batch, retrying with backoff until it lands: consumption waits, nothing drops.

    The agent awaits this with the batch's events un-acked, so while ClickHouse is down Faust
    stops handing it events and stops fetching once its bounded buffers are full (see
    STREAM_BUFFER). ``parkpulse_sink_buffered_rows`` shows the rows held, and every failed
    attempt counts in ``parkpulse_sink_errors_total``. A worker told to stop gives the batch up
    un-written and un-committed (stack.py holds back the offset commit while stopping), so the
    broker hands it to the next worker.
    """
    written = await retry_store(
        store, store.write, batch, metrics=metrics, stopping=stopping, holding=len(batch)
    )
    for table, n in written.items():
        if n:
            metrics.count_sink_rows(table, n)


async def retry_store(
    store: ClickHouseStore,
    fn: Callable[..., T],
    *args: Any,
    metrics: PipelineMetrics,
    stopping: Callable[[], bool],
    holding: int = 0,
) -> T:
    """``fn(*args)`` on the store's thread, retried with capped, jittered exponential backoff
    for as long as ClickHouse is unavailable (reads of zone state need it as much as writes).

    ``holding`` rows wait on this call; they count in ``parkpulse_sink_buffered_rows`` until it
    returns (inc/dec, not set: several agents wait at once).
    """
    metrics.sink_buffered.inc(holding)
    try:
        return await _retry(store, fn, args, metrics, stopping)
    finally:
        metrics.sink_buffered.dec(holding)


async def _retry(
    store: ClickHouseStore,
    fn: Callable[..., T],
    args: Sequence[Any],
    metrics: PipelineMetrics,
    stopping: Callable[[], bool],
) -> T:
    delay = RETRY_FIRST_DELAY
    while True:
        try:
            return await store.arun(fn, *args)
        except ClickHouseUnavailable as exc:
            metrics.count_sink_error(exc.table or getattr(fn, "__name__", "store"))
            log_event(
                log,
                "sink_retry",
                level=logging.WARNING,
                error=str(exc)[:300],
                call=getattr(fn, "__name__", "store"),
                delay_s=round(delay, 2),
            )
            if stopping():
                raise
            await asyncio.sleep(delay * random.uniform(0.75, 1.25))
            delay = min(delay * 2, RETRY_MAX_DELAY)


def build_app(
    settings: Settings,
    store: ClickHouseStore,
    metrics: PipelineMetrics,
    catalogue: Catalogue,
    on_ready: Callable[[faust.App], Awaitable[None]] | None = None,
) -> faust.App:
    """The parkpulse Faust app wired to a store and a metrics registry."""
    app = faust.App("parkpulse", autodiscover=False, **faust_options(settings))
    raw = {"key_serializer": "raw", "value_serializer": "raw"}
    zone_inputs = app.topic(OBSERVATIONS, TARGETS_BY_ZONE, maxsize=2 * ROLLUP_TAKE, **raw)
    targets = app.topic(TARGETS, **raw)
    targets_by_zone = app.topic(TARGETS_BY_ZONE, **raw)
    deadletter = app.topic(DEADLETTER, **raw)
    rollup = Rollup(catalogue, jump_factor=settings.suspect_jump_factor)

    def stopping() -> bool:
        return bool(app.should_stop)

    async def read(fn: Callable[[], T]) -> T:
        return await retry_store(store, fn, metrics=metrics, stopping=stopping)

    signals = StatusSignals(app, store, metrics, settings, read)

    @app.agent(targets)
    async def rekey_targets(stream: faust.StreamT) -> None:
        """Targets are keyed plan|zone|indicator; re-key by zone so they meet the figures.

        A batch is acknowledged only once its re-keyed copies are delivered: acking on send
        alone let a worker killed in between commit targets that never reached the roll-up.
        """
        async for events in stream.take_events(BATCH_MAX, within=BATCH_WITHIN):
            sends = [
                await targets_by_zone.send(key=(zone_of(e.value) or "").encode(), value=e.value)
                for e in events
            ]
            await asyncio.gather(*sends)
            metrics.count_events(TARGETS, "in", len(events))

    @app.agent(zone_inputs)
    async def roll_up(stream: faust.StreamT) -> None:
        """Figures and targets per zone → status rows (ClickHouse first, then the topic)."""
        async for events in stream.take_events(ROLLUP_TAKE, within=BATCH_WITHIN):
            inputs = [
                record
                for e in events
                for record in read_message(
                    e.message.topic,
                    "target" if e.message.topic == TARGETS_BY_ZONE else "observation",
                    e.value if isinstance(e.value, bytes) else b"",
                    e.message.partition,
                    e.message.offset,
                    e.message.key if e.message.topic == OBSERVATIONS else None,
                )
            ]
            await process(inputs)

    async def process(inputs: Sequence[Input]) -> None:
        for topic in {i.topic for i in inputs}:
            metrics.count_events(topic, "in", sum(1 for i in inputs if i.topic == topic))
        zones = {i.zone for i in inputs}
        missing = sorted(z for z in zones if z in catalogue.zones and not rollup.is_loaded(z))
        if missing:
            states = await retry_store(
                store,
                store.zones_state,
                missing,
                metrics=metrics,
                stopping=stopping,
                holding=len(inputs),
            )
            for zone in missing:
                rollup.load(zone, *states[zone])
        result = rollup.apply(inputs)
        dead = result.batch.deadletters
        result.batch.deadletters = []
        if len(result.batch):
            await write_durably(store, result.batch, metrics, lambda: app.should_stop)
        # Record batches straight to the producer (streams/keyed_send.py): a backfill emits a
        # status row per figure, and a send per row was a sixth of the worker's time.
        statuses = [
            (f"{row.zone}|{row.indicator}|{row.plan}".encode(), status_wire(row, deleted=deleted))
            for rows, deleted in (
                (result.batch.statuses, False),
                (result.batch.status_tombstones, True),
            )
            for row in rows
        ]
        if statuses:
            await send_keyed(app.producer._ensure_producer(), STATUS, statuses)
            metrics.count_events(STATUS, "out", len(statuses))
        if dead:
            await asyncio.gather(
                *[
                    await deadletter.send(
                        key=d.source_topic.encode(), value=orjson.dumps(d.to_dict())
                    )
                    for d in dead
                ]
            )
            metrics.count_events(DEADLETTER, "out", len(dead))
        for figure in result.newly_suspect:  # counted once written
            metrics.count_suspect(figure.reason)
        if result.batch.statuses or result.batch.status_tombstones or result.shrunk:
            signals.changed()  # the gauges follow ClickHouse, read again soon
        log_event(
            log,
            "batch_processed",
            inputs=len(inputs),
            accepted=result.accepted,
            rejected=len(dead),
            observations=len(result.batch.observations),
            targets=len(result.batch.targets),
            status_rows=len(result.batch.statuses),
            status_removed=len(result.batch.status_tombstones),
        )

    @app.agent(deadletter)
    async def sink_deadletters(stream: faust.StreamT) -> None:
        """Every rejected input, from the producers and from this worker, into ClickHouse."""
        async for events in stream.take_events(BATCH_MAX, within=BATCH_WITHIN):
            batch = SinkBatch(deadletters=[_read_deadletter(e.value) for e in events])
            await write_durably(store, batch, metrics, lambda: app.should_stop)
            for d in batch.deadletters:
                metrics.count_deadletter(d.reason)
            metrics.count_events(DEADLETTER, "in", len(events))

    add_registrations_stage(app, store, metrics, catalogue, app.topic(OBSERVATIONS, **raw))
    board.register(app, store, catalogue, settings)

    @app.on_rebalance_complete.connect
    async def forget_state(sender: faust.App, **kwargs: Any) -> None:
        # Another worker may have moved a zone on while we did not own it: reload lazily.
        rollup.forget()
        signals.reassigned()  # export exactly the keys of the zones owned now
        await report_lag(app, metrics)

    @app.timer(interval=LAG_EVERY)
    async def lag() -> None:
        await report_lag(app, metrics)

    @app.task
    async def status_gauges() -> None:
        await signals.run()

    @app.task
    async def announce_ready() -> None:
        while not app.consumer.assignment():
            await asyncio.sleep(0.05)
        bound_fetches(app, FETCH_RESPONSE_BYTES)
        if on_ready is not None:
            await on_ready(app)

    # -- the HTTP API, next to the store it reads ----------------------------------------

    def _params(request: Any, names: Sequence[str]) -> dict[str, str | None]:
        out: dict[str, str | None] = {}
        for name in names:
            value = request.query.get(name) or None
            if value is not None and not IDENT.match(value):
                raise ValueError(f"invalid {name}: must match {IDENT.pattern}")
            out[name] = value
        return out

    async def _json(web: Any, fn: Callable[[], Any]) -> Any:
        try:
            data = await store.arun(fn)
        except ValueError as exc:
            return web.json({"error": str(exc)}, status=400)
        except ClickHouseUnavailable:
            return web.json({"error": "ClickHouse is unavailable; retry later"}, status=503)
        return web.json(data)

    @app.page("/api/status")
    async def api_status(self: Any, request: Any) -> Any:
        try:
            p = _params(request, ("zone", "indicator", "plan"))
        except ValueError as exc:
            return self.json({"error": str(exc)}, status=400)
        return await _json(self, lambda: store.latest_status(p["zone"], p["indicator"], p["plan"]))

    @app.page("/api/status/history")
    async def api_status_history(self: Any, request: Any) -> Any:
        try:
            p = _params(request, ("zone",))
        except ValueError as exc:
            return self.json({"error": str(exc)}, status=400)
        return await _json(self, lambda: store.status_rows(p["zone"]))

    @app.page("/api/suspect")
    async def api_suspect(self: Any, request: Any) -> Any:
        try:
            p = _params(request, ("zone",))
        except ValueError as exc:
            return self.json({"error": str(exc)}, status=400)
        return await _json(self, lambda: store.suspect_figures(p["zone"]))

    @app.page("/api/scorecard")
    async def api_scorecard(self: Any, request: Any) -> Any:
        return await _json(self, store.scorecards)

    @app.page("/api/deadletter")
    async def api_deadletter(self: Any, request: Any) -> Any:
        """``{total, by_reason, rows}``: the newest ``limit`` rows of those matching ``origin``,
        ``reason`` and ``since`` (parkpulse/deadletter_query.py)."""
        try:
            asked = DeadLetterQuery.from_params(request.query)
        except ValueError as exc:
            return self.json({"error": str(exc)}, status=400)
        return await _json(self, lambda: store.deadletter_page(*asked.params().values()))

    @app.page("/api/health")
    async def api_health(self: Any, request: Any) -> Any:
        return self.json({"ok": True, "assigned": len(app.consumer.assignment())})

    return app


def bound_fetches(app: faust.App, max_bytes: int) -> bool:
    """Cap what one Kafka fetch answer brings into the worker at ``max_bytes``.

    Faust passes ``consumer_max_fetch_size`` as aiokafka's per-partition limit, which Tansu does
    not honour: it answers with up to aiokafka's ``fetch_max_bytes`` (50 MB by default) per
    partition (measured: 5 MB a partition at the default, 1 MB at 1 MB). Faust holds a whole
    answer, and aiokafka the next one, while their records trickle through the bounded stream
    buffers: 3,466 envelopes (61 MB) were held during the backfill (tracemalloc). Kafka applies
    the same setting to the whole answer. Faust has no setting for it, so it is set on the
    running aiokafka fetcher (faust-streaming and aiokafka are pinned; tests/test_fetch_bound.py
    fails if the path moves).
    Returns whether it took.
    """
    try:
        fetcher = app.consumer._thread._ensure_consumer()._fetcher  # type: ignore[attr-defined]
        fetcher._fetch_max_bytes = max_bytes
    except AttributeError:
        log_event(log, "fetch_bound_not_set", level=logging.WARNING, max_bytes=max_bytes)
        return False
    log_event(log, "fetch_bound", max_bytes=max_bytes)
    return True


def _read_deadletter(value: Any) -> DeadLetter:
    """A dead-letter message; one that cannot be read is itself kept, as malformed."""
    try:
        doc = orjson.loads(value)
        return DeadLetter(**{k: doc[k] for k in DeadLetter.__dataclass_fields__ if k in doc})
    except (orjson.JSONDecodeError, TypeError, ValueError):
        unreadable = RejectedInput("malformed", "unreadable dead-letter message")
        raw = value if isinstance(value, bytes) else ""
        return dead_letter(DEADLETTER, unreadable, raw, received_at=datetime.now(UTC).isoformat())
