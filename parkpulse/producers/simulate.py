"""``parkpulse simulate``: deterministic synthetic data at national scale.

China has ~178 national high-tech zones. The simulator writes, under ``OUT``:

- ``reference/zones.csv`` — 178 simulated zones (``sim-001-hitech`` …); a worker accepts them
  with ``--reference-dir OUT/reference`` (``PARKPULSE_REFERENCE_DIR``).
- ``targets/plan_targets.csv`` — per zone, a 13th five-year plan (2015 → 2020, 6 indicators) and
  a 14th (2020 → 2025, 12 indicators): growth, level, share and cumulative targets, drawn
  around each zone's own trend so that some zones are ahead and some behind.
- ``feeds/observations-NNN-MMM.csv`` — ten years of monthly figures of 30 catalogue indicators
  (178 × 30 × 120 = 640,800 figures) in the bureau feed format (flows as YTD with the bureau's
  YOY_PCT, stocks and ratios as LEVEL), with a yearly trend, a seasonal shape per indicator and
  noise; about 1 % of figures are first printed provisional (OBS_STATUS P, a lower value) and
  revised a month later (ACTION R, REVISION 1), and one zone in seven reports budget revenue in
  万元 (CNY_10K). Files hold whole zones in zone, indicator, period order — a history backfill is
  exported series by series, and it lets the roll-up recompute each series once.
- ``registrations/registrations.jsonl`` (``--registrations N``) — batch envelopes of up to
  ``--batch-size`` registrations of one zone, one JSON object per line; or, with ``--publish``,
  the same envelopes sent to the broker at ``--rate`` events/s (stamped ``sent_at``).
- ``manifest.json`` — the parameters and what was written.

Everything is a function of ``--seed``: each series draws from a ``random.Random`` seeded with
its own name and the registrations from one seeded per block of 4096, so any prefix or range is
reproducible and nothing reads the clock (except ``sent_at`` when publishing).
"""

from __future__ import annotations

import asyncio
import bisect
import csv
import math
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from itertools import accumulate
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from parkpulse.config import Settings
from parkpulse.producers.demo import (
    FEED_COLUMNS,
    next_publication,
    published_at,
)
from parkpulse.schemas.periods import SHANGHAI
from parkpulse.schemas.records import ENTITY_TYPES
from parkpulse.schemas.wire import STRUCTURE, STRUCTURE_ID, registration_envelope
from parkpulse.sinks.tables import TARGET_FIELDS
from parkpulse.topics import REGISTRATIONS, client_options

SEED = "parkpulse-sim-v1"
VERSION = 2  # of what a seed produces; in the manifest, so cached output is not reused stale
ZONES = 178
FIRST_YEAR = 2016
YEARS = 10
BATCH_SIZE = 400  # registrations per envelope: amortises Faust's ~90 µs per message
PER_YEAR = 30_000_000  # new market entities nationwide per year (the simulated timeline)
REGISTRATIONS_START = datetime(2025, 1, 1, tzinfo=SHANGHAI)
REVISION_SHARE = 0.01
CNY_10K_EVERY = 7  # one zone in seven reports budget revenue in 万元
ZONES_PER_FILE = 18
BLOCK = 4096  # registrations drawn from one seeded generator


PROVINCES = (
    "Beijing", "Tianjin", "Hebei", "Shanxi", "Inner Mongolia", "Liaoning", "Jilin",
    "Heilongjiang", "Shanghai", "Jiangsu", "Zhejiang", "Anhui", "Fujian", "Jiangxi", "Shandong",
    "Henan", "Hubei", "Hunan", "Guangdong", "Guangxi", "Hainan", "Chongqing", "Sichuan",
    "Guizhou", "Yunnan", "Tibet", "Shaanxi", "Gansu", "Qinghai", "Ningxia", "Xinjiang",
)  # fmt: skip

