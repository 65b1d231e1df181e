"""Writes: a ``SinkBatch`` table by table, registrations column-wise, the reference tables and
the feed ledger.

Every insert is idempotent, so a batch retried after a failure mid-way, or written again in
halves after ClickHouse refused some of its rows (``sinks/retry.py``, ``sinks/refusals.py``),
lands as if written once: tables are ReplacingMergeTrees keyed by what a row is about, and a
row's version orders (revision, is_delete) for inputs and the write time for derived rows.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from operator import attrgetter
from types import MappingProxyType
from typing import Any

from parkpulse.schemas.catalogue import Catalogue
from parkpulse.schemas.records import STATUSES, Registration
from parkpulse.schemas.registration import RegistrationColumns
from parkpulse.schemas.registration_block import (
    RegistrationBlock,
    beijing_ms,
    epoch_us,
    parse_ts,
)
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

# A registrations insert holds no two rows of one (zone, registration_id) — the stage writes
# only the first copy of each id — so ReplacingMergeTree's merge of the block on insert
# (optimize_on_insert) finds nothing to replace: ~0.6 of the insert's ~4.8 CPU µs a row.
REGISTRATION_INSERT_SETTINGS: Mapping[str, Any] = MappingProxyType({"optimize_on_insert": 0})
_OBSERVATION_VALUES = attrgetter(*OBSERVATION_COLUMNS)
_OBSERVATION_ACTION = OBSERVATION_COLUMNS.index("action")
_OBSERVATION_REVISION = OBSERVATION_COLUMNS.index("revision")
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


@dataclass(frozen=True, slots=True)
class Part:
    """One table's rows of a write, and the records they were made from (``records[i]`` is row
    ``i``): ``data`` is rows, or (``column_oriented``) one sequence per column."""

    table: str
    columns: tuple[str, ...]
    data: Sequence[Sequence[Any]]
    records: Sequence[Any]
    column_oriented: bool = False
    settings: Mapping[str, Any] | None = None  # ClickHouse settings of its insert

    def __len__(self) -> int:
        return len(self.records)

    def rows(self, start: int, stop: int) -> Part:
        """Rows ``start`` to ``stop`` alone (each column cut alike when column-oriented)."""
        data = (
            [column[start:stop] for column in self.data]
            if self.column_oriented
            else self.data[start:stop]
        )
        return replace(self, data=data, records=self.records[start:stop])


class BatchWriter(Connection):
    """Writes batches into parkpulse's tables (call on the store's thread)."""

    def write(self, batch: SinkBatch) -> dict[str, int]:
        """Insert every row of the batch; returns rows written per table."""
        parts = self.parts(batch)
        for part in parts:
            self.insert_part(part)
        return {part.table: len(part) for part in parts}

    def parts(self, batch: SinkBatch) -> list[Part]:
        """The batch's rows table by table, in the order they must be inserted.

        Derived rows first, their inputs last: a worker killed between two inserts has either
        not written an input (it is redelivered and recomputed) or has written everything
        derived from it. Inputs first would let a redelivered input look already applied while
        its status rows were never written. One ``now`` and ``version`` for the whole batch, so
        a part written again in halves repeats its rows; a batch built again (a retry) writes
        the same rows under a later version, which wins. The write-time columns (``DateTime64(3)``)
        get the batch's time as milliseconds: the driver converts a datetime per row (~2.3 s of
        a national backfill's 840k rows), an int it writes as it is.
        """
        now = datetime.now(UTC)
        stamp = millis(now)
        version = time.time_ns() // 1000
        return [
            _status_part(batch, stamp, version),
            _scorecard_part(batch, stamp, version),
            _deadletter_part(batch, now),
            _suspect_part(batch, stamp, version),
            _target_part(batch, stamp),
            _observation_part(batch, stamp),
        ]

    def insert_part(self, part: Part) -> None:
        """Insert one part (ClickHouseRejected: ClickHouse refused at least one of its rows)."""
        self.insert(
            part.table,
            part.columns,
            part.data,
            column_oriented=part.column_oriented,
            settings=part.settings,
        )

    def write_registrations(self, registrations: Sequence[Registration]) -> dict[str, int]:
        """Insert registrations (the heavy stream: one Native block, encoded by numpy —
        schemas/registration_block.py — when the reader process has not already); returns
        rows written."""
        if not registrations:
            return {"registrations": 0}
        block = RegistrationBlock.of_rows(registrations)  # its columns: REGISTRATION_COLUMNS
        self.raw_insert(
            "registrations", REGISTRATION_COLUMNS, block.native(), REGISTRATION_INSERT_SETTINGS
        )
        return {"registrations": len(registrations)}

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


def registration_part(registrations: Sequence[Registration]) -> Part:
    """Registrations as one column-wise part, for the driver's insert (a rejected block is
    written again in parts, down to the rows ClickHouse refuses)."""
    if isinstance(registrations, RegistrationBlock):
        registrations = registrations.registrations()
    rows = RegistrationColumns.of(registrations)
    sent: dict[str, int | None] = {"": None}
    for text in set(rows.sent_at):  # one per envelope
        sent[text] = epoch_us(text)
    columns = [
        rows.zone,
        rows.registration_id,
        beijing_ms(rows.registered_at).tolist() if rows else [],
        rows.month,
        rows.entity_type,
        rows.industry_code,
        rows.registered_capital,
        rows.batch_id,
        list(map(sent.__getitem__, rows.sent_at)),
    ]
    return Part(
        "registrations",
        REGISTRATION_COLUMNS,
        columns,
        rows,
        column_oriented=True,
        settings=REGISTRATION_INSERT_SETTINGS,
    )


def _status_part(batch: SinkBatch, stamp: int, version: int) -> Part:
    # Figures and status rows go column by column (the driver's row-to-column pass costs
    # more than building the batch did).
    statuses = [*batch.statuses, *batch.status_tombstones]
    columns = [
        *_columns(statuses, _STATUS_VALUES, len(STATUS_COLUMNS)),
        [stamp] * len(statuses),
        [version] * len(statuses),
        [0] * len(batch.statuses) + [1] * len(batch.status_tombstones),
    ]
    names = (*STATUS_COLUMNS, "evaluated_at", "version", "is_deleted")
    return Part("indicator_status", names, columns, statuses, column_oriented=True)


def _scorecard_part(batch: SinkBatch, stamp: int, version: int) -> Part:
    rows = [
        [
            sc.zone,
            sc.period,
            *(sc.counts.get(s, 0) for s in STATUSES),
            sc.worst_binding_indicator,
            sc.worst_binding_attainment,
            sc.median_attainment,
            stamp,
            version,
        ]
        for sc in batch.scorecards
    ]
    return Part("zone_scorecard", SCORECARD_COLUMNS, rows, batch.scorecards)


def _deadletter_part(batch: SinkBatch, now: datetime) -> Part:
    rows = [
        [
            parse_ts(d.received_at) or now,
            d.source_topic,
            d.reason,
            d.detail,
            d.raw,
            d.origin,
            d.line if d.line is not None else 0,
        ]
        for d in batch.deadletters
    ]
    return Part("deadletter", DEADLETTER_COLUMNS, rows, batch.deadletters)


def _suspect_part(batch: SinkBatch, stamp: int, version: int) -> Part:
    figures = [*batch.suspects, *batch.suspect_tombstones]
    rows = [
        [*(getattr(f, c) for c in SUSPECT_COLUMNS), stamp, version, int(deleted)]
        for figures_of, deleted in ((batch.suspects, False), (batch.suspect_tombstones, True))
        for f in figures_of
    ]
    names = (*SUSPECT_COLUMNS, "flagged_at", "version", "is_deleted")
    return Part("suspect_figures", names, rows, figures)


def _target_part(batch: SinkBatch, stamp: int) -> Part:
    rows = [
        [*(getattr(t, c) for c in TARGET_COLUMNS)]
        + [stamp, _delete_version(t.revision, t.action == "D"), int(t.action == "D")]
        for t in batch.targets
    ]
    return Part("plan_targets", (*TARGET_COLUMNS, *_META), rows, batch.targets)


def _observation_part(batch: SinkBatch, stamp: int) -> Part:
    obs = batch.observations
    values = _columns(obs, _OBSERVATION_VALUES, len(OBSERVATION_COLUMNS))
    deleted = [int(action == "D") for action in values[_OBSERVATION_ACTION]]  # is_delete
    columns = [
        *values,
        [stamp] * len(obs),
        list(map(_delete_version, values[_OBSERVATION_REVISION], deleted)),
        deleted,
    ]
    return Part("observations", (*OBSERVATION_COLUMNS, *_META), columns, obs, column_oriented=True)


def _columns(records: Sequence[Any], values: attrgetter, width: int) -> list[Sequence[Any]]:
    """The ``width`` columns of ``records``, each record's values read by ``values``."""
    if not records:
        return [[] for _ in range(width)]
    return list(zip(*map(values, records), strict=True))


def millis(moment: datetime) -> int:
    """``moment`` as a ``DateTime64(3)`` value: milliseconds since the epoch, as the driver
    would convert it (whole seconds, then the microseconds cut to milliseconds)."""
    return (int(moment.timestamp()) * 1_000_000 + moment.microsecond) // 1000


def _delete_version(revision: int, deleted: int) -> int:
    # At equal revision a delete wins: the version orders (revision, is_delete).
    return revision * 2 + int(deleted)
