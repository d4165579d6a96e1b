"""Figures of one employee's state as of a day: component scores per window, the named signals, and the
explanation behind a window's scores. Pure; every number comes from the terms and signals of the scoring
file, so the explanation's contributions add up to the scores by construction (one evaluation serves both).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from services.engagement.model import spec
from services.engagement.model.config import (
    COMPONENTS,
    DECAYED,
    TOTAL,
    Closed,
    Colleagues,
    Daily,
    Days,
    Latest,
    Reciprocity,
    Response,
    ScoringModel,
    Signal,
    TotalTerm,
    Weeks,
)
from services.engagement.model.state import State

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
    """A state as of one day: its kept days youngest first, their credited counts, the colleagues or values
    behind each keyed count, and per window the weight of each day. Terms cache what every window shares."""

    as_of: int
    ages: list[int]
    counts: list[dict[str, int]]  # credited counts of each day
    keys: list[dict[str, set[str]]]  # keyed counter -> colleagues or values counted that day
    active: list[bool]  # any own activity that day
    weights: dict[str, list[float]]  # window -> weight of each kept day (0 outside the window)
    state: State
    cache: dict[object, object] = field(default_factory=dict)


def credit(paired: dict[str, dict[str, int]], caps: dict[str, int]) -> dict[str, int]:
    """Credited counts of one day's keyed counts: per (cap group, colleague or value) at most the group's cap,
    the group's counters in the order of spec.COUNTERS (the most valuable first); ungrouped counts in full. A
    function of the counts alone, whatever order they arrived in."""
    credited: dict[str, int] = {}
    groups: dict[str, dict[str, list[tuple[int, str, int]]]] = {}
    for counter, per in paired.items():
        group = _GROUP_OF.get(counter)
        if not group:
            credited[counter] = sum(per.values())
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
    return credited


@dataclass(frozen=True)
class Kept:
    """What every view of a state shares, whatever day it is as of: the state's days youngest first, their
    credited counts, the colleagues or values behind each keyed count, and whether it had own activity."""

    days: list[int]
    counts: list[dict[str, int]]
    keys: list[dict[str, set[str]]]
    active: list[bool]


def kept(state: State, first: int, last: int, model: ScoringModel) -> Kept:
    """The days of views as of `first` to `last`: those within the kept days of either."""
    days = sorted((d for d in {*state.daily, *state.paired} if first - model.keep_days < d <= last), reverse=True)
    counts, keys, active = [], [], []
    for d in days:
        paired = state.paired.get(d, {})
        credited = credit(paired, model.caps)
        daily = state.daily.get(d, {})
        for counter, count in daily.items():
            credited[counter] = credited.get(counter, 0) + count
        counts.append(credited)
        keys.append({counter: set(per) for counter, per in paired.items()})
        active.append(any(c in _OWN for c in daily) or any(c in _OWN for c in paired))
    return Kept(days, counts, keys, active)


def view(state: State, as_of: int, model: ScoringModel, shared: Kept | None = None) -> View:
    """The state as of the end of `as_of`; `shared` (from `kept`, covering `as_of`) saves crediting its days
    again when several days of one state are viewed."""
    k = shared or kept(state, as_of, as_of, model)
    newest = bisect_left(k.days, -as_of, key=lambda d: -d)  # days are youngest first
    oldest = bisect_left(k.days, -(as_of - model.keep_days), key=lambda d: -d)
    ages = [as_of - d for d in k.days[newest:oldest]]
    half_life = model.windows.decay_half_life_days
    weights = {name: [1.0 if age < length else 0.0 for age in ages] for name, length in model.windows.days.items()}
    weights[DECAYED] = [0.5 ** (age / half_life) for age in ages]
    span = slice(newest, oldest)
    return View(as_of, ages, k.counts[span], k.keys[span], k.active[span], weights, state)


@dataclass(frozen=True)
class _Day:
    """One day of a daily term: its points and each counter's (count, share of the raw amount)."""

    points: float
    amounts: list[tuple[str, int, float]]
    capped: bool
    burst: bool