# Month weights Jan..Dec of a flow (normalised after noise): slow start, strong year end.
_FLAT = (0.06, 0.05, 0.085, 0.08, 0.082, 0.095, 0.08, 0.08, 0.09, 0.08, 0.09, 0.118)
_FRONT = (0.12, 0.06, 0.08, 0.1, 0.09, 0.08, 0.09, 0.06, 0.07, 0.09, 0.06, 0.04)
_AUTUMN = (0.03, 0.02, 0.04, 0.05, 0.05, 0.06, 0.06, 0.2, 0.25, 0.08, 0.08, 0.08)
_WINTER_HIGH = (1.5, 1.35, 1.1, 0.9, 0.8, 0.7, 0.65, 0.65, 0.75, 0.95, 1.2, 1.45)
_SUMMER_HIGH = tuple(2 - x for x in _WINTER_HIGH)


@dataclass(frozen=True, slots=True)
class Spec:
    """How one indicator is simulated for a median zone."""

    kind: str  # flow (YTD) | stock (LEVEL) | ratio (LEVEL)
    unit: str
    base: float  # flow: the first year's total; stock/ratio: the first level
    growth: float  # flow/stock: yearly growth (fraction); ratio: drift per year (units)
    decimals: int
    profile: tuple[float, ...] = _FLAT  # flow: month weights; ratio: seasonal factors
    noise: float = 0.03
    scales: bool = True  # grows with the zone's size (ratios mostly do not)
    bounds: tuple[float, float] = (0.0, math.inf)


SPECS: dict[str, Spec] = {
    "gdp": Spec("flow", "CNY_100M", 400, 0.08, 2),
    "industrial_value_added": Spec("flow", "CNY_100M", 150, 0.07, 2),
    "budget_revenue": Spec("flow", "CNY_100M", 40, 0.06, 2, _FRONT),
    "fixed_asset_investment": Spec("flow", "CNY_100M", 200, 0.06, 2),
    "retail_sales": Spec("flow", "CNY_100M", 120, 0.07, 2),
    "new_high_end_talent": Spec("flow", "PERSON", 800, 0.05, 0),
    "import_export_total": Spec("flow", "CNY_100M", 250, 0.09, 2),
    "foreign_capital_used": Spec("flow", "USD_100M", 3, 0.04, 3),
    "new_urban_jobs": Spec("flow", "PERSON_10K", 2.5, 0.03, 3),
    "new_medical_institutions": Spec("flow", "COUNT", 6, 0.02, 0, noise=0.1),
    "new_schools": Spec("flow", "COUNT", 3, 0.02, 0, _AUTUMN, noise=0.1),
    "hitech_enterprise_applications": Spec("flow", "COUNT", 150, 0.08, 0, _AUTUMN),
    "online_sales": Spec("flow", "CNY_100M", 60, 0.15, 2),
    "tech_contract_turnover": Spec("flow", "CNY_100M", 30, 0.12, 2, noise=0.06),
    "hitech_enterprises": Spec("stock", "COUNT", 600, 0.12, 0, noise=0.005),
    "listed_companies": Spec("stock", "COUNT", 30, 0.05, 0, noise=0.005),
    "national_rd_institutions": Spec("stock", "COUNT", 10, 0.05, 0, noise=0.005),
    "new_rd_institutions": Spec("stock", "COUNT", 15, 0.1, 0, noise=0.005),
    "foreign_rd_institutions": Spec("stock", "COUNT", 5, 0.04, 0, noise=0.005),
    "pension_enrollees": Spec("stock", "PERSON_10K", 20, 0.03, 3, noise=0.003),
    "medical_insurance_enrollees": Spec("stock", "PERSON_10K", 30, 0.03, 3, noise=0.003),
    "culture_sports_centers": Spec("stock", "COUNT", 8, 0.03, 0, noise=0.005),
    "human_capital_index": Spec("stock", "CNY_10K", 500, 0.05, 1, noise=0.01),
    "hitech_output_share": Spec("ratio", "PCT", 60, 0.8, 2, scales=False, bounds=(1, 99)),
    "rd_intensity": Spec("ratio", "PCT", 4.0, 0.1, 2, scales=False, bounds=(0.1, 20)),
    "postgraduate_share": Spec("ratio", "PCT", 5.0, 0.3, 2, scales=False, bounds=(0.1, 60)),
    "good_air_days_ratio": Spec(
        "ratio", "PCT", 70, 0.5, 1, _SUMMER_HIGH, scales=False, bounds=(5, 100)
    ),
    "pm25": Spec("ratio", "UG_PER_M3", 50, -2.0, 0, _WINTER_HIGH, scales=False, bounds=(5, 300)),
    "forest_coverage": Spec("ratio", "PCT", 30, 0.2, 2, scales=False, bounds=(1, 90)),
    "tax_per_mu": Spec("ratio", "CNY_10K_PER_MU", 15, 0.8, 2, noise=0.02, bounds=(0.1, 500)),
}

