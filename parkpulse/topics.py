"""Kafka topics and client options, shared by the worker and the CLI verbs that publish."""

from __future__ import annotations

import ssl
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from parkpulse.config import KafkaSecurity, Settings
from parkpulse.logs import get_logger, log_event

log = get_logger("topics")

OBSERVATIONS = "parkpulse.observations"
TARGETS = "parkpulse.targets"
TARGETS_BY_ZONE = "parkpulse.targets-by-zone"  # targets re-keyed by zone, co-partitioned
REGISTRATIONS = "parkpulse.registrations"
STATUS = "parkpulse.status"
DEADLETTER = "parkpulse.deadletter"

ALL_TOPICS = (OBSERVATIONS, TARGETS, TARGETS_BY_ZONE, REGISTRATIONS, STATUS, DEADLETTER)
COMPACTED = (TARGETS, TARGETS_BY_ZONE, STATUS)
# Longest a consumer's fetch waits at the broker for records. Faust fixes 1,500 ms and Tansu holds
# a fetch that found nothing for a good part of its wait even when records arrive meanwhile, so
# the worker sets this on its fetcher (streams/faust_internals.py ``bound_fetches``).
FETCH_WAIT_MS = 250


def ssl_context(security: KafkaSecurity) -> ssl.SSLContext | None:
    if security.protocol not in ("SSL", "SASL_SSL"):
        return None
    context = ssl.create_default_context(cafile=security.ssl_cafile)
    if security.ssl_certfile:
        context.load_cert_chain(security.ssl_certfile, security.ssl_keyfile)
    return context


PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")


def check_security(security: KafkaSecurity) -> None:
    """Refuse a combination that would silently talk in the clear or never authenticate."""
    if security.protocol not in PROTOCOLS:
        raise ValueError(f"Kafka security protocol must be one of {PROTOCOLS}")
    sasl = security.protocol.startswith("SASL_")
    if sasl != bool(security.sasl_mechanism):
        raise ValueError(
            "a Kafka SASL mechanism needs protocol SASL_PLAINTEXT or SASL_SSL, and those need"
            " a mechanism (PARKPULSE_KAFKA_SASL_MECHANISM)"
        )


def client_options(settings: Settings) -> dict[str, Any]:
    """aiokafka keyword arguments for the configured broker (SASL/TLS passed through)."""
    security = settings.kafka_security
    check_security(security)
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "security_protocol": security.protocol,
    }
    context = ssl_context(security)
    if context is not None:
        options["ssl_context"] = context
    if security.sasl_mechanism:
        options["sasl_mechanism"] = security.sasl_mechanism
        options["sasl_plain_username"] = security.sasl_username
        options["sasl_plain_password"] = security.sasl_password
    return options


async def ensure_topics(settings: Settings) -> None:
    """Create parkpulse's topics if they do not exist (idempotent)."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(
                name,
                settings.partitions,
                1,
                topic_configs={"cleanup.policy": "compact"} if name in COMPACTED else {},
            )
            for name in ALL_TOPICS
            if name not in existing
        ]
        if missing:
            await admin.create_topics(missing)
            log_event(log, "topics_created", topics=[t.name for t in missing])
    finally:
        await admin.close()