def _daily_days(term: Daily, v: View) -> list[_Day | None]:
    """The term's points of each kept day, the same for every window (cached on the view)."""
    days: list[_Day | None] = []
    for counts in v.counts:
        present = [(c, counts[c], w) for c, w in term.daily.items() if counts.get(c)]
        if not present:
            days.append(None)
            continue
        total = sum(count for _, count, _ in present)
        if term.count_cap is not None:
            scale = min(1.0, term.count_cap / total)
            amounts = [(c, count, w * count * scale) for c, count, w in present]
            raw = sum(a for _, _, a in amounts)
            days.append(_Day(raw, amounts, False, total > term.count_cap))
        else:
            amounts = [(c, count, w * count) for c, count, w in present]
            raw = sum(a for _, _, a in amounts)
            assert term.cap is not None
            days.append(_Day(sat(raw, term.cap), amounts, raw >= term.cap, False))
    return days


def _youngest(counters: list[str], v: View) -> dict[str, int]:
    """Colleagues or values of the counters -> index of the youngest kept day they appear on (cached by the
    counters' names: many terms and signals ask for the same ones)."""
    name = ("youngest", *counters)
    cached = v.cache.get(name)
    if cached is None:
        seen: dict[str, int] = {}
        for i, keys in enumerate(v.keys):
            for counter in counters:
                for key in keys.get(counter, ()):
                    seen.setdefault(key, i)
        cached = v.cache[name] = seen
    return cached  # type: ignore[return-value]


def _distinct(counters: list[str], v: View, weights: list[float]) -> list[int]:
    """The youngest day (index) of each colleague or value of the counters within the window."""
    return [i for i in _youngest(counters, v).values() if weights[i]]


def _prefix(counter: str, v: View) -> list[int]:
    """Sums of the counter over the youngest 0, 1, 2, ... kept days (cached)."""
    key = ("prefix", counter)
    cached = v.cache.get(key)
    if cached is None:
        total, cached = 0, [0]
        for counts in v.counts:
            total += counts.get(counter, 0)
            cached.append(total)
        v.cache[key] = cached
    return cached  # type: ignore[return-value]


def _response_share(rule: Response, v: View, window: str) -> tuple[float, int]:
    """(share, colleagues who responded) of `rule` in the window (cached: every term it scales shares it)."""
    key = ("response", *rule.counters, rule.per, rule.colleagues, window)
    cached = v.cache.get(key)
    if cached is None:
        weights = v.weights[window]
        responded = _distinct(rule.counters, v, weights)
        made = sum(w * counts.get(rule.per, 0) for w, counts in zip(weights, v.counts, strict=True))
        wanted = rule.colleagues * made
        share = min(1.0, sum(weights[i] for i in responded) / wanted) if wanted else 1.0
        cached = v.cache[key] = (share, len(responded))
    return cached  # type: ignore[return-value]


def _responded(rule: Response, v: View, window: str, component: str, part: _Part, detail: bool) -> float:
    """Scales the part by the share of `rule` (colleagues who responded against what was posted); returns it."""
    share, responded = _response_share(rule, v, window)
    part.points *= share
    if detail and share < 1.0:
        weights = v.weights[window]
        count = sum(counts.get(rule.per, 0) for w, counts in zip(weights, v.counts, strict=True) if w)
        part.notes.append(
            f"{responded} different colleague(s) responded to your {count:g} {_WORDS[rule.per]}; {component} "
            f"counts in full from {rule.colleagues:g} different colleagues each and is at {share:.0%} now."
        )
    return share


def _reciprocal_share(rule: Reciprocity, v: View, window: str) -> tuple[float, int, int]:
    """(share, colleagues responded to, colleagues who responded) of `rule` in the window (cached)."""
    key = ("reciprocity", *rule.given, "/", *rule.received, rule.share, window)
    cached = v.cache.get(key)
    if cached is None:
        weights = v.weights[window]
        gave = _distinct(rule.given, v, weights)
        got = _distinct(rule.received, v, weights)
        wanted = rule.share * sum(weights[i] for i in got)
        share = min(1.0, sum(weights[i] for i in gave) / wanted) if wanted else 1.0
        cached = v.cache[key] = (share, len(gave), len(got))
    return cached  # type: ignore[return-value]