# (plan, base year, target year, [(indicator, kind, binding)])
PLANS: tuple[tuple[str, int, int, tuple[tuple[str, str, bool], ...]], ...] = (
    (
        "13th-fyp",
        2015,
        2020,
        (
            ("gdp", "growth", False),
            ("budget_revenue", "level", True),
            ("import_export_total", "level", False),
            ("retail_sales", "level", False),
            ("hitech_enterprises", "level", False),
            ("rd_intensity", "share", False),
        ),
    ),
    (
        "14th-fyp",
        2020,
        2025,
        (
            ("gdp", "growth", False),
            ("fixed_asset_investment", "growth", False),
            ("budget_revenue", "level", True),
            ("retail_sales", "level", False),
            ("import_export_total", "level", False),
            ("new_urban_jobs", "level", False),
            ("hitech_enterprises", "level", False),
            ("listed_companies", "level", False),
            ("rd_intensity", "share", True),
            ("hitech_output_share", "share", False),
            ("pm25", "level", True),
            ("new_medical_institutions", "cumulative", False),
        ),
    ),
)

ENTITY_WEIGHTS = (0.30, 0.68, 0.02)  # enterprise, individual business, farmers' cooperative
INDUSTRIES = (
    ("F51", 14), ("F52", 16), ("I65", 10), ("I64", 4), ("M73", 4), ("M75", 6), ("L72", 8),
    ("C39", 3), ("C34", 2), ("E48", 3), ("H62", 8), ("O80", 6), ("A01", 3), ("K70", 2),
    ("R86", 2), ("G54", 5), ("P83", 2), ("Q84", 2),
)  # fmt: skip
_INDUSTRY_CUM = list(accumulate(w for _, w in INDUSTRIES))


@dataclass(frozen=True, slots=True)
class SimZone:
    id: str
    name_zh: str
    name_en: str
    city: str
    province: str
    size: float  # relative economic size (median 1)
    code: int  # six-digit administrative code, for registration ids


def sim_zones(count: int = ZONES, seed: str = SEED) -> list[SimZone]:
    """The simulated zones, sizes drawn log-normally (a few giants, many small zones)."""
    zones = []
    for i in range(1, count + 1):
        rng = random.Random(f"{seed}/zone/{i}")
        province = PROVINCES[(i - 1) % len(PROVINCES)]
        zones.append(
            SimZone(
                id=f"sim-{i:03d}-hitech",
                name_zh=f"模拟{i:03d}高新技术产业开发区",
                name_en=f"Simulated High-tech Zone {i:03d}",
                city=f"Sim City {i:03d}",
                province=province,
                size=round(math.exp(rng.gauss(0, 0.8)), 4),
                code=110000 + ((i - 1) % len(PROVINCES)) * 10000 + i,
            )
        )
    return zones


# -- figures ------------------------------------------------------------------------------


@dataclass
class Series:
    """One zone's simulated values of one indicator, by (year, month), from FIRST_YEAR − 1."""

    zone: SimZone
    indicator: str
    spec: Spec
    growth: float  # this zone's own trend
    values: dict[tuple[int, int], float] = field(default_factory=dict)  # YTD (flow) or level

    def year_total(self, year: int) -> float | None:
        return self.values.get((year, 12))


def _round(value: float, decimals: int) -> float:
    return round(value, decimals) if decimals else float(round(value))


