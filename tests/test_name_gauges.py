"""What alert messages call zones and indicators: the catalogue's names and the language, as
info gauges the worker exports (the alert rules read them; tests/test_alert_rules.py)."""

from __future__ import annotations

from prometheus_client import generate_latest

from parkpulse.schemas.catalogue import load_catalogue
from parkpulse.sinks.metrics import PipelineMetrics


def samples(metrics: PipelineMetrics, name: str) -> list[dict[str, str]]:
    return [s.labels for f in metrics.registry.collect() for s in f.samples if s.name == name]


def test_every_zone_and_indicator_with_its_names_and_the_language() -> None:
    catalogue = load_catalogue()
    metrics = PipelineMetrics()
    assert samples(metrics, "parkpulse_zone_info") == []  # before the worker shows them
    assert samples(metrics, "parkpulse_language_info") == [{"lang": "zh"}]
    metrics.show_names(catalogue, "en")
    zones = {s["zone"]: s for s in samples(metrics, "parkpulse_zone_info")}
    assert set(zones) == set(catalogue.zones)
    assert zones["jinan-hitech"]["name_zh"] == "济南高新技术产业开发区"
    indicators = {s["indicator"]: s for s in samples(metrics, "parkpulse_indicator_info")}
    assert set(indicators) == set(catalogue.indicators)
    assert indicators["hitech_enterprises"]["name_zh"] == "高新技术企业数"
    assert samples(metrics, "parkpulse_language_info") == [{"lang": "en"}]
    text = generate_latest(metrics.registry).decode()
    line = next(
        x for x in text.splitlines() if x.startswith("parkpulse_zone_info{") and "jinan" in x
    )
    assert 'name_zh="济南高新技术产业开发区"' in line and line.endswith(" 1.0")
