"""The engagement score, pure: one Envelope -> per-employee ops, and one employee's state -> figures.

Ops are tiny instructions the store applies atomically per employee (docs/engagement.md): counters in
daily buckets, distinct colleagues with their newest day, profile and pilot state. Every rule a person
may ask about (self-interactions, pair caps, rings, bursts, windows, decay) lives here or in the store's
apply script, and `reference.py` re-derives the same figures in plain Python for the tests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from hashlib import blake2b
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


def _day_points(c: list[int], cfg: ScoringConfig) -> tuple[float, float, float, float]:
    """content, conversation (before the ring factor), helpfulness and innovation points of one day."""
    content = sat(cfg.content.post * c[0], cfg.content.daily_cap) if c[0] else 0.0
    conv = cfg.conversation
    conversation = sat(conv.comment * c[1] + conv.reaction * c[2], conv.daily_cap) if c[1] or c[2] else 0.0
    h = cfg.helpfulness
    helpfulness = (
        sat(
            h.answer * c[3] + h.answer_own_department * c[4] + h.accepted * c[5] + h.accepted_own_department * c[6],
            h.daily_cap,
        )
        if c[3] or c[5]
        else 0.0
    )
    i = cfg.innovation
    innovation = (
        sat(i.feature_trial * c[7] + i.feedback * c[8] + i.suggestion * c[9] + i.participation * c[10], i.daily_cap)
        if c[7] or c[8] or c[9] or c[10]
        else 0.0
    )
    return content, conversation, helpfulness, innovation


def figures(state: EmployeeState, as_of_day: int, cfg: ScoringConfig) -> Figures:
    """Scores of every window and the decayed total, as of the end of `as_of_day` (event time)."""
    keep = cfg.keep_days
    first = as_of_day - keep + 1
    lengths = dict(cfg.windows.days)
    names = list(lengths)
    half_life = cfg.windows.decay_half_life_days
    all_names = [*names, DECAYED]
    sums = {n: [0.0, 0.0, 0.0, 0.0] for n in all_names}  # content, conversation, helpfulness, innovation
    weeks: dict[str, dict[int, int]] = {n: {} for n in all_names}
    received = dict.fromkeys(all_names, 0.0)
    update_days = dict.fromkeys(all_names, 0.0)
    counts30 = [0] * len(COUNTERS)
    counts100 = [0] * len(COUNTERS)
    active_days_30 = 0
    active_weeks: set[int] = set()
    week_now = (as_of_day + 3) // 7
    burst = cfg.reach.burst_daily_cap
    for day, c in sorted(state.days.items()):
        if day < first or day > as_of_day:
            continue
        age = as_of_day - day
        points = _day_points(c, cfg)
        decay = 0.5 ** (age / half_life)
        week = (day + 3) // 7
        for n in all_names:
            if n == DECAYED:
                weight = decay
            elif age < lengths[n]:
                weight = 1.0
            else:
                continue
            s = sums[n]
            s[0] += points[0] * weight
            s[1] += points[1] * weight
            s[2] += points[2] * weight
            s[3] += points[3] * weight
            if c[0]:
                w = weeks[n]
                if w.get(week, -1) < day:
                    w[week] = day
            received[n] += min(c[12], burst) * weight
            if c[11]:
                update_days[n] += weight
        active = any(c[k] for k in OWN)
        if active and week >= week_now - 11:
            active_weeks.add(week)
        if age < 30:
            for k, v in enumerate(c):
                counts30[k] += v
            if active:
                active_days_30 += 1
        if age < 100:
            for k, v in enumerate(c):
                counts100[k] += v

    windows: dict[str, dict[str, float]] = {}
    pilot_points = min(
        cfg.pilot.survey * state.pilot[0]
        + cfg.pilot.workshop * state.pilot[1]
        + cfg.pilot.interview * state.pilot[2]
        + cfg.pilot.contribution * state.pilot[3],
        cfg.pilot.cap,
    )
    distinct_100 = 0
    distinct_30 = 0
    other_30 = 0
    receivers_30 = 0
    giver_days = sorted(state.givers.values())
    receiver_days = sorted(state.receivers.values())
    for n in all_names:
        span = keep if n == DECAYED else lengths[n]
        start = as_of_day - span + 1
        if n == DECAYED:
            givers = sum(0.5 ** ((as_of_day - d) / half_life) for d, _ in giver_days if first <= d <= as_of_day)
            others = sum(0.5 ** ((as_of_day - d) / half_life) for d, o in giver_days if o and first <= d <= as_of_day)
            regular = sum(0.5 ** ((as_of_day - d) / half_life) for d in weeks[n].values())
        else:
            givers = sum(1 for d, _ in giver_days if start <= d <= as_of_day)
            others = sum(1 for d, o in giver_days if o and start <= d <= as_of_day)
            regular = float(len(weeks[n]))
        receivers = sum(1 for d in receiver_days if start <= d <= as_of_day)
        diversity = min(1.0, receivers / cfg.ring.min_distinct_receivers) ** 2
        s = sums[n]
        r = cfg.reach
        scores = {
            "content": s[0] + cfg.content.active_week * regular,
            "conversation": s[1] * diversity,
            "reach": r.distinct * sat(givers, r.distinct_cap)
            + r.other_department * sat(others, r.distinct_cap)
            + r.received * received[n],
            "helpfulness": s[2],
            "innovation": s[3],
            "profile": cfg.profile.completeness * state.completeness
            + cfg.profile.update * min(update_days[n], cfg.profile.update_days_cap),
            "pilot": pilot_points,
        }
        scores = {k: round(v, 6) for k, v in scores.items()}
        scores["total"] = round(sum(scores.values()), 6)
        windows[n] = scores
    for d, o in state.givers.values():
        if as_of_day - 100 < d <= as_of_day:
            distinct_100 += 1
            if d > as_of_day - 30:
                distinct_30 += 1
                other_30 += o
    for d in state.receivers.values():
        if as_of_day - 30 < d <= as_of_day:
            receivers_30 += 1
    signals = {
        "active_weeks_12w": float(len(active_weeks)),
        "active_days_30d": float(active_days_30),
        "posts_30d": float(counts30[C["posts"]]),
        "comments_given_30d": float(counts30[C["comments"]]),
        "reactions_given_30d": float(counts30[C["reactions"]]),
        "distinct_reach_30d": float(distinct_30),
        "distinct_reach_100d": float(distinct_100),
        "distinct_reach_other_dept_30d": float(other_30),
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