def simulate_series(
    zone: SimZone, indicator: str, first_year: int, years: int, seed: str = SEED
) -> Series:
    """Values from ``first_year − 1`` (the plan's base year, never published) on."""
    spec = SPECS[indicator]
    rng = random.Random(f"{seed}/series/{zone.id}/{indicator}")
    growth = spec.growth + (rng.gauss(0, 0.03) if spec.kind != "ratio" else rng.gauss(0, 0.2))
    size = zone.size if spec.scales else 1.0
    series = Series(zone, indicator, spec, growth)
    start = first_year - 1
    if spec.kind == "flow":
        for year in range(start, start + years + 1):
            total = spec.base * size * (1 + growth) ** (year - start)
            total *= 1 + rng.gauss(0, spec.noise)
            weights = [w * (1 + rng.gauss(0, 0.05)) for w in spec.profile]
            cumulative = list(accumulate(max(w, 0.001) for w in weights))
            for month in range(1, 13):
                ytd = total * cumulative[month - 1] / cumulative[-1]
                series.values[(year, month)] = max(_round(ytd, spec.decimals), 0.0)
            for month in range(2, 13):  # YTD never falls (rounding could make it)
                prior = series.values[(year, month - 1)]
                series.values[(year, month)] = max(series.values[(year, month)], prior)
        return series
    level = spec.base * size * (1 + rng.gauss(0, 0.15))
    low, high = spec.bounds
    for year in range(start, start + years + 1):
        for month in range(1, 13):
            if spec.kind == "stock":
                level *= (1 + growth) ** (1 / 12) * (1 + rng.gauss(0, spec.noise))
                value = level
            else:
                level += growth / 12
                value = level * spec.profile[month - 1] * (1 + rng.gauss(0, spec.noise))
            series.values[(year, month)] = _round(min(max(value, low), high), spec.decimals)
    return series


def _text(value: float, decimals: int) -> str:
    return f"{value:.{decimals}f}"


def feed_rows(series: Series, first_year: int, years: int, seed: str = SEED) -> Iterator[list[str]]:
    """The series' published rows, in period order; a revised figure follows its first print."""
    spec, zone = series.spec, series.zone
    rng = random.Random(f"{seed}/revisions/{zone.id}/{series.indicator}")
    basis = "YTD" if spec.kind == "flow" else "LEVEL"
    unit, factor, decimals = spec.unit, 1.0, spec.decimals
    if series.indicator == "budget_revenue" and int(zone.id[4:7]) % CNY_10K_EVERY == 1:
        unit, factor, decimals = "CNY_10K", 1e4, 0
    for year in range(first_year, first_year + years):
        for month in range(1, 13):
            value = series.values[(year, month)]
            yoy = ""
            prior = series.values.get((year - 1, month))
            if spec.kind == "flow" and prior:
                yoy = f"{(value / prior - 1) * 100:.1f}"
            period, stamp = _publication(year, month)
            text = _text(value * factor, decimals)
            if rng.random() < REVISION_SHARE:
                first = _text(value * factor * 0.98, decimals)
                row = (zone.id, series.indicator, period, basis, first, unit, yoy)
                yield _feed_row("I", *row, "P", 0, stamp)
                row = (zone.id, series.indicator, period, basis, text, unit, yoy)
                yield _feed_row("R", *row, "A", 1, next_publication(stamp))
            else:
                row = (zone.id, series.indicator, period, basis, text, unit, yoy)
                yield _feed_row("I", *row, "A", 0, stamp)


@cache
def _publication(year: int, month: int) -> tuple[str, str]:
    """(period, PUBLISHED_AT): the 15th of the month after, 09:00 Beijing time."""
    period = f"{year:04d}-{month:02d}"
    return period, published_at(period)


def _feed_row(
    action: str,
    zone: str,
    indicator: str,
    period: str,
    basis: str,
    value: str,
    unit: str,
    yoy: str,
    status: str,
    revision: int,
    stamp: str,
) -> list[str]:
    return [
        *(STRUCTURE, STRUCTURE_ID, action, zone, indicator, period, basis, value, unit, yoy),
        *(status, str(revision), stamp),
    ]


# -- plan targets -------------------------------------------------------------------------


