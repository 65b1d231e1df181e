"""The reference data shipped with parkpulse: zones, the indicator catalogue, plan targets."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from parkpulse.schemas.records import PlanTarget

UNITS = (
    "CNY_100M",
    "CNY_10K",
    "USD_100M",
    "USD_10K",
    "COUNT",
    "PCT",
    "PERSON",
    "PERSON_10K",
    "CNY_10K_PER_MU",
    "UG_PER_M3",
)

# (from_unit, to_unit) -> factor; a unit converts only along these edges (or to itself).
UNIT_FACTORS: dict[tuple[str, str], float] = {
    ("CNY_10K", "CNY_100M"): 1e-4,
    ("CNY_100M", "CNY_10K"): 1e4,
    ("USD_10K", "USD_100M"): 1e-4,
    ("USD_100M", "USD_10K"): 1e4,
    ("PERSON", "PERSON_10K"): 1e-4,
    ("PERSON_10K", "PERSON"): 1e4,
}

INDICATOR_KINDS = ("flow", "stock", "ratio")


@dataclass(frozen=True, slots=True)
class Zone:
    id: str
    name_zh: str
    name_en: str
    city: str
    province: str


@dataclass(frozen=True, slots=True)
class Indicator:
    id: str
    name_zh: str
    name_en: str
    unit: str
    kind: str  # flow | stock | ratio
    higher_is_better: bool
    domain: str


@dataclass(frozen=True, slots=True)
class Catalogue:
    """Zones and indicators by id; what validation and the engine look things up in."""

    zones: dict[str, Zone]
    indicators: dict[str, Indicator]
    # (kind, id, alias): other names of a zone or indicator; schemas.names resolves them
    aliases: tuple[tuple[str, str, str], ...] = ()
    # What is worked out once per catalogue (validation's lookups), by its user's name.
    derived: dict[str, Any] = field(default_factory=dict, init=False, compare=False, repr=False)

    @classmethod
    def from_rows(
        cls,
        zones: Iterable[Zone],
        indicators: Iterable[Indicator],
        aliases: Iterable[tuple[str, str, str]] = (),
    ) -> Catalogue:
        return cls({z.id: z for z in zones}, {i.id: i for i in indicators}, tuple(aliases))


def convert_unit(value: float, from_unit: str, to_unit: str) -> float | None:
    """``value`` expressed in ``to_unit``, or None when the units do not convert."""
    if from_unit == to_unit:
        return value
    factor = UNIT_FACTORS.get((from_unit, to_unit))
    return None if factor is None else value * factor


def _read_reference(name: str) -> list[dict[str, str]]:
    text = resources.files("parkpulse.reference").joinpath(name).read_text(encoding="utf-8")
    return list(csv.DictReader(io.StringIO(text)))


def _opt_float(text: str) -> float | None:
    return float(text) if text.strip() else None


def _zones(rows: Iterable[dict[str, str]]) -> list[Zone]:
    return [Zone(r["id"], r["name_zh"], r["name_en"], r["city"], r["province"]) for r in rows]


def _indicators(rows: Iterable[dict[str, str]]) -> list[Indicator]:
    return [
        Indicator(
            r["id"],
            r["name_zh"],
            r["name_en"],
            r["unit"],
            r["kind"],
            r["higher_is_better"].strip().lower() == "true",
            r["domain"],
        )
        for r in rows
    ]


def _read_extra(folder: Path, name: str) -> list[dict[str, str]]:
    path = folder / name
    if not path.is_file():
        return []
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


@cache
def load_catalogue(reference_dir: Path | None = None) -> Catalogue:
    """The bundled catalogue (nine zones from the seeds, the indicators of the design card).

    ``reference_dir`` may hold a ``zones.csv``, an ``indicators.csv`` and an ``aliases.csv``
    (same columns) whose rows are added to the bundled ones, e.g. the 178 zones of
    ``parkpulse simulate``.
    """
    zones = _zones(_read_reference("zones.csv"))
    indicators = _indicators(_read_reference("indicators.csv"))
    aliases = _aliases(_read_reference("aliases.csv"))
    if reference_dir is not None:
        zones += _zones(_read_extra(reference_dir, "zones.csv"))
        indicators += _indicators(_read_extra(reference_dir, "indicators.csv"))
        aliases += _aliases(_read_extra(reference_dir, "aliases.csv"))
    return Catalogue.from_rows(zones, indicators, aliases)


def _aliases(rows: Iterable[dict[str, str]]) -> list[tuple[str, str, str]]:
    return [(r["kind"].strip(), r["id"].strip(), r["alias"].strip()) for r in rows]


def parse_target_row(row: dict[str, str]) -> PlanTarget:
    """A ``plan_targets.csv`` row as a PlanTarget (raises ValueError/KeyError when malformed)."""
    return PlanTarget(
        plan=row["plan"].strip(),
        zone=row["zone"].strip(),
        indicator=row["indicator"].strip(),
        kind=row["kind"].strip(),
        base_year=int(row["base_year"]),
        base_value=_opt_float(row.get("base_value") or ""),
        target_year=int(row["target_year"]),
        target_value=_opt_float(row.get("target_value") or ""),
        annual_growth_pct=_opt_float(row.get("annual_growth_pct") or ""),
        binding=(row.get("binding") or "").strip().lower() == "true",
        unit=row.get("unit", "").strip(),
        source=(row.get("source") or "").strip(),
        revision=int(row.get("revision") or 0),
        action=(row.get("action") or "I").strip() or "I",
    )


@cache
def load_plan_targets() -> tuple[PlanTarget, ...]:
    """The bundled plan targets (Jinan 14th FYP 表2 and Jining's 2021 annual tasks)."""
    return tuple(parse_target_row(r) for r in _read_reference("plan_targets.csv"))


def reference_observation_rows() -> list[dict[str, str]]:
    """The figures the source documents give (``observations.csv``), as raw rows."""
    return _read_reference("observations.csv")
