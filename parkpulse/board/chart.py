"""Server-side SVG line charts: actual against the plan path, with units, gridlines and a zero
baseline where values cannot be negative. No script and nothing fetched: renders offline."""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from parkpulse.vocabulary import STATUS_COLOUR, Lang, text

WIDTH, HEIGHT = 420, 200
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 24, 34
ACTUAL_COLOUR, PLAN_COLOUR, GRID_COLOUR = "#0969da", "#57606a", "#d0d7de"


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2 or 5 × 10^k apart) covering [low, high], low and high included."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return [0.0]
    if high < low:
        low, high = high, low
    if high - low <= 1e-9 * max(1.0, abs(low), abs(high)):  # one value: a range around it
        high = low + max(abs(low), 1.0)
    raw = (high - low) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    # The floor of the quotient, corrected (not fudged) where float division lands just short of
    # a whole step: an epsilon would swallow a real value a hair below zero (-0.25 on a 2.5e8
    # step), leaving it under the lowest tick.
    first = math.floor(low / step) * step
    if first + step <= low:
        first += step
    ticks = []
    value = first
    while value < high + step * 1e-9 or len(ticks) < 2:
        ticks.append(round(value, 10))
        value += step
    if ticks[-1] < high:  # float steps can stop just short
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def _tick_label(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def _polyline(points: Sequence[tuple[float, float]], colour: str, dash: str, cls: str) -> str:
    if not points:
        return ""
    coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    dashed = f' stroke-dasharray="{dash}"' if dash else ""
    return (
        f'<polyline class="{cls}" fill="none" stroke="{colour}" stroke-width="2"{dashed}'
        f' points="{coords}"/>'
    )


def line_chart(
    rows: Sequence[Mapping[str, Any]],
    unit: str,
    lang: Lang,
    nonnegative: bool = True,
    width: int = WIDTH,
    height: int = HEIGHT,
) -> str:
    """Actual (solid, dots coloured by status) and expected on the plan path (dashed) by month.

    ``unit`` titles the y axis; ``nonnegative`` puts the axis floor at zero (amounts, counts,
    shares) so a bar of the chart never suggests a value below zero.
    """
    rows = [r for r in rows if r.get("actual") is not None or r.get("expected") is not None]
    if not rows:
        return (
            f'<svg class="chart" width="{width}" height="40" role="img">'
            f'<text x="8" y="24">{html.escape(text("no_data_text", lang))}</text></svg>'
        )
    ticks = _value_ticks(rows, nonnegative)
    frame = _Frame(width, height, len(rows), ticks[0], ticks[-1])
    parts = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" role="img" font-family="sans-serif">',
        f'<text class="unit" x="4" y="14" font-size="11">{html.escape(unit)}</text>',
        *_gridlines(frame, ticks),
        *_month_labels(frame, rows),
        *_series(frame, rows),
        _legend(frame, lang),
        "</svg>",
    ]
    return "".join(parts)


@dataclass(frozen=True, slots=True)
class _Frame:
    """The chart's size and scale: where the i-th of ``n`` months and a value land."""

    width: int
    height: int
    n: int
    y_low: float
    y_high: float

    def x(self, i: int) -> float:
        plot_w = self.width - LEFT - RIGHT
        return LEFT + plot_w * (i / (self.n - 1) if self.n > 1 else 0.5)

    def y(self, v: float) -> float:
        plot_h = self.height - TOP - BOTTOM
        return TOP + plot_h * (1 - (v - self.y_low) / (self.y_high - self.y_low))


def _value_ticks(rows: Sequence[Mapping[str, Any]], nonnegative: bool) -> list[float]:
    """The y axis's ticks: covering every actual and expected value (and zero if nonnegative)."""
    values = [float(v) for r in rows for v in (r.get("actual"), r.get("expected")) if v is not None]
    low, high = min(values), max(values)
    if nonnegative:
        low = 0.0
    return nice_ticks(low, high)


def _gridlines(frame: _Frame, ticks: Sequence[float]) -> list[str]:
    """A horizontal line and a label per tick; the zero line drawn darker as the baseline."""
    lines = []
    for tick in ticks:
        ty = frame.y(tick)
        zero = tick == 0
        lines.append(
            f'<line class="{"baseline" if zero else "grid"}" x1="{LEFT}" '
            f'x2="{frame.width - RIGHT}" '
            f'y1="{ty:.1f}" y2="{ty:.1f}" stroke="{"#1f2328" if zero else GRID_COLOUR}" '
            f'stroke-width="{1.2 if zero else 0.6}"/>'
            f'<text x="{LEFT - 4}" y="{ty + 4:.1f}" font-size="10" text-anchor="end">'
            f"{_tick_label(tick)}</text>"
        )
    return lines