def _reciprocal(rule: Reciprocity, v: View, window: str, component: str, part: _Part, detail: bool) -> float:
    """Scales the part by the share of `rule` (given colleagues against received ones) and returns it."""
    share, gave, got = _reciprocal_share(rule, v, window)
    part.points *= share
    if detail and share < 1.0:
        as_many = "as many colleagues" if rule.share == 1 else f"{rule.share:.0%} as many colleagues"
        part.notes.append(
            f"{got} different colleague(s) responded to you and you responded to {gave}; {component} "
            f"counts in full while you respond to at least {as_many} as respond to you, and is at {share:.0%} now."
        )
    return share


def _contacts(counters: list[str], v: View) -> dict[str, list[int]]:
    """Colleague -> the kept days (indexes) with an interaction of the counters (cached)."""
    key = ("contacts", *counters)
    cached = v.cache.get(key)
    if cached is None:
        cached = {}
        for i, keys in enumerate(v.keys):
            for colleague in {k for counter in counters for k in keys.get(counter, ())}:
                cached.setdefault(colleague, []).append(i)
        v.cache[key] = cached
    return cached  # type: ignore[return-value]


def _closed_share(rule: Closed, v: View, window: str) -> tuple[float, int, float, float]:
    """(share, mates, closed days, open days) of `rule` in the window (cached: every term it damps shares it)."""
    key = ("closed", *rule.given, "/", *rule.received, rule.most[window], rule.power, window)
    cached = v.cache.get(key)
    if cached is None:
        weights = v.weights[window]
        got = _contacts(rule.received, v)
        most = rule.most[window]
        given = closed = 0.0
        mates = 0
        for colleague, days in _contacts(rule.given, v).items():
            gave = sum(weights[i] for i in days)
            given += gave
            both = min(gave, sum(weights[i] for i in got.get(colleague, ())))
            if both > most:
                closed += both - most
                mates += 1
        share = (1.0 - closed / given) ** rule.power if given else 1.0
        cached = v.cache[key] = (share, mates, closed, given)
    return cached  # type: ignore[return-value]


def _closed(rule: Closed, v: View, window: str, component: str, part: _Part, detail: bool) -> float:
    """Scales the part by the open share of the employee's exchanges (`rule`) and returns it."""
    share, mates, closed, given = _closed_share(rule, v, window)
    part.points *= share
    if detail and share < 1.0:
        part.notes.append(
            f"You and {mates} colleague(s) responded to each other on more than {rule.most[window]:g} days each, "
            f"like a closed group: {closed:.0f} of the {given:.0f} times (a colleague on a day) you responded to "
            f"someone go beyond that; {component} counts in full while your exchanges with any one colleague stay "
            f"within {rule.most[window]:g} days, and is at {share:.0%} now."
        )
    return share


def _answered(
    term: Daily | Weeks | Colleagues, v: View, window: str, component: str, part: _Part, detail: bool
) -> float:
    """Scales the part by how colleagues answer the employee's activity (responses per post, give and take, closed
    groups: whichever the term has, in that order) and returns the product of the shares."""
    factor = 1.0
    if term.response is not None and part.points:
        factor *= _responded(term.response, v, window, component, part, detail)
    if term.reciprocity is not None and part.points:
        factor *= _reciprocal(term.reciprocity, v, window, component, part, detail)
    if term.closed is not None and part.points:
        factor *= _closed(term.closed, v, window, component, part, detail)
    return factor


def _capped_words(term: Daily, component: str) -> str:
    """What reached a daily cap: the one counter a term counts, or the component's activity."""
    if len(term.daily) == 1:
        return _WORDS[next(iter(term.daily))]
    return _CAPPED_WORDS.get(component, component)


