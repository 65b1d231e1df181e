"""What the API, the CLI, the board, the brief and the bench read: the latest status, its
history, scorecards, suspect figures, dead letters, registration counts and the bench's latency
statistics, and the feed ledger the worker replays against.

Every value reaches ClickHouse as a ``{name:Type}`` parameter; a filter that is None is off.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from parkpulse.schemas.records import STATUSES
from parkpulse.sinks.connection import Connection
from parkpulse.sinks.tables import STATUS_COLUMNS, SUSPECT_COLUMNS

# deadletter_page's filters, each off when its parameter is NULL. An origin names a file: its
# rows' dead letters, and its cells' (a bureau table's reject has origin ``file:sheet!cell``).
DEADLETTER_FILTER = (
    " WHERE ({origin:Nullable(String)} IS NULL OR origin = {origin:Nullable(String)}"
    " OR startsWith(origin, concat({origin:Nullable(String)}, ':')))"
    " AND ({reason:Nullable(String)} IS NULL OR reason = {reason:Nullable(String)})"
    " AND ({since:Nullable(String)} IS NULL"
    " OR received_at >= parseDateTime64BestEffort({since:Nullable(String)}, 3, 'UTC'))"
)


class Queries(Connection):
    """The reads of parkpulse's tables for people and tools (call on the store's thread)."""

    def landed_files(self) -> set[str]:
        """The kept feed files recorded as wholly in ClickHouse."""
        return {r["file"] for r in self.query("SELECT file FROM {db}.feed_ledger FINAL")}

    def latest_status(
        self,
        zone: str | None = None,
        indicator: str | None = None,
        plan: str | None = None,
    ) -> list[dict[str, Any]]:
        """The latest evaluated month of each (zone, indicator, plan), filtered."""
        sql = (
            f"SELECT {', '.join(STATUS_COLUMNS)} FROM {{db}}.indicator_status FINAL"
            " WHERE ({zone:Nullable(String)} IS NULL OR zone = {zone:Nullable(String)})"
            " AND ({indicator:Nullable(String)} IS NULL"
            " OR indicator = {indicator:Nullable(String)})"
            " AND ({plan:Nullable(String)} IS NULL OR plan = {plan:Nullable(String)})"
            " ORDER BY zone, indicator, plan, period DESC LIMIT 1 BY zone, indicator, plan"
        )
        return self.query(sql, {"zone": zone, "indicator": indicator, "plan": plan})

    def status_rows(self, zone: str | None = None) -> list[dict[str, Any]]:
        """Every current status row (all months), for comparisons and reports."""
        return self.query(
            f"SELECT {', '.join(STATUS_COLUMNS)} FROM {{db}}.indicator_status FINAL"
            " WHERE ({zone:Nullable(String)} IS NULL OR zone = {zone:Nullable(String)})"
            " ORDER BY zone, indicator, plan, period",
            {"zone": zone},
        )

    def suspect_figures(self, zone: str | None = None) -> list[dict[str, Any]]:
        """The figures that look implausible now (streams/plausibility.py), by zone."""
        return self.query(
            f"SELECT {', '.join(SUSPECT_COLUMNS)} FROM {{db}}.suspect_figures FINAL"
            " WHERE ({zone:Nullable(String)} IS NULL OR zone = {zone:Nullable(String)})"
            " ORDER BY zone, indicator, period",
            {"zone": zone},
        )

    def status_zones(self) -> list[str]:
        """The zones that have status rows, in order."""
        rows = self.query("SELECT DISTINCT zone FROM {db}.indicator_status FINAL ORDER BY zone")
        return [row["zone"] for row in rows]

    def status_fingerprint(self) -> int:
        """The newest version in the status table: every write of status rows (or tombstones)
        raises it, and background merges leave it alone."""
        row = self.query("SELECT max(version) AS v FROM {db}.indicator_status")[0]
        return int(row["v"])

    def scorecards(self) -> list[dict[str, Any]]:
        return self.query(
            "SELECT zone, period, "
            + ", ".join(STATUSES)
            + ", worst_binding_indicator, worst_binding_attainment, median_attainment"
            " FROM {db}.zone_scorecard FINAL ORDER BY zone"
        )

    def deadletter_page(
        self,
        limit: int = 1000,
        origin: str | None = None,
        reason: str | None = None,
        since: str | None = None,
    ) -> dict[str, Any]:
        """Dead letters matching the filters: how many in all and by reason, and the newest
        ``limit`` of them (``since``: an ISO 8601 time, received at or after)."""
        bound = {"origin": origin, "reason": reason, "since": since}
        counted = self.query(
            "SELECT reason, count() AS n FROM {db}.deadletter FINAL"
            + DEADLETTER_FILTER
            + " GROUP BY reason",
            bound,
        )
        by_reason = {r["reason"]: int(r["n"]) for r in sorted(counted, key=lambda r: -r["n"])}
        rows = self.query(
            "SELECT received_at, source_topic, reason, detail, raw, origin, line"
            " FROM {db}.deadletter FINAL"
            + DEADLETTER_FILTER
            + " ORDER BY received_at DESC, origin, line LIMIT {limit:UInt32}",
            {**bound, "limit": limit},
        )
        for row in rows:
            row["received_at"] = row["received_at"].isoformat()
        return {"total": sum(by_reason.values()), "by_reason": by_reason, "rows": rows}

    def counts(self) -> dict[str, int]:
        """Current row counts (FINAL) per table, for summaries and tests."""
        out = {}
        for table in (
            "observations",
            "plan_targets",
            "indicator_status",
            "deadletter",
            "feed_ledger",
        ):
            out[table] = int(self.query(f"SELECT count() AS n FROM {{db}}.{table} FINAL")[0]["n"])
        return out

    def registration_counts(
        self, zone: str | None = None, month: str | None = None
    ) -> list[dict[str, Any]]:
        """Distinct registrations per (zone, month, entity_type), from the durable table (an id
        counts in the month of its first copy)."""
        return self.query(
            "SELECT zone, month, entity_type, count() AS registrations"
            " FROM (SELECT zone, registration_id, argMin(month, ingested_at) AS month,"
            " argMin(entity_type, ingested_at) AS entity_type FROM {db}.registrations"
            " WHERE ({zone:Nullable(String)} IS NULL OR zone = {zone:Nullable(String)})"
            " GROUP BY zone, registration_id)"
            " WHERE ({month:Nullable(String)} IS NULL OR month = {month:Nullable(String)})"
            " GROUP BY zone, month, entity_type ORDER BY zone, month, entity_type",
            {"zone": zone, "month": month},
        )

    def registration_figures(self, zone: str | None = None) -> list[dict[str, Any]]:
        """The figures derived from registrations (source ``registrations``), as kept."""
        return self.query(
            "SELECT zone, indicator, basis, period, value, revision"
            " FROM {db}.observations FINAL WHERE source = 'registrations'"
            " AND ({zone:Nullable(String)} IS NULL OR zone = {zone:Nullable(String)})"
            " ORDER BY zone, indicator, period",
            {"zone": zone},
        )

    def registration_stats(self, since: datetime | None = None) -> dict[str, Any]:
        """Rows, and latency (producer ``sent_at`` → insert) of rows ingested since ``since``:
        p50/p99 over all, and p50 of the first and the last third by ``sent_at`` (a pipeline
        that keeps up has the same latency at the end as at the start)."""
        since = since or datetime(1970, 1, 1, tzinfo=UTC)
        row = self.query(
            "WITH dateDiff('microsecond', sent_at, ingested_at) AS latency,"
            " (SELECT (min(sent_at), max(sent_at)) FROM {db}.registrations"
            "   WHERE ingested_at >= {since:DateTime64(6, 'UTC')}) AS sent,"
            " dateDiff('microsecond', sent.1, sent.2) AS span,"
            " dateDiff('microsecond', sent.1, sent_at) AS into_phase"
            " SELECT count() AS n, countIf(sent_at IS NOT NULL) AS timed,"
            " quantilesExactIf(0.5, 0.99)(latency, sent_at IS NOT NULL) AS q,"
            " quantileExactIf(0.5)(latency, into_phase < span / 3) AS first_third,"
            " quantileExactIf(0.5)(latency, into_phase > 2 * span / 3) AS last_third,"
            " min(sent_at) AS first_sent, min(ingested_at) AS first_ingested,"
            " max(ingested_at) AS last_ingested"
            " FROM {db}.registrations WHERE ingested_at >= {since:DateTime64(6, 'UTC')}",
            {"since": since},
        )[0]
        timed = bool(row["timed"])
        q = row["q"] if timed else [None, None]

        def ms(value: float | None) -> float | None:
            return None if value is None or not timed else value / 1000

        return {
            "registrations": int(row["n"]),
            "timed": int(row["timed"]),
            "latency_p50_ms": ms(q[0]),
            "latency_p99_ms": ms(q[1]),
            "latency_p50_first_third_ms": ms(row["first_third"]),
            "latency_p50_last_third_ms": ms(row["last_third"]),
            "first_sent": row["first_sent"].isoformat() if timed else None,
            "first_ingested": row["first_ingested"].isoformat() if row["n"] else None,
            "last_ingested": row["last_ingested"].isoformat() if row["n"] else None,
        }
