"""The ClickHouse store: DDL, batch writes and the reads the CLI/API/worker need.

One code path through clickhouse-connect for both the embedded chdb and a server. chdb allows one
data path per process and has no async client, so every call goes through one worker thread.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from operator import attrgetter
from typing import Any, TypeVar

import clickhouse_connect
import numpy as np
from clickhouse_connect.driver.exceptions import OperationalError

from parkpulse.config import ClickHouseTarget
from parkpulse.schemas.catalogue import Catalogue
from parkpulse.schemas.records import (
    STATUSES,
    DeadLetter,
    IndicatorStatus,
    Observation,
    PlanTarget,
    Registration,
    SuspectFigure,
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
    "best_rest_growth_pct",
    "out_of_reach",
    "suspect",
)
SUSPECT_COLUMNS = ("zone", "indicator", "period", "reason", "value", "previous", "previous_period")
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
_OBSERVATION_VALUES = attrgetter(*OBSERVATION_COLUMNS)


def _columns(records: Sequence[Any], values: attrgetter, width: int) -> list[Sequence[Any]]:
    """The ``width`` columns of ``records``, each record's values read by ``values``."""
    if not records:
        return [[] for _ in range(width)]
    return list(zip(*map(values, records), strict=True))


_STATUS_VALUES = attrgetter(*STATUS_COLUMNS)
DEADLETTER_COLUMNS = ("received_at", "source_topic", "reason", "detail", "raw", "origin", "line")
# deadletter_page's filters, each off when its parameter is NULL
DEADLETTER_FILTER = (
    " WHERE ({origin:Nullable(String)} IS NULL OR origin = {origin:Nullable(String)})"
    " AND ({reason:Nullable(String)} IS NULL OR reason = {reason:Nullable(String)})"
    " AND ({since:Nullable(String)} IS NULL"
    " OR received_at >= parseDateTime64BestEffort({since:Nullable(String)}, 3, 'UTC'))"
)
BEIJING_OFFSET_MS = 8 * 3600 * 1000  # registrations carry Beijing time (UTC+8)
REGISTRATION_COLUMNS = (
    "zone",
    "registration_id",
    "registered_at",
    "month",
    "entity_type",
    "industry_code",
    "registered_capital",
    "batch_id",
    "sent_at",
)


class ClickHouseUnavailable(RuntimeError):
    """The store could not be reached or refused a write; the caller retries."""

    def __init__(self, message: str, table: str | None = None) -> None:
        super().__init__(message)
        self.table = table  # the table a failed write was for (None: connecting, reading)


def client_kwargs(target: ClickHouseTarget) -> dict[str, Any]:
    """``clickhouse_connect.get_client`` keyword arguments for a ClickHouse server.

    TLS options (CA bundle, client certificate, verification) are passed straight through for
    ``https://`` targets. The password is in here: never log this dict.
    """
    kwargs: dict[str, Any] = {
        "host": target.host,
        "port": target.port,
        "username": target.username,
        "password": target.password,
        "secure": target.secure,
        "database": "default",  # the schema creates the target database on first connection
        "connect_timeout": 5,
        "send_receive_timeout": 30,
    }
    if target.secure:
        kwargs["verify"] = target.verify
        if target.ca_cert:
            kwargs["ca_cert"] = target.ca_cert
        if target.client_cert:
            kwargs["client_cert"] = target.client_cert
        if target.client_key:
            kwargs["client_cert_key"] = target.client_key
    return kwargs


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
    suspects: list[SuspectFigure] = field(default_factory=list)
    suspect_tombstones: list[SuspectFigure] = field(default_factory=list)  # no longer suspect

    def __len__(self) -> int:
        return (
            len(self.observations)
            + len(self.targets)
            + len(self.statuses)
            + len(self.status_tombstones)
            + len(self.scorecards)
            + len(self.deadletters)
            + len(self.suspects)
            + len(self.suspect_tombstones)
        )