def _daily(term: Daily, v: View, window: str, component: str, detail: bool) -> _Part:
    days = v.cache.get(id(term))
    if days is None:
        days = v.cache[id(term)] = _daily_days(term, v)
    weights = v.weights[window]
    part = _Part()
    part.points = sum(w * d.points for w, d in zip(weights, days, strict=True) if w and d is not None)
    factor = 1.0
    if term.diversity is not None and part.points:
        distinct = len(_distinct(term.diversity.counters, v, weights))
        factor = min(1.0, distinct / term.diversity.distinct) ** 2
        part.points *= factor
        if detail and factor < 1.0:
            part.notes.append(
                f"Your comments and reactions went to {distinct} different colleague(s); "
                f"{component} counts in full from {term.diversity.distinct} and is at {factor:.0%} now."
            )
    if term.repeats is not None and part.points:
        counters = term.repeats.counters
        colleagues = sum(weights[i] for i in _distinct(counters, v, weights))
        given = sum(w * sum(counts.get(c, 0) for c in counters) for w, counts in zip(weights, v.counts, strict=True))
        share = min(1.0, term.repeats.most * colleagues / given) if given else 1.0
        part.points *= share
        factor *= share
        if detail and share < 1.0:
            part.notes.append(
                f"You interacted with the same colleagues again and again, {given / colleagues:.1f} times each on "
                f"average; {component} counts in full up to "
                f"{term.repeats.most:g} times per colleague and is at {share:.0%} now."
            )
    factor *= _answered(term, v, window, component, part, detail)
    if not detail:
        return part
    capped = bursts = 0
    for weight, day in zip(weights, days, strict=True):
        if not weight or day is None:
            continue
        capped += day.capped
        bursts += day.burst
        raw = sum(a for _, _, a in day.amounts)
        for counter, count, amount in day.amounts:
            share = weight * day.points * amount / raw * factor if raw else 0.0
            part.add(term.as_ or counter, count, share)
    if capped:
        part.notes.append(
            f"On {capped} day(s) your {_capped_words(term, component)} reached the daily cap of "
            f"{component}; more on one day adds little."
        )
    if bursts:
        part.notes.append(
            f"On {bursts} day(s) you received more than {term.count_cap} interactions; each day counts at most "
            "that many."
        )
    return part


def _weeks(term: Weeks, v: View, window: str, component: str, detail: bool) -> _Part:
    weights = v.weights[window]
    newest: dict[int, float] = {}  # week -> weight of its youngest day with the counter
    for weight, age, counts in zip(weights, v.ages, v.counts, strict=True):
        if weight and counts.get(term.weeks):
            newest.setdefault(week(v.as_of - age), weight)
    part = _Part()
    if newest:
        part.points = term.points * sum(newest.values())
        _answered(term, v, window, component, part, detail)
        part.add(term.as_ or term.weeks, len(newest), part.points)
    return part


def _colleagues(term: Colleagues, v: View, window: str, component: str, detail: bool) -> _Part:
    weights = v.weights[window]
    seen = _distinct(term.colleagues.counters, v, weights)
    part = _Part()
    if seen:
        part.points = term.colleagues.points * sat(sum(weights[i] for i in seen), term.colleagues.cap)
        _answered(term, v, window, component, part, detail)
        part.add(term.as_, len(seen), part.points)
    return part


def _days(term: Days, v: View, window: str) -> _Part:
    picked = [w for w, counts in zip(v.weights[window], v.counts, strict=True) if w and counts.get(term.days)]
    part = _Part()
    if picked:
        part.points = term.points * min(sum(picked), term.most)
        part.add(term.as_ or term.days, len(picked), part.points)
    return part


def _latest(term: Latest, v: View) -> _Part:
    part = _Part()
    value = v.state.completeness
    if value:
        part.points = term.points * value
        part.add(term.as_ or term.latest, value, part.points)
    return part


def _total(term: TotalTerm, v: View, detail: bool) -> _Part:
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
    if detail and raw > term.cap:
        part.notes.append(f"Pre-launch points are capped at {term.cap:g}.")
    return part


