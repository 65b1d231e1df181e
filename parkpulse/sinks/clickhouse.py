"""``ClickHouseStore``: parkpulse's tables in ClickHouse, one object for the worker, the CLI and
the tests to open and pass around.

It is only the sum of the jobs, each in its own module: ``connection`` (the client factory, the
schema, the store's thread, the driver's exceptions mapped once), ``writer`` (batches in),
``zone_state`` (what a worker reloads) and ``queries`` (what people and tools read). Retrying is
the caller's, with the one policy in ``sinks/retry.py``.
"""

from __future__ import annotations

from parkpulse.sinks.queries import Queries
from parkpulse.sinks.writer import BatchWriter
from parkpulse.sinks.zone_state import ZoneState

__all__ = ["ClickHouseStore"]


class ClickHouseStore(BatchWriter, ZoneState, Queries):
    """parkpulse's tables in ClickHouse (embedded chdb or a server), behind one thread."""