# The width of one character of a 10 px label, generous (DejaVu Sans: digits 6.36 px, "-" 3.61).
LABEL_CHAR_PX = 6.4
LABEL_GAP_PX = 6


def _label_extent(frame: _Frame, i: int, label: str) -> tuple[float, float]:
    """Where month ``i``'s label is drawn, left to right: the first anchored at its start, the
    last at its end, the others centred on their month."""
    x, width = frame.x(i), len(label) * LABEL_CHAR_PX
    if frame.n > 1 and i == 0:
        return x, x + width
    if frame.n > 1 and i == frame.n - 1:
        return x - width, x
    return x - width / 2, x + width / 2


def _labelled_months(frame: _Frame, rows: Sequence[Mapping[str, Any]]) -> list[int]:
    """The months labelled on the x axis: the first and last and evenly spaced ones between,
    no two labels closer than LABEL_GAP_PX as drawn (the last month wins over those before)."""
    n = frame.n

    def clear(a: int, b: int) -> bool:
        left = _label_extent(frame, a, str(rows[a]["period"]))
        right = _label_extent(frame, b, str(rows[b]["period"]))
        return right[0] - left[1] >= LABEL_GAP_PX

    shown: list[int] = []
    for i in sorted({0, n - 1, *range(0, n, max(1, math.ceil(n / 7)))}):
        if i == n - 1 and i > 0:
            while len(shown) > 1 and not clear(shown[-1], i):
                shown.pop()
            if clear(shown[-1], i):
                shown.append(i)
        elif not shown or clear(shown[-1], i):
            shown.append(i)
    return shown


def _month_labels(frame: _Frame, rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The x axis's period labels, the first anchored at its start and the last at its end."""
    n = frame.n
    anchor = {0: "start", n - 1: "end"} if n > 1 else {}
    return [
        f'<text x="{frame.x(i):.1f}" y="{frame.height - BOTTOM + 14}" font-size="10" '
        f'text-anchor="{anchor.get(i, "middle")}">{html.escape(str(rows[i]["period"]))}</text>'
        for i in _labelled_months(frame, rows)
    ]


def _series(frame: _Frame, rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The plan path (dashed), the actual line over it, a dot per actual in its status colour."""
    x, y = frame.x, frame.y
    expected = [
        (x(i), y(r["expected"])) for i, r in enumerate(rows) if r.get("expected") is not None
    ]
    actual = [(x(i), y(r["actual"])) for i, r in enumerate(rows) if r.get("actual") is not None]
    return [
        _polyline(expected, PLAN_COLOUR, "5,4", "plan"),
        _polyline(actual, ACTUAL_COLOUR, "", "actual"),
        *(
            f'<circle cx="{x(i):.1f}" cy="{y(r["actual"]):.1f}" r="2.5" '
            f'fill="{STATUS_COLOUR.get(r.get("status", ""), "#8c959f")}"/>'
            for i, r in enumerate(rows)
            if r.get("actual") is not None
        ),
    ]


def _legend(frame: _Frame, lang: Lang) -> str:
    """A solid sample for the actual and a dashed one for the plan path, under the x axis."""
    legend_y = frame.height - 6
    return (
        f'<line x1="{LEFT}" x2="{LEFT + 18}" y1="{legend_y - 4}" y2="{legend_y - 4}" '
        f'stroke="{ACTUAL_COLOUR}" stroke-width="2"/>'
        f'<text x="{LEFT + 22}" y="{legend_y}" font-size="10">{html.escape(text("actual", lang))}'
        f"</text>"
        f'<line x1="{LEFT + 110}" x2="{LEFT + 128}" y1="{legend_y - 4}" y2="{legend_y - 4}" '
        f'stroke="{PLAN_COLOUR}" stroke-width="2" stroke-dasharray="5,4"/>'
        f'<text x="{LEFT + 132}" y="{legend_y}" font-size="10">'
        f"{html.escape(text('plan_path', lang))}</text>"
    )
