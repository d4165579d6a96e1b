"""Figures of one employee's state as of a day: component scores per window, the named signals, and the
explanation behind a window's scores. Pure; every number comes from the terms and signals of the scoring
file, so the explanation's contributions add up to the scores by construction (one evaluation serves both).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from services.engagement.model import spec
from services.engagement.model.config import (
    COMPONENTS,
    DECAYED,
    Colleagues,
    Daily,
    Days,
    Latest,
    ScoringModel,
    Signal,
    TotalTerm,
    Weeks,
)
from services.engagement.model.state import State

TOTAL = "total"
_ORDER = {c.name: i for i, c in enumerate(spec.COUNTERS)}
_OWN = frozenset(c.name for c in spec.COUNTERS if c.own)
_GROUP_OF = {
    count.counter: count.group for rule in spec.RULES.values() for count in rule.counts if count.per is not None
}
_WORDS = {c.name: c.words for c in (*spec.COUNTERS, *spec.TOTALS)} | spec.WORDS
_CAPPED_WORDS = {
    "content": "posting",
    "conversation": "commenting and reacting",
    "helpfulness": "answering",
    "innovation": "trying and giving feedback",
}


def sat(x: float, cap: float) -> float:
    """Diminishing returns: about x for small x, never more than cap."""
    return cap * -math.expm1(-x / cap) if x > 0 else 0.0


def week(day: int) -> int:
    """The ISO week (Monday to Sunday) a day falls in, as a number (day 0 was a Thursday)."""
    return (day + 3) // 7


@dataclass(frozen=True)
class Contribution:
    component: str
    activity: str
    count: float
    points: float
    description: str


@dataclass
class Explanation:
    window: str
    scores: dict[str, float]
    contributions: list[Contribution]
    notes: list[str]


@dataclass
class Figures:
    """Component scores per window (and their total) and the named signals of ScoreChanged."""

    windows: dict[str, dict[str, float]]
    signals: dict[str, float]


@dataclass
class _Part:
    """What one term gave in one window: points, and per activity (count, points), and notes."""

    points: float = 0.0
    activities: dict[str, list[float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, activity: str, count: float, points: float) -> None:
        entry = self.activities.setdefault(activity, [0.0, 0.0])
        entry[0] += count
        entry[1] += points


@dataclass
class View:
    """A state's days as of one day: credited counts per kept day (youngest first), the colleagues."""

    as_of: int
    ages: list[int]
    counts: list[dict[str, int]]  # credited counts of each day
    keys: list[dict[str, set[str]]]  # cap group -> colleagues or values counted that day
    active: list[bool]  # any own activity that day
    colleagues: list[tuple[int, bool]]  # (age of the newest day, other department)
    state: State


def credit(paired: dict[str, dict[str, int]], caps: dict[str, int]) -> tuple[dict[str, int], dict[str, set[str]]]:
    """Credited counts of one day's per-colleague counts: per (group, colleague) at most the group's cap, the
    group's counters in the order of spec.COUNTERS (the most valuable first). A function of the counts alone."""
    credited: dict[str, int] = {}
    groups: dict[str, dict[str, list[tuple[int, str, int]]]] = {}
    for counter, per in paired.items():
        group = _GROUP_OF.get(counter)
        if group is None:
            continue
        for key, count in per.items():
            groups.setdefault(group, {}).setdefault(key, []).append((_ORDER[counter], counter, count))
    for group, by_key in groups.items():
        for entries in by_key.values():
            room = caps[group]
            for _, counter, count in sorted(entries):
                taken = min(count, room)
                room -= taken
                credited[counter] = credited.get(counter, 0) + taken
    return credited, {group: set(by_key) for group, by_key in groups.items()}


def view(state: State, as_of: int, model: ScoringModel) -> View:
    keep = model.keep_days
    days = sorted((d for d in {*state.daily, *state.paired} if as_of - keep < d <= as_of), reverse=True)
    counts, keys, active = [], [], []
    for d in days:
        credited, day_keys = credit(state.paired.get(d, {}), model.caps)
        for counter, count in state.daily.get(d, {}).items():
            credited[counter] = credited.get(counter, 0) + count
        counts.append(credited)
        keys.append(day_keys)
        raw = {*state.daily.get(d, {}), *state.paired.get(d, {})}
        active.append(any(c in _OWN for c in raw))
    colleagues = [
        (as_of - (mark >> 1), bool(mark & 1)) for mark in state.colleagues.values() if as_of - keep < mark >> 1 <= as_of
    ]
    return View(as_of, [as_of - d for d in days], counts, keys, active, colleagues, state)


def _weight(model: ScoringModel, window: str) -> Callable[[int], float]:
    if window == DECAYED:
        half_life, keep = model.windows.decay_half_life_days, model.keep_days
        return lambda age: 0.5 ** (age / half_life) if 0 <= age < keep else 0.0
    length = model.windows.days[window]
    return lambda age: 1.0 if 0 <= age < length else 0.0


def _daily(term: Daily, v: View, w: Callable[[int], float], component: str) -> _Part:
    part = _Part()
    capped = bursts = 0
    for age, counts in zip(v.ages, v.counts, strict=True):
        weight = w(age)
        if weight == 0.0:
            continue
        amounts = []
        for counter, points in term.daily.items():
            count = counts.get(counter, 0)
            if count:
                if term.count_cap is not None:
                    bursts += count > term.count_cap
                    amounts.append((counter, count, points * min(count, term.count_cap)))
                else:
                    amounts.append((counter, count, points * count))
        raw = sum(a for _, _, a in amounts)
        if raw <= 0:
            for counter, count, _ in amounts:
                part.add(counter, count, 0.0)
            continue
        if term.cap is not None:
            capped += raw >= term.cap
            day_points = sat(raw, term.cap)
        else:
            day_points = raw
        part.points += weight * day_points
        for counter, count, amount in amounts:
            part.add(counter, count, weight * day_points * amount / raw)
    if capped:
        part.notes.append(
            f"On {capped} day(s) your {_CAPPED_WORDS.get(component, component)} reached the daily cap of "
            f"{component}; more on one day adds little."
        )
    if bursts:
        part.notes.append(
            f"On {bursts} day(s) you received more than {term.count_cap} interactions; each day counts at most "
            "that many."
        )
    if term.diversity is not None and part.activities:
        group, needed = term.diversity.group, term.diversity.distinct
        distinct = len(set().union(*(k.get(group, set()) for a, k in zip(v.ages, v.keys, strict=True) if w(a))))
        factor = min(1.0, distinct / needed) ** 2
        part.points *= factor
        for entry in part.activities.values():
            entry[1] *= factor
        if factor < 1.0:
            part.notes.append(
                f"Your comments and reactions went to {distinct} different colleague(s); "
                f"{component} counts in full from {needed} and is at {factor:.0%} now."
            )
    return part


def _weeks(term: Weeks, v: View, w: Callable[[int], float], decayed: bool) -> _Part:
    newest: dict[int, int] = {}  # week -> age of its youngest day with the counter
    for age, counts in zip(v.ages, v.counts, strict=True):
        if w(age) and counts.get(term.weeks):
            newest.setdefault(week(v.as_of - age), age)
    part = _Part()
    if newest:
        regular = sum(w(age) for age in newest.values()) if decayed else float(len(newest))
        part.points = term.points * regular
        part.add(term.as_ or term.weeks, len(newest), part.points)
    return part


def _colleagues(term: Colleagues, v: View, w: Callable[[int], float]) -> _Part:
    spec_ = term.colleagues
    weights = [w(age) for age, other in v.colleagues if (other or not spec_.other_department) and w(age)]
    part = _Part()
    if weights:
        part.points = spec_.points * sat(sum(weights), spec_.cap)
        part.add(term.as_, len(weights), part.points)
    return part


def _days(term: Days, v: View, w: Callable[[int], float]) -> _Part:
    weights = [w(age) for age, counts in zip(v.ages, v.counts, strict=True) if counts.get(term.days) and w(age)]
    part = _Part()
    if weights:
        part.points = term.points * min(sum(weights), term.most)
        part.add(term.as_ or term.days, len(weights), part.points)
    return part


def _latest(term: Latest, v: View) -> _Part:
    part = _Part()
    value = v.state.completeness
    if value:
        part.points = term.points * value
        part.add(term.as_ or term.latest, value, part.points)
    return part


def _total(term: TotalTerm, v: View) -> _Part:
    part = _Part()
    amounts = [(c, v.state.totals.get(c, 0), weight) for c, weight in term.total.items()]
    raw = sum(count * weight for _, count, weight in amounts)
    if raw <= 0:
        return part
    scale = min(1.0, term.cap / raw)
    part.points = raw * scale
    for counter, count, weight in amounts:
        if count:
            part.add(counter, count, count * weight * scale)
    if raw > term.cap:
        part.notes.append(f"Pre-launch points are capped at {term.cap:g}.")
    return part


