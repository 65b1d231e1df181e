"""What a worker reads back to resume: each zone's kept figures, targets, status and suspect rows
for the roll-up, and the registration ids seen so far for the de-duplication.

A worker keeps only the zones its partitions carry, and loads a zone the first time one of its
inputs arrives (after a start or a rebalance), so these reads are per zone and must agree with
what the writer (``sinks/writer.py``) last wrote.
"""

from __future__ import annotations

from collections.abc import Sequence

from parkpulse.schemas.records import IndicatorStatus, Observation, PlanTarget, SuspectFigure
from parkpulse.sinks.connection import Connection
from parkpulse.sinks.tables import (
    OBSERVATION_COLUMNS,
    STATUS_COLUMNS,
    SUSPECT_COLUMNS,
    TARGET_COLUMNS,
)

ZoneRows = tuple[list[Observation], list[PlanTarget], list[IndicatorStatus], list[SuspectFigure]]


class ZoneState(Connection):
    """Reads the roll-up and the registrations stage reload per zone (on the store's thread)."""

    def zones_state(self, zones: Sequence[str]) -> dict[str, ZoneRows]:
        """Everything the worker keeps for each of ``zones``, as last written (tombstones
        included); four queries for all of them."""
        # Not FINAL: FINAL hides tombstones, and the worker needs them so that an older
        # revision replayed after a delete stays deleted. Highest version per key wins.
        params = {"zones": list(zones)}
        obs = self.query(
            f"SELECT {', '.join(OBSERVATION_COLUMNS)} FROM {{db}}.observations"
            " WHERE zone IN {zones:Array(String)} ORDER BY version DESC"
            " LIMIT 1 BY zone, indicator, basis, period, source",
            params,
        )
        targets = self.query(
            f"SELECT {', '.join(TARGET_COLUMNS)}, if(is_deleted, 'D', 'I') AS action"
            " FROM {db}.plan_targets WHERE zone IN {zones:Array(String)}"
            " ORDER BY version DESC, ingested_at DESC LIMIT 1 BY plan, zone, indicator",
            params,
        )
        statuses = self.query(
            f"SELECT {', '.join(STATUS_COLUMNS)} FROM {{db}}.indicator_status FINAL"
            " WHERE zone IN {zones:Array(String)}",
            params,
        )
        suspects = self.query(
            f"SELECT {', '.join(SUSPECT_COLUMNS)} FROM {{db}}.suspect_figures FINAL"
            " WHERE zone IN {zones:Array(String)}",
            params,
        )
        out: dict[str, ZoneRows] = {zone: ([], [], [], []) for zone in zones}
        for row in obs:
            out[row["zone"]][0].append(Observation(**row))
        for row in targets:
            out[row["zone"]][1].append(PlanTarget(**{**row, "binding": bool(row["binding"])}))
        for row in statuses:
            out[row["zone"]][2].append(IndicatorStatus(**{**row, "binding": bool(row["binding"])}))
        for row in suspects:
            out[row["zone"]][3].append(SuspectFigure(**row))
        return out

    def registration_ids(
        self, zones: Sequence[str]
    ) -> list[tuple[str, list[str], list[str], list[str]]]:
        """Per zone: every registration id so far, with the month and entity type of its first
        copy (a table written before re-sends were dropped may hold a later one too)."""
        if not zones:
            return []
        rows = self.query(
            "SELECT zone, groupArray(registration_id) AS ids, groupArray(month) AS months,"
            " groupArray(entity_type) AS types"
            " FROM (SELECT zone, registration_id, argMin(month, ingested_at) AS month,"
            " argMin(entity_type, ingested_at) AS entity_type FROM {db}.registrations"
            " WHERE zone IN {zones:Array(String)}"
            " GROUP BY zone, registration_id) GROUP BY zone",
            {"zones": sorted(set(zones))},
        )
        return [(r["zone"], r["ids"], r["months"], r["types"]) for r in rows]
