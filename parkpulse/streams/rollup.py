"""The per-zone roll-up the zone agent runs: inputs in, changed rows out.

State is keyed by what makes a figure unique, never by running sums: observations by
``(zone, indicator, basis, period, source)``, targets by ``(plan, indicator)``, status rows by
``(indicator, plan, period)``. Every batch recomputes the touched indicators from that state with
the pure engine and emits only the rows that changed, so a replay or a duplicate is a no-op.
No I/O here: the agent loads missing zones (from ClickHouse) and writes what ``apply`` returns.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from parkpulse.schemas.catalogue import Catalogue
from parkpulse.schemas.deadletter import dead_letter, kept_raw
from parkpulse.schemas.envelope import ColumnEnvelope, envelope_of
from parkpulse.schemas.errors import RejectedInput, key_of, wrong_key
from parkpulse.schemas.figure_columns import read_figure_columns
from parkpulse.schemas.records import (
    DeadLetter,
    IndicatorStatus,
    Observation,
    PlanTarget,
    SuspectFigure,
    ZoneScorecard,
)
from parkpulse.schemas.targets import validate_target
from parkpulse.schemas.validation import observation_reader, validate_observation
from parkpulse.sinks.batch import SinkBatch
from parkpulse.streams.observations import merge
from parkpulse.streams.plan import Thresholds, assess, judge, scorecard
from parkpulse.streams.plausibility import DEFAULT_JUMP_FACTOR


@dataclass(slots=True)  # not frozen: a backfill makes one per figure, and frozen costs ~1 µs
class Input:
    """One record as the agent saw it: a whole message, or one record of a batch envelope."""

    topic: str
    kind: str  # "observation" | "target"
    value: bytes  # the message; empty for a record of an envelope (see ``doc``, ``envelope``)
    partition: int = 0
    offset: int = 0
    doc: Any = None  # the record, already decoded (None: decode ``value``, or see ``envelope``)
    line: int | None = None  # its 1-based place in its envelope
    error: RejectedInput | None = None  # why the message as a whole cannot be read
    key: str | None = None  # the message key: a figure's must be its zone (None: not checked)
    envelope: ColumnEnvelope | None = None  # the column envelope it is figure ``line`` of

    @property
    def record(self) -> Any:
        """The record: as decoded, rebuilt from its envelope's columns, or read from the
        message (_UNREADABLE when it is no JSON)."""
        if self.doc is not None:
            return self.doc
        if self.envelope is not None and self.line is not None:
            return self.envelope.record(self.line - 1)
        return _loads(self.value)

    @property
    def raw(self) -> str:
        """The record as a dead letter keeps it (see schemas.deadletter)."""
        if self.value or (self.doc is None and self.envelope is None):
            return kept_raw(self.value)
        record = self.record
        try:
            return kept_raw(orjson.dumps(record))
        except TypeError:  # pragma: no cover - a decoded record always encodes again
            return kept_raw(repr(record).encode())

    @property
    def zone(self) -> str | None:
        """The zone the record is about, when it can be read (to load that zone's state first)."""
        doc = self.record
        zone = doc.get("zone") if isinstance(doc, dict) else None
        return zone.strip() if isinstance(zone, str) else None


def read_message(
    topic: str,
    kind: str,
    value: bytes,
    partition: int = 0,
    offset: int = 0,
    key: bytes | None = None,
) -> list[Input]:
    """A message as the records it carries: itself (one bare record), or each record of a
    batch envelope of figures (schemas/envelope.py; a column envelope's records are rebuilt
    only when one is needed, see ``Rollup._observation``)."""
    doc = _loads(value)
    zone_key = key_of(key)
    try:
        records = envelope_of(doc) if kind == "observation" else None
    except RejectedInput as exc:
        return [Input(topic, kind, value, partition, offset, doc, error=exc, key=zone_key)]
    if records is None:
        return [Input(topic, kind, value, partition, offset, doc, key=zone_key)]
    if isinstance(records, ColumnEnvelope):
        return [
            Input(topic, kind, b"", partition, offset, None, line, key=zone_key, envelope=records)
            for line in range(1, records.count + 1)
        ]
    return [
        Input(topic, kind, b"", partition, offset, record, line, key=zone_key)
        for line, record in enumerate(records, start=1)
    ]


def zone_of(value: bytes) -> str | None:
    """The zone a bare message is about, when it can be read."""
    return Input("", "", value).zone


_UNREADABLE = object()


def _loads(value: bytes) -> Any:
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return _UNREADABLE


ObservationKey = tuple[str, str, str, str, str]
StatusKey = tuple[str, str, str]
MAX_SHARED = 1_000_000
MAX_HELD_ROWS = 100_000  # figures and status rows held in memory, ~320 bytes each

# Every kept figure repeats a handful of values (its zone, indicator, period, unit, source …);
# sharing one string object per value keeps a ten-year, 178-zone history in about half the
# memory (each decoded message brings its own copies, ~50 bytes apiece).
_SHARED: dict[str, str] = {}


def _shared(text: str) -> str:
    found = _SHARED.get(text)
    if found is None:
        if len(_SHARED) >= MAX_SHARED:
            return text
        _SHARED[text] = found = text
    return found


def _compact(obs: Observation) -> Observation:
    """The same figure, its text fields shared with every other figure that has them."""
    return Observation(
        _shared(obs.zone),
        _shared(obs.indicator),
        _shared(obs.period),
        _shared(obs.basis),
        obs.value,
        _shared(obs.unit),
        obs.yoy_pct,
        _shared(obs.obs_status),
        obs.revision,
        _shared(obs.action),
        _shared(obs.published_at),
        _shared(obs.source),
    )


def _compact_validated(obs: Observation) -> Observation:
    """``_compact`` for a figure the worker's reader gave (schemas/validation.py): its indicator,
    unit, basis, status, action and source are already the catalogue's or the reader's own
    strings, so only its zone, period and publication date can be copies; most often none is
    (the reader hands out the texts it met before), and then the figure is kept as it is."""
    zone, period, published = _shared(obs.zone), _shared(obs.period), _shared(obs.published_at)
    if zone is obs.zone and period is obs.period and published is obs.published_at:
        return obs
    return _compact(obs)


@dataclass
class ZoneState:
    observations: dict[ObservationKey, Observation] = field(default_factory=dict)
    targets: dict[tuple[str, str], PlanTarget] = field(default_factory=dict)
    statuses: dict[StatusKey, IndicatorStatus] = field(default_factory=dict)
    # The same observations and status keys by indicator: a recompute reads one indicator's,
    # not the zone's ten years of thirty (measured: the zone-wide scan was ~10 % of a backfill).
    observations_of: dict[str, dict[ObservationKey, Observation]] = field(default_factory=dict)
    statuses_of: dict[str, set[StatusKey]] = field(default_factory=dict)
    # Figures that look implausible, by indicator then period (few: no size accounting).
    suspects_of: dict[str, dict[str, SuspectFigure]] = field(default_factory=dict)

    @property
    def size(self) -> int:
        """Rows held: what the zone costs in memory."""
        return len(self.observations) + len(self.statuses)

    def keep_observation(self, obs: Observation, validated: bool = False) -> Observation:
        """Keep a figure (``validated``: as the worker's reader gave it, see _compact_validated)."""
        obs = _compact_validated(obs) if validated else _compact(obs)
        key = obs.key  # one tuple for both maps (a property: each read builds a new one)
        self.observations[key] = obs
        self.observations_of.setdefault(obs.indicator, {})[key] = obs
        return obs

    def keep_status(self, row: IndicatorStatus) -> None:
        key = (row.indicator, row.plan, row.period)
        self.statuses[key] = row
        self.statuses_of.setdefault(row.indicator, set()).add(key)

    def drop_status(self, key: StatusKey) -> IndicatorStatus:
        self.statuses_of[key[0]].discard(key)
        return self.statuses.pop(key)


@dataclass
class RollupResult:
    """What one batch changed: rows for ClickHouse, and what to publish."""

    batch: SinkBatch = field(default_factory=SinkBatch)
    accepted: int = 0
    # (zone, indicator, plan) keys that lost rows: the latest row each has left, None when it
    # has none (its target was withdrawn) — the gauges showing them must follow.
    shrunk: dict[tuple[str, str, str], IndicatorStatus | None] = field(default_factory=dict)
    # Figures that became suspect in this batch (or for another reason): one count each.
    newly_suspect: list[SuspectFigure] = field(default_factory=list)

    @property
    def statuses(self) -> list[IndicatorStatus]:
        return self.batch.statuses

    @property
    def deadletters(self) -> list[DeadLetter]:
        return self.batch.deadletters


def _decode(item: Input) -> dict[str, Any]:
    if item.error is not None:
        raise item.error
    doc = item.record
    if doc is _UNREADABLE:
        try:
            doc = orjson.loads(item.value)
        except orjson.JSONDecodeError as exc:
            raise RejectedInput("malformed", f"not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise RejectedInput("malformed", f"expected a JSON object, got {type(doc).__name__}")
    return doc


class Rollup:
    """Per-zone state and the recomputation of the indicators a batch touched.

    Zones are held while their figures and status rows number at most ``max_rows`` in all,
    the most recently touched first; the others are reloaded from ClickHouse when their next
    figure comes. A zone's ten years are ~4,700 rows (~1.5 MB) and a national backfill goes
    zone by zone; a zone with a few months or only targets costs next to nothing and is kept
    while bigger zones can make room (``_evict``), so targets or a month's figures arriving in
    any zone order do not reload zones batch after batch.
    """

    def __init__(
        self,
        catalogue: Catalogue,
        thresholds: Mapping[str, Thresholds] | None = None,
        max_rows: int = MAX_HELD_ROWS,
        jump_factor: float = DEFAULT_JUMP_FACTOR,
    ) -> None:
        self.catalogue = catalogue
        self.thresholds = dict(thresholds or {})
        self.max_rows = max_rows
        if not jump_factor > 1:  # checked here, not on the first figure of a running worker
            raise ValueError(f"the jump factor must be greater than 1, got {jump_factor}")
        self.jump_factor = jump_factor
        self._zones: dict[str, ZoneState] = {}  # least recently touched first
        # The column envelope whose figures are being applied, and what reading them as columns
        # gave (None: read record by record).
        self._columns_read: tuple[ColumnEnvelope, list[Observation] | None] | None = None

    # -- state --------------------------------------------------------------------------

    def is_loaded(self, zone: str) -> bool:
        return zone in self._zones

    def load(
        self,
        zone: str,
        observations: Iterable[Observation],
        targets: Iterable[PlanTarget],
        statuses: Iterable[IndicatorStatus],
        suspects: Iterable[SuspectFigure] = (),
    ) -> None:
        """Install a zone's state as last written (the durable record is ClickHouse)."""
        state = ZoneState()
        for obs in observations:
            state.keep_observation(obs)
        for target in targets:
            state.targets[(target.plan, target.indicator)] = target
        for row in statuses:
            state.keep_status(row)
        for figure in suspects:
            state.suspects_of.setdefault(figure.indicator, {})[figure.period] = figure
        self._zones[zone] = state

    def forget(self) -> None:
        """Drop all state (after a rebalance another worker may have moved it on)."""
        self._zones.clear()

    def zones(self) -> list[str]:
        return sorted(self._zones)

    def current_statuses(self, zone: str) -> list[IndicatorStatus]:
        return list(self._zones[zone].statuses.values())

    # -- one batch ----------------------------------------------------------------------

    def apply(self, inputs: Iterable[Input], now: datetime | None = None) -> RollupResult:
        """Validate, merge and recompute; every input is either accepted or dead-lettered.
        ``inputs`` are read once, in order (the stage reads a batch's messages lazily)."""
        now = now or datetime.now(UTC)
        self._columns_read = None  # read as of this batch's ``now``
        result = RollupResult()
        touched: set[tuple[str, str]] = set()
        for item in inputs:
            try:
                touched_key = self._apply_one(item, now, result.batch)
            except RejectedInput as exc:
                result.batch.deadletters.append(self._deadletter(item, exc, now))
                continue
            result.accepted += 1
            if touched_key is not None:
                touched.add(touched_key)
        self._columns_read = None
        for zone, indicator in sorted(touched):
            self._recompute(zone, indicator, result)
        zones = sorted({zone for zone, _ in touched})
        for zone in zones:
            result.batch.scorecards.append(self.scorecard(zone))
            self._zones[zone] = self._zones.pop(zone)  # the most recently touched last
        self._evict()
        return result

    def _evict(self) -> None:
        """Drop the least recently touched zones past ``max_rows`` (what apply returned is still
        written before the next batch, so a zone reloaded later finds it in the store).

        Zones of at most a thousandth of ``max_rows`` go last: dropping one frees next to
        nothing and costs a reload. A backfill's plan table touches every zone first (18 rows
        each); dropped in turn, each was read back from ClickHouse when its figures came, four
        queries for every fifth zone or so of each batch."""
        held = sum(state.size for state in self._zones.values())
        small = self.max_rows // 1000
        zones = list(self._zones)  # least recently touched first
        for zone in zones[:-1]:  # never the one touched last while others can go
            if held <= self.max_rows:
                return
            if self._zones[zone].size > small:
                held -= self._zones.pop(zone).size
        while held > self.max_rows and len(self._zones) > 1:
            held -= self._zones.pop(next(iter(self._zones))).size

    def scorecard(self, zone: str) -> ZoneScorecard:
        return scorecard(zone, self._zones[zone].statuses.values())

    def _state(self, zone: str) -> ZoneState:
        state = self._zones.get(zone)
        if state is None:  # a zone first seen in this batch has nothing in the store yet
            state = self._zones[zone] = ZoneState()
        return state

    def _apply_one(self, item: Input, now: datetime, batch: SinkBatch) -> tuple[str, str] | None:
        if item.error is not None:  # the message as a whole, or a row ClickHouse refused
            raise item.error
        if item.kind == "target":
            target = validate_target(_decode(item), self.catalogue)
            state = self._state(target.zone)
            key = (target.plan, target.indicator)
            current = state.targets.get(key)
            # Ordered by (revision, is_delete) like observations, but at the same revision the
            # last publication wins: planners edit plan_targets.csv without bumping revisions.
            # A tombstone is kept so an older revision replayed after a withdrawal stays out.
            if current is not None and (
                current == target
                or (current.revision, current.action == "D")
                > (target.revision, target.action == "D")
            ):
                return None
            state.targets[key] = target
            batch.targets.append(target)
            return (target.zone, target.indicator)
        obs = self._observation(item, now)
        stray = wrong_key(obs.zone, item.key, "figure")  # it would miss its zone's state
        if stray is not None:
            raise stray
        state = self._state(obs.zone)
        current = state.observations.get(obs.key)
        winner = merge(current, obs)  # raises ObservationConflict ("conflict")
        if winner is current:
            return None
        batch.observations.append(state.keep_observation(winner, validated=True))
        return (obs.zone, obs.indicator)

    def _observation(self, item: Input, now: datetime) -> Observation:
        """The item's figure, validated: a column envelope's figures are read as columns when
        all of them are plain (schemas/figure_columns.py), else record by record."""
        envelope = item.envelope
        if envelope is not None and item.line is not None:
            if self._columns_read is None or self._columns_read[0] is not envelope:
                reader = observation_reader(self.catalogue)
                read = read_figure_columns(reader, envelope.columns, envelope.count, now)
                self._columns_read = (envelope, read)
            read = self._columns_read[1]
            if read is not None:
                return read[item.line - 1]
        return validate_observation(_decode(item), self.catalogue, now=now)

    def _recompute(self, zone: str, indicator_id: str, result: RollupResult) -> None:
        state, batch = self._zones[zone], result.batch
        targets = [
            t for (_, ind), t in state.targets.items() if ind == indicator_id and t.action != "D"
        ]
        old_keys = state.statuses_of.get(indicator_id, set())
        indicator = self.catalogue.indicators[indicator_id]
        observations = list(state.observations_of.get(indicator_id, {}).values())
        # Figures are judged with or without targets: a suspect figure is one whatever plans
        # cover it. Without targets (and no rows to remove) only the judging is needed.
        if not targets and not old_keys:
            self._judged(
                state, indicator_id, judge(zone, indicator, observations, self.jump_factor), result
            )
            return
        found = assess(
            zone,
            indicator,
            observations,
            targets,
            self.thresholds.get(indicator_id),
            self.jump_factor,
        )
        self._judged(state, indicator_id, found.suspects, result)
        fresh = {(row.indicator, row.plan, row.period): row for row in found.rows}
        removed = sorted(old_keys - fresh.keys())
        for key in removed:
            batch.status_tombstones.append(state.drop_status(key))
        for key, row in fresh.items():
            if state.statuses.get(key) != row:
                state.keep_status(row)
                batch.statuses.append(row)
        for plan in {plan for _, plan, _ in removed}:
            left = [row for (_, p, _), row in fresh.items() if p == plan]
            result.shrunk[(zone, indicator_id, plan)] = max(
                left, key=lambda r: r.period, default=None
            )

    @staticmethod
    def _judged(
        state: ZoneState, indicator: str, suspects: list[SuspectFigure], result: RollupResult
    ) -> None:
        """Keep an indicator's suspect figures; write what changed, count what is new."""
        old = state.suspects_of.get(indicator, {})
        fresh = {figure.period: figure for figure in suspects}
        if not old and not fresh:
            return
        for period, figure in fresh.items():
            before = old.get(period)
            if before != figure:
                result.batch.suspects.append(figure)
                if before is None or before.reason != figure.reason:
                    result.newly_suspect.append(figure)
        for period in sorted(old.keys() - fresh.keys()):
            result.batch.suspect_tombstones.append(old[period])
        state.suspects_of[indicator] = fresh

    def suspects(self, zone: str) -> list[SuspectFigure]:
        """The zone's suspect figures as held."""
        held = self._zones[zone].suspects_of
        return [held[ind][period] for ind in sorted(held) for period in sorted(held[ind])]

    def _deadletter(self, item: Input, exc: RejectedInput, now: datetime) -> DeadLetter:
        origin = f"{item.topic}/{item.partition}@{item.offset}"
        line = item.line
        doc = item.record
        if isinstance(doc, dict) and isinstance(doc.get("origin"), str):
            origin = doc["origin"][:256]
            line = doc.get("line") if isinstance(doc.get("line"), int) else None
        return dead_letter(
            item.topic, exc, item.raw, origin=origin, line=line, received_at=now.isoformat()
        )
