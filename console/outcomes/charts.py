"""Trend charts as geometry: where each bar, line and label goes in an SVG the template draws.

No chart library and no script: the page's CSP allows neither inline styles nor a CDN, and a
few rectangles and polylines say what is needed. Colours come from classes (s0, s1, ...) in
the stylesheet; every mark carries a <title> with its exact value.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

WIDTH, HEIGHT = 600, 190
LEFT, RIGHT, TOP, BOTTOM = 52, 10, 10, 24
MAX_X_LABELS = 8
Formatter = Callable[[float], str]


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    series: int
    title: str


@dataclass(frozen=True)
class Dot:
    x: float
    y: float
    title: str


@dataclass(frozen=True)
class Line:
    points: str
    series: int
    label: str
    dots: list[Dot]


@dataclass(frozen=True)
class Tick:
    x: float
    y: float
    text: str


@dataclass
class Chart:
    id: str
    title: str
    legend: list[tuple[int, str]]
    width: int = WIDTH
    height: int = HEIGHT
    bars: list[Bar] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    y_ticks: list[Tick] = field(default_factory=list)
    x_ticks: list[Tick] = field(default_factory=list)
    plot_left: float = LEFT
    plot_right: float = WIDTH - RIGHT
    baseline: float = HEIGHT - BOTTOM

    @property
    def empty(self) -> bool:
        return not self.bars and not any(line.dots for line in self.lines)


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten at or above value (1 for nothing)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power:
            return step * power
    return 10 * power


# Steps a duration axis is read in: seconds, minutes, hours, days, weeks.
DURATION_STEPS = (
    1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 14400, 21600, 43200,
    86400, 172800, 604800,
)  # fmt: skip
# Where a log axis of durations has its lines: 1 s, 10 s, 1 min, 10 min, 1 h, 10 h, 4 days.
LOG_DURATION_TICKS = (1, 10, 60, 600, 3600, 36000, 345600)


@dataclass(frozen=True)
class Scale:
    """Values to heights: linear from 0 to the last tick, or logarithmic between the ticks."""

    ticks: tuple[float, ...]
    log: bool = False

    def fraction(self, value: float) -> float:
        low, high = self.ticks[0], self.ticks[-1]
        if self.log:
            value = min(max(value, low), high)
            return (math.log10(value) - math.log10(low)) / (math.log10(high) - math.log10(low))
        return min(max(value, 0.0), high) / high


def linear(top: float) -> Scale:
    return Scale(tuple(top * i / 4 for i in range(5)))


def duration_scale(highest: float) -> Scale:
    """Four equal steps of a readable duration (15 min, 1 h, ...) up to at least `highest`."""
    step = next((s for s in DURATION_STEPS if highest <= 4 * s), None)
    if step is None:
        step = math.ceil(highest / 4 / 604800) * 604800
    return linear(4.0 * step)


def log_duration_scale(lowest: float, highest: float) -> Scale:
    """Decades of durations around the values: medians and tails fit on one chart."""
    below = [t for t in LOG_DURATION_TICKS if t <= max(lowest, 1)] or [1]
    above = [t for t in LOG_DURATION_TICKS if t >= highest] or [LOG_DURATION_TICKS[-1]]
    ticks = [t for t in LOG_DURATION_TICKS if below[-1] <= t <= above[0]]
    return Scale(tuple(ticks if len(ticks) > 1 else [1, 10]), log=True)


def _frame(
    chart: Chart, labels: Sequence[str], scale: Scale, fmt: Formatter
) -> tuple[Callable[[int], float], Callable[[float], float], float]:
    """Axis ticks on the chart; (x of a slot's centre, y of a value, a slot's width)."""
    plot_width = chart.plot_right - chart.plot_left
    plot_height = chart.baseline - TOP
    slot = plot_width / max(len(labels), 1)

    def x_of(index: int) -> float:
        return round(chart.plot_left + slot * (index + 0.5), 1)

    def y_of(value: float) -> float:
        return round(chart.baseline - plot_height * scale.fraction(value), 1)

    chart.y_ticks = [Tick(chart.plot_left - 6, y_of(value), fmt(value)) for value in scale.ticks]
    every = max(1, math.ceil(len(labels) / MAX_X_LABELS))
    shown = [i for i in range(len(labels)) if i % every == 0]
    if shown and shown[-1] != len(labels) - 1:
        # The last bucket is always labelled; the one before it makes room if too close.
        if len(labels) - 1 - shown[-1] < every / 2 + 1:
            shown.pop()
        shown.append(len(labels) - 1)
    chart.x_ticks = [Tick(x_of(i), chart.height - 6, labels[i]) for i in shown]
    return x_of, y_of, slot


def stacked_bars(
    *,
    id: str,
    title: str,
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float]]],
    fmt: Formatter,
    percent: bool = False,
) -> Chart:
    """One bar per label, its series stacked; percent draws each bar as shares of its total."""
    chart = Chart(id=id, title=title, legend=[(i, name) for i, (name, _) in enumerate(series)])
    totals = [sum(values[i] for _, values in series) for i in range(len(labels))]
    scale = linear(100.0 if percent else nice_ceiling(max(totals, default=0)))
    x_of, y_of, slot = _frame(chart, labels, scale, (lambda v: f"{v:g}%") if percent else fmt)
    width = round(max(slot * 0.7, 1.0), 1)
    for i, label in enumerate(labels):
        below = 0.0
        for index, (name, values) in enumerate(series):
            value = values[i]
            if not value or not totals[i]:
                continue
            shown = 100 * value / totals[i] if percent else value
            y_top, y_bottom = y_of(below + shown), y_of(below)
            words = f"{label} · {name}: {fmt(value)}"
            if percent:
                words += f" ({shown:.1f}%)"
            chart.bars.append(
                Bar(x_of(i) - width / 2, y_top, width, round(y_bottom - y_top, 1), index, words)
            )
            below += shown
    return chart


def line_chart(
    *,
    id: str,
    title: str,
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None]]],
    fmt: Formatter,
    scale: Callable[[float, float], Scale] | None = None,
) -> Chart:
    """One line per series; a bucket without a value leaves a gap, not a zero.

    scale(lowest, highest) chooses the axis; by default linear from 0 to a round number.
    """
    chart = Chart(id=id, title=title, legend=[(i, name) for i, (name, _) in enumerate(series)])
    known = [v for _, values in series for v in values if v is not None]
    lowest, highest = min(known, default=0.0), max(known, default=0.0)
    axis = scale(lowest, highest) if scale else linear(nice_ceiling(highest))
    x_of, y_of, _ = _frame(chart, labels, axis, fmt)
    for index, (name, values) in enumerate(series):
        dots = [
            Dot(x_of(i), y_of(value), f"{labels[i]} · {name}: {fmt(value)}")
            for i, value in enumerate(values)
            if value is not None
        ]
        points = " ".join(f"{dot.x},{dot.y}" for dot in dots)
        chart.lines.append(Line(points=points, series=index, label=name, dots=dots))
    return chart
