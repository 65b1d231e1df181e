"""Targets re-keying: ``parkpulse.targets`` (keyed plan|zone|indicator) → ``targets-by-zone``.

Targets are published keyed by what identifies them, but the roll-up owns a zone's figures and
targets together, so each target is re-sent keyed by its zone: it then lands on the partition
of ``parkpulse.observations`` that holds the zone's figures (the two topics are co-partitioned).
"""

from __future__ import annotations

import faust

from parkpulse.streams.app import BATCH_MAX, BATCH_WITHIN, Topics
from parkpulse.streams.deps import Deps
from parkpulse.streams.keyed_send import send_all
from parkpulse.streams.rollup import zone_of
from parkpulse.topics import TARGETS


def by_zone(values: list[bytes]) -> list[tuple[bytes, bytes]]:
    """Each target message keyed by its zone (empty when it has none: the roll-up rejects it)."""
    return [((zone_of(value) or "").encode(), value) for value in values]


def register(app: faust.App, topics: Topics, deps: Deps) -> None:
    """The re-keying agent."""

    @app.agent(topics.targets)
    async def rekey_targets(stream: faust.StreamT) -> None:
        """A batch is acknowledged only once its re-keyed copies are delivered: acking on send
        alone let a worker killed in between commit targets that never reached the roll-up."""
        async for events in stream.take_events(BATCH_MAX, within=BATCH_WITHIN):
            await send_all(topics.targets_by_zone, by_zone([e.value for e in events]))
            deps.metrics.count_events(TARGETS, "in", len(events))
