"""Writes: a ``SinkBatch`` table by table, registrations column-wise, the reference tables and
the feed ledger.

Every insert is idempotent, so a batch retried after a failure mid-way (``sinks/retry.py``)
lands as if written once: tables are ReplacingMergeTrees keyed by what a row is about, and a
row's version orders (revision, is_delete) for inputs and the write time for derived rows.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any

import numpy as np

from parkpulse.schemas.catalogue import Catalogue
from parkpulse.schemas.records import STATUSES, Registration
from parkpulse.schemas.registration import RegistrationColumns
from parkpulse.sinks.batch import SinkBatch
from parkpulse.sinks.connection import Connection
from parkpulse.sinks.tables import (
    DEADLETTER_COLUMNS,
    OBSERVATION_COLUMNS,
    REGISTRATION_COLUMNS,
    STATUS_COLUMNS,
    SUSPECT_COLUMNS,
    TARGET_COLUMNS,
)

BEIJING_OFFSET_MS = 8 * 3600 * 1000  # registrations carry Beijing time (UTC+8)
_OBSERVATION_VALUES = attrgetter(*OBSERVATION_COLUMNS)
_STATUS_VALUES = attrgetter(*STATUS_COLUMNS)
SCORECARD_COLUMNS = (
    "zone",
    "period",
    *STATUSES,
    "worst_binding_indicator",
    "worst_binding_attainment",
    "median_attainment",
    "evaluated_at",
    "version",
)
_META = ("ingested_at", "version", "is_deleted")


class BatchWriter(Connection):
    """Writes batches into parkpulse's tables (call on the store's thread)."""

    def write(self, batch: SinkBatch) -> dict[str, int]:
        """Insert every row of the batch; returns rows written per table."""
        now = datetime.now(UTC)
        version = time.time_ns() // 1000
        # Figures and status rows go column by column (the driver's row-to-column pass costs
        # more than building the batch did).
        obs = batch.observations
        deleted = [o.is_delete for o in obs]
        obs_columns = [
            *_columns(obs, _OBSERVATION_VALUES, len(OBSERVATION_COLUMNS)),
            [now] * len(obs),
            [_delete_version(o.revision, d) for o, d in zip(obs, deleted, strict=True)],
            [int(d) for d in deleted],
        ]
        target_rows = [
            [*(getattr(t, c) for c in TARGET_COLUMNS)]
            + [now, _delete_version(t.revision, t.action == "D"), int(t.action == "D")]
            for t in batch.targets
        ]
        statuses = [*batch.statuses, *batch.status_tombstones]
        status_columns = [
            *_columns(statuses, _STATUS_VALUES, len(STATUS_COLUMNS)),
            [now] * len(statuses),
            [version] * len(statuses),
            [0] * len(batch.statuses) + [1] * len(batch.status_tombstones),
        ]
        scorecard_rows = [
            [
                sc.zone,
                sc.period,
                *(sc.counts.get(s, 0) for s in STATUSES),
                sc.worst_binding_indicator,
                sc.worst_binding_attainment,
                sc.median_attainment,
                now,
                version,
            ]
            for sc in batch.scorecards
        ]
        dl_rows = [
            [
                _parse_ts(d.received_at) or now,
                d.source_topic,
                d.reason,
                d.detail,
                d.raw,
                d.origin,
                d.line if d.line is not None else 0,
            ]
            for d in batch.deadletters
        ]
        suspect_rows = [
            [*(getattr(f, c) for c in SUSPECT_COLUMNS), now, version, int(deleted)]
            for figures, deleted in ((batch.suspects, False), (batch.suspect_tombstones, True))
            for f in figures
        ]
        # Derived rows first, their inputs last: a worker killed between two inserts has either
        # not written an input (it is redelivered and recomputed) or has written everything
        # derived from it. Inputs first would let a redelivered input look already applied while
        # its status rows were never written.
        self.insert(
            "indicator_status",
            (*STATUS_COLUMNS, "evaluated_at", "version", "is_deleted"),
            status_columns,
            column_oriented=True,
        )
        self.insert("zone_scorecard", SCORECARD_COLUMNS, scorecard_rows)
        self.insert("deadletter", DEADLETTER_COLUMNS, dl_rows)
        self.insert(
            "suspect_figures",
            (*SUSPECT_COLUMNS, "flagged_at", "version", "is_deleted"),
            suspect_rows,
        )
        self.insert("plan_targets", (*TARGET_COLUMNS, *_META), target_rows)
        self.insert(
            "observations", (*OBSERVATION_COLUMNS, *_META), obs_columns, column_oriented=True
        )
        return {
            "observations": len(obs),
            "plan_targets": len(target_rows),
            "indicator_status": len(statuses),
            "zone_scorecard": len(scorecard_rows),
            "deadletter": len(dl_rows),
            "suspect_figures": len(suspect_rows),
        }

    def write_registrations(self, registrations: Sequence[Registration]) -> dict[str, int]:
        """Insert registrations (column-wise: the heavy stream); returns rows written."""
        rows = RegistrationColumns.of(registrations)
        if not rows:
            return {"registrations": 0}
        sent: dict[str, int | None] = {"": None}
        for text in set(rows.sent_at):  # one per envelope
            sent[text] = _epoch_us(text)
        columns = [
            rows.zone,
            rows.registration_id,
            _beijing_ms(rows.registered_at),
            rows.month,
            rows.entity_type,
            rows.industry_code,
            rows.registered_capital,
            rows.batch_id,
            list(map(sent.__getitem__, rows.sent_at)),
        ]
        self.insert("registrations", REGISTRATION_COLUMNS, columns, column_oriented=True)
        return {"registrations": len(rows)}

    def write_reference(self, catalogue: Catalogue) -> None:
        """Zones and indicators, for boards that join names onto ids."""
        self.insert(
            "zones",
            ("id", "name_zh", "name_en", "city", "province"),
            [[z.id, z.name_zh, z.name_en, z.city, z.province] for z in catalogue.zones.values()],
        )
        self.insert(
            "indicators",
            ("id", "name_zh", "name_en", "unit", "kind", "higher_is_better", "domain"),
            [
                [i.id, i.name_zh, i.name_en, i.unit, i.kind, int(i.higher_is_better), i.domain]
                for i in catalogue.indicators.values()
            ],
        )

    def mark_landed(self, files: Sequence[str]) -> None:
        """Record kept feed files as wholly in ClickHouse (``streams/landing.py``)."""
        now = datetime.now(UTC)
        self.insert("feed_ledger", ("file", "landed_at"), [[f, now] for f in files])


def _columns(records: Sequence[Any], values: attrgetter, width: int) -> list[Sequence[Any]]:
    """The ``width`` columns of ``records``, each record's values read by ``values``."""
    if not records:
        return [[] for _ in range(width)]
    return list(zip(*map(values, records), strict=True))


def _delete_version(revision: int, deleted: bool) -> int:
    # At equal revision a delete wins: the version orders (revision, is_delete).
    return revision * 2 + int(deleted)


def _beijing_ms(texts: list[str]) -> list[int]:
    """Unix milliseconds of ``YYYY-MM-DDTHH:MM:SS[.f]+08:00`` texts, parsed in bulk by numpy."""
    local = np.array([t[:-6] for t in texts], dtype="datetime64[us]")
    return ((local.astype(np.int64) // 1000) - BEIJING_OFFSET_MS).tolist()


def _epoch_us(text: str) -> int | None:
    ts = _parse_ts(text)
    if ts is None:
        return None
    return round(ts.timestamp() * 1_000_000)


def _parse_ts(text: str) -> datetime | None:
    if not text:
        return None
    try:
        ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)
