"""The records that travel on parkpulse topics and land in ClickHouse.

Plain frozen dataclasses: the pure engine depends on nothing else, and the wire form is the
orjson encoding of ``to_dict()`` (lower-case field names, the JSON Lines feed format).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from parkpulse.schemas.quick_init import quick_init

BASES = ("YTD", "MONTH", "QUARTER", "YEAR", "LEVEL")
ACTIONS = ("I", "A", "R", "D")
OBS_STATUSES = ("A", "P", "E")
TARGET_KINDS = ("level", "growth", "share", "cumulative", "qualitative")
STATUSES = ("achieved", "on_track", "at_risk", "behind", "no_data", "not_evaluated")
SOURCES = ("bureau", "registrations")


def _flat(record: Any) -> dict[str, Any]:
    """A record of scalar fields as a dict (what ``asdict`` gives, without its deep copy)."""
    return {name: getattr(record, name) for name in record.__dataclass_fields__}


@quick_init
@dataclass(frozen=True, slots=True)
class Observation:
    """One published figure, already validated and converted to the indicator's unit.

    Keyed by ``(zone, indicator, basis, period, source)``; a higher ``revision`` replaces a
    lower one and ``action == "D"`` deletes the key (a tombstone).
    """

    zone: str
    indicator: str
    period: str  # YYYY-MM | YYYY-Qn | YYYY
    basis: str  # one of BASES
    value: float | None  # None only for a growth-only figure (yoy_pct given) or a delete
    unit: str  # the indicator's canonical unit
    yoy_pct: float | None = None
    obs_status: str = "A"
    revision: int = 0
    action: str = "I"
    published_at: str = ""
    source: str = "bureau"

    @property
    def key(self) -> tuple[str, str, str, str, str]:
        return (self.zone, self.indicator, self.basis, self.period, self.source)

    @property
    def is_delete(self) -> bool:
        return self.action == "D"

    def to_dict(self) -> dict[str, Any]:
        return _flat(self)


@dataclass(frozen=True, slots=True)
class PlanTarget:
    """A plan target for one zone and indicator (a five-year plan row or an annual task)."""

    plan: str
    zone: str
    indicator: str
    kind: str  # one of TARGET_KINDS
    base_year: int
    base_value: float | None
    target_year: int
    target_value: float | None
    annual_growth_pct: float | None
    binding: bool
    unit: str
    source: str = ""
    revision: int = 0
    action: str = "I"  # "D" withdraws the target

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.plan, self.zone, self.indicator)

    def to_dict(self) -> dict[str, Any]:
        return _flat(self)


@quick_init
@dataclass(frozen=True, slots=True)
class IndicatorStatus:
    """The evaluation of one (zone, indicator, plan) at one month, with the inputs it used."""

    zone: str
    indicator: str
    plan: str
    period: str  # YYYY-MM, the month evaluated
    kind: str
    status: str  # one of STATUSES
    actual: float | None = None
    expected: float | None = None
    annual_target: float | None = None
    attainment: float | None = None
    gap_pp: float | None = None
    projected_year_end: float | None = None
    required_growth_pct: float | None = None
    seasonal_source: str | None = None  # "prior_year" | "linear" | None
    binding: bool = False
    # Flow level targets: the best rest-of-year growth (months m+1..12 over the same months a
    # year before) this indicator showed in the years on record, and whether the required
    # growth exceeds it (None when either is unknown).
    best_rest_growth_pct: float | None = None
    out_of_reach: bool | None = None
    suspect: str | None = None  # why the month's figure looks implausible (streams/plausibility)

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.zone, self.indicator, self.plan, self.period)

    def to_dict(self) -> dict[str, Any]:
        return _flat(self)


@dataclass(frozen=True, slots=True)
class SuspectFigure:
    """A figure accepted from the bureau that looks implausible, and what it was compared with.

    Keyed by ``(zone, indicator, period)``: the month of the zone's series that is suspect
    (``reason``: ``ytd_fell`` or ``jump``, see streams/plausibility.py).
    """

    zone: str
    indicator: str
    period: str  # YYYY-MM
    reason: str
    value: float
    previous: float
    previous_period: str  # YYYY-MM

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.zone, self.indicator, self.period)

    def to_dict(self) -> dict[str, Any]:
        return _flat(self)


@dataclass(frozen=True, slots=True)
class ZoneScorecard:
    """Per-zone roll-up of the latest status of each (indicator, plan)."""

    zone: str
    period: str  # the latest month evaluated for the zone
    counts: dict[str, int] = field(default_factory=dict)  # status -> count
    worst_binding_indicator: str | None = None
    worst_binding_attainment: float | None = None
    median_attainment: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A rejected input: why, what it was, and where it came from."""

    source_topic: str
    reason: str  # a reason code, see schemas.validation.REASONS
    detail: str
    raw: str
    origin: str = ""  # file name, or topic/partition/offset
    line: int | None = None
    received_at: str = ""

    def to_dict(self) -> dict[str, Any]:
        return _flat(self)


ENTITY_TYPES = ("enterprise", "individual_business", "farmers_cooperative")


# Not frozen, unlike the records above: a frozen dataclass's __init__ (object.__setattr__ per
# field) costs ~4 µs here against ~0.7 µs, and this one is built for every registration.
@dataclass(slots=True)
class Registration:
    """One newly registered market entity (an enterprise, an individual business, a cooperative).

    Keyed by ``(zone, registration_id)``: the same id sent twice is one entity. ``registered_at``
    is ISO 8601 in Beijing time (``…+08:00``) and ``month`` its ``YYYY-MM``, the period the
    registration counts in.
    """

    zone: str
    registration_id: str
    registered_at: str  # ISO 8601, always with the +08:00 offset
    entity_type: str  # one of ENTITY_TYPES
    industry_code: str  # GB/T 4754 section letter + up to four digits, e.g. "I65"
    registered_capital: float | None  # CNY_10K (万元); None when the register gives none
    month: str  # YYYY-MM of registered_at
    batch_id: str = ""  # the producer envelope it came in
    sent_at: str = ""  # ISO 8601: when the producer sent it (for latency); "" when unknown

    @property
    def key(self) -> tuple[str, str]:
        return (self.zone, self.registration_id)

    def to_dict(self) -> dict[str, Any]:
        return _flat(self)
