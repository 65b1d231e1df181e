"""The wire forms: the JSON each record travels in, and the envelopes that batch them.

Producers encode here and the worker decodes with validation (schemas.validation,
schemas.registration, schemas.envelope), so what a validator reads back is exactly what an
encoder here wrote: ``validate_observation(observation_to_wire(obs)) == obs``, and likewise for
targets and registrations. Nothing here validates; nothing elsewhere encodes these records.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

import orjson

from parkpulse.schemas.records import IndicatorStatus, Observation, PlanTarget, Registration

__all__ = [
    "COLUMNS_FIELD",
    "ENVELOPE_FIELD",
    "OBSERVATION_WIRE_FIELDS",
    "REGISTRATIONS_FIELD",
    "STRUCTURE",
    "STRUCTURE_ID",
    "batch_id_of",
    "observation_columns",
    "observation_envelope",
    "observation_to_wire",
    "registration_envelope",
    "registration_to_wire",
    "shared_columns",
    "status_wire",
    "target_to_wire",
]

# The first two columns of an SDMX-CSV feed row, and of its JSON form.
STRUCTURE = "dataflow"
STRUCTURE_ID = "PARKPULSE:ZONE_MONTHLY(1.0)"

ENVELOPE_FIELD = "observations"  # the list in a batch envelope of the observations topic
COLUMNS_FIELD = "observation_columns"  # the columns of a column envelope of that topic
REGISTRATIONS_FIELD = "registrations"  # the list in a registrations envelope


def observation_to_wire(obs: Observation) -> dict[str, Any]:
    """The JSON Lines form (lower-case names) that validate_observation reads back as ``obs``."""
    return {
        "structure": STRUCTURE,
        "structure_id": STRUCTURE_ID,
        "action": obs.action,
        "zone": obs.zone,
        "indicator": obs.indicator,
        "time_period": obs.period,
        "basis": obs.basis,
        "obs_value": obs.value,
        "unit_measure": obs.unit,
        "yoy_pct": obs.yoy_pct,
        "obs_status": obs.obs_status,
        "revision": obs.revision,
        "published_at": obs.published_at,
        "source": obs.source,
    }


# The fields of a figure as a producer sends it, in the order the JSON has them: the record
# (observation_to_wire), then where it was read (its file and line).
OBSERVATION_WIRE_FIELDS = (
    "structure",
    "structure_id",
    "action",
    "zone",
    "indicator",
    "time_period",
    "basis",
    "obs_value",
    "unit_measure",
    "yoy_pct",
    "obs_status",
    "revision",
    "published_at",
    "source",
    "origin",
    "line",
)


def target_to_wire(target: PlanTarget) -> dict[str, Any]:
    """The JSON form (plan_targets.csv names + revision, action) validate_target reads back."""
    return {
        "plan": target.plan,
        "zone": target.zone,
        "indicator": target.indicator,
        "kind": target.kind,
        "base_year": target.base_year,
        "base_value": target.base_value,
        "target_year": target.target_year,
        "target_value": target.target_value,
        "annual_growth_pct": target.annual_growth_pct,
        "binding": target.binding,
        "unit": target.unit,
        "source": target.source,
        "revision": target.revision,
        "action": target.action,
    }


def registration_to_wire(reg: Registration) -> dict[str, Any]:
    """The JSON form validate_registration reads back as ``reg`` (without its envelope)."""
    return {
        "zone": reg.zone,
        "registration_id": reg.registration_id,
        "registered_at": reg.registered_at,
        "entity_type": reg.entity_type,
        "industry_code": reg.industry_code,
        "registered_capital": reg.registered_capital,
    }


def observation_envelope(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The envelope a producer sends for ``records`` (figures of one zone, the message key)."""
    return {ENVELOPE_FIELD: records}


def observation_columns(columns: dict[str, Any], count: int) -> dict[str, Any]:
    """The column envelope a producer sends for ``count`` figures of one zone: per wire field, a
    list of one value per figure, or the one value all of them share (``shared_columns``);
    schemas/envelope.py reads it back as the records."""
    return {COLUMNS_FIELD: shared_columns(columns, count)}


def shared_columns(columns: dict[str, Any], count: int) -> dict[str, Any]:
    """``columns`` with each list of one repeated value (of one type) as that value; one list
    is kept when all would go, so they still say how many figures they hold."""
    out = {name: _shared_value(column) for name, column in columns.items()}
    if count != 1 and out and all(type(v) is not list for v in out.values()):
        name = next(iter(columns))
        out[name] = [out[name]] * count
    return out


def _shared_value(column: Any) -> Any:
    if type(column) is not list or not column:
        return column
    first = column[0]
    if column[-1] != first or type(first) in (list, dict) or column.count(first) != len(column):
        return column  # (the last value first: most columns that vary differ there)
    if type(first) is not str and len(set(map(type, column))) > 1:
        return column  # 1 == 1.0 == True, but JSON tells them apart (a text equals only texts)
    if type(first) is float and len(set(map(float.hex, column))) > 1:
        return column  # 0.0 and -0.0
    return first


def batch_id_of(registration_ids: Iterable[str]) -> str:
    """A deterministic batch id: the same registrations re-sent make the same batch."""
    digest = hashlib.sha256("\n".join(registration_ids).encode()).hexdigest()
    return digest[:32]


def registration_envelope(
    records: list[dict[str, Any]], sent_at: str | None = None
) -> dict[str, Any]:
    """The envelope a producer sends for ``records`` (all of one zone, the message key)."""
    out: dict[str, Any] = {"batch_id": batch_id_of(r["registration_id"] for r in records)}
    if sent_at is not None:
        out["sent_at"] = sent_at
    out[REGISTRATIONS_FIELD] = records
    return out


def status_wire(row: IndicatorStatus, deleted: bool = False) -> bytes:
    """The ``parkpulse.status`` message value: the status row's fields in order, as ``to_dict``
    has them, then whether it was removed (tests/test_status_wire.py holds the two together)."""
    # Spelled out: a backfill sends a status row per figure, and orjson reads a slotted
    # dataclass field by field at ~4 µs a row, a dict display and its dumps at ~1.7 µs.
    return orjson.dumps(
        {
            "zone": row.zone,
            "indicator": row.indicator,
            "plan": row.plan,
            "period": row.period,
            "kind": row.kind,
            "status": row.status,
            "actual": row.actual,
            "expected": row.expected,
            "annual_target": row.annual_target,
            "attainment": row.attainment,
            "gap_pp": row.gap_pp,
            "projected_year_end": row.projected_year_end,
            "required_growth_pct": row.required_growth_pct,
            "seasonal_source": row.seasonal_source,
            "binding": row.binding,
            "best_rest_growth_pct": row.best_rest_growth_pct,
            "out_of_reach": row.out_of_reach,
            "suspect": row.suspect,
            "deleted": deleted,
        }
    )
