"""The ClickHouse store: DDL, batch writes and the reads the CLI/API/worker need.

One code path through clickhouse-connect for both the embedded chdb and a server. chdb allows one
data path per process and has no async client, so every call goes through one worker thread.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from typing import Any, TypeVar

import clickhouse_connect

from parkpulse.config import ClickHouseTarget
from parkpulse.schemas.catalogue import Catalogue
from parkpulse.schemas.records import (
    STATUSES,
    DeadLetter,
    IndicatorStatus,
    Observation,
    PlanTarget,
    ZoneScorecard,
)

T = TypeVar("T")

STATUS_COLUMNS = (
    "zone",
    "indicator",
    "plan",
    "period",
    "kind",
    "status",
    "actual",
    "expected",
    "annual_target",
    "attainment",
    "gap_pp",
    "projected_year_end",
    "required_growth_pct",
    "seasonal_source",
    "binding",
)
OBSERVATION_COLUMNS = (
    "zone",
    "indicator",
    "basis",
    "period",
    "source",
    "value",
    "unit",
    "yoy_pct",
    "obs_status",
    "revision",
    "action",
    "published_at",
)
TARGET_COLUMNS = (
    "plan",
    "zone",
    "indicator",
    "kind",
    "base_year",
    "base_value",
    "target_year",
    "target_value",
    "annual_growth_pct",
    "binding",
    "unit",
    "source",
    "revision",
)
DEADLETTER_COLUMNS = ("received_at", "source_topic", "reason", "detail", "raw", "origin", "line")


class ClickHouseUnavailable(RuntimeError):
    """The store could not be reached or refused a write; the caller retries."""


def schema_statements() -> list[str]:
    """The DDL statements of ``schema.sql``, one per entry."""
    text = resources.files("parkpulse.sinks").joinpath("schema.sql").read_text(encoding="utf-8")
    lines = [ln for ln in text.splitlines() if not ln.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def _now() -> datetime:
    return datetime.now(UTC)


def _delete_version(revision: int, deleted: bool) -> int:
    # At equal revision a delete wins: the version orders (revision, is_delete).
    return revision * 2 + int(deleted)


@dataclass
class SinkBatch:
    """Rows for one write; written table by table, each insert idempotent on retry."""

    observations: list[Observation] = field(default_factory=list)
    targets: list[PlanTarget] = field(default_factory=list)
    statuses: list[IndicatorStatus] = field(default_factory=list)
    status_tombstones: list[IndicatorStatus] = field(default_factory=list)
    scorecards: list[ZoneScorecard] = field(default_factory=list)
    deadletters: list[DeadLetter] = field(default_factory=list)

    def __len__(self) -> int:
        return (
            len(self.observations)
            + len(self.targets)
            + len(self.statuses)
            + len(self.status_tombstones)
            + len(self.scorecards)
            + len(self.deadletters)
        )


class ClickHouseStore:
    """parkpulse's tables in ClickHouse (embedded chdb or a server), behind one thread."""

    def __init__(self, client: Any, database: str = "parkpulse") -> None:
        self._client = client
        self.database = database
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clickhouse")

    @classmethod
    def open(cls, target: ClickHouseTarget) -> ClickHouseStore:
        """Connect (server) or open the data path (embedded) and make sure the schema exists."""
        if target.embedded_path is not None:
            target.embedded_path.mkdir(parents=True, exist_ok=True)
            client = clickhouse_connect.get_client(interface="chdb", path=str(target.embedded_path))
        else:
            client = clickhouse_connect.get_client(
                host=target.host,
                port=target.port,
                username=target.username,
                password=target.password,
                secure=target.secure,
                ca_cert=target.ca_cert,
                database="default",
                connect_timeout=5,
                send_receive_timeout=30,
            )
        store = cls(client, target.database)
        store.ensure_schema()
        return store

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self._client.close()

    # -- plumbing -----------------------------------------------------------------------

    def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn`` on the store's thread and wait (for sync callers)."""
        return self._executor.submit(fn, *args).result()

    async def arun(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn`` on the store's thread without blocking the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _table(self, name: str) -> str:
        return f"{self.database}.{name}"

    def ensure_schema(self) -> None:
        for statement in schema_statements():
            if self.database != "parkpulse":
                statement = statement.replace("parkpulse.", f"{self.database}.").replace(
                    "DATABASE IF NOT EXISTS parkpulse", f"DATABASE IF NOT EXISTS {self.database}"
                )
            self._client.command(statement)

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Rows as dicts; every caller passes values as ``{name:Type}`` parameters."""
        result = self._client.query(sql.replace("{db}", self.database), parameters=parameters)
        names = result.column_names
        return [dict(zip(names, row, strict=True)) for row in result.result_rows]

    def _insert(self, table: str, columns: Iterable[str], rows: list[list[Any]]) -> None:
        if not rows:
            return
        try:
            self._client.insert(self._table(table), rows, column_names=list(columns))
        except Exception as exc:  # the driver raises many types; the caller retries
            raise ClickHouseUnavailable(f"insert into {table} failed: {exc}") from exc

    # -- writes -------------------------------------------------------------------------

    def write(self, batch: SinkBatch) -> dict[str, int]:
        """Insert every row of the batch; returns rows written per table."""
        now = _now()
        version = time.time_ns() // 1000
        obs_rows = [
            [*(getattr(o, c) for c in OBSERVATION_COLUMNS)]
            + [now, _delete_version(o.revision, o.is_delete), int(o.is_delete)]
            for o in batch.observations
        ]
        target_rows = [
            [*(getattr(t, c) for c in TARGET_COLUMNS)]
            + [now, _delete_version(t.revision, t.action == "D"), int(t.action == "D")]
            for t in batch.targets
        ]
        status_rows = [
            [*(getattr(s, c) for c in STATUS_COLUMNS)] + [now, version, 0] for s in batch.statuses
        ] + [
            [*(getattr(s, c) for c in STATUS_COLUMNS)] + [now, version, 1]
            for s in batch.status_tombstones
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
        meta = ("ingested_at", "version", "is_deleted")
        self._insert("observations", (*OBSERVATION_COLUMNS, *meta), obs_rows)
        self._insert("plan_targets", (*TARGET_COLUMNS, *meta), target_rows)
        self._insert(
            "indicator_status",
            (*STATUS_COLUMNS, "evaluated_at", "version", "is_deleted"),
            status_rows,
        )
        self._insert(
            "zone_scorecard",
            (
                "zone",
                "period",
                *STATUSES,
                "worst_binding_indicator",
                "worst_binding_attainment",
                "median_attainment",
                "evaluated_at",
                "version",
            ),
            scorecard_rows,
        )
        self._insert("deadletter", DEADLETTER_COLUMNS, dl_rows)
        return {
            "observations": len(obs_rows),
            "plan_targets": len(target_rows),
            "indicator_status": len(status_rows),
            "zone_scorecard": len(scorecard_rows),
            "deadletter": len(dl_rows),
        }

    def write_reference(self, catalogue: Catalogue) -> None:
        """Zones and indicators, for boards that join names onto ids."""
        self._insert(
            "zones",
            ("id", "name_zh", "name_en", "city", "province"),
            [[z.id, z.name_zh, z.name_en, z.city, z.province] for z in catalogue.zones.values()],
        )
        self._insert(
            "indicators",
            ("id", "name_zh", "name_en", "unit", "kind", "higher_is_better", "domain"),
            [
                [i.id, i.name_zh, i.name_en, i.unit, i.kind, int(i.higher_is_better), i.domain]
                for i in catalogue.indicators.values()
            ],
        )

    # -- reads --------------------------------------------------------------------------

    def zone_state(
        self, zone: str
    ) -> tuple[list[Observation], list[PlanTarget], list[IndicatorStatus]]:
        """Everything the worker keeps for a zone, as last written (tombstones included)."""
        # Not FINAL: FINAL hides tombstones, and the worker needs them so that an older
        # revision replayed after a delete stays deleted. Highest version per key wins.
        obs = self.query(
            f"SELECT {', '.join(OBSERVATION_COLUMNS)} FROM {{db}}.observations"
            " WHERE zone = {zone:String} ORDER BY version DESC"
            " LIMIT 1 BY zone, indicator, basis, period, source",
            {"zone": zone},
        )
        targets = self.query(
            f"SELECT {', '.join(TARGET_COLUMNS)}, if(is_deleted, 'D', 'I') AS action"
            " FROM {db}.plan_targets WHERE zone = {zone:String}"
            " ORDER BY version DESC, ingested_at DESC LIMIT 1 BY plan, zone, indicator",
            {"zone": zone},
        )
        statuses = self.query(
            f"SELECT {', '.join(STATUS_COLUMNS)} FROM {{db}}.indicator_status FINAL"
            " WHERE zone = {zone:String}",
            {"zone": zone},
        )
        return (
            [Observation(**row) for row in obs],
            [PlanTarget(**{**row, "binding": bool(row["binding"])}) for row in targets],
            [IndicatorStatus(**{**row, "binding": bool(row["binding"])}) for row in statuses],
        )

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

    def scorecards(self) -> list[dict[str, Any]]:
        return self.query(
            "SELECT zone, period, "
            + ", ".join(STATUSES)
            + ", worst_binding_indicator, worst_binding_attainment, median_attainment"
            " FROM {db}.zone_scorecard FINAL ORDER BY zone"
        )

    def deadletters(self, limit: int = 1000) -> list[dict[str, Any]]:
        rows = self.query(
            "SELECT received_at, source_topic, reason, detail, raw, origin, line"
            " FROM {db}.deadletter FINAL ORDER BY received_at DESC, origin, line"
            " LIMIT {limit:UInt32}",
            {"limit": limit},
        )
        for row in rows:
            row["received_at"] = row["received_at"].isoformat()
        return rows

    def counts(self) -> dict[str, int]:
        """Current row counts (FINAL) per table, for summaries and tests."""
        out = {}
        for table in ("observations", "plan_targets", "indicator_status", "deadletter"):
            out[table] = int(self.query(f"SELECT count() AS n FROM {{db}}.{table} FINAL")[0]["n"])
        return out


def _parse_ts(text: str) -> datetime | None:
    if not text:
        return None
    try:
        ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)
