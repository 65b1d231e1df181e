"""The Prometheus exporter: attainment gauges per (zone, indicator, plan) and pipeline counters.

Label values are bounded by construction: zones, indicators and plans come from the catalogue and
the plan targets, statuses from ``records.STATUSES``, dead-letter reasons from ``errors.REASONS``.
The alert rules in ``deploy/prometheus/rules/`` and the Grafana boards read exactly these names.
"""

from __future__ import annotations

import contextlib
import threading
import urllib.request
from datetime import datetime, timedelta, timezone

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server
from prometheus_client.parser import text_string_to_metric_families

from parkpulse.schemas.errors import REASONS
from parkpulse.schemas.records import STATUSES, IndicatorStatus
from parkpulse.streams.plausibility import REASONS as SUSPECT_REASONS

# Statistics bureaus publish on Beijing time; China has no daylight saving, so a fixed offset is
# exact and needs no tz database.
SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")
PUBLICATION_DAY = 20  # a month's figure is due by the 20th of the month after
DIRECTIONS = ("in", "out")

_KEY_LABELS = ("zone", "indicator", "plan")


def period_month(period: str) -> tuple[int, int]:
    """``(year, month)`` of a period: ``YYYY-MM``, ``YYYY-Qn`` (month 3n), ``YYYY`` (month 12)."""
    text = period.strip()
    try:
        if len(text) == 4:
            return int(text), 12
        year, rest = text.split("-", 1)
        month = 3 * int(rest[1:]) if rest[:1] in ("Q", "q") else int(rest)
        if len(year) == 4 and 1 <= month <= 12:
            return int(year), month
    except ValueError:
        pass
    raise ValueError(f"not a period: {period!r}")


def month_start(year: int, month: int) -> float:
    """Unix time of 00:00 Asia/Shanghai on the first day of the month."""
    return datetime(year, month, 1, tzinfo=SHANGHAI).timestamp()


