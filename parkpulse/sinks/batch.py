"""``SinkBatch``: the rows of one write, a plain value object (no driver, no I/O).

The roll-up (``streams/rollup.py``, pure) builds it and the writer (``sinks/writer.py``) writes
it, like Quix Streams' ``SinkBatch``: the stage hands over a batch and acknowledges its events
only once the writer has returned (flush, then commit).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from parkpulse.schemas.records import (
    DeadLetter,
    IndicatorStatus,
    Observation,
    PlanTarget,
    SuspectFigure,
    ZoneScorecard,
)


@dataclass
class SinkBatch:
    """Rows for one write; written table by table, each insert idempotent on retry."""

    observations: list[Observation] = field(default_factory=list)
    targets: list[PlanTarget] = field(default_factory=list)
    statuses: list[IndicatorStatus] = field(default_factory=list)
    status_tombstones: list[IndicatorStatus] = field(default_factory=list)
    scorecards: list[ZoneScorecard] = field(default_factory=list)
    deadletters: list[DeadLetter] = field(default_factory=list)
    suspects: list[SuspectFigure] = field(default_factory=list)
    suspect_tombstones: list[SuspectFigure] = field(default_factory=list)  # no longer suspect

    def __len__(self) -> int:
        return sum(len(getattr(self, f.name)) for f in fields(self))
