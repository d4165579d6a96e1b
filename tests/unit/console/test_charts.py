"""Chart geometry: bars scale to the largest value or a given scale, targets become marks, and a bar's state
(reached, short of its target, nothing) is named so the picture never relies on colour alone."""

from __future__ import annotations

from services.console.charts import LABEL_WIDTH, bar_chart


def test_bars_scale_to_the_largest_value() -> None:
    chart = bar_chart([("detected", 20.0), ("accepted", 10.0), ("lapsed", 0.0)])
    widths = [b.width for b in chart.bars]
    assert widths[0] == chart.plot_width and widths[1] == chart.plot_width / 2 and widths[2] == 0
    assert [b.state for b in chart.bars] == ["ok", "ok", "none"]
    assert chart.height > chart.bars[-1].y and len({b.y for b in chart.bars}) == 3


def test_a_fixed_scale_and_targets_mark_what_falls_short() -> None:
    chart = bar_chart([("finance", 0.05), ("it", 0.02), ("sales", 0.0)], [0.04, 0.04, 0.04], scale=0.1)
    assert [b.state for b in chart.bars] == ["ok", "short", "none"]
    assert chart.bars[0].marker_x == LABEL_WIDTH + chart.plot_width * 0.4
    assert chart.bars[0].width == chart.plot_width / 2


def test_nothing_at_all_draws_empty_bars() -> None:
    chart = bar_chart([("a", 0.0)], [None])
    assert chart.bars[0].width == 0 and chart.bars[0].marker_x is None
