"""The Prometheus exporter, read back the way Prometheus reads it: scrape, parse, look up series."""

from __future__ import annotations

import urllib.request
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from parkpulse.schemas.errors import REASONS
from parkpulse.schemas.periods import evaluated_month
from parkpulse.schemas.records import STATUSES, IndicatorStatus
from parkpulse.sinks.metrics import PipelineMetrics, feed_deadline

KEY = {"zone": "jinan-hitech", "indicator": "import_export_total", "plan": "14th-fyp"}


def scrape(metrics: PipelineMetrics) -> dict[tuple[str, frozenset], float]:
    """Every sample as ``{(sample name, labels): value}``, parsed from the exposition text."""
    text = generate_latest(metrics.registry).decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def series(samples: dict, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def names_with(samples: dict, name: str, **labels: str) -> list[dict[str, str]]:
    """Label sets of every series of ``name`` that carries ``labels``."""
    want = set(labels.items())
    return [dict(lbls) for (n, lbls) in samples if n == name and want <= lbls]


def status_row(period: str = "2021-06", status: str = "behind", **changes) -> IndicatorStatus:
    # Jinan imports/exports, 14th FYP: 701.3 → 2140 by 2025; by June 2021 the plan path expects
    # ≈ 438 (亿元) on a linear season, and YTD 391.6 is 89 % of that.
    fields = dict(
        **KEY,
        period=period,
        kind="level",
        status=status,
        actual=391.6,
        expected=438.5,
        annual_target=876.9,
        attainment=0.893,
        gap_pp=-10.7,
        seasonal_source="linear",
        binding=False,
    )
    fields.update(changes)
    return IndicatorStatus(**fields)


def shanghai_midnight_utc(year: int, month: int, day: int) -> float:
    """00:00 Asia/Shanghai is 16:00 UTC the day before."""
    return datetime(year, month, day, tzinfo=UTC).timestamp() - 8 * 3600


def test_show_statuses_sets_every_gauge_for_the_key():
    m = PipelineMetrics()
    assert m.show_statuses([status_row()]) == 1
    s = scrape(m)
    assert series(s, "parkpulse_indicator_attainment_ratio", **KEY) == pytest.approx(0.893)
    assert series(s, "parkpulse_indicator_gap_pp", **KEY) == pytest.approx(-10.7)
    assert series(s, "parkpulse_indicator_actual", **KEY) == pytest.approx(391.6)
    assert series(s, "parkpulse_indicator_expected", **KEY) == pytest.approx(438.5)
    assert series(s, "parkpulse_indicator_required_growth_pct", **KEY) is None  # unknown
    assert series(s, "parkpulse_indicator_binding", **KEY) == 0
    assert series(
        s, "parkpulse_indicator_last_period_timestamp_seconds", **KEY
    ) == shanghai_midnight_utc(2021, 6, 1)


def test_status_is_one_hot_over_all_statuses():
    m = PipelineMetrics()
    for status in STATUSES:
        m.show_statuses([status_row(status=status)])
        s = scrape(m)
        assert {x: series(s, "parkpulse_indicator_status", **KEY, status=x) for x in STATUSES} == {
            x: float(x == status) for x in STATUSES
        }


def test_binding_target_is_flagged():
    m = PipelineMetrics()
    m.show_statuses([status_row(binding=True, required_growth_pct=31.2)])
    s = scrape(m)
    assert series(s, "parkpulse_indicator_binding", **KEY) == 1
    assert series(s, "parkpulse_indicator_required_growth_pct", **KEY) == pytest.approx(31.2)


def test_unknown_gap_and_attainment_have_no_series():
    m = PipelineMetrics()
    m.show_statuses([status_row(period="2021-07", status="no_data", attainment=None, gap_pp=None)])
    s = scrape(m)
    assert series(s, "parkpulse_indicator_attainment_ratio", **KEY) is None
    assert series(s, "parkpulse_indicator_gap_pp", **KEY) is None
    assert series(s, "parkpulse_indicator_status", **KEY, status="no_data") == 1


def test_rows_as_the_store_returns_them_are_exported_alike():
    """``latest_status`` returns dicts; the exposition is the same as for the records."""
    a, b = PipelineMetrics(), PipelineMetrics()
    a.show_statuses([status_row()])
    b.show_statuses([status_row().to_dict()])
    indicator = {k: v for k, v in scrape(a).items() if k[0].startswith("parkpulse_indicator")}
    assert indicator
    assert indicator == {
        k: v for k, v in scrape(b).items() if k[0].startswith("parkpulse_indicator")
    }


statuses = st.sampled_from(STATUSES)
keys = st.tuples(
    st.sampled_from(["jinan-hitech", "jining-hitech", "xian-hitech"]),
    st.sampled_from(["gdp", "budget_revenue", "import_export_total"]),
    st.sampled_from(["14th-fyp", "2021-annual"]),
)


@given(
    st.lists(st.dictionaries(keys, statuses, max_size=12), min_size=1, max_size=4),
)
def test_the_export_is_exactly_the_last_rows_shown(snapshots):
    """Whatever was shown before (a previous owner, an earlier state), a scrape shows exactly the
    last rows handed over: a key not among them has no series at all."""
    m = PipelineMetrics()
    for snapshot in snapshots:
        m.show_statuses(
            [
                status_row(zone=z, indicator=i, plan=p, status=st_)
                for (z, i, p), st_ in snapshot.items()
            ]
        )
    s = scrape(m)
    last = snapshots[-1]
    shown = {
        (lbl["zone"], lbl["indicator"], lbl["plan"]): lbl["status"]
        for lbl in names_with(s, "parkpulse_indicator_status")
        if series(s, "parkpulse_indicator_status", **lbl) == 1
    }
    assert shown == last
    bound = {
        (lbl["zone"], lbl["indicator"], lbl["plan"])
        for lbl in names_with(s, "parkpulse_indicator_binding")
    }
    assert bound == set(last)


def test_zone_deadline_follows_the_latest_month_of_any_indicator():
    m = PipelineMetrics()
    m.show_statuses(
        [status_row(period="2021-03"), status_row(period="2021-05", indicator="budget_revenue")]
    )
    s = scrape(m)
    deadline = series(s, "parkpulse_zone_feed_deadline_timestamp_seconds", zone="jinan-hitech")
    assert deadline == shanghai_midnight_utc(2021, 7, 20)


def test_a_zone_shown_no_more_loses_its_deadline():
    m = PipelineMetrics()
    m.show_statuses([status_row(period="2021-03")])
    m.show_statuses([])
    assert names_with(scrape(m), "parkpulse_zone_feed_deadline_timestamp_seconds") == []


@pytest.mark.parametrize(
    ("year", "month", "due"),
    [
        (2021, 3, (2021, 5, 20)),
        (2021, 11, (2022, 1, 20)),
        (2021, 12, (2022, 2, 20)),
        (2021, 2, (2021, 4, 20)),  # a combined Jan–Feb figure: March's is due by 20 April
    ],
)
def test_feed_deadline_is_the_20th_of_the_month_after_next(year, month, due):
    assert feed_deadline(year, month) == shanghai_midnight_utc(*due)


@pytest.mark.parametrize(
    ("period", "month"),
    [("2021-06", (2021, 6)), ("2021-Q3", (2021, 9)), ("2020", (2020, 12))],
)
def test_evaluated_month_reads_months_quarters_and_years(period, month):
    assert evaluated_month(period) == month


@pytest.mark.parametrize("period", ["", "2021-13", "2021-Q5", "21-06", "june"])
def test_evaluated_month_rejects_garbage(period):
    with pytest.raises(ValueError):
        evaluated_month(period)


def test_an_unknown_status_is_never_a_label_value():
    m = PipelineMetrics()
    m.show_statuses([status_row(status="late")])
    assert names_with(scrape(m), "parkpulse_indicator_status") == []


def test_pipeline_counters_and_gauges():
    m = PipelineMetrics()
    m.count_events("parkpulse.observations", "in", 500)
    m.count_events("parkpulse.observations", "in")
    m.count_events("parkpulse.status", "out", 30)
    m.count_deadletter("unit_mismatch", 2)
    m.count_sink_rows("indicator_status", 1200)
    m.count_sink_error("indicator_status")
    m.set_sink_buffered(340)
    m.show_consumer_lag({("parkpulse.observations", 3): 17, ("parkpulse.targets", 0): 2})
    s = scrape(m)
    events = "parkpulse_events_total"
    assert series(s, events, topic="parkpulse.observations", direction="in") == 501
    assert series(s, events, topic="parkpulse.status", direction="out") == 30
    assert series(s, "parkpulse_deadletters_total", reason="unit_mismatch") == 2
    assert series(s, "parkpulse_sink_rows_total", table="indicator_status") == 1200
    assert series(s, "parkpulse_sink_errors_total", table="indicator_status") == 1
    assert series(s, "parkpulse_sink_buffered_rows") == 340
    lag = series(s, "parkpulse_consumer_lag", topic="parkpulse.observations", partition="3")
    assert lag == 17
    m.show_consumer_lag({("parkpulse.targets", 0): 0})  # partition 3 was revoked
    s = scrape(m)
    assert names_with(s, "parkpulse_consumer_lag", topic="parkpulse.observations") == []
    assert series(s, "parkpulse_consumer_lag", topic="parkpulse.targets", partition="0") == 0


def test_every_dead_letter_reason_is_exported_from_zero():
    # rate() needs a sample before the first increment to see it.
    s = scrape(PipelineMetrics())
    assert {r: series(s, "parkpulse_deadletters_total", reason=r) for r in REASONS} == {
        r: 0.0 for r in REASONS
    }


def test_label_values_outside_their_sets_are_refused():
    m = PipelineMetrics()
    with pytest.raises(ValueError):
        m.count_deadletter("no such reason")
    with pytest.raises(ValueError):
        m.count_events("parkpulse.observations", "sideways")


def test_each_instance_has_its_own_registry():
    a, b = PipelineMetrics(), PipelineMetrics()
    a.count_sink_rows("observations", 5)
    assert series(scrape(b), "parkpulse_sink_rows_total", table="observations") is None


def test_serve_exposes_the_registry_over_http():
    m = PipelineMetrics()
    m.show_statuses([status_row()])
    host, port = m.serve("127.0.0.1", 0)
    try:
        assert host == "127.0.0.1" and port > 0
        with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5) as resp:
            body = resp.read().decode()
        assert "# TYPE parkpulse_indicator_status gauge" in body
        assert 'indicator="import_export_total"' in body
        with pytest.raises(RuntimeError):
            m.serve("127.0.0.1", 0)
    finally:
        m.close()


def test_a_target_without_any_figure_sets_no_feed_deadline():
    """no_data rows (targets waiting for a first figure) must not make a zone look stale."""
    metrics = PipelineMetrics()
    metrics.show_statuses(
        [
            IndicatorStatus(
                "jining-hitech", "hitech_enterprises", "2021-annual", "2021-01", "level", "no_data"
            )
        ]
    )
    text = generate_latest(metrics.registry).decode()
    assert 'parkpulse_indicator_status{indicator="hitech_enterprises"' in text
    assert "parkpulse_zone_feed_deadline_timestamp_seconds{" not in text
    assert "parkpulse_indicator_last_period_timestamp_seconds{" not in text