class ClickHouseStore:
    """parkpulse's tables in ClickHouse (embedded chdb or a server), behind one thread.

    A server is connected to lazily: the store can be opened while ClickHouse is down, and the
    first call that needs it connects and ensures the schema (raising ClickHouseUnavailable, for
    the caller to retry, until it can).
    """

    def __init__(
        self,
        client: Any = None,
        database: str = "parkpulse",
        *,
        connect: Callable[[], Any] | None = None,
        secret: str = "",
    ) -> None:
        if client is None and connect is None:
            raise ValueError("ClickHouseStore needs a client or a way to connect")
        self._connected = client
        self._connect = connect
        self._secret = secret  # scrubbed from every error message the store raises
        self.database = database
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clickhouse")

    @classmethod
    def open(cls, target: ClickHouseTarget) -> ClickHouseStore:
        """The store for ``target``: the embedded data path is opened now (a local failure is not
        worth retrying); a server is connected to on first use, so it may be down right now."""
        if target.embedded_path is not None:
            target.embedded_path.mkdir(parents=True, exist_ok=True)
            path = str(target.embedded_path)
            store = cls(
                connect=lambda: clickhouse_connect.get_client(interface="chdb", path=path),
                database=target.database,
            )
            store.run(store.connect)
            return store
        kwargs = client_kwargs(target)
        return cls(
            connect=lambda: clickhouse_connect.get_client(**kwargs),
            database=target.database,
            secret=target.password,
        )

    @property
    def connected(self) -> bool:
        return self._connected is not None

    def connect(self) -> None:
        """Connect and ensure the schema now (on the store's thread); idempotent."""
        _ = self._client

    @property
    def _client(self) -> Any:
        """The driver's client; the first use connects and ensures the schema."""
        if self._connected is None:
            assert self._connect is not None
            try:
                client = self._connect()
            except Exception as exc:  # refused, timed out, bad TLS, bad password …
                raise ClickHouseUnavailable(f"cannot connect: {self._scrub(exc)}") from None
            try:
                self._apply_schema(client)
            except Exception as exc:
                client.close()
                detail = self._scrub(exc)
                raise ClickHouseUnavailable(f"cannot create the schema: {detail}") from None
            self._connected = client
        return self._connected

    def _scrub(self, exc: BaseException) -> str:
        text = str(exc)
        return text.replace(self._secret, "***") if self._secret else text

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        if self._connected is not None:
            self._connected.close()

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
        """Create the database and tables if missing (done on connecting; idempotent)."""
        self._apply_schema(self._client)

    def _apply_schema(self, client: Any) -> None:
        for statement in schema_statements():
            if self.database != "parkpulse":
                statement = statement.replace("parkpulse.", f"{self.database}.").replace(
                    "DATABASE IF NOT EXISTS parkpulse", f"DATABASE IF NOT EXISTS {self.database}"
                )
            client.command(statement)

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Rows as dicts; every caller passes values as ``{name:Type}`` parameters."""
        try:
            result = self._client.query(sql.replace("{db}", self.database), parameters=parameters)
        except OperationalError as exc:  # the server went away; a bad query is not retried
            raise ClickHouseUnavailable(f"query failed: {self._scrub(exc)}") from None
        names = result.column_names
        return [dict(zip(names, row, strict=True)) for row in result.result_rows]

    def _insert(
        self,
        table: str,
        columns: Iterable[str],
        data: Sequence[Sequence[Any]],
        *,
        column_oriented: bool = False,
    ) -> None:
        """Insert ``data``: rows, or (``column_oriented``) one sequence per column."""
        if not data or (column_oriented and not data[0]):
            return
        try:
            self._client.insert(
                self._table(table),
                data,
                column_names=list(columns),
                column_oriented=column_oriented,
            )
        except ClickHouseUnavailable as exc:  # could not connect
            raise ClickHouseUnavailable(str(exc), table) from None
        except Exception as exc:  # the driver raises many types; the caller retries
            raise ClickHouseUnavailable(
                f"insert into {table} failed: {self._scrub(exc)}", table
            ) from None

    # -- writes -------------------------------------------------------------------------

    def write(self, batch: SinkBatch) -> dict[str, int]:
        """Insert every row of the batch; returns rows written per table."""
        now = _now()
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
        meta = ("ingested_at", "version", "is_deleted")
        # Derived rows first, their inputs last: a worker killed between two inserts has either
        # not written an input (it is redelivered and recomputed) or has written everything
        # derived from it. Inputs first would let a redelivered input look already applied while
        # its status rows were never written.
        self._insert(
            "indicator_status",
            (*STATUS_COLUMNS, "evaluated_at", "version", "is_deleted"),
            status_columns,
            column_oriented=True,
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
        suspect_rows = [
            [*(getattr(f, c) for c in SUSPECT_COLUMNS), now, version, int(deleted)]
            for figures, deleted in ((batch.suspects, False), (batch.suspect_tombstones, True))
            for f in figures
        ]
        self._insert(
            "suspect_figures",
            (*SUSPECT_COLUMNS, "flagged_at", "version", "is_deleted"),
            suspect_rows,
        )
        self._insert("plan_targets", (*TARGET_COLUMNS, *meta), target_rows)
        self._insert(
            "observations", (*OBSERVATION_COLUMNS, *meta), obs_columns, column_oriented=True
        )
        return {
            "observations": len(obs),
            "plan_targets": len(target_rows),
            "indicator_status": len(statuses),
            "zone_scorecard": len(scorecard_rows),
            "deadletter": len(dl_rows),
            "suspect_figures": len(suspect_rows),
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

    def mark_landed(self, files: Sequence[str]) -> None:
        """Record kept feed files as wholly in ClickHouse (``producers/ledger.py``)."""
        now = _now()
        self._insert("feed_ledger", ("file", "landed_at"), [[f, now] for f in files])

    # -- reads --------------------------------------------------------------------------

    def landed_files(self) -> set[str]:
        """The kept feed files recorded as wholly in ClickHouse."""
        return {r["file"] for r in self.query("SELECT file FROM {db}.feed_ledger FINAL")}

    def zones_state(
        self, zones: Sequence[str]
    ) -> dict[
        str,
        tuple[list[Observation], list[PlanTarget], list[IndicatorStatus], list[SuspectFigure]],
    ]:
        """Everything the worker keeps for each of ``zones``, as last written (tombstones
        included); three queries for all of them."""
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
        out: dict[
            str,
            tuple[list[Observation], list[PlanTarget], list[IndicatorStatus], list[SuspectFigure]],
        ] = {zone: ([], [], [], []) for zone in zones}
        for row in obs:
            out[row["zone"]][0].append(Observation(**row))
        for row in targets:
            out[row["zone"]][1].append(PlanTarget(**{**row, "binding": bool(row["binding"])}))
        for row in statuses:
            out[row["zone"]][2].append(IndicatorStatus(**{**row, "binding": bool(row["binding"])}))
        for row in suspects:
            out[row["zone"]][3].append(SuspectFigure(**row))
        return out

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

    def status_fingerprint(self) -> tuple[int, int]:
        """(rows, newest version) of the status table as stored: changes with every write."""
        row = self.query("SELECT count() AS n, max(version) AS v FROM {db}.indicator_status")[0]
        return int(row["n"]), int(row["v"])

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

    # -- registrations ------------------------------------------------------------------

    def write_registrations(self, registrations: Sequence[Registration]) -> dict[str, int]:
        """Insert registrations (column-wise: the heavy stream); returns rows written."""
        if not registrations:
            return {"registrations": 0}
        sent: dict[str, int | None] = {"": None}
        for r in registrations:
            if r.sent_at not in sent:
                sent[r.sent_at] = _epoch_us(r.sent_at)
        columns = [
            [r.zone for r in registrations],
            [r.registration_id for r in registrations],
            _beijing_ms([r.registered_at for r in registrations]),
            [r.month for r in registrations],
            [r.entity_type for r in registrations],
            [r.industry_code for r in registrations],
            [r.registered_capital for r in registrations],
            [r.batch_id for r in registrations],
            [sent[r.sent_at] for r in registrations],
        ]
        try:
            self._client.insert(
                self._table("registrations"),
                columns,
                column_names=list(REGISTRATION_COLUMNS),
                column_oriented=True,
            )
        except Exception as exc:  # the driver raises many types; the caller retries
            raise ClickHouseUnavailable(f"insert into registrations failed: {exc}") from exc
        return {"registrations": len(registrations)}

    def registration_ids(
        self, zones: Sequence[str]
    ) -> list[tuple[str, list[str], list[str], list[str]]]:
        """Per zone: every registration id so far, with the month and entity type of its first
        copy (a table written before re-sends were dropped may hold a later one too)."""
        if not zones:
            return []
        result = self._client.query(
            "SELECT zone, groupArray(registration_id), groupArray(month), groupArray(entity_type)"
            " FROM (SELECT zone, registration_id, argMin(month, ingested_at) AS month,"
            " argMin(entity_type, ingested_at) AS entity_type"
            f" FROM {self._table('registrations')}"
            " WHERE zone IN {zones:Array(String)}"
            " GROUP BY zone, registration_id) GROUP BY zone",
            parameters={"zones": sorted(set(zones))},
        )
        return [tuple(row) for row in result.result_rows]  # type: ignore[misc]

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