def plan_targets(
    zone: SimZone, series: dict[str, Series], seed: str = SEED
) -> list[dict[str, str]]:
    """The zone's 13th and 14th five-year plan rows (plan_targets.csv columns)."""
    rows = []
    for plan, base_year, target_year, items in PLANS:
        for indicator, kind, binding in items:
            s = series.get(indicator)
            if s is None:
                continue
            rng = random.Random(f"{seed}/target/{zone.id}/{plan}/{indicator}")
            # Ambition around the zone's own trend: some plans are beaten, some missed.
            stretch = rng.gauss(0.01, 0.03)
            row = {
                "plan": plan,
                "zone": zone.id,
                "indicator": indicator,
                "kind": kind,
                "base_year": str(base_year),
                "base_value": "",
                "target_year": str(target_year),
                "target_value": "",
                "annual_growth_pct": "",
                "binding": "true" if binding else "false",
                "unit": s.spec.unit,
                "source": f"simulated {plan}",
            }
            base = (
                s.year_total(base_year) if s.spec.kind == "flow" else s.values.get((base_year, 12))
            )
            if base is None:
                continue
            row.update(_planned(kind, s, base, stretch, base_year, target_year))
            rows.append(row)
    return rows


def _planned(
    kind: str, s: Series, base: float, stretch: float, base_year: int, target_year: int
) -> dict[str, str]:
    """The plan_targets.csv fields a target of ``kind`` sets from the zone's own series (its base
    year's figure, its trend) and the plan's ``stretch`` of ambition."""
    span = target_year - base_year
    if kind == "growth":
        return {"unit": "PCT", "annual_growth_pct": f"{(s.growth + stretch) * 100:.1f}"}
    if kind == "cumulative":
        total = sum(s.year_total(year) or 0.0 for year in range(base_year + 1, target_year + 1))
        return {"target_value": _text(total * (1 + stretch * 3), 0)}
    if kind == "share":
        low, high = s.spec.bounds
        target = min(max(base + (s.growth + stretch * 10) * span, low), high)
        return {"base_value": _text(base, 2), "target_value": _text(target, 2)}
    ratio = (1 + s.growth + stretch) ** span
    if s.spec.kind == "ratio":  # a lower-is-better level (pm25): ratio < 1
        ratio = (1 + s.growth / base + stretch) ** span
    whole = s.spec.unit in ("COUNT", "PERSON")  # you cannot plan 41.5 enterprises
    decimals = 0 if whole else max(s.spec.decimals, 2)
    return {
        "base_value": _text(base, decimals),
        "target_value": _text(max(base * ratio, 0.01), decimals),
    }


# -- registrations ------------------------------------------------------------------------


def _scramble(i: int, seed: str) -> int:
    """A bijection of 0..2^64−1: ids look random but never collide."""
    salt = int.from_bytes(seed.encode()[:8].ljust(8, b"\0"), "little")
    return (i * 0x9E3779B97F4A7C15 + salt) & 0xFFFFFFFFFFFFFFFF


class RegistrationStream:
    """The simulated national stream of registrations: registration ``i`` is always the same.

    Registrations are spaced evenly along a timeline of ``per_year`` a year from ``start``;
    zones are drawn by size, entity types and industries by national shares.
    """

    def __init__(
        self,
        zones: Sequence[SimZone],
        *,
        seed: str = SEED,
        start: datetime = REGISTRATIONS_START,
        per_year: int = PER_YEAR,
    ) -> None:
        self.zones = list(zones)
        self.seed = seed
        self.start = start
        self.spacing = 365 * 86400 / per_year
        self._zone_cum = list(accumulate(z.size for z in self.zones))
        self._type_cum = list(accumulate(ENTITY_WEIGHTS))

    def __call__(self, first: int, count: int) -> Iterator[dict[str, Any]]:
        """Registrations ``first`` .. ``first + count − 1``."""
        i = first
        end = first + count
        while i < end:
            block = i // BLOCK
            rng = random.Random(f"{self.seed}/registrations/{block}")
            skip = i - block * BLOCK
            for _ in range(skip * 5):  # five draws per registration
                rng.random()
            stop = min(end, (block + 1) * BLOCK)
            while i < stop:
                yield self._one(i, rng)
                i += 1

    def _one(self, i: int, rng: random.Random) -> dict[str, Any]:
        r_zone, r_type, r_ind, r_cap, r_time = (rng.random() for _ in range(5))
        zone = self.zones[
            min(bisect.bisect(self._zone_cum, r_zone * self._zone_cum[-1]), len(self.zones) - 1)
        ]
        kind = ENTITY_TYPES[min(bisect.bisect(self._type_cum, r_type), len(ENTITY_TYPES) - 1)]
        industry = INDUSTRIES[bisect.bisect(_INDUSTRY_CUM, r_ind * _INDUSTRY_CUM[-1])][0]
        if kind == "enterprise":
            capital: float | None = round(math.exp(4 + 2 * (r_cap - 0.5) * 3), 2)
        elif kind == "farmers_cooperative":
            capital = round(10 + 190 * r_cap, 2)
        else:
            capital = round(1 + 49 * r_cap, 2) if r_cap < 0.5 else None
        when = self.start + timedelta(seconds=(i + r_time) * self.spacing)
        return {
            "zone": zone.id,
            "registration_id": f"91{_scramble(i, self.seed):016X}",
            "registered_at": when.isoformat(timespec="seconds"),
            "entity_type": kind,
            "industry_code": industry,
            "registered_capital": capital,
        }


