"""The worker's pipeline on one screen: the App, its topics, and every stage in flow order.

Each stage is a module with a ``register`` that adds its agents and the web views beside them
(``streams/*_stage.py``, ``streams/signals.py``, ``parkpulse/board/``). Adding a stage is one
line here. stack.py ``work`` runs what ``build_app`` returns.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import faust

from parkpulse import board
from parkpulse.config import Settings
from parkpulse.schemas.catalogue import Catalogue
from parkpulse.sinks.clickhouse import ClickHouseStore
from parkpulse.sinks.metrics import PipelineMetrics
from parkpulse.streams import (
    deadletter_stage,
    registrations_stage,
    rollup_stage,
    signals,
    targets_stage,
)
from parkpulse.streams.app import FETCH_RESPONSE_BYTES, create_app, declare_topics
from parkpulse.streams.deps import Deps
from parkpulse.streams.faust_internals import bound_fetches
from parkpulse.topics import FETCH_WAIT_MS


def build_app(
    settings: Settings,
    store: ClickHouseStore,
    metrics: PipelineMetrics,
    catalogue: Catalogue,
    on_ready: Callable[[faust.App], Awaitable[None]] | None = None,
) -> faust.App:
    """The parkpulse Faust app wired to a store and a metrics registry; ``on_ready`` runs once
    the worker holds its partitions."""
    app = create_app(settings)
    topics = declare_topics(app)
    deps = Deps(store=store, metrics=metrics, catalogue=catalogue, settings=settings)
    targets_stage.register(app, topics, deps)
    status = signals.register(app, deps)
    rollup_stage.register(app, topics, deps, status_changed=status.changed)
    deadletter_stage.register(app, topics, deps)
    registrations_stage.register(app, topics, deps)
    board.register(app, store, catalogue, settings)

    @app.task
    async def announce_ready() -> None:
        while not app.consumer.assignment():
            await asyncio.sleep(0.05)
        bound_fetches(app, FETCH_RESPONSE_BYTES, FETCH_WAIT_MS)
        if on_ready is not None:
            await on_ready(app)

    return app
