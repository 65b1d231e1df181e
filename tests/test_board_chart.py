"""The board's SVG chart: round ticks that cover the data, a zero floor where values cannot be
negative, and the unit on the axis."""

from __future__ import annotations

import itertools
import math
import re

from hypothesis import given
from hypothesis import strategies as st

from parkpulse.board.chart import line_chart, nice_ticks
from parkpulse.board.pages import rank_zones

finite = st.floats(-1e9, 1e9, allow_nan=False)


@given(finite, finite)
def test_ticks_cover_the_range_in_even_round_steps(a: float, b: float) -> None:
    low, high = min(a, b), max(a, b)
    ticks = nice_ticks(low, high)
    assert ticks[0] <= low + 1e-6 * max(1, abs(low)) and ticks[-1] >= high - 1e-6 * max(
        1, abs(high)
    )
    step = ticks[1] - ticks[0]
    assert all(abs((y - x) - step) <= 1e-6 * step for x, y in itertools.pairwise(ticks))
    assert f"{step / 10 ** math.floor(math.log10(step)):.6f}" in (
        "1.000000",
        "2.000000",
        "2.500000",
        "5.000000",
    )
    assert len(ticks) <= 12


def test_worked_ticks() -> None:
    assert nice_ticks(0, 164.2) == [0, 50, 100, 150, 200]
    # (18.5 − 6)/4 = 3.125 → the next round step is 5
    assert nice_ticks(6.0, 18.5) == [5, 10, 15, 20]


ROWS = [
    {"period": "2023-03", "actual": 40.0, "expected": 42.0, "status": "at_risk"},
    {"period": "2023-06", "actual": 80.0, "expected": 84.0, "status": "at_risk"},
    {"period": "2023-12", "actual": 164.2, "expected": 168.45, "status": "at_risk"},
]


def test_amounts_start_at_zero_with_a_baseline_and_the_unit() -> None:
    svg = line_chart(ROWS, "亿元", "zh")
    assert '<text class="unit" x="4" y="14" font-size="11">亿元</text>' in svg
    assert svg.count('class="baseline"') == 1 and svg.count('class="grid"') == 4
    assert ">0</text>" in svg and "实际" in svg and "规划路径" in svg


def test_growth_rates_keep_their_own_floor() -> None:
    rows = [dict(r, actual=10 + r["actual"] / 100, expected=12.0) for r in ROWS]
    svg = line_chart(rows, "%", "en", nonnegative=False)
    assert 'class="baseline"' not in svg  # 10.4..12 % is drawn on 10..12, no zero line
    assert re.search(r">10</text>", svg) and "actual" in svg


MONTH_LABEL = re.compile(r'<text x="([\d.]+)" y="180" [^>]*>(\d{4}-\d{2})</text>')


def _month_labels(n: int, width: int = 420) -> list[tuple[float, str]]:
    """The x axis's labels of a chart of ``n`` months (height 200: labels sit at y=180)."""
    rows = [{"period": f"{2020 + i // 12}-{i % 12 + 1:02d}", "actual": float(i)} for i in range(n)]
    svg = line_chart(rows, "亿元", "en", width=width, height=200)
    return [(float(x), period) for x, period in MONTH_LABEL.findall(svg)]


# "2020-01" at 10 px in DejaVu Sans (what headless Chromium draws): six digits of 6.36 px and
# a hyphen of 3.61 px.
LABEL_PX = 6 * 6.36 + 3.61


def _drawn(labels: list[tuple[float, str]], n: int) -> list[tuple[float, float]]:
    """Each label's left and right edge as drawn: the first from its x, the last up to its x
    (text-anchor start and end), the others centred."""
    out = []
    for x, period in labels:
        if n > 1 and period == "2020-01":
            out.append((x, x + LABEL_PX))
        elif n > 1 and period == f"{2020 + (n - 1) // 12}-{(n - 1) % 12 + 1:02d}":
            out.append((x - LABEL_PX, x))
        else:
            out.append((x - LABEL_PX / 2, x + LABEL_PX / 2))
    return out


def test_a_year_of_months_labels_every_other_and_the_last() -> None:
    # 12 months on 352 px are 32 px apart, labels 44.8 px wide (7 × 6.4) kept 6 px apart:
    # January is drawn from x = 56 to 100.8, so March (centred at 120, from 97.6) is drawn over
    # it and May (from 161.6) is the first clear; every other month after; December, drawn up to
    # x = 408 (from 363.2), takes November's place (centred at 376, up to 398.4).
    labels = [period for _, period in _month_labels(12)]
    assert labels == ["2020-01", "2020-05", "2020-07", "2020-09", "2020-12"]
    # 36 months (the board's three years) are 10.06 px apart: every sixth is a candidate; July
    # 2020 (from 93.9) is drawn over January, December 2022 over July 2022 (up to 380.1).
    labels = [period for _, period in _month_labels(36)]
    assert labels == ["2020-01", "2021-01", "2021-07", "2022-01", "2022-12"]


@given(st.integers(1, 150), st.sampled_from([200, 420, 900]))
def test_month_labels_never_overlap_and_keep_the_first_and_last(n: int, width: int) -> None:
    labels = _month_labels(n, width)
    assert labels[0][1] == "2020-01"
    drawn = _drawn(labels, n)
    assert all(right[0] - left[1] >= 0 for left, right in itertools.pairwise(drawn)), labels
    if n > 1 and width - 56 - 12 >= 2 * LABEL_PX + 8:  # room for both ends
        assert labels[-1][1] == f"{2020 + (n - 1) // 12}-{(n - 1) % 12 + 1:02d}"


def test_zones_rank_by_share_on_track() -> None:
    rows = [
        {"zone": "a", "status": "behind"},
        {"zone": "a", "status": "on_track"},
        {"zone": "b", "status": "achieved"},
        {"zone": "b", "status": "no_data"},
        {"zone": "c", "status": "not_evaluated"},
    ]
    ranked = rank_zones(rows)
    assert [(r.zone, r.share_on_track) for r in ranked] == [("b", 1.0), ("a", 0.5), ("c", None)]
