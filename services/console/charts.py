"""Bar charts as geometry for inline SVG: the templates draw what is computed here, so pages need no script
and every chart is tested without a browser. Each bar keeps its value and words for the chart's text
alternative (a table beside it)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

WIDTH = 640
LABEL_WIDTH = 200
VALUE_WIDTH = 90
BAR_HEIGHT = 22
GAP = 10


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    y: int
    width: float
    # "ok", "short" (below its mark) or "none" (nothing there): a fill and a word, never colour alone.
    state: str
    marker_x: float | None


@dataclass(frozen=True)
class BarChart:
    """Horizontal bars; `marker` draws a target line per bar (e.g. the coverage each department should have)."""

    bars: tuple[Bar, ...]
    width: int
    height: int
    label_width: int
    plot_width: int


def bar_chart(
    rows: Sequence[tuple[str, float]], targets: Sequence[float | None] | None = None, scale: float | None = None
) -> BarChart:
    """Bars scaled to the largest value (or to `scale`), each with an optional target to reach."""
    plot = WIDTH - LABEL_WIDTH - VALUE_WIDTH
    marks = list(targets) if targets is not None else [None] * len(rows)
    top = scale if scale is not None else max([v for _, v in rows] + [m or 0.0 for m in marks] + [0.0])
    bars = []
    for index, ((label, value), mark) in enumerate(zip(rows, marks, strict=True)):
        fraction = min(max(value / top, 0.0), 1.0) if top > 0 else 0.0
        state = "none" if value <= 0 else "short" if mark is not None and value < mark else "ok"
        marker = LABEL_WIDTH + plot * min(mark / top, 1.0) if mark is not None and top > 0 else None
        bars.append(Bar(label, value, GAP + index * (BAR_HEIGHT + GAP), plot * fraction, state, marker))
    return BarChart(tuple(bars), WIDTH, GAP + len(rows) * (BAR_HEIGHT + GAP), LABEL_WIDTH, plot)