def _evaluate(model: ScoringModel, v: View, window: str, detail: bool = False) -> dict[str, list[_Part]]:
    out: dict[str, list[_Part]] = {}
    for component, terms in model.components.items():
        parts = []
        for term in terms:
            if isinstance(term, Daily):
                parts.append(_daily(term, v, window, component, detail))
            elif isinstance(term, Weeks):
                parts.append(_weeks(term, v, window, component, detail))
            elif isinstance(term, Colleagues):
                parts.append(_colleagues(term, v, window, component, detail))
            elif isinstance(term, Days):
                parts.append(_days(term, v, window))
            elif isinstance(term, Latest):
                parts.append(_latest(term, v))
            else:
                parts.append(_total(term, v, detail))
        out[component] = parts
    return out


def _scores(parts: dict[str, list[_Part]]) -> dict[str, float]:
    scores = {component: round(sum(p.points for p in parts[component]), 6) for component in COMPONENTS}
    scores[TOTAL] = round(sum(scores.values()), 6)
    return scores


def _signal(signal: Signal, v: View, done: dict[str, float]) -> float:
    if signal.sum is not None or signal.colleagues is not None:
        recent = bisect_left(v.ages, signal.days or 0)  # the kept days younger than `days`: a prefix
        if signal.colleagues is not None:
            return float(sum(1 for i in _youngest(signal.colleagues, v).values() if i < recent))
        return float(sum(_prefix(c, v)[recent] for c in signal.sum or ()))
    if signal.weeks is not None or signal.active_weeks is not None:
        current = week(v.as_of)
        first = current - (signal.iso_weeks or signal.active_weeks or 0) + 1
        if signal.weeks is not None:
            days = [age for age, c in zip(v.ages, v.counts, strict=True) if c.get(signal.weeks)]
        else:
            days = [age for age, active in zip(v.ages, v.active, strict=True) if active]
        return float(len({week(v.as_of - age) for age in days} & set(range(first, current + 1))))
    if signal.active_days is not None:
        return float(sum(v.active[: bisect_left(v.ages, signal.active_days)]))
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


def flatten(signals: Mapping[str, float], windows: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Signals and window scores under the metric names rules and distributions use: a signal's own name and
    `score.<window>.<component>`."""
    flat = {name: float(value) for name, value in signals.items()}
    for window, components in windows.items():
        for component, value in components.items():
            flat[f"score.{window}.{component}"] = float(value)
    return flat


def figures(state: State, as_of: int, model: ScoringModel, shared: Kept | None = None) -> Figures:
    """Scores of every window and the decayed total, and the signals, as of the end of `as_of` (event time);
    `shared` as for `view`."""
    v = view(state, as_of, model, shared)
    windows = {window: _scores(_evaluate(model, v, window)) for window in model.window_names}
    return Figures(windows, signals(model, v))


def iso_date(day: int) -> str:
    """A day (UTC days since 1970-01-01) as YYYY-MM-DD."""
    return datetime.fromtimestamp(day * 86_400, UTC).date().isoformat()


def _describe(activity: str, count: float, points: float, decayed: bool) -> str:
    amount = f"profile {count:.0%} complete" if activity == "completeness" else f"{count:g} {_WORDS[activity]}"
    weighting = " (recent days weigh more)" if decayed else ""
    return f"{amount}: {points:.1f} points{weighting}"


def explain(state: State, as_of: int, model: ScoringModel, window: str) -> Explanation:
    """The contributions behind the `window` scores as of `as_of`, largest first, with notes in words."""
    v = view(state, as_of, model)
    parts = _evaluate(model, v, window, detail=True)
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
        else f"the {model.windows.days[window]} days up to and including {iso_date(as_of)}"
    )
    notes = [f"Figures cover {span}, in event time."]
    if 0 <= state.top < as_of:
        notes.append(
            f"Nothing new since {iso_date(state.top)}; windowed figures shrink as older days leave the window."
        )
    notes.extend(dict.fromkeys(note for terms in parts.values() for part in terms for note in part.notes))
    notes.append("Interactions with your own content earn nothing; reach counts different people, not repeats.")
    if state.opt_out:
        notes.append("You opted out of ranking: you appear on no leaderboard.")
    return Explanation(window, _scores(parts), contributions, notes)
