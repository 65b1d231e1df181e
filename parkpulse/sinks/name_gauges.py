"""What an alert message names things with: the zones' and indicators' names and the language.

Alert rules can only template what Prometheus holds, so the worker exports the catalogue's names
as info gauges (value 1, the names as labels; bounded by the catalogue) and its PARKPULSE_LANG:
``parkpulse_zone_info{zone, name_zh, name_en}``, ``parkpulse_indicator_info{indicator, name_zh,
name_en}``, ``parkpulse_language_info{lang}``. The rules read them into ``zone_name_zh``,
``indicator_name_zh``, ``summary_zh`` and ``lang`` (deploy/prometheus/rules/), and the WeCom
template picks its language by ``lang`` (deploy/alertmanager/templates/wechat.tmpl).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from parkpulse.schemas.catalogue import Catalogue


def name_families(catalogue: Catalogue | None, lang: str) -> tuple[Metric, ...]:
    """The info gauges of ``catalogue`` (none without one) and of the language ``lang``."""
    zones = GaugeMetricFamily(
        "parkpulse_zone_info",
        "1 per zone of the catalogue, its names as labels (what alert messages call it).",
        labels=("zone", "name_zh", "name_en"),
    )
    indicators = GaugeMetricFamily(
        "parkpulse_indicator_info",
        "1 per indicator of the catalogue, its names as labels (what alert messages call it).",
        labels=("indicator", "name_zh", "name_en"),
    )
    language = GaugeMetricFamily(
        "parkpulse_language_info",
        "1 for the worker's PARKPULSE_LANG: the language of the words people read, alert"
        " messages included.",
        labels=("lang",),
    )
    language.add_metric([lang], 1.0)
    for zone in (catalogue.zones if catalogue else {}).values():
        zones.add_metric([zone.id, zone.name_zh, zone.name_en], 1.0)
    for ind in (catalogue.indicators if catalogue else {}).values():
        indicators.add_metric([ind.id, ind.name_zh, ind.name_en], 1.0)
    return zones, indicators, language


class NameGauges(Collector):
    """The catalogue's names and the language, as Prometheus info gauges at scrape time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._families = name_families(None, "zh")

    def show(self, catalogue: Catalogue, lang: str) -> None:
        families = name_families(catalogue, lang)
        with self._lock:
            self._families = families

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            families = self._families
        yield from families
