"""The Faust App and its topics: what the stages (``streams/*_stage.py``) subscribe and send to.

``create_app`` makes the App from Settings (a factory, not module-level code: the broker and the
ports come from Settings at run time) and ``declare_topics`` names every topic once. The stages
are wired onto it in flow order by ``streams/pipeline.py``; nothing here runs an agent.

Flow: ``targets`` → re-keyed by zone (targets_stage) → ``targets-by-zone``; ``observations`` +
``targets-by-zone`` (co-partitioned by zone) → roll-up (rollup_stage) → ClickHouse, then
``status`` / ``deadletter``; ``deadletter`` → ClickHouse (deadletter_stage); ``registrations`` →
counts → ``observations`` (registrations_stage). Offsets are acknowledged only after a batch is
durably written (``take_events`` acks when the loop body returns).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

import faust

from parkpulse.config import Settings
from parkpulse.logs import get_logger
from parkpulse.topics import (
    DEADLETTER,
    OBSERVATIONS,
    REGISTRATIONS,
    TARGETS,
    TARGETS_BY_ZONE,
    client_options,
)

log = get_logger("worker")
T = TypeVar("T")

BATCH_MAX = 5000  # targets or dead letters per batch
# Messages per roll-up batch: a message is one figure or an envelope of up to ENVELOPE_MAX
# (100), so a batch holds at most 20k figures; Faust queues two batches' worth per topic. A
# batch's fixed cost (a ClickHouse insert per table, a zone-state read) is paid per take: the
# backfill bench's worker CPU seconds, 100 → 57.5, 150 → 49.2, 200 → 40.5–46.1. Its records are
# read message by message as the roll-up reaches them (rollup_stage.EventBatch): 200 decoded at
# once peaked at 339 MB anonymous, read lazily at 265–267 MB (100 at once: ~300 MB).
ROLLUP_TAKE = 200
BATCH_WITHIN = 0.2  # seconds: a figure is in ClickHouse well within 2 s of arriving
# What a worker holds while its sink waits: the batch being written, a take buffer of BATCH_MAX
# events behind it, STREAM_BUFFER messages queued per topic, and what the Kafka fetcher has
# prefetched (one answer of FETCH_RESPONSE_BYTES). Past that, Faust stops fetching.
# Faust's default, 4096, kept ~4,100 figure envelopes (55–65 MB) alive through the backfill
# (gc: 4,278 Events, 4,064 ConsumerMessages at 323 MB anonymous). Two roll-up batches: 256 (two
# and a half of 100 then) had the same backfill CPU as 1024 and ~25 MB less at the peak (README
# "Worker memory").
STREAM_BUFFER = 400
FETCH_MAX_BYTES = 1 << 20
FETCH_RESPONSE_BYTES = 1 << 20  # one fetch answer (see bound_fetches)

# Faust buffers up to stream_buffer_maxsize (4096 by default) messages per topic before it
# stops fetching; of 75 KB registration envelopes that is 300 MB. One batch's worth is enough:
# the fetcher refills it while a batch is read and counted (README "Speed", session 13).
# 200 messages a batch instead of 100: chdb's parts twice as big (merges 2.3 → 1.1–1.6 µs a
# registration) and half the batches' fixed costs.
REGISTRATIONS_TAKE = 200  # messages (envelopes of a few hundred registrations each) per batch
RAW = {"key_serializer": "raw", "value_serializer": "raw"}


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


@dataclass(frozen=True)
class Topics:
    """Every topic the worker subscribes or sends to (``status`` goes out as record batches
    straight to the producer: streams/keyed_send.py)."""

    targets: faust.TopicT
    targets_by_zone: faust.TopicT
    zone_inputs: faust.TopicT  # observations + targets-by-zone, the roll-up's one stream
    deadletter: faust.TopicT
    observations: faust.TopicT  # for sending derived figures (the roll-up reads zone_inputs)
    registrations: faust.TopicT


def create_app(settings: Settings) -> faust.App:
    """The parkpulse Faust App, configured from ``settings`` (no agent yet)."""
    return faust.App("parkpulse", autodiscover=False, **faust_options(settings))


def declare_topics(app: faust.App) -> Topics:
    """The worker's topics on ``app``; values and keys stay bytes (the stages decode them)."""
    return Topics(
        targets=app.topic(TARGETS, **RAW),
        targets_by_zone=app.topic(TARGETS_BY_ZONE, **RAW),
        zone_inputs=app.topic(OBSERVATIONS, TARGETS_BY_ZONE, maxsize=2 * ROLLUP_TAKE, **RAW),
        deadletter=app.topic(DEADLETTER, **RAW),
        observations=app.topic(OBSERVATIONS, **RAW),
        registrations=app.topic(REGISTRATIONS, maxsize=REGISTRATIONS_TAKE, **RAW),
    )
