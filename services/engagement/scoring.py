"""The engagement score, pure: one Envelope -> per-employee ops, and one employee's state -> figures.

Ops are tiny instructions the store applies atomically per employee (docs/engagement.md): counters in
daily buckets, distinct colleagues with their newest day, profile and pilot state. Every rule a person
may ask about (self-interactions, pair caps, rings, bursts, windows, decay) lives here or in the store's
apply script, and `reference.py` re-derives the same figures in plain Python for the tests.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import dataclass, field
from functools import lru_cache
from hashlib import blake2b
from operator import mul
from typing import NamedTuple

from catalyst.events.v1 import envelope_pb2, interactions_pb2

from services.engagement.config import ScoringConfig

DAY_SECONDS = 86_400
DAY_MS = DAY_SECONDS * 1000
COUNTERS = (
    "posts",
    "comments",
    "reactions",
    "answers",
    "answers_own",
    "accepted",
    "accepted_own",
    "trials",
    "feedback",
    "suggestions",
    "participation",
    "profile_updates",
    "received",
    "actions",
)
C = {name: i for i, name in enumerate(COUNTERS)}
# Counters of the employee's own doing; "actions" counts own acts that earned no credit (over a pair cap, pilot).
OWN = tuple(
    C[n]
    for n in (
        "posts",
        "comments",
        "reactions",
        "answers",
        "trials",
        "feedback",
        "suggestions",
        "participation",
        "profile_updates",
        "actions",
    )
)
PILOT = ("surveys", "workshops", "interviews", "contributions")
COMPONENTS = ("content", "conversation", "reach", "helpfulness", "innovation", "profile", "pilot")
DECAYED = "decayed"


class Op(NamedTuple):
    """One change to one employee's state. `kind`:

    c: +1 on counter `x` (and counter `z` if set) of `day`; `y` = "1" when it is the employee's own activity
    g: own interaction given to colleague `y` (pseudonym): counter `x` (and `z`), pair-capped per day
    r: interaction received from colleague `x` (pseudonym), `y` = "1" when from another department
    f: profile completeness `y` at event time `x` (ms); own activity
    l: pilot counter `x` +1 (and contributions when `z` = "1"); own activity
    d: department `y` (and display name `z`) at event time `x` (ms)
    """

    kind: str
    day: int
    x: str = ""
    y: str = ""
    z: str = ""


class Effects(NamedTuple):
    """What one event does: ops per employee, department activity, and whether it forgets someone."""

    ops: list[tuple[str, Op]]
    dept_activity: tuple[str, int, int] | None  # (department, day, pseudonym of the actor)
    forget: str | None


NO_EFFECTS = Effects([], None, None)


@lru_cache(maxsize=65_536)
def pseudonym(employee_id: str) -> int:
    """A stable 31-bit pseudonym (never 0): small in Redis, and no colleague's id in another's state."""
    value = int.from_bytes(blake2b(employee_id.encode(), digest_size=4).digest(), "big") & 0x7FFFFFFF
    return value or 1


def day_of_ms(ms: int) -> int:
    return ms // DAY_MS


# Directory facts happen on the directory's clock (when HR or an import ran), not in the intranet's event
# time: they must not move the event-time watermark, or a backfill of history would be judged "as of" the
# day the directory was imported instead of moving through the history day by day.
DIRECTORY_FACTS = frozenset({"employee_registered", "employee_forgotten"})


def moves_clock(env: envelope_pb2.Envelope) -> bool:
    """True for interactions, whose occurred_at advances the event-time watermark."""
    return env.WhichOneof("payload") not in DIRECTORY_FACTS


def effects(env: envelope_pb2.Envelope) -> Effects:
    """Turns one validated Envelope into ops. Self-interactions give nothing to anyone."""
    field_name = env.WhichOneof("payload")
    actor = env.employee_id
    dept = env.department_id
    ms = env.occurred_at.ToMilliseconds()
    day = ms // DAY_MS
    ops: list[tuple[str, Op]]
    if field_name in ("post_created", "question_asked"):
        ops = [(actor, Op("c", day, str(C["posts"]), "1"))]
    elif field_name in ("comment_added", "reaction_added"):
        p = getattr(env, field_name)
        author = p.post_author_id
        if author == actor:
            return NO_EFFECTS
        counter = C["comments"] if field_name == "comment_added" else C["reactions"]
        other = "1" if dept and p.post_author_department_id and dept != p.post_author_department_id else "0"
        ops = [
            (actor, Op("g", day, str(counter), str(pseudonym(author)))),
            (author, Op("r", day, str(pseudonym(actor)), other)),
        ]
    elif field_name == "answer_posted":
        p = env.answer_posted
        asker = p.question_author_id
        if asker == actor:
            return NO_EFFECTS
        same = bool(dept) and dept == p.question_author_department_id
        other = "1" if dept and p.question_author_department_id and not same else "0"
        ops = [
            (actor, Op("g", day, str(C["answers"]), str(pseudonym(asker)), str(C["answers_own"]) if same else "")),
            (asker, Op("r", day, str(pseudonym(actor)), other)),
        ]
    elif field_name == "answer_accepted":
        p = env.answer_accepted
        author = p.answer_author_id
        if author == actor:
            return NO_EFFECTS
        same = bool(dept) and dept == p.answer_author_department_id
        ops = [(author, Op("c", day, str(C["accepted"]), "0", str(C["accepted_own"]) if same else ""))]
        return Effects(ops, None, None)
    elif field_name == "profile_updated":
        ops = [(actor, Op("f", day, str(ms), repr(env.profile_updated.completeness)))]
    elif field_name == "feature_tried":
        ops = [(actor, Op("c", day, str(C["trials"]), "1"))]
    elif field_name == "feedback_submitted":
        suggestion = env.feedback_submitted.kind == interactions_pb2.FEEDBACK_KIND_SUGGESTION
        ops = [(actor, Op("c", day, str(C["suggestions"] if suggestion else C["feedback"]), "1"))]
    elif field_name == "survey_answered":
        if env.survey_answered.pre_launch:
            ops = [(actor, Op("l", day, "0"))]
        else:
            ops = [(actor, Op("c", day, str(C["participation"]), "1"))]
    elif field_name == "workshop_attended":
        p = env.workshop_attended
        if p.pre_launch:
            index = "2" if p.kind == interactions_pb2.SESSION_KIND_INTERVIEW else "1"
            ops = [(actor, Op("l", day, index, "", "1" if p.contributed else ""))]
        else:
            ops = [(actor, Op("c", day, str(C["participation"]), "1"))]
    elif field_name == "employee_registered":
        name = env.employee_registered.display_name
        return Effects([(actor, Op("d", day, str(ms), dept, name))], None, None)
    elif field_name == "employee_forgotten":
        return Effects([], None, actor)
    else:  # post_edited, post_deleted, reaction_removed: valid, but they carry no score
        return NO_EFFECTS
    activity = (dept, day, pseudonym(actor)) if dept else None
    return Effects(ops, activity, None)


@dataclass
class EmployeeState:
    """One employee's stored figures (what the store keeps, decoded)."""

    days: dict[int, list[int]] = field(default_factory=dict)
    givers: dict[int, tuple[int, bool]] = field(default_factory=dict)  # pseudonym -> (newest day, other dept)
    receivers: dict[int, int] = field(default_factory=dict)  # pseudonym -> newest day
    completeness: float = 0.0
    pilot: tuple[int, int, int, int] = (0, 0, 0, 0)
    as_of_day: int = -1
    department: str = ""
    name: str = ""
    opt_out: bool = False
    changes: int = 0