def feed_deadline(year: int, month: int) -> float:
    """When the figure after ``year-month`` is overdue: 00:00 Asia/Shanghai on the 20th of the
    month after the next one (a March figure evaluated means April's is due by 20 May)."""
    index = year * 12 + (month - 1) + 2
    return datetime(index // 12, index % 12 + 1, PUBLICATION_DAY, tzinfo=SHANGHAI).timestamp()


class PipelineMetrics:
    """Every parkpulse metric, registered on one registry (a fresh one unless given)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.attainment = Gauge(
            "parkpulse_indicator_attainment_ratio",
            "Actual / expected for the latest evaluated month (expected / actual when lower is"
            " better; growth targets: (1 + actual%) / (1 + target%)). Absent when unknown.",
            _KEY_LABELS,
            registry=r,
        )
        self.gap = Gauge(
            "parkpulse_indicator_gap_pp",
            "Gap to plan in percentage points for the latest evaluated month. Absent when unknown.",
            _KEY_LABELS,
            registry=r,
        )
        self.status = Gauge(
            "parkpulse_indicator_status",
            "Status of the latest evaluated month, one-hot: 1 for the current status, 0 otherwise.",
            (*_KEY_LABELS, "status"),
            registry=r,
        )
        self.binding = Gauge(
            "parkpulse_indicator_binding",
            "1 when the target is binding (约束性), 0 when expected (预期性).",
            _KEY_LABELS,
            registry=r,
        )
        self.last_period = Gauge(
            "parkpulse_indicator_last_period_timestamp_seconds",
            "Start of the latest evaluated month (00:00 Asia/Shanghai, UTC+8, on the 1st),"
            " as Unix time.",
            _KEY_LABELS,
            registry=r,
        )
        self.feed_deadline = Gauge(
            "parkpulse_zone_feed_deadline_timestamp_seconds",
            "When the zone's next monthly figure is overdue: 00:00 Asia/Shanghai on the 20th of"
            " the month after (latest evaluated month + 1), as Unix time.",
            ("zone",),
            registry=r,
        )
        self.events = Counter(
            "parkpulse_events_total",
            "Records consumed (direction=in) or produced (direction=out) per topic; a batch"
            " envelope counts each record it carries.",
            ("topic", "direction"),
            registry=r,
        )
        self.deadletters = Counter(
            "parkpulse_deadletters_total",
            "Rejected inputs sent to the dead-letter topic, by reason code.",
            ("reason",),
            registry=r,
        )
        self.sink_rows = Counter(
            "parkpulse_sink_rows_total",
            "Rows written to ClickHouse per table.",
            ("table",),
            registry=r,
        )
        self.sink_errors = Counter(
            "parkpulse_sink_errors_total",
            "Failed ClickHouse writes per table (each retry that fails counts).",
            ("table",),
            registry=r,
        )
        self.sink_buffered = Gauge(
            "parkpulse_sink_buffered_rows",
            "Rows held by the ClickHouse sink, not yet durably written.",
            registry=r,
        )
        self.consumer_lag = Gauge(
            "parkpulse_consumer_lag",
            "Messages between the worker's committed offset and the end of the partition.",
            ("topic", "partition"),
            registry=r,
        )
        self.suspect_figures = Counter(
            "parkpulse_suspect_figures_total",
            "Figures accepted but flagged implausible, by reason (ytd_fell: a flow's YTD fell"
            " within a year; jump: a month-on-month jump beyond the configured factor).",
            ("reason",),
            registry=r,
        )
        # Present from the start so that rate() sees the first dead letter of each reason.
        for reason in REASONS:
            self.deadletters.labels(reason=reason)
        for reason in SUSPECT_REASONS:
            self.suspect_figures.labels(reason=reason)
        self._lock = threading.Lock()
        self._shown: dict[tuple[str, str, str], tuple[int, int]] = {}
        # The month each key with a real figure shows, by zone (the zone's feed deadline is
        # its latest): a zone's few dozen keys are scanned per row, not every zone's.
        self._with_data: dict[str, dict[tuple[str, str, str], tuple[int, int]]] = {}
        self._server = None

    # -- plan attainment ----------------------------------------------------------------

    def observe_status(self, row: IndicatorStatus, *, replace: bool = False) -> None:
        """Show ``row`` unless its key already shows a later month (replayed history is ignored);
        ``replace`` shows it anyway (the later month's row was removed)."""
        if row.status not in STATUSES:
            raise ValueError(f"unknown status {row.status!r}")
        month = period_month(row.period)
        key = (row.zone, row.indicator, row.plan)
        with self._lock:
            shown = self._shown.get(key)
            if shown is not None and month < shown and not replace:
                return
            self._shown[key] = month
            # Binding first: a scrape between the two never sees "behind" without it.
            self.binding.labels(*key).set(1 if row.binding else 0)
            _set_or_remove(self.attainment, key, row.attainment)
            _set_or_remove(self.gap, key, row.gap_pp)
            for status in STATUSES:
                self.status.labels(*key, status).set(1 if status == row.status else 0)
            # A no_data row is a target waiting for its first figure, not a figure.
            if row.status == "no_data":
                self._with_data.get(row.zone, {}).pop(key, None)
                _remove(self.last_period, *key)
            else:
                self._with_data.setdefault(row.zone, {})[key] = month
                self.last_period.labels(*key).set(month_start(*month))
            self._update_deadline(row.zone)

    def forget_status(self, zone: str, indicator: str, plan: str) -> None:
        """Remove the series of a withdrawn target (and the zone's deadline if it was the last)."""
        key = (zone, indicator, plan)
        with self._lock:
            self._shown.pop(key, None)
            self._with_data.get(zone, {}).pop(key, None)
            for gauge in (self.attainment, self.gap, self.binding, self.last_period):
                _remove(gauge, *key)
            for status in STATUSES:
                _remove(self.status, *key, status)
            self._update_deadline(zone)

    def _update_deadline(self, zone: str) -> None:
        months = self._with_data.get(zone)
        if months:
            self.feed_deadline.labels(zone).set(feed_deadline(*max(months.values())))
        else:
            _remove(self.feed_deadline, zone)

    # -- pipeline -------------------------------------------------------------------------

    def count_events(self, topic: str, direction: str, n: int = 1) -> None:
        """``n`` messages consumed (``"in"``) from or produced (``"out"``) to ``topic``."""
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be 'in' or 'out', got {direction!r}")
        self.events.labels(topic, direction).inc(n)

    def count_deadletter(self, reason: str, n: int = 1) -> None:
        """``n`` inputs rejected with ``reason`` (one of ``errors.REASONS``)."""
        if reason not in REASONS:
            raise ValueError(f"unknown reason code {reason!r}")
        self.deadletters.labels(reason).inc(n)

    def count_suspect(self, reason: str, n: int = 1) -> None:
        """``n`` figures newly flagged implausible for ``reason`` (``plausibility.REASONS``)."""
        if reason not in SUSPECT_REASONS:
            raise ValueError(f"unknown suspect reason {reason!r}")
        self.suspect_figures.labels(reason).inc(n)

    def count_sink_rows(self, table: str, n: int) -> None:
        """``n`` rows durably written to ClickHouse ``table``."""
        self.sink_rows.labels(table).inc(n)

    def count_sink_error(self, table: str) -> None:
        """One failed write to ClickHouse ``table``."""
        self.sink_errors.labels(table).inc()

    def set_sink_buffered(self, rows: int) -> None:
        """Rows waiting in the sink's buffer right now."""
        self.sink_buffered.set(rows)

    def set_consumer_lag(self, topic: str, partition: int, lag: int) -> None:
        """The consumer's lag on one partition (end offset − committed offset)."""
        self.consumer_lag.labels(topic, str(partition)).set(lag)

    # -- exposition -----------------------------------------------------------------------

    def serve(self, host: str, port: int) -> tuple[str, int]:
        """Serve ``/metrics`` on ``host:port`` from a daemon thread (port 0 picks a free one)."""
        if self._server is not None:
            raise RuntimeError("metrics endpoint already serving")
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        self._server = server
        bound = server.server_address
        return str(bound[0]), int(bound[1])

    def close(self) -> None:
        """Stop the HTTP endpoint started by ``serve`` (no-op when not serving)."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()


def _set_or_remove(gauge: Gauge, key: tuple[str, str, str], value: float | None) -> None:
    if value is None:
        _remove(gauge, *key)
    else:
        gauge.labels(*key).set(value)


def _remove(gauge: Gauge, *labelvalues: str) -> None:
    with contextlib.suppress(KeyError):  # older prometheus-client raises on a missing series
        gauge.remove(*labelvalues)


def read_metric(url: str, name: str, timeout: float = 10, **labels: str) -> float:
    """The sum of the samples of ``name`` carrying ``labels`` on the endpoint at ``url``
    (0 when there are none): what the benchmark and the tests read off a running worker."""
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        text = resp.read().decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )
