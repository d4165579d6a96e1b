"""The emerging list (pure): people on track for the ambassador badge who do not hold it yet, with the date they
would meet its criteria.

On track means every criterion is at least at its keep threshold, the band in which a holder keeps the badge:
the person already does what an ambassador does, only not yet as much as the grant asks. The expected date is
a reckoning the programme owner can follow: a figure counted over a window grows at the pace the window shows
(its value spread over the window's days), so the missing amount takes that many more days, and then the
confirmation period. A figure with no pace (none yet, or one that is not counted over days, such as profile
completeness) gives no date. The list is for the programme owner alone (decision 0024): nothing on it is sent
to the person or anyone else.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.recognition.calibration import Calibration
from services.recognition.rules import Bar, Holding, Rules, fmt, measure, qualifies, reached

_WINDOW = re.compile(r"^(\d+)([dw])$")


def window_days(window: str) -> int | None:
    """Days a window covers (`30d`, `12w`); None for a figure that is not counted over days."""
    match = _WINDOW.match(window)
    if match is None:
        return None
    return int(match.group(1)) * (7 if match.group(2) == "w" else 1)


@dataclass(frozen=True)
class Outlook:
    """One person's way to the badge: on track or not, since when every criterion is at grant, and when."""

    on_track: bool
    qualifying_since: datetime | None
    expected_at: datetime | None
    expected: str


Wait = tuple[int, int, str, float, float]  # days to go, window days, label, value, grant threshold


def _wait(bar: Bar, value: float) -> Wait | None:
    """Days until a figure below its grant threshold reaches it at its window's pace; None without a pace."""
    days = window_days(bar.criterion.covers)
    if days is None or value <= 0:
        return None
    return (math.ceil((bar.grant - value) * days / value), days, bar.criterion.label, value, bar.grant)


def outlook(
    rules: Rules,
    figures: Mapping[str, float],
    holding: Holding | None,
    now: datetime,
    calibration: Calibration | None,
) -> Outlook:
    """Where the person stands on the coverage badge (the Intranet Ambassador) as of `now`, their figures' time."""
    badge_id = rules.coverage.badge
    tier = rules.badge(badge_id).ordered_tiers()[0]
    rule = rules.badge(badge_id).tiers[tier]
    values = measure(rule, figures, calibration)
    if holding is not None and holding.held:
        return Outlook(False, None, None, "holds the badge")
    if not all(v >= bar.keep and bar.grant != math.inf for bar, v in values):
        return Outlook(False, None, None, "not on track")
    confirm = timedelta(days=rule.confirm_days)
    if qualifies(rule, values):
        since = holding.qualifying_since if holding is not None else None
        return Outlook(
            True,
            since,
            (since or now) + confirm,
            f"meets the criteria; granted after the {rule.confirm_days}-day confirmation if it holds",
        )
    needed: list[tuple[Bar, float, Wait | None]] = []
    group: list[tuple[Bar, float, Wait | None]] = []
    for bar, value in values:
        if value < bar.grant:
            (group if rule.in_group(bar.criterion) else needed).append((bar, value, _wait(bar, value)))
    if rule.at_least is not None:
        # Of the group's criteria below grant, only as many as `count` still asks for, the soonest first.
        group.sort(key=lambda g: math.inf if g[2] is None else g[2][0])
        group = group[: rule.at_least.count - reached(rule, values)]
    for bar, value, wait in needed + group:
        if wait is None:
            c = bar.criterion
            said = f"{c.label} {fmt(value, c.format)} of {fmt(bar.grant, c.format)}"
            return Outlook(True, None, None, f"no date: {said} does not grow at a pace")
    wait, days, label, value, grant = max(w for _, _, w in needed + group if w is not None)
    return Outlook(
        True,
        None,
        now + timedelta(days=wait) + confirm,
        f"{label} {fmt(value)} of {fmt(grant)}: {wait} more days at the pace of the last {days} days, then the "
        f"{rule.confirm_days}-day confirmation",
    )
