"""Per-indicator gauges as a function of the durable status, built at refresh, read at scrape.

A gauge set by whoever last processed an event goes silent after a restart (nothing was
processed yet) and lies after a rebalance (the zones moved to another worker). Here the worker
hands over the latest stored status of the zones it owns (``StatusGauges.show``) and a scrape
yields exactly those rows, as prometheus client_python's custom collectors do (``collect()``
yielding ``GaugeMetricFamily``). The families are built once per refresh, not per scrape.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter, itemgetter
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from parkpulse.schemas.periods import SHANGHAI, evaluated_month
from parkpulse.schemas.records import STATUSES
from parkpulse.sinks.exposition import render_gauges

PUBLICATION_DAY = 20  # a month's figure is due by the 20th of the month after
KEY_LABELS = ("zone", "indicator", "plan")


def month_start(year: int, month: int) -> float:
    """Unix time of 00:00 Asia/Shanghai on the first day of the month."""
    return datetime(year, month, 1, tzinfo=SHANGHAI).timestamp()


def feed_deadline(year: int, month: int) -> float:
    """When the figure after ``year-month`` is overdue: 00:00 Asia/Shanghai on the 20th of the
    month after the next one (a March figure evaluated means April's is due by 20 May)."""
    index = year * 12 + (month - 1) + 2
    return datetime(index // 12, index % 12 + 1, PUBLICATION_DAY, tzinfo=SHANGHAI).timestamp()


@dataclass(slots=True)
class _Families:
    metrics: tuple[Metric, ...]
    keys: int
    text: bytes | None = None  # rendered on the first scrape that needs it


# The gauges whose value is a status row's field as it stands (absent when None), in the order
# they are exported: (row field, metric name, help).
_VALUE_GAUGES = (
    (
        "attainment",
        "parkpulse_indicator_attainment_ratio",
        "Actual / expected for the latest evaluated month (expected / actual when lower is"
        " better; growth targets: (1 + actual%) / (1 + target%)). Absent when unknown.",
    ),
    (
        "gap_pp",
        "parkpulse_indicator_gap_pp",
        "Gap to plan in percentage points for the latest evaluated month. Absent when unknown.",
    ),
    # What an alert message shows beside the attainment: actual vs expected (in the indicator's
    # unit; a growth target's in %) and the growth the rest of the year needs.
    (
        "actual",
        "parkpulse_indicator_actual",
        "Actual for the latest evaluated month (indicator unit; growth targets: YTD growth %).",
    ),
    (
        "expected",
        "parkpulse_indicator_expected",
        "Expected by the plan path (序时进度) for the latest evaluated month. Absent when unknown.",
    ),
    (
        "required_growth_pct",
        "parkpulse_indicator_required_growth_pct",
        "Growth over last year's same months the rest of the year needs to meet the year's"
        " target, in %. Absent when unknown.",
    ),
)


# What a row's samples are made of: rows with the same fields give the same samples.
_READ = (*KEY_LABELS, "status", "binding", *(field for field, _, _ in _VALUE_GAUGES), "period")
_READ_MAPPING = itemgetter(*_READ)
_READ_RECORD = attrgetter(*_READ)


@dataclass(slots=True)
class _RowSamples:
    """The samples one status row adds to each per-key family (in ``_per_key_families``' order),
    and the month it was evaluated for (None for a no_data row)."""

    samples: tuple[tuple[Sample, ...], ...]
    zone: str
    month: tuple[int, int] | None


RowCache = dict[tuple[Any, ...], _RowSamples]


def _per_key_families() -> list[GaugeMetricFamily]:
    values = [GaugeMetricFamily(name, doc, labels=KEY_LABELS) for _, name, doc in _VALUE_GAUGES]
    return [_binding_family(), *values, _status_family(), _last_period_family()]


def _row_samples(fields: tuple[Any, ...]) -> _RowSamples:
    """A row's samples, made as ``add_metric`` makes them (in families of its own, then taken)."""
    key = [str(v) for v in fields[:3]]
    current, binding, *values, period = fields[3:]
    scratch = _per_key_families()
    binding_family, *value_families, status_family, last_period = scratch
    binding_family.add_metric(key, 1.0 if binding else 0.0)
    for family, value in zip(value_families, values, strict=True):
        if value is not None:
            family.add_metric(key, float(value))
    for name in STATUSES:
        status_family.add_metric([*key, name], 1.0 if name == current else 0.0)
    month = None
    if current != "no_data":  # a no_data row is a target waiting for its first figure
        month = evaluated_month(str(period))
        last_period.add_metric(key, month_start(*month))
    return _RowSamples(tuple(tuple(f.samples) for f in scratch), key[0], month)


def build_families(rows: Iterable[Any], cache: RowCache | None = None) -> tuple[Metric, ...]:
    """The per-indicator families for the latest status rows (dicts as ``latest_status`` returns
    them, or ``IndicatorStatus``), one row per (zone, indicator, plan).

    ``cache``: the samples of the rows of the last build, by the fields they were made from;
    emptied and refilled with this build's. A refresh during a backfill changes a few hundred of
    a national worker's 3,237 keys: the others' ~12 samples each are not made again (building
    all of them took ~0.25 s of the interpreter, several times a minute)."""
    families = _per_key_families()
    old = cache.copy() if cache is not None else {}
    fresh: RowCache = {}
    latest_month: dict[str, tuple[int, int]] = {}
    for row in rows:
        fields = _read(row)
        if fields[3] not in STATUSES:
            continue  # a status this build does not know: never a label value
        made = old.get(fields) or _row_samples(fields)
        fresh[fields] = made
        for family, samples in zip(families, made.samples, strict=True):
            family.samples.extend(samples)
        if made.month is not None:
            latest_month[made.zone] = max(latest_month.get(made.zone, made.month), made.month)
    if cache is not None:
        cache.clear()
        cache.update(fresh)
    return (*families, _deadline_family(latest_month))


def _read(row: Any) -> tuple[Any, ...]:
    return _READ_MAPPING(row) if isinstance(row, Mapping) else _READ_RECORD(row)


def _binding_family() -> GaugeMetricFamily:
    return GaugeMetricFamily(
        "parkpulse_indicator_binding",
        "1 when the target is binding (约束性), 0 when expected (预期性).",
        labels=KEY_LABELS,
    )


def _status_family() -> GaugeMetricFamily:
    return GaugeMetricFamily(
        "parkpulse_indicator_status",
        "Status of the latest evaluated month, one-hot: 1 for the current status, 0 otherwise.",
        labels=(*KEY_LABELS, "status"),
    )


def _last_period_family() -> GaugeMetricFamily:
    return GaugeMetricFamily(
        "parkpulse_indicator_last_period_timestamp_seconds",
        "Start of the latest evaluated month (00:00 Asia/Shanghai, UTC+8, on the 1st),"
        " as Unix time.",
        labels=KEY_LABELS,
    )


def _deadline_family(latest_month: Mapping[str, tuple[int, int]]) -> GaugeMetricFamily:
    """Each zone's feed deadline, after the latest month any of its keys was evaluated for."""
    deadline = GaugeMetricFamily(
        "parkpulse_zone_feed_deadline_timestamp_seconds",
        "When the zone's next monthly figure is overdue: 00:00 Asia/Shanghai on the 20th of"
        " the month after (latest evaluated month + 1), as Unix time.",
        labels=("zone",),
    )
    for zone, month in sorted(latest_month.items()):
        deadline.add_metric([zone], feed_deadline(*month))
    return deadline


class StatusGauges(Collector):
    """The latest status of each key this worker owns, as Prometheus gauges at scrape time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._families = _Families(build_families(()), 0)
        self._shown: list[Any] = []
        self._samples: RowCache = {}  # the samples of the rows shown, by their fields
        self.shown = threading.Event()  # set by the first ``show`` (the report waits for it)
        self.names = frozenset(family.name for family in self._families.metrics)

    def show(self, rows: Iterable[Any]) -> int:
        """Export exactly ``rows`` from now on (every key not among them disappears)."""
        rows = list(rows)
        self.shown.set()
        if rows == self._shown:  # a refresh that found nothing new keeps the rendered text
            return self._families.keys
        families = _Families(build_families(rows, self._samples), len(rows))
        with self._lock:
            self._families, self._shown = families, rows
        return families.keys

    @property
    def keys(self) -> int:
        return self._families.keys

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            families = self._families
        yield from families.metrics

    def text(self) -> bytes:
        """The families in the text format (exposition.py), rendered once per ``show``."""
        with self._lock:
            families = self._families
            if families.text is None:
                families.text = render_gauges(families.metrics)
            return families.text


class LagGauges(Collector):
    """``parkpulse_consumer_lag`` for exactly the partitions this worker owns right now."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lag: dict[tuple[str, int], int] = {}

    def show(self, lag: Mapping[tuple[str, int], int]) -> None:
        """Replace the exported lags (a revoked partition is gone at once)."""
        with self._lock:
            self._lag = dict(lag)

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "parkpulse_consumer_lag",
            "Messages between the worker's committed offset and the end of the partition,"
            " for the partitions this worker owns.",
            labels=("topic", "partition"),
        )
        with self._lock:
            items = sorted(self._lag.items())
        for (topic, partition), lag in items:
            family.add_metric([topic, str(partition)], float(lag))
        yield family