def _evaluate(model: ScoringModel, v: View, window: str) -> dict[str, list[_Part]]:
    w = _weight(model, window)
    decayed = window == DECAYED
    out: dict[str, list[_Part]] = {}
    for component, terms in model.components.items():
        parts = []
        for term in terms:
            if isinstance(term, Daily):
                parts.append(_daily(term, v, w, component))
            elif isinstance(term, Weeks):
                parts.append(_weeks(term, v, w, decayed))
            elif isinstance(term, Colleagues):
                parts.append(_colleagues(term, v, w))
            elif isinstance(term, Days):
                parts.append(_days(term, v, w))
            elif isinstance(term, Latest):
                parts.append(_latest(term, v))
            else:
                parts.append(_total(term, v))
        out[component] = parts
    return out


def _scores(parts: dict[str, list[_Part]]) -> dict[str, float]:
    scores = {component: round(sum(p.points for p in parts[component]), 6) for component in COMPONENTS}
    scores[TOTAL] = round(sum(scores.values()), 6)
    return scores


def _signal(signal: Signal, v: View, done: dict[str, float]) -> float:
    within = lambda n: [i for i, age in enumerate(v.ages) if age < n]  # noqa: E731
    if signal.sum is not None:
        return float(sum(v.counts[i].get(signal.sum, 0) for i in within(signal.days or 0)))
    if signal.weeks is not None:
        first = week(v.as_of) - (signal.iso_weeks or 0) + 1
        return float(
            len(
                {week(v.as_of - age) for age, c in zip(v.ages, v.counts, strict=True) if c.get(signal.weeks)}
                & set(range(first, week(v.as_of) + 1))
            )
        )
    if signal.active_days is not None:
        return float(sum(v.active[i] for i in within(signal.active_days)))
    if signal.colleagues is not None:
        n = signal.colleagues
        return float(sum(1 for age, other in v.colleagues if age < n and (other or not signal.other_department)))
    if signal.receivers is not None:
        group = signal.receivers
        return float(len(set().union(*(v.keys[i].get(group, set()) for i in within(signal.days or 0)))))
    if signal.ratio is not None:
        top, bottom = done[signal.ratio[0]], done[signal.ratio[1]]
        return round(top / bottom, 6) if bottom else 0.0
    if signal.latest is not None:
        return v.state.completeness
    return float(sum(v.state.totals.get(c, 0) for c in signal.total or ()))


def signals(model: ScoringModel, v: View) -> dict[str, float]:
    """The named signals, ratios after what they divide."""
    done: dict[str, float] = {}
    pending = dict(model.signals)
    while pending:
        for name, signal in list(pending.items()):
            if signal.ratio is None or all(r in done for r in signal.ratio):
                done[name] = _signal(signal, v, done)
                del pending[name]
    return {name: done[name] for name in model.signals}


def figures(state: State, as_of: int, model: ScoringModel) -> Figures:
    """Scores of every window and the decayed total, and the signals, as of the end of `as_of` (event time)."""
    v = view(state, as_of, model)
    windows = {window: _scores(_evaluate(model, v, window)) for window in model.window_names}
    return Figures(windows, signals(model, v))


def _date(day: int) -> str:
    return datetime.fromtimestamp(day * 86_400, UTC).date().isoformat()


def _describe(activity: str, count: float, points: float, decayed: bool) -> str:
    amount = f"profile {count:.0%} complete" if activity == "completeness" else f"{count:g} {_WORDS[activity]}"
    weighting = " (recent days weigh more)" if decayed else ""
    return f"{amount}: {points:.1f} points{weighting}"


def explain(state: State, as_of: int, model: ScoringModel, window: str) -> Explanation:
    """The contributions behind the `window` scores as of `as_of`, largest first, with notes in words."""
    v = view(state, as_of, model)
    parts = _evaluate(model, v, window)
    decayed = window == DECAYED
    contributions = [
        Contribution(component, activity, count, round(points, 6), _describe(activity, count, points, decayed))
        for component, terms in parts.items()
        for part in terms
        for activity, (count, points) in part.activities.items()
        if points > 0
    ]
    contributions.sort(key=lambda c: (-c.points, c.component, c.activity))
    span = (
        f"recency-weighted over the last {model.keep_days} days (half-life {model.windows.decay_half_life_days:g} days)"
        if decayed
        else f"the {model.windows.days[window]} days up to and including {_date(as_of)}"
    )
    notes = [f"Figures cover {span}, in event time."]
    if 0 <= state.top < as_of:
        notes.append(f"Nothing new since {_date(state.top)}; windowed figures shrink as older days leave the window.")
    notes.extend(note for terms in parts.values() for part in terms for note in part.notes)
    notes.append("Interactions with your own content earn nothing; reach counts different people, not repeats.")
    if state.opt_out:
        notes.append("You opted out of ranking: you appear on no leaderboard.")
    return Explanation(window, _scores(parts), contributions, notes)
