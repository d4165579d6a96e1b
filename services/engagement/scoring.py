"""The engagement score, pure: one Envelope -> per-employee ops, and one employee's state -> figures.

Ops are tiny instructions the store applies atomically per employee (docs/engagement.md): counters in
daily buckets, distinct colleagues with their newest day, profile and pilot state. Every rule a person
may ask about (self-interactions, pair caps, rings, bursts, windows, decay) lives here or in the store's
apply script, and `reference.py` re-derives the same figures in plain Python for the tests.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import reduce
from hashlib import blake2b
from itertools import compress
from math import expm1
from operator import add, mul
from typing import NamedTuple

from catalyst.events.v1 import envelope_pb2, interactions_pb2
from google.protobuf.message import Message

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

# Pseudonyms of recently seen employees as (number, its text in ops), shared with the C planner (`_plan.c`),
# which reads the dict directly; it is cleared when full, which a company of any size only pays once in a while.
PSEUDONYM_CACHE = 1 << 18
PSEUDONYMS: dict[str, tuple[int, str]] = {}


def pseudonym_entry(employee_id: str) -> tuple[int, str]:
    """(pseudonym, its decimal text), cached."""
    hit = PSEUDONYMS.get(employee_id)
    if hit is None:
        if len(PSEUDONYMS) >= PSEUDONYM_CACHE:
            PSEUDONYMS.clear()
        value = int.from_bytes(blake2b(employee_id.encode(), digest_size=4).digest(), "big") & 0x7FFFFFFF or 1
        hit = PSEUDONYMS[employee_id] = (value, str(value))
    return hit


def pseudonym(employee_id: str) -> int:
    """A stable 31-bit pseudonym (never 0): small in Redis, and no colleague's id in another's state."""
    return pseudonym_entry(employee_id)[0]


def day_of_ms(ms: int) -> int:
    return ms // DAY_MS


# Directory facts happen on the directory's clock (when HR or an import ran), not in the intranet's event
# time: they must not move the event-time watermark, or a backfill of history would be judged "as of" the
# day the directory was imported instead of moving through the history day by day.
DIRECTORY_FACTS = frozenset({"employee_registered", "employee_forgotten"})


def moves_clock(env: envelope_pb2.Envelope) -> bool:
    """True for interactions, whose occurred_at advances the event-time watermark."""
    return env.WhichOneof("payload") not in DIRECTORY_FACTS


def occurred_ms(env: envelope_pb2.Envelope) -> int:
    """occurred_at in milliseconds (Timestamp.ToMilliseconds without its validity checks: the planner made them)."""
    ts = env.occurred_at
    return ts.seconds * 1000 + ts.nanos // 1_000_000


# Counter indexes as op text (_C_*), converted once.
_C_POSTS, _C_COMMENTS, _C_REACTIONS = str(C["posts"]), str(C["comments"]), str(C["reactions"])
_C_ANSWERS, _C_ANSWERS_OWN = str(C["answers"]), str(C["answers_own"])
_C_ACCEPTED, _C_ACCEPTED_OWN = str(C["accepted"]), str(C["accepted_own"])
_C_TRIALS, _C_FEEDBACK, _C_SUGGESTIONS = str(C["trials"]), str(C["feedback"]), str(C["suggestions"])
_C_PARTICIPATION = str(C["participation"])
_SUGGESTION = interactions_pb2.FEEDBACK_KIND_SUGGESTION
_INTERVIEW = interactions_pb2.SESSION_KIND_INTERVIEW


def effects(env: envelope_pb2.Envelope) -> Effects:
    """Turns one validated Envelope into ops. Self-interactions give nothing to anyone.

    The worker applies the same rules in C (`_plan.c`); this is the plain-Python statement of them that
    `reference.py` and the tests hold the worker to. Branches are ordered by how common the event is.
    """
    field_name = env.WhichOneof("payload")
    if field_name is None:
        return NO_EFFECTS
    p: Message = getattr(env, field_name)
    actor, dept, ms = env.employee_id, env.department_id, occurred_ms(env)
    day = ms // DAY_MS
    ops: list[tuple[str, Op]]
    if field_name == "reaction_added" or field_name == "comment_added":
        author = p.post_author_id
        if author == actor:
            return NO_EFFECTS
        author_dept = p.post_author_department_id
        other = "1" if dept and author_dept and dept != author_dept else "0"
        counter = _C_REACTIONS if field_name == "reaction_added" else _C_COMMENTS
        who, who_text = pseudonym_entry(actor)
        ops = [
            (actor, Op("g", day, counter, pseudonym_entry(author)[1], "")),
            (author, Op("r", day, who_text, other, "")),
        ]
        return Effects(ops, (dept, day, who) if dept else None, None)
    if field_name == "post_created" or field_name == "question_asked":
        ops = [(actor, Op("c", day, _C_POSTS, "1", ""))]
    elif field_name == "answer_posted":
        asker = p.question_author_id
        if asker == actor:
            return NO_EFFECTS
        asker_dept = p.question_author_department_id
        same = bool(dept) and dept == asker_dept
        other = "1" if dept and asker_dept and not same else "0"
        given = Op("g", day, _C_ANSWERS, pseudonym_entry(asker)[1], _C_ANSWERS_OWN if same else "")
        ops = [(actor, given), (asker, Op("r", day, pseudonym_entry(actor)[1], other, ""))]
    elif field_name == "answer_accepted":
        author = p.answer_author_id
        if author == actor:
            return NO_EFFECTS
        same = bool(dept) and dept == p.answer_author_department_id
        ops = [(author, Op("c", day, _C_ACCEPTED, "0", _C_ACCEPTED_OWN if same else ""))]
        return Effects(ops, None, None)
    elif field_name == "profile_updated":
        ops = [(actor, Op("f", day, str(ms), repr(p.completeness), ""))]
    elif field_name == "feature_tried":
        ops = [(actor, Op("c", day, _C_TRIALS, "1", ""))]
    elif field_name == "feedback_submitted":
        counter = _C_SUGGESTIONS if p.kind == _SUGGESTION else _C_FEEDBACK
        ops = [(actor, Op("c", day, counter, "1", ""))]
    elif field_name == "survey_answered":
        if p.pre_launch:
            ops = [(actor, Op("l", day, "0", "", ""))]
        else:
            ops = [(actor, Op("c", day, _C_PARTICIPATION, "1", ""))]
    elif field_name == "workshop_attended":
        if p.pre_launch:
            index = "2" if p.kind == _INTERVIEW else "1"
            ops = [(actor, Op("l", day, index, "", "1" if p.contributed else ""))]
        else:
            ops = [(actor, Op("c", day, _C_PARTICIPATION, "1", ""))]
    elif field_name == "employee_registered":
        return Effects([(actor, Op("d", day, str(ms), dept, p.display_name))], None, None)
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


DAY_PATTERNS = 20_000  # distinct day counter patterns remembered per config (a few MB at most)
# Raw counters summed for the signals. A row carries them packed into one int, FIELD bits each, so that
# one integer sum adds all of them (exact: a field overflows only past 2**40 / 400 of one counter a day).
SIGNAL_COUNTERS = (
    "posts", "comments", "reactions", "received",
    "answers", "answers_own", "accepted", "trials", "feedback", "suggestions", "profile_updates",
)  # fmt: skip
_RAW = tuple(C[name] for name in SIGNAL_COUNTERS)
FIELD = 40
_POINTS = 6  # content, conversation, helpfulness, innovation, received (capped), profile updated
_POSTS, _ACTIVE, _PACKED = _POINTS, _POINTS + 1, _POINTS + 2  # the row's other columns

Row = tuple[float | int | bool, ...]


def _unpack(packed: int) -> dict[str, int]:
    mask = (1 << FIELD) - 1
    return {name: (packed >> (FIELD * i)) & mask for i, name in enumerate(SIGNAL_COUNTERS)}


class _DayRows(dict[tuple[int, ...], Row]):
    """A day's counters -> its row: content, conversation (before the ring factor), helpfulness and
    innovation points, received interactions (burst-capped), 1.0 if the profile was updated, posts, whether
    it is an active day, and the packed SIGNAL_COUNTERS. Days repeat a few counter patterns: each is
    computed once.
    """

    def __init__(self, params: tuple[float, ...], burst: int) -> None:
        super().__init__()
        self.params = params
        self.burst = burst

    def __missing__(self, c: tuple[int, ...]) -> Row:
        if c[0] or c[1] or c[2] or c[3] or c[5] or c[7] or c[8] or c[9] or c[10]:
            content, conversation, helpfulness, innovation = _day_points(c, self.params)
        else:
            content = conversation = helpfulness = innovation = 0.0
        active = bool(c[0] or c[1] or c[2] or c[3] or c[7] or c[8] or c[9] or c[10] or c[11] or c[13])
        packed = sum(c[index] << (FIELD * i) for i, index in enumerate(_RAW))
        if len(self) >= DAY_PATTERNS:
            self.clear()
        burst = min(c[12], self.burst)
        row: Row = (content, conversation, helpfulness, innovation, burst, 1.0 if c[11] else 0.0, c[0], active, packed)
        self[c] = row
        return row


class _Constants:
    """What `figures()` needs from one config, derived once (attribute lookups dominate otherwise)."""

    def __init__(self, cfg: ScoringConfig) -> None:
        self.cfg = cfg
        self.keep = cfg.keep_days
        self.decay = [0.5 ** (age / cfg.windows.decay_half_life_days) for age in range(self.keep)]
        self.names = [*cfg.windows.days, DECAYED]
        self.lengths = list(cfg.windows.days.values())
        co, cv, h, i = cfg.content, cfg.conversation, cfg.helpfulness, cfg.innovation
        params = (
            co.post, co.daily_cap, cv.comment, cv.reaction, cv.daily_cap,
            h.answer, h.answer_own_department, h.accepted, h.accepted_own_department, h.daily_cap,
            i.feature_trial, i.feedback, i.suggestion, i.participation, i.daily_cap,
        )  # fmt: skip
        self.rows = _DayRows(params, cfg.reach.burst_daily_cap)


_CONSTANTS: dict[int, _Constants] = {}


def _constants(cfg: ScoringConfig) -> _Constants:
    hit = _CONSTANTS.get(id(cfg))
    if hit is None or hit.cfg is not cfg:
        hit = _CONSTANTS[id(cfg)] = _Constants(cfg)
    return hit


def _day_points(c: Sequence[int], p: tuple[float, ...]) -> tuple[float, float, float, float]:
    """content, conversation (before the ring factor), helpfulness and innovation points of one day."""
    content = sat(p[0] * c[0], p[1]) if c[0] else 0.0
    conversation = sat(p[2] * c[1] + p[3] * c[2], p[4]) if c[1] or c[2] else 0.0
    helpfulness = sat(p[5] * c[3] + p[6] * c[4] + p[7] * c[5] + p[8] * c[6], p[9]) if c[3] or c[5] else 0.0
    innovation = (
        sat(p[10] * c[7] + p[11] * c[8] + p[12] * c[9] + p[13] * c[10], p[14]) if c[7] or c[8] or c[9] or c[10] else 0.0
    )
    return content, conversation, helpfulness, innovation


def _since(sorted_values: list[int], lowest: int) -> int:
    """How many of the sorted values are at least `lowest`."""
    return len(sorted_values) - bisect_left(sorted_values, lowest)


def figures(state: EmployeeState, as_of_day: int, cfg: ScoringConfig) -> Figures:
    """Scores of every window and the decayed total, as of the end of `as_of_day` (event time).

    Every window is a suffix of the kept days, so each is a sum over the youngest days (or colleagues) up
    to its length. Floats are added in the same order as the plain definition (days youngest first,
    colleagues oldest first; a zero adds nothing), so the figures stay bit-for-bit the same.
    """
    k = _constants(cfg)
    keep = k.keep
    decay = k.decay
    lengths = k.lengths
    days = state.days
    ds = sorted(days)
    ds = ds[bisect_right(ds, as_of_day - keep) : bisect_right(ds, as_of_day)][::-1]  # kept days, youngest first
    ages = [as_of_day - d for d in ds]
    table = k.rows
    cols = list(zip(*map(table.__getitem__, map(tuple, map(days.__getitem__, ds))), strict=True)) or [()] * 9
    posts, active, packed = cols[_POSTS], cols[_ACTIVE], cols[_PACKED]
    post_days = [(age, (d + 3) // 7) for d, age, p in zip(ds, ages, posts, strict=True) if p]
    # active weeks: the ISO week of `as_of_day` and the 11 before, i.e. days younger than `recent`
    recent = bisect_left(ages, as_of_day - ((as_of_day + 3) // 7 - 11) * 7 + 4)
    active_weeks = {(d + 3) // 7 for d in compress(ds[:recent], active)}
    n30 = bisect_left(ages, 30)
    n100 = bisect_left(ages, 100)
    counts30 = _unpack(sum(packed[:n30]))
    counts100 = _unpack(sum(packed[:n100]))
    points = [(col, float(sum(col))) for col in cols[:_POINTS]]  # the longest window covers every kept day
    acc: list[list[float]] = []
    regular: list[float] = []
    for length in lengths:
        n = bisect_left(ages, length)
        acc.append([float(sum(col[:n])) if total else 0.0 for col, total in points])
        regular.append(float(len({week for age, week in post_days if age < length})))
    weights = [decay[a] for a in ages]
    acc.append([sum(map(mul, col, weights)) if total else 0.0 for col, total in points])
    newest_post_of_week: dict[int, int] = {}
    for age, week in post_days:
        newest_post_of_week.setdefault(week, age)
    regular.append(sum(decay[age] for age in reversed(newest_post_of_week.values())))

    # colleagues as day * 2 + other department, sorted: windows count by bisection, decayed sums oldest first
    marks = sorted([d * 2 + other for d, other in state.givers.values()])
    marks = marks[bisect_left(marks, (as_of_day - keep + 1) * 2) : bisect_left(marks, (as_of_day + 1) * 2)]
    other_marks = [m for m in marks if m & 1]
    givers = [float(_since(marks, (as_of_day - length + 1) * 2)) for length in lengths]
    others = [float(_since(other_marks, (as_of_day - length + 1) * 2)) for length in lengths]
    givers.append(reduce(add, [decay[as_of_day - (m >> 1)] for m in marks], 0.0))
    others.append(reduce(add, [decay[as_of_day - (m >> 1)] for m in other_marks], 0.0))
    distinct_100 = _since(marks, (as_of_day - 99) * 2)
    distinct_30 = _since(marks, (as_of_day - 29) * 2)
    other_30 = _since(other_marks, (as_of_day - 29) * 2)
    received = sorted([d for d in state.receivers.values() if as_of_day - keep < d <= as_of_day])
    receivers = [_since(received, as_of_day - length + 1) for length in lengths]
    receivers.append(len(received))
    receivers_30 = _since(received, as_of_day - 29)

    pilot_points = min(
        cfg.pilot.survey * state.pilot[0]
        + cfg.pilot.workshop * state.pilot[1]
        + cfg.pilot.interview * state.pilot[2]
        + cfg.pilot.contribution * state.pilot[3],
        cfg.pilot.cap,
    )
    r = cfg.reach
    distinct, other_department, cap, per_received = r.distinct, r.other_department, r.distinct_cap, r.received
    active_week, ring = cfg.content.active_week, cfg.ring.min_distinct_receivers
    update, update_days_cap = cfg.profile.update, cfg.profile.update_days_cap
    profile_base = cfg.profile.completeness * state.completeness
    pilot = round(pilot_points, 6)
    windows: dict[str, dict[str, float]] = {}
    for slot, name in enumerate(k.names):
        a = acc[slot]
        g, o = givers[slot], others[slot]
        content = round(a[0] + active_week * regular[slot], 6)
        conversation = round(a[1] * min(1.0, receivers[slot] / ring) ** 2, 6)
        reach = round(
            distinct * (cap * -expm1(-g / cap) if g > 0 else 0.0)  # sat(), inlined
            + other_department * (cap * -expm1(-o / cap) if o > 0 else 0.0)
            + per_received * a[4],
            6,
        )
        helpfulness = round(a[2], 6)
        innovation = round(a[3], 6)
        profile = round(profile_base + update * min(a[5], update_days_cap), 6)
        windows[name] = {
            "content": content,
            "conversation": conversation,
            "reach": reach,
            "helpfulness": helpfulness,
            "innovation": innovation,
            "profile": profile,
            "pilot": pilot,
            "total": round(sum((content, conversation, reach, helpfulness, innovation, profile, pilot)), 6),
        }
    signals = {
        "active_weeks_12w": float(len(active_weeks)),
        "active_days_30d": float(sum(active[:n30])),
        "posts_30d": float(counts30["posts"]),
        "comments_given_30d": float(counts30["comments"]),
        "reactions_given_30d": float(counts30["reactions"]),
        "distinct_reach_30d": float(distinct_30),
        "distinct_reach_100d": float(distinct_100),
        "distinct_reach_other_dept_30d": float(other_30),
        # Quality over volume: colleagues reached per post (or question). Posting many short items for a
        # small audience (reaction rings, self-promotion bursts) keeps this low however much is posted.
        "reach_per_post_30d": round(distinct_30 / counts30["posts"], 6) if counts30["posts"] else 0.0,
        "distinct_receivers_30d": float(receivers_30),
        "received_interactions_30d": float(counts30["received"]),
        "answers_100d": float(counts100["answers"]),
        "answers_own_dept_100d": float(counts100["answers_own"]),
        "accepted_answers_100d": float(counts100["accepted"]),
        "feature_trials_100d": float(counts100["trials"]),
        "feedback_100d": float(counts100["feedback"]),
        "suggestions_100d": float(counts100["suggestions"]),
        "profile_completeness": state.completeness,
        "profile_updates_100d": float(counts100["profile_updates"]),
        "pilot_activities": float(state.pilot[0] + state.pilot[1] + state.pilot[2]),
    }
    return Figures(windows, signals)