@dataclass
class Figures:
    """Component scores per window and the named signals of ScoreChanged."""

    windows: dict[str, dict[str, float]]
    signals: dict[str, float]


def sat(x: float, cap: float) -> float:
    """Diminishing returns: about x for small x, never more than cap."""
    return cap * -math.expm1(-x / cap) if x > 0 else 0.0


@lru_cache(maxsize=16)
def _decay_table(half_life: float, keep: int) -> tuple[float, ...]:
    """0.5 ** (age / half_life) for every age within the kept days."""
    return tuple(0.5 ** (age / half_life) for age in range(keep))


_PARAMS: dict[int, tuple[ScoringConfig, tuple[float, ...]]] = {}


def _params(cfg: ScoringConfig) -> tuple[float, ...]:
    """The per-day weights and caps as one flat tuple (attribute lookups dominate otherwise)."""
    hit = _PARAMS.get(id(cfg))
    if hit is None or hit[0] is not cfg:
        co, cv, h, i = cfg.content, cfg.conversation, cfg.helpfulness, cfg.innovation
        values = (
            co.post, co.daily_cap, cv.comment, cv.reaction, cv.daily_cap,
            h.answer, h.answer_own_department, h.accepted, h.accepted_own_department, h.daily_cap,
            i.feature_trial, i.feedback, i.suggestion, i.participation, i.daily_cap,
        )  # fmt: skip
        hit = _PARAMS[id(cfg)] = (cfg, values)
    return hit[1]


