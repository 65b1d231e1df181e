"""The Prometheus exporter: attainment gauges per (zone, indicator, plan) and pipeline counters.

Label values are bounded by construction: zones, indicators and plans come from the catalogue and
the plan targets, statuses from ``records.STATUSES``, dead-letter reasons from ``errors.REASONS``.
The alert rules in ``deploy/prometheus/rules/`` and the Grafana boards read exactly these names.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.parser import text_string_to_metric_families

from parkpulse.schemas.catalogue import Catalogue
from parkpulse.schemas.errors import REASONS
from parkpulse.sinks.exposition import metrics_body, serve_metrics
from parkpulse.sinks.name_gauges import NameGauges
from parkpulse.sinks.status_gauges import (
    LagGauges,
    StatusGauges,
    feed_deadline,
    month_start,
)
from parkpulse.streams.plausibility import REASONS as SUSPECT_REASONS

__all__ = [
    "PipelineMetrics",
    "feed_deadline",
    "month_start",
    "read_metric",
    "read_samples",
    "read_statuses",
]

DIRECTIONS = ("in", "out")


class PipelineMetrics:
    """Every parkpulse metric, registered on one registry (a fresh one unless given)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        # Per-indicator gauges and lag follow the durable state the worker hands over
        # (status_gauges.py), not whatever this process happened to process.
        self.statuses = StatusGauges()
        self.lag = LagGauges()
        self.names = NameGauges()  # what alert messages call zones and indicators
        r.register(self.statuses)
        r.register(self.lag)
        r.register(self.names)
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
        self._server = None

    # -- plan attainment ----------------------------------------------------------------

    def show_statuses(self, rows: Iterable[Any]) -> int:
        """Export exactly these latest status rows (one per zone, indicator, plan) from now on;
        returns how many keys are exported."""
        return self.statuses.show(rows)

    def show_names(self, catalogue: Catalogue, lang: str) -> None:
        """Export the catalogue's names and the language setting (for alert messages)."""
        self.names.show(catalogue, lang)

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

    def show_consumer_lag(self, lag: Mapping[tuple[str, int], int]) -> None:
        """The lag (end offset − committed offset) of exactly the partitions owned right now."""
        self.lag.show(lag)

    # -- exposition -----------------------------------------------------------------------

    def serve(self, host: str, port: int) -> tuple[str, int]:
        """Serve ``/metrics`` on ``host:port`` from a daemon thread (port 0 picks a free one)."""
        if self._server is not None:
            raise RuntimeError("metrics endpoint already serving")
        statuses = self.statuses
        server = serve_metrics(
            host, port, lambda: metrics_body(self.registry, statuses.names, statuses.text())
        )
        self._server = server
        bound = server.server_address
        return str(bound[0]), int(bound[1])

    def close(self) -> None:
        """Stop the HTTP endpoint started by ``serve`` (no-op when not serving)."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()


def read_samples(
    url: str, timeout: float = 10, name: str | None = None, value: float | None = None
) -> list[Any]:
    """Every sample on the endpoint at ``url`` (of the family ``name`` alone, and of ``value``
    alone, when given), parsed as Prometheus parses it: what the benchmark and the tests read
    off a running worker. With ``name``/``value`` only those lines are parsed (a national worker
    exports ~40,000 lines; parsing them all is seconds of the reader's CPU)."""
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        text = resp.read().decode()
    if name is not None:
        text = "".join(
            line
            for line in text.splitlines(keepends=True)
            if line.startswith((f"{name}{{", f"{name} "))
            and (value is None or float(line.rsplit(None, 1)[-1]) == value)
        )
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


def read_metric(url: str, name: str, timeout: float = 10, **labels: str) -> float:
    """The sum of the samples of ``name`` carrying ``labels`` on the endpoint at ``url``
    (0 when there are none)."""
    return sum(
        sample.value
        for sample in read_samples(url, timeout, name)
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


def read_statuses(url: str, timeout: float = 10) -> set[tuple[str, str, str, str]]:
    """(zone, indicator, plan, status) of every key the endpoint at ``url`` exports (the one-hot
    ``parkpulse_indicator_status`` at 1)."""
    return {
        (s.labels["zone"], s.labels["indicator"], s.labels["plan"], s.labels["status"])
        for s in read_samples(url, timeout, "parkpulse_indicator_status", value=1)
    }
