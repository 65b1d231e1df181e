"""Implausible figures are flagged, never rejected: worked examples, properties, the roll-up.

The pure check (streams/plausibility.py) and the engine's marks (plan.assess) are tested
directly; the roll-up keeps, writes and counts suspect figures as the worker does. Integration
tests against the real stack are in tests/test_suspect_integration.py.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime

import orjson
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from parkpulse.config import Settings
from parkpulse.schemas.catalogue import load_catalogue
from parkpulse.schemas.periods import YearMonth
from parkpulse.schemas.records import Observation, PlanTarget, SuspectFigure
from parkpulse.schemas.wire import observation_to_wire, target_to_wire
from parkpulse.streams.observations import derive_series, derive_values
from parkpulse.streams.plan import assess, evaluate, judge
from parkpulse.streams.plausibility import DEFAULT_JUMP_FACTOR, suspicions
from parkpulse.streams.rollup import Input, Rollup
from parkpulse.topics import OBSERVATIONS, TARGETS_BY_ZONE

FAST = settings(max_examples=80, deadline=None)
CATALOGUE = load_catalogue()
RETAIL = CATALOGUE.indicators["retail_sales"]
ENTERPRISES = CATALOGUE.indicators["hitech_enterprises"]  # a stock
ZONE = "jinan-hitech"
NOW = datetime(2026, 11, 21, tzinfo=UTC)
TARGET = PlanTarget(
    "14th-fyp", ZONE, "retail_sales", "level", 2020, 351.7, 2025, 517.0, None, False, "CNY_100M"
)


def ym(label: str) -> YearMonth:
    year, month = label.split("-")
    return YearMonth(int(year), int(month))


def series(**by_month: float) -> dict[YearMonth, float]:
    """``m2021_03=35.2`` → {YearMonth(2021, 3): 35.2}."""
    return {ym(k[1:].replace("_", "-")): v for k, v in by_month.items()}


def reasons(found: dict[YearMonth, object]) -> dict[str, str]:
    return {at.label: s.reason for at, s in found.items()}  # type: ignore[attr-defined]


# -- worked examples -------------------------------------------------------------------------


def test_the_issue_example_is_a_jump_and_stays_evaluated() -> None:
    # retail_sales 35.2 → 1,234.5 in a month: accepted, evaluated (achieved), and marked.
    feed = [
        Observation(ZONE, "retail_sales", p, "YTD", v, "CNY_100M")
        for p, v in (("2020-04", 110.0), ("2020-12", 351.7), ("2021-02", 20.0))
        + (("2021-03", 35.2), ("2021-04", 1234.5))
    ]
    found = assess(ZONE, RETAIL, feed, [TARGET])
    by_period = {row.period: row for row in found.rows}
    assert by_period["2021-04"].status == "achieved"  # the bureau stays the authority
    assert by_period["2021-04"].suspect == "jump"
    assert by_period["2021-04"].required_growth_pct is not None
    assert by_period["2021-04"].required_growth_pct < 0
    assert [by_period[p].suspect for p in ("2021-02", "2021-03")] == [None, None]
    assert found.suspects == [
        SuspectFigure(ZONE, "retail_sales", "2021-04", "jump", 1234.5, 35.2, "2021-03")
    ]


def test_a_ytd_that_falls_within_a_year() -> None:
    found = suspicions(series(m2021_02=30.0, m2021_03=25.0, m2021_05=40.0), "flow")
    assert reasons(found) == {"2021-03": "ytd_fell"}
    (fell,) = found.values()
    assert (fell.value, fell.previous, fell.previous_at.label) == (25.0, 30.0, "2021-02")


def test_january_starts_again_so_years_are_not_compared() -> None:
    # December's YTD is the year; the next February's is two months of the next.
    assert suspicions(series(m2020_12=400.0, m2021_02=30.0), "flow") == {}
    assert suspicions(series(m2020_12=4.0, m2021_02=3000.0), "flow") == {}


def test_the_factor_is_strict_and_configurable() -> None:
    assert suspicions(series(m2021_02=10.0, m2021_03=100.0), "flow") == {}  # exactly 10×
    assert reasons(suspicions(series(m2021_02=10.0, m2021_03=100.1), "flow")) == {"2021-03": "jump"}
    assert suspicions(series(m2021_02=10.0, m2021_03=100.1), "flow", factor=20) == {}
    assert suspicions(series(m2021_02=10.0, m2021_03=1e9), "flow", factor=math.inf) == {}
    with pytest.raises(ValueError, match="greater than 1"):
        suspicions({}, "flow", factor=1.0)


def test_a_level_jumps_either_way_within_twelve_months() -> None:
    up = suspicions(series(m2021_03=100.0, m2021_04=1500.0), "stock")
    down = suspicions(series(m2021_03=100.0, m2021_09=5.0), "stock")
    far = suspicions(series(m2020_01=100.0, m2021_06=5.0), "stock")
    assert reasons(up) == {"2021-04": "jump"}
    assert reasons(down) == {"2021-09": "jump"}
    assert far == {}  # eighteen months apart: not month on month
    # A stock may fall: only a jump beyond the factor is suspect.
    assert suspicions(series(m2021_03=100.0, m2021_04=60.0), "stock") == {}


def test_zero_or_negative_figures_are_not_compared_by_ratio() -> None:
    assert suspicions(series(m2021_03=0.0, m2021_04=500.0), "flow") == {}
    assert suspicions(series(m2021_03=-1.0, m2021_04=-500.0), "ratio") == {}


def test_a_month_after_a_jump_that_falls_back_is_suspect_too() -> None:
    found = suspicions(series(m2021_03=35.2, m2021_04=1234.5, m2021_05=40.1), "flow")
    assert reasons(found) == {"2021-04": "jump", "2021-05": "ytd_fell"}


# -- properties ------------------------------------------------------------------------------

ratios = st.floats(min_value=1.0, max_value=DEFAULT_JUMP_FACTOR * 0.99)  # clear of float noise


@st.composite
def plausible_flows(draw: st.DrawFn) -> dict[YearMonth, float]:
    """YTD over 2019–2021: starts positive each year, grows by at most the factor a month."""
    out: dict[YearMonth, float] = {}
    for year in (2019, 2020, 2021):
        months = sorted(draw(st.sets(st.integers(1, 12), min_size=1, max_size=12)))
        value = draw(st.floats(0.5, 1e5))
        for month in months:
            out[YearMonth(year, month)] = value
            value *= draw(ratios)
    return out


@FAST
@given(values=plausible_flows())
def test_a_plausible_flow_is_never_suspect(values: dict[YearMonth, float]) -> None:
    assert suspicions(values, "flow") == {}


@FAST
@given(values=plausible_flows(), data=st.data())
def test_a_figure_blown_up_beyond_the_factor_is_a_jump(
    values: dict[YearMonth, float], data: st.DataObject
) -> None:
    # Pick a month with an earlier month of its year; multiply it (and every later month of
    # that year, so only it jumps) by more than the factor.
    candidates = [at for at in values if any(b.year == at.year and b < at for b in values)]
    assume(candidates)
    at = data.draw(st.sampled_from(sorted(candidates)))
    k = data.draw(st.floats(DEFAULT_JUMP_FACTOR * 1.01, 1e4))
    blown = {m: v * k if m.year == at.year and m >= at else v for m, v in values.items()}
    assert reasons(suspicions(blown, "flow")) == {at.label: "jump"}


@FAST
@given(values=plausible_flows(), data=st.data())
def test_a_figure_below_the_month_before_is_ytd_fell(
    values: dict[YearMonth, float], data: st.DataObject
) -> None:
    candidates = [at for at in values if any(b.year == at.year and b < at for b in values)]
    assume(candidates)
    at = data.draw(st.sampled_from(sorted(candidates)))
    previous = max(b for b in values if b.year == at.year and b < at)
    fallen = {**values, at: values[previous] * data.draw(st.floats(0.2, 0.99))}
    found = suspicions(fallen, "flow")
    assert found[at].reason == "ytd_fell"
    assert (found[at].previous_at, found[at].previous) == (previous, values[previous])


@FAST
@given(
    values=st.dictionaries(
        st.builds(YearMonth, st.integers(2019, 2021), st.integers(1, 12)),
        # away from the subnormals, where a change of scale is not exact
        st.floats(-1e6, 1e6, allow_subnormal=False).filter(lambda v: v == 0 or abs(v) > 1e-9),
        max_size=30,
    ),
    kind=st.sampled_from(["flow", "stock", "ratio"]),
    factor=st.floats(1.5, 100.0),
    scale=st.integers(-8, 8),
)
def test_what_is_flagged_is_what_the_reason_says_and_scale_free(
    values: dict[YearMonth, float], kind: str, factor: float, scale: int
) -> None:
    found = suspicions(values, kind, factor)
    for at, s in found.items():
        assert s.previous_at < at and values[at] == s.value and values[s.previous_at] == s.previous
        # the previous figure is the nearest earlier one
        assert not any(s.previous_at < m < at for m in values)
        if s.reason == "ytd_fell":
            assert kind == "flow" and s.value < s.previous and s.previous_at.year == at.year
        else:
            assert s.value > 0 and s.previous > 0
            assert max(s.value / s.previous, s.previous / s.value) > factor
    # A change of unit (a power of two: exact in floats) flags the same months.
    scaled = {at: v * 2.0**scale for at, v in values.items()}
    assert reasons(suspicions(scaled, kind, factor)) == reasons(found)
    # A larger factor flags a subset of the jumps.
    larger = reasons(suspicions(values, kind, factor * 2))
    assert set(larger.items()) <= set(reasons(found).items())


@FAST
@given(values=st.lists(st.floats(1.0, 1e5), min_size=2, max_size=12), factor=st.floats(2, 50))
def test_marks_never_change_the_numbers(values: list[float], factor: float) -> None:
    feed = [
        Observation(ZONE, "retail_sales", f"2021-{m:02d}", "YTD", v, "CNY_100M")
        for m, v in enumerate(values, start=1)
    ]
    marked = assess(ZONE, RETAIL, feed, [TARGET], jump_factor=factor)
    flagged = {s.period: s.reason for s in marked.suspects}
    assert {r.period: r.suspect for r in marked.rows if r.suspect} == flagged
    unmarked = [replace(r, suspect=None) for r in marked.rows]
    assert unmarked == [replace(r, suspect=None) for r in evaluate(ZONE, RETAIL, feed, [TARGET])]


# -- the roll-up: kept, written once, cleared by a revision ------------------------------------


def as_input(record: Observation | PlanTarget) -> Input:
    if isinstance(record, PlanTarget):
        return Input(TARGETS_BY_ZONE, "target", orjson.dumps(target_to_wire(record)))
    return Input(OBSERVATIONS, "observation", orjson.dumps(observation_to_wire(record)))


def ytd(period: str, value: float, revision: int = 0) -> Observation:
    return Observation(ZONE, "retail_sales", period, "YTD", value, "CNY_100M", revision=revision)


def test_the_rollup_marks_counts_once_and_clears_on_a_revision() -> None:
    rollup = Rollup(CATALOGUE)
    rollup.load(ZONE, [], [], [])
    feed = [TARGET, ytd("2021-03", 35.2), ytd("2021-04", 1234.5)]
    first = rollup.apply([as_input(r) for r in feed], NOW)
    (figure,) = first.batch.suspects
    assert (figure.period, figure.reason, figure.previous) == ("2021-04", "jump", 35.2)
    assert first.newly_suspect == [figure]
    assert {r.period: r.suspect for r in first.statuses} == {"2021-03": None, "2021-04": "jump"}
    # A replay writes and counts nothing.
    again = rollup.apply([as_input(r) for r in feed], NOW)
    assert len(again.batch) == 0 and again.newly_suspect == []
    # The bureau revises the figure: the mark goes, by a tombstone and a re-evaluated row.
    fixed = rollup.apply([as_input(ytd("2021-04", 123.45, revision=1))], NOW)
    assert fixed.batch.suspect_tombstones == [figure]
    assert fixed.batch.suspects == [] and fixed.newly_suspect == []
    assert [r.suspect for r in fixed.statuses] == [None]
    assert rollup.suspects(ZONE) == []


def test_a_figure_without_targets_is_judged_too() -> None:
    rollup = Rollup(CATALOGUE)
    rollup.load(ZONE, [], [], [])
    result = rollup.apply([as_input(ytd("2021-03", 30.0)), as_input(ytd("2021-05", 20.0))], NOW)
    assert [(f.period, f.reason) for f in result.batch.suspects] == [("2021-05", "ytd_fell")]
    assert result.statuses == []


def test_a_restarted_rollup_does_not_count_again() -> None:
    rollup = Rollup(CATALOGUE)
    rollup.load(ZONE, [], [], [])
    feed = [TARGET, ytd("2021-03", 35.2), ytd("2021-04", 1234.5)]
    first = rollup.apply([as_input(r) for r in feed], NOW)
    restarted = Rollup(CATALOGUE)
    # What ClickHouse gives back: the figures, targets, status rows and suspect figures.
    restarted.load(ZONE, first.batch.observations, [TARGET], first.statuses, first.batch.suspects)
    replay = restarted.apply([as_input(r) for r in feed], NOW)
    assert len(replay.batch) == 0 and replay.newly_suspect == []


def test_the_factor_is_the_rollups() -> None:
    rollup = Rollup(CATALOGUE, jump_factor=100.0)
    rollup.load(ZONE, [], [], [])
    result = rollup.apply([as_input(ytd("2021-03", 35.2)), as_input(ytd("2021-04", 1234.5))], NOW)
    assert result.batch.suspects == []


@st.composite
def mixed_feeds(draw: st.DrawFn) -> list[Observation]:
    """Figures of one indicator, any basis and source, with revisions and deletes."""
    feed = []
    for _ in range(draw(st.integers(0, 14))):
        year, month = draw(st.integers(2020, 2021)), draw(st.integers(1, 12))
        basis = draw(st.sampled_from(["YTD", "MONTH", "QUARTER", "YEAR", "LEVEL"]))
        period = {
            "QUARTER": f"{year}-Q{(month + 2) // 3}",
            "YEAR": str(year),
        }.get(basis, f"{year}-{month:02d}")
        delete = draw(st.integers(0, 5)) == 0
        feed.append(
            Observation(
                ZONE,
                "retail_sales",
                period,
                basis,
                None if delete else draw(st.floats(0.0, 1e4)),
                "CNY_100M",
                revision=draw(st.integers(0, 2)),
                action="D" if delete else "I",
                source=draw(st.sampled_from(["bureau", "registrations"])),
            )
        )
    return feed


@FAST
@given(feed=mixed_feeds(), kind=st.sampled_from(["flow", "stock", "ratio"]))
def test_judging_alone_finds_what_the_full_assessment_finds(
    feed: list[Observation], kind: str
) -> None:
    series = derive_series(feed, kind)
    assert derive_values(feed, kind) == (series.ytd if kind == "flow" else series.level)
    indicator = replace(RETAIL, kind=kind)
    assert judge(ZONE, indicator, feed) == assess(ZONE, indicator, feed, []).suspects


def test_the_factor_is_a_setting() -> None:
    assert Settings.from_env({}).suspect_jump_factor == DEFAULT_JUMP_FACTOR
    settings = Settings.from_env({"PARKPULSE_SUSPECT_JUMP_FACTOR": "25"})
    assert settings.suspect_jump_factor == 25.0
    assert Settings.from_env(settings.to_env()).suspect_jump_factor == 25.0  # to a child process
    assert (
        Settings.from_env({"PARKPULSE_SUSPECT_JUMP_FACTOR": "inf"}).suspect_jump_factor == math.inf
    )
    for bad in ("1", "0.5", "ten", "nan"):
        with pytest.raises(ValueError, match="PARKPULSE_SUSPECT_JUMP_FACTOR"):
            Settings.from_env({"PARKPULSE_SUSPECT_JUMP_FACTOR": bad})
    with pytest.raises(ValueError, match="greater than 1"):
        Rollup(CATALOGUE, jump_factor=1.0)