def envelopes(
    records: Iterator[dict[str, Any]], batch_size: int = BATCH_SIZE
) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """(zone, records) envelopes of up to ``batch_size`` registrations of one zone."""
    pending: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        bucket = pending.setdefault(record["zone"], [])
        bucket.append(record)
        if len(bucket) >= batch_size:
            yield record["zone"], pending.pop(record["zone"])
    yield from pending.items()


@dataclass
class PublishedRegistrations:
    registrations: int = 0
    messages: int = 0
    bytes: int = 0
    seconds: float = 0.0
    first_sent: datetime | None = None

    @property
    def rate(self) -> float:
        return self.registrations / self.seconds if self.seconds else 0.0


async def publish_registrations(
    settings: Settings,
    stream: RegistrationStream,
    count: int,
    *,
    first: int = 0,
    rate: float = 0.0,
    batch_size: int = BATCH_SIZE,
    flush_every: float = 0.25,
    on_progress: Callable[[int], None] | None = None,
) -> PublishedRegistrations:
    """Send registrations ``first..first+count`` as envelopes, at ``rate`` events/s (0: at once).

    At a set rate each zone's envelope leaves when full or ``flush_every`` seconds old, as a
    live producer would; ``sent_at`` is stamped as each envelope is handed to the client.
    """
    producer = AIOKafkaProducer(
        **client_options(settings), linger_ms=5, max_batch_size=1 << 20, acks="all"
    )
    await producer.start()
    out = PublishedRegistrations()
    futures: list[asyncio.Future[Any]] = []

    async def send(zone: str, records: list[dict[str, Any]]) -> None:
        now = datetime.now(UTC)
        out.first_sent = out.first_sent or now
        value = orjson.dumps(registration_envelope(records, sent_at=now.isoformat()))
        futures.append(await producer.send(REGISTRATIONS, value=value, key=zone.encode()))
        out.messages += 1
        out.bytes += len(value)
        out.registrations += len(records)
        if on_progress is not None:
            on_progress(len(records))
        if len(futures) >= 512:
            await asyncio.gather(*futures)
            futures.clear()

    started = time.monotonic()
    try:
        if rate <= 0:
            for zone, records in envelopes(stream(first, count), batch_size):
                await send(zone, records)
        else:
            await _paced(stream, first, count, rate, batch_size, flush_every, send)
        await asyncio.gather(*futures)
        await producer.flush()
    finally:
        await producer.stop()
    out.seconds = time.monotonic() - started
    return out


async def _paced(
    stream: RegistrationStream,
    first: int,
    count: int,
    rate: float,
    batch_size: int,
    flush_every: float,
    send: Callable[[str, list[dict[str, Any]]], Any],
) -> None:
    source = stream(first, count)
    pending: dict[str, tuple[float, list[dict[str, Any]]]] = {}
    made = 0
    started = time.monotonic()
    while made < count or pending:
        now = time.monotonic()
        due = min(count, int((now - started) * rate))
        for record in (next(source) for _ in range(due - made)):
            bucket = pending.setdefault(record["zone"], (now, []))[1]
            bucket.append(record)
            if len(bucket) >= batch_size:
                await send(record["zone"], pending.pop(record["zone"])[1])
        made = max(made, due)
        for zone in [z for z, (since, _) in pending.items() if now - since >= flush_every]:
            await send(zone, pending.pop(zone)[1])
        if made >= count:
            for zone in list(pending):
                await send(zone, pending.pop(zone)[1])
        await asyncio.sleep(0.005)


