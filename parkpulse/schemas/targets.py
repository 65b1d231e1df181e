"""Validation of plan targets (plan_targets.csv rows, or their JSON form), with reason codes."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from parkpulse.schemas.catalogue import Catalogue, Indicator
from parkpulse.schemas.errors import RejectedInput
from parkpulse.schemas.fields import (
    MAX_YEAR,
    MIN_YEAR,
    Fields,
    check_amount,
    check_growth,
    convert,
    lookup_ids,
    read_revision,
    read_unit,
    show,
    unit_factor,
)
from parkpulse.schemas.names import plan_id
from parkpulse.schemas.records import ACTIONS, TARGET_KINDS, PlanTarget

__all__ = ["validate_target"]

_BOOLEANS = {
    "true": True,
    "false": False,
    "1": True,
    "0": False,
    "yes": True,
    "no": False,
    "y": True,
    "n": False,
    "约束性": True,
    "約束性": True,
    "预期性": False,
    "預期性": False,
}


def _year(fields: Fields, field: str) -> int:
    year = fields.integer(field)
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise RejectedInput(
            "bad_value", f"{fields.name(field)} {year} is outside {MIN_YEAR}..{MAX_YEAR}"
        )
    return year


def _binding(fields: Fields) -> bool:
    value = fields.raw("binding")
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in _BOOLEANS:
        return _BOOLEANS[value.lower()]
    raise RejectedInput("malformed", f"{fields.name('binding')} {show(value)} is not true or false")


def validate_target(raw: Mapping[str, Any], catalogue: Catalogue) -> PlanTarget:
    """A plan_targets.csv row (or its JSON form) as a PlanTarget in the indicator's unit.

    A withdrawal (``action`` D) needs only plan, zone, indicator and revision.
    """
    fields = Fields(raw, "plan target", {})
    action = fields.choice("action", ACTIONS, default="I")
    plan = _plan_id(fields)
    revision = read_revision(fields, fields.raw("revision"))
    source = fields.text("source") or ""
    zone, indicator = lookup_ids(fields, fields.raw("zone"), fields.raw("indicator"), catalogue)
    if action == "D":
        return _withdrawal(plan, zone, indicator, source, revision)
    kind = fields.choice("kind", TARGET_KINDS)
    base_year = _year(fields, "base_year")
    target_year = _year(fields, "target_year")
    binding = _binding(fields)
    unit, base_value, target_value, growth = _amounts(fields, kind, indicator)
    if target_year <= base_year:
        raise RejectedInput(
            "bad_value",
            f"{fields.name('target_year')} {target_year} is not after "
            f"{fields.name('base_year')} {base_year}",
        )
    needs = _target_needs(kind, base_value, target_value, growth)
    if needs:
        raise RejectedInput("bad_value", f"a {kind} target needs {needs} ({plan}, {indicator.id})")
    return PlanTarget(
        plan=plan,
        zone=zone,
        indicator=indicator.id,
        kind=kind,
        base_year=base_year,
        base_value=base_value,
        target_year=target_year,
        target_value=target_value,
        annual_growth_pct=growth,
        binding=binding,
        unit=unit,
        source=source,
        revision=revision,
        action=action,
    )


def _plan_id(fields: Fields) -> str:
    """The plan id: printable, without the '|' that joins a key's parts, at most 100 chars."""
    written = fields.text("plan", required=True)
    assert written is not None
    plan = plan_id(written)
    if "|" in plan or not plan.isprintable() or len(plan) > 100:
        raise RejectedInput(
            "malformed",
            f"{fields.name('plan')} {show(plan)} must be printable, without '|', "
            "at most 100 characters",
        )
    return plan


def _withdrawal(
    plan: str, zone: str, indicator: Indicator, source: str, revision: int
) -> PlanTarget:
    """An ``action`` D record: the key and revision; every value a neutral placeholder."""
    return PlanTarget(
        plan=plan,
        zone=zone,
        indicator=indicator.id,
        kind="qualitative",
        base_year=0,
        base_value=None,
        target_year=0,
        target_value=None,
        annual_growth_pct=None,
        binding=False,
        unit=indicator.unit,
        source=source,
        revision=revision,
        action="D",
    )


def _amounts(
    fields: Fields, kind: str, indicator: Indicator
) -> tuple[str, float | None, float | None, float | None]:
    """(unit, base, target, annual growth %): a growth target's rates in PCT, any other's
    amounts converted from the unit written to the indicator's unit, each range-checked."""
    base = fields.number("base_value")
    target = fields.number("target_value")
    growth = convert(fields.number("annual_growth_pct"), Decimal(1))
    check_growth(fields, "annual_growth_pct", growth)
    unit, written = read_unit(fields, "unit", fields.raw("unit"))
    if kind == "growth":
        if unit != "PCT":
            raise RejectedInput(
                "unit_mismatch",
                f"{fields.name('unit')} {show(written)}: a growth target is a rate in PCT",
            )
        base_value, target_value = convert(base, Decimal(1)), convert(target, Decimal(1))
        check_growth(fields, "base_value", base_value)
        check_growth(fields, "target_value", target_value)
        return unit, base_value, target_value, growth
    factor = unit_factor(fields, "unit", unit, written, indicator)
    base_value, target_value = convert(base, factor), convert(target, factor)
    check_amount(fields, "base_value", base_value, indicator)
    check_amount(fields, "target_value", target_value, indicator)
    return indicator.unit, base_value, target_value, growth


def _target_needs(
    kind: str, base: float | None, target: float | None, growth: float | None
) -> str | None:
    """What a target of this kind lacks to be evaluated (the engine's inputs), or None."""
    if kind == "growth" and growth is None:
        return "annual_growth_pct"
    if kind == "level" and target is None and (base is None or growth is None):
        return "target_value, or base_value and annual_growth_pct"
    if kind == "share" and (base is None or target is None):
        return "base_value and target_value"
    if kind == "cumulative" and target is None:
        return "target_value"
    return None
