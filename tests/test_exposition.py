"""The ``/metrics`` endpoint renders the per-indicator families itself (sinks/exposition.py):
byte for byte what prometheus_client writes, and what a scrape parses equals the registry."""

from __future__ import annotations

import gzip
import urllib.request
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.parser import text_string_to_metric_families

from parkpulse.schemas.records import STATUSES
from parkpulse.sinks.exposition import render_gauges
from parkpulse.sinks.metrics import PipelineMetrics, read_metric, read_samples, read_statuses
from parkpulse.sinks.status_gauges import StatusGauges, build_families
from tests.test_metrics import status_row

# Label values as hostile as text gets: quotes, backslashes, newlines, braces, CJK, emoji.
LABEL_TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",)) | st.sampled_from('"\\\n{},='),
    min_size=1,
    max_size=12,
)
VALUES = (
    st.none() | st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(10**12), 10**12)
)


@st.composite
def rows(draw: Any) -> dict[str, Any]:
    row = status_row(
        zone=draw(LABEL_TEXT),
        indicator=draw(LABEL_TEXT),
        plan=draw(LABEL_TEXT),
        status=draw(st.sampled_from(STATUSES)),
        binding=draw(st.booleans()),
        period=draw(st.sampled_from(["2021-06", "2024-Q3", "2016", "2025-12"])),
    ).to_dict()
    for field in ("attainment", "gap_pp", "actual", "expected", "required_growth_pct"):
        row[field] = draw(VALUES)
    return row


@settings(max_examples=300, deadline=None)
@given(st.lists(rows(), max_size=8))
def test_the_rendered_text_is_prometheus_clients(shown: list[dict[str, Any]]) -> None:
    gauges = StatusGauges()
    gauges.show(shown)
    registry = CollectorRegistry()
    registry.register(gauges)
    assert render_gauges(build_families(shown)) == generate_latest(registry)
    assert gauges.text() == generate_latest(registry)


@settings(max_examples=200, deadline=None)
@given(st.lists(rows(), max_size=8), st.data())
def test_a_build_after_another_gives_what_a_fresh_build_gives(
    before: list[dict[str, Any]], data: st.DataObject
) -> None:
    # the next refresh keeps some rows as they were, changes others, drops and adds some
    kept = data.draw(st.lists(st.sampled_from(before), max_size=8)) if before else []
    changed = [
        {**row, "attainment": data.draw(VALUES), "status": data.draw(st.sampled_from(STATUSES))}
        for row in data.draw(
            st.lists(st.sampled_from(before), max_size=4) if before else st.just([])
        )
    ]
    after = data.draw(st.permutations(kept + changed + data.draw(st.lists(rows(), max_size=3))))
    cache: dict[Any, Any] = {}
    build_families(before, cache)
    assert render_gauges(build_families(after, cache)) == render_gauges(build_families(after))
    assert render_gauges(build_families(after, cache)) == render_gauges(build_families(after))
    assert len(cache) <= len(after)  # this build's rows only: it does not grow


def test_only_gauges_are_rendered() -> None:
    with pytest.raises(ValueError, match="gauges"):
        render_gauges([CounterMetricFamily("parkpulse_x", "x", value=1)])


def _samples(text: str) -> set[tuple[str, frozenset[tuple[str, str]], float]]:
    return {
        (s.name, frozenset(s.labels.items()), s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _get(url: str, gzipped: bool) -> str:
    request = urllib.request.Request(url, headers={"Accept-Encoding": "gzip"} if gzipped else {})
    with urllib.request.urlopen(request, timeout=5) as resp:
        body = resp.read()
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        assert (resp.headers.get("Content-Encoding") == "gzip") == gzipped
    return (gzip.decompress(body) if gzipped else body).decode()


@pytest.mark.parametrize("gzipped", [False, True])
def test_a_scrape_is_the_whole_registry_and_follows_each_show(gzipped: bool) -> None:
    metrics = PipelineMetrics()
    metrics.count_sink_rows("observations", 5)
    metrics.show_statuses([status_row()])
    host, port = metrics.serve("127.0.0.1", 0)
    url = f"http://{host}:{port}/metrics"
    try:
        first = _get(url, gzipped)
        assert _samples(first) == _samples(generate_latest(metrics.registry).decode())
        assert (
            'status="behind",zone="jinan-hitech"} 1.0' in first
            and "parkpulse_sink_rows_total" in first
        )
        metrics.show_statuses([status_row(status="on_track", zone="xian-hitech")])
        second = _get(url, gzipped)
        assert _samples(second) == _samples(generate_latest(metrics.registry).decode())
        assert "jinan-hitech" not in second and 'zone="xian-hitech"' in second
    finally:
        metrics.close()


def test_reading_one_family_reads_what_the_whole_parse_reads() -> None:
    metrics = PipelineMetrics()
    metrics.count_events("parkpulse.observations", "in", 7)
    metrics.show_statuses([status_row(), status_row(zone="xian-hitech", status="on_track")])
    host, port = metrics.serve("127.0.0.1", 0)
    url = f"http://{host}:{port}/metrics"
    try:
        whole = read_samples(url)
        for name in ("parkpulse_events_total", "parkpulse_indicator_status"):
            assert read_samples(url, name=name) == [s for s in whole if s.name == name]
        assert read_metric(url, "parkpulse_events_total", direction="in") == 7
        assert read_statuses(url) == {
            ("jinan-hitech", "import_export_total", "14th-fyp", "behind"),
            ("xian-hitech", "import_export_total", "14th-fyp", "on_track"),
        }
    finally:
        metrics.close()
