"""A bar chart of persons per year, drawn on the server as SVG (no script, so the page keeps
its strict Content-Security-Policy; only presentation attributes, no inline style)."""

from __future__ import annotations

from dataclasses import dataclass

WIDTH = 640
HEIGHT = 260
MARGIN_LEFT = 70
MARGIN_BOTTOM = 30
MARGIN_TOP = 20
TICKS = 4


@dataclass(frozen=True)
class Bar:
    year: int
    persons: int
    x: float
    y: float
    width: float
    height: float

    @property
    def label_x(self) -> float:
        return self.x + self.width / 2


@dataclass(frozen=True)
class Tick:
    value: int
    y: float


@dataclass(frozen=True)
class Chart:
    bars: list[Bar]
    ticks: list[Tick]
    width: int = WIDTH
    height: int = HEIGHT
    left: int = MARGIN_LEFT
    baseline: float = HEIGHT - MARGIN_BOTTOM


def _nice_top(value: int) -> int:
    """The axis's top: 1, 2 or 5 times a power of ten, at least ``value``."""
    top = 1
    while True:
        for step in (1, 2, 5):
            if step * top >= value:
                return step * top
        top *= 10


def bar_chart(series: list[tuple[int, int]]) -> Chart:
    plot_height = HEIGHT - MARGIN_BOTTOM - MARGIN_TOP
    top = _nice_top(max((n for _, n in series), default=0) or 1)
    slot = (WIDTH - MARGIN_LEFT) / max(len(series), 1)
    width = min(60.0, slot * 0.7)
    bars = []
    for index, (year, persons) in enumerate(series):
        height = plot_height * persons / top
        x = MARGIN_LEFT + slot * index + (slot - width) / 2
        bars.append(Bar(year, persons, x, HEIGHT - MARGIN_BOTTOM - height, width, height))
    ticks = [
        Tick(top * i // TICKS, HEIGHT - MARGIN_BOTTOM - plot_height * i / TICKS)
        for i in range(TICKS + 1)
    ]
    return Chart(bars, ticks)