# -- writing it all -----------------------------------------------------------------------


@dataclass
class Simulated:
    """What ``simulate`` wrote."""

    out: Path
    zones: int = 0
    indicators: int = 0
    observations: int = 0  # figures (first prints)
    revisions: int = 0
    targets: int = 0
    registrations: int = 0
    envelopes: int = 0
    files: list[Path] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def reference_dir(self) -> Path:
        return self.out / "reference"

    @property
    def targets_file(self) -> Path:
        return self.out / "targets" / "plan_targets.csv"

    @property
    def feed_files(self) -> list[Path]:
        return sorted((self.out / "feeds").glob("observations-*.csv"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "zones": self.zones,
            "indicators": self.indicators,
            "observations": self.observations,
            "revisions": self.revisions,
            "feed_rows": self.observations + self.revisions,
            "targets": self.targets,
            "registrations": self.registrations,
            "envelopes": self.envelopes,
            "files": [str(p.relative_to(self.out)) for p in self.files],
        }


def write_zones(path: Path, zones: Sequence[SimZone]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(("id", "name_zh", "name_en", "city", "province", "level", "seeds"))
        for z in zones:
            writer.writerow((z.id, z.name_zh, z.name_en, z.city, z.province, "national", ""))


def simulate(
    out: Path,
    *,
    zones: int = ZONES,
    first_year: int = FIRST_YEAR,
    years: int = YEARS,
    seed: str = SEED,
    registrations: int = 0,
    batch_size: int = BATCH_SIZE,
    feeds: bool = True,
    on_zone: Callable[[SimZone], None] | None = None,
    on_registrations: Callable[[int], None] | None = None,
) -> Simulated:
    """Write the reference zones, plan targets, feeds and (optionally) registrations."""
    started = time.monotonic()
    result = Simulated(out)
    zone_list = sim_zones(zones, seed)
    write_zones(result.reference_dir / "zones.csv", zone_list)
    result.files.append(result.reference_dir / "zones.csv")
    result.zones, result.indicators = len(zone_list), len(SPECS)
    if feeds:
        _write_feeds(result, zone_list, first_year, years, seed, on_zone)
    if registrations:
        path = out / "registrations" / "registrations.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        stream = RegistrationStream(zone_list, seed=seed)
        with path.open("wb") as fh:
            for _, records in envelopes(stream(0, registrations), batch_size):
                fh.write(orjson.dumps(registration_envelope(records)) + b"\n")
                result.envelopes += 1
                result.registrations += len(records)
                if on_registrations is not None:
                    on_registrations(len(records))
        result.files.append(path)
    result.seconds = time.monotonic() - started
    manifest = {
        "version": VERSION,
        "seed": seed,
        "first_year": first_year,
        "years": years,
        "batch_size": batch_size,
        **result.to_dict(),
    }
    (out / "manifest.json").write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    return result


def _write_feeds(
    result: Simulated,
    zone_list: Sequence[SimZone],
    first_year: int,
    years: int,
    seed: str,
    on_zone: Callable[[SimZone], None] | None,
) -> None:
    out = result.out
    (out / "feeds").mkdir(parents=True, exist_ok=True)
    for old in result.feed_files:
        old.unlink()
    result.targets_file.parent.mkdir(parents=True, exist_ok=True)
    with result.targets_file.open("w", encoding="utf-8", newline="") as targets_fh:
        targets = csv.DictWriter(targets_fh, fieldnames=TARGET_FIELDS)
        targets.writeheader()
        for start in range(0, len(zone_list), ZONES_PER_FILE):
            chunk = zone_list[start : start + ZONES_PER_FILE]
            path = out / "feeds" / f"observations-{start + 1:03d}-{start + len(chunk):03d}.csv"
            with path.open("w", encoding="utf-8", newline="") as fh:
                writer = csv.writer(fh)
                writer.writerow(FEED_COLUMNS)
                for zone in chunk:
                    series = {
                        ind: simulate_series(zone, ind, first_year, years, seed) for ind in SPECS
                    }
                    for s in series.values():
                        for row in feed_rows(s, first_year, years, seed):
                            writer.writerow(row)
                            if row[2] == "R":
                                result.revisions += 1
                            else:
                                result.observations += 1
                    rows = plan_targets(zone, series, seed)
                    targets.writerows(rows)
                    result.targets += len(rows)
                    if on_zone is not None:
                        on_zone(zone)
            result.files.append(path)
    result.files.append(result.targets_file)


def run_simulate(
    *,
    out: Path,
    zones: int,
    first_year: int,
    years: int,
    seed: str,
    registrations: int,
    batch_size: int,
    feeds: bool,
    publish_to: Settings | None,
    rate: float,
    progress: bool,
    console: Console,
) -> int:
    """The ``simulate`` verb: write (and optionally publish) with a progress bar, then a summary."""
    bar = _progress_bar(progress)
    written_regs = 0 if publish_to is not None else registrations
    with bar:
        zone_task = bar.add_task("zones: figures and targets", total=zones if feeds else 0)
        reg_task = bar.add_task("registrations", total=registrations or 0)
        result = simulate(
            out,
            zones=zones,
            first_year=first_year,
            years=years,
            seed=seed,
            registrations=written_regs,
            batch_size=batch_size,
            feeds=feeds,
            on_zone=lambda _: bar.advance(zone_task),
            on_registrations=lambda n: bar.advance(reg_task, n),
        )
        sent = None
        if publish_to is not None and registrations:
            stream = RegistrationStream(sim_zones(zones, seed), seed=seed)
            sent = asyncio.run(
                publish_registrations(
                    publish_to,
                    stream,
                    registrations,
                    rate=rate,
                    batch_size=batch_size,
                    on_progress=lambda n: bar.advance(reg_task, n),
                )
            )
    console.print(summary_table(result, sent, publish_to))
    _print_next_steps(console, result, out, feeds)
    return 0


def _progress_bar(enabled: bool) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not enabled,
    )


def _print_next_steps(console: Console, result: Simulated, out: Path, feeds: bool) -> None:
    """The commands that load what was written into a running parkpulse."""
    reference = result.reference_dir
    console.print(
        "next: [bold]parkpulse run --reference-dir "
        f"{reference}[/] (or PARKPULSE_REFERENCE_DIR={reference}), then"
    )
    if feeds:
        console.print(f"      parkpulse targets {result.targets_file}")
        console.print(f"      parkpulse produce {out / 'feeds'}/observations-*.csv")


def summary_table(
    result: Simulated, sent: PublishedRegistrations | None, publish_to: Settings | None
) -> Table:
    """What was simulated, in numbers people can check."""
    table = Table(title=f"parkpulse simulate → {result.out}", show_header=False)
    table.add_column("what")
    table.add_column("how many", justify="right")
    table.add_row("zones (reference/zones.csv)", f"{result.zones:,}")
    if result.observations:
        table.add_row("indicators", f"{result.indicators:,}")
        table.add_row("monthly figures (feeds/*.csv)", f"{result.observations:,}")
        table.add_row("  of which revised later (ACTION R)", f"{result.revisions:,}")
        table.add_row("plan targets (targets/plan_targets.csv)", f"{result.targets:,}")
    if result.registrations:
        table.add_row("registrations (registrations/*.jsonl)", f"{result.registrations:,}")
        table.add_row("  in envelopes", f"{result.envelopes:,}")
    if sent is not None and publish_to is not None:
        table.add_row(f"registrations sent to {publish_to.broker_url}", f"{sent.registrations:,}")
        table.add_row("  in envelopes", f"{sent.messages:,}")
        table.add_row("  at events/s", f"{sent.rate:,.0f}")
    table.add_row("seconds", f"{result.seconds:.1f}")
    return table