def _day_points(c: list[int], p: tuple[float, ...]) -> tuple[float, float, float, float]:
    """content, conversation (before the ring factor), helpfulness and innovation points of one day."""
    content = sat(p[0] * c[0], p[1]) if c[0] else 0.0
    conversation = sat(p[2] * c[1] + p[3] * c[2], p[4]) if c[1] or c[2] else 0.0
    helpfulness = sat(p[5] * c[3] + p[6] * c[4] + p[7] * c[5] + p[8] * c[6], p[9]) if c[3] or c[5] else 0.0
    innovation = (
        sat(p[10] * c[7] + p[11] * c[8] + p[12] * c[9] + p[13] * c[10], p[14]) if c[7] or c[8] or c[9] or c[10] else 0.0
    )
    return content, conversation, helpfulness, innovation


def figures(state: EmployeeState, as_of_day: int, cfg: ScoringConfig) -> Figures:
    """Scores of every window and the decayed total, as of the end of `as_of_day` (event time).

    One pass over the kept days and one over the colleagues; every window is a suffix of the kept days,
    so a day adds to each window whose length exceeds its age.
    """
    keep = cfg.keep_days
    decay = _decay_table(cfg.windows.decay_half_life_days, keep)
    names = list(cfg.windows.days)
    lengths = [cfg.windows.days[n] for n in names]
    slots = len(names) + 1  # the windows, then the decayed total
    width = len(COUNTERS)
    burst = cfg.reach.burst_daily_cap
    week_now = (as_of_day + 3) // 7
    # one row per kept day: age, then content, conversation, helpfulness, innovation, received, updated
    rows: list[tuple[int, float, float, float, float, float, float]] = []
    post_days: list[tuple[int, int, int]] = []  # (age, ISO week index, day) of days with a post
    last30: list[list[int]] = []
    last100: list[list[int]] = []
    active_days_30 = 0
    active_weeks: set[int] = set()
    params = _params(cfg)
    for day, c in state.days.items():
        age = as_of_day - day
        if age < 0 or age >= keep:
            continue
        if c[0] or c[1] or c[2] or c[3] or c[5] or c[7] or c[8] or c[9] or c[10]:
            content, conversation, helpfulness, innovation = _day_points(c, params)
        else:
            content = conversation = helpfulness = innovation = 0.0
        rows.append((age, content, conversation, helpfulness, innovation, min(c[12], burst), 1.0 if c[11] else 0.0))
        week = (day + 3) // 7
        if c[0]:
            post_days.append((age, week, day))
        active = c[0] or c[1] or c[2] or c[3] or c[7] or c[8] or c[9] or c[10] or c[11] or c[13]
        if active and week >= week_now - 11:
            active_weeks.add(week)
        if age < 100:
            last100.append(c)
            if age < 30:
                last30.append(c)
                if active:
                    active_days_30 += 1
    rows.sort()
    ages = [row[0] for row in rows]
    acc: list[list[float]] = []
    for length in lengths:
        k = bisect_left(ages, length)
        acc.append([float(sum(col)) for col in zip(*rows[:k], strict=True)][1:] if k else [0.0] * 6)
    weights = [decay[a] for a in ages]
    acc.append([sum(map(mul, col, weights)) for col in zip(*rows, strict=True)][1:] if rows else [0.0] * 6)
    counts30 = [sum(col) for col in zip(*last30, strict=True)] if last30 else [0] * width
    counts100 = [sum(col) for col in zip(*last100, strict=True)] if last100 else [0] * width
    regular: list[float] = []
    for length in lengths:
        regular.append(float(len({week for age, week, _ in post_days if age < length})))
    newest_post_of_week: dict[int, int] = {}
    for _, week, day in post_days:
        if newest_post_of_week.get(week, -1) < day:
            newest_post_of_week[week] = day
    regular.append(sum(decay[as_of_day - d] for d in sorted(newest_post_of_week.values())))

    givers = [0.0] * slots
    others = [0.0] * slots
    distinct_30 = distinct_100 = other_30 = 0
    for d, other in sorted(state.givers.values()):
        age = as_of_day - d
        if age < 0 or age >= keep:
            continue
        for slot in range(slots - 1):
            if age < lengths[slot]:
                givers[slot] += 1
                if other:
                    others[slot] += 1
        givers[-1] += decay[age]
        if other:
            others[-1] += decay[age]
        if age < 100:
            distinct_100 += 1
            if age < 30:
                distinct_30 += 1
                other_30 += other
    receivers = [0] * slots
    receivers_30 = 0
    for d in state.receivers.values():
        age = as_of_day - d
        if age < 0 or age >= keep:
            continue
        for slot in range(slots - 1):
            if age < lengths[slot]:
                receivers[slot] += 1
        receivers[-1] += 1
        if age < 30:
            receivers_30 += 1

    pilot_points = min(
        cfg.pilot.survey * state.pilot[0]
        + cfg.pilot.workshop * state.pilot[1]
        + cfg.pilot.interview * state.pilot[2]
        + cfg.pilot.contribution * state.pilot[3],
        cfg.pilot.cap,
    )
    r = cfg.reach
    profile_base = cfg.profile.completeness * state.completeness
    windows: dict[str, dict[str, float]] = {}
    for slot, name in enumerate([*names, DECAYED]):
        a = acc[slot]
        diversity = min(1.0, receivers[slot] / cfg.ring.min_distinct_receivers) ** 2
        scores = {
            "content": round(a[0] + cfg.content.active_week * regular[slot], 6),
            "conversation": round(a[1] * diversity, 6),
            "reach": round(
                r.distinct * sat(givers[slot], r.distinct_cap)
                + r.other_department * sat(others[slot], r.distinct_cap)
                + r.received * a[4],
                6,
            ),
            "helpfulness": round(a[2], 6),
            "innovation": round(a[3], 6),
            "profile": round(profile_base + cfg.profile.update * min(a[5], cfg.profile.update_days_cap), 6),
            "pilot": round(pilot_points, 6),
        }
        scores["total"] = round(sum(scores.values()), 6)
        windows[name] = scores
    signals = {
        "active_weeks_12w": float(len(active_weeks)),
        "active_days_30d": float(active_days_30),
        "posts_30d": float(counts30[C["posts"]]),
        "comments_given_30d": float(counts30[C["comments"]]),
        "reactions_given_30d": float(counts30[C["reactions"]]),
        "distinct_reach_30d": float(distinct_30),
        "distinct_reach_100d": float(distinct_100),
        "distinct_reach_other_dept_30d": float(other_30),
        # Quality over volume: colleagues reached per post (or question). Posting many short items for a
        # small audience (reaction rings, self-promotion bursts) keeps this low however much is posted.
        "reach_per_post_30d": round(distinct_30 / counts30[C["posts"]], 6) if counts30[C["posts"]] else 0.0,
        "distinct_receivers_30d": float(receivers_30),
        "received_interactions_30d": float(counts30[C["received"]]),
        "answers_100d": float(counts100[C["answers"]]),
        "answers_own_dept_100d": float(counts100[C["answers_own"]]),
        "accepted_answers_100d": float(counts100[C["accepted"]]),
        "feature_trials_100d": float(counts100[C["trials"]]),
        "feedback_100d": float(counts100[C["feedback"]]),
        "suggestions_100d": float(counts100[C["suggestions"]]),
        "profile_completeness": state.completeness,
        "profile_updates_100d": float(counts100[C["profile_updates"]]),
        "pilot_activities": float(state.pilot[0] + state.pilot[1] + state.pilot[2]),
    }
    return Figures(windows, signals)
