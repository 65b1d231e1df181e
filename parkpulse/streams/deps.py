"""What every stage's ``register`` is given besides the App and its topics: the services.

One small object instead of four arguments, so that adding a stage is one line in
``streams/pipeline.py``. Tests build it with fakes to drive a stage's domain step alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from parkpulse.config import Settings
from parkpulse.schemas.catalogue import Catalogue
from parkpulse.sinks.clickhouse import ClickHouseStore
from parkpulse.sinks.metrics import PipelineMetrics


@dataclass(frozen=True)
class Deps:
    """The store (ClickHouse), the metrics registry, the catalogue of zones and indicators, and
    the worker's Settings."""

    store: ClickHouseStore
    metrics: PipelineMetrics
    catalogue: Catalogue
    settings: Settings
