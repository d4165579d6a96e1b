"""The read side of engagement, pure: request checks, who may see whose score, the explanation of a score,
leaderboard ranks and page tokens, and department adoption figures (no I/O; the server feeds it state).

The explanation re-derives each component of `scoring.figures` activity by activity, so the contributions
of a component add up to its score (a unit test holds the two together).
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from services.common.auth import Principal, Role
from services.common.errors import InvalidArgument
from services.engagement.config import ScoringConfig
from services.engagement.scoring import COMPONENTS, DAY_MS, DECAYED, C, EmployeeState, figures, sat

DEFAULT_WINDOW = "30d"
TOTAL = "total"


# ---------------------------------------------------------------- request checks


def window_names(cfg: ScoringConfig) -> list[str]:
    return [*cfg.windows.days, DECAYED]


def check_window(window: str, cfg: ScoringConfig) -> str:
    """The window to use ("" means the default); a readable INVALID_ARGUMENT otherwise."""
    if not window:
        return DEFAULT_WINDOW
    names = window_names(cfg)
    if window not in names:
        raise InvalidArgument("window", f"{window!r} is not a window; choose one of {', '.join(names)}")
    return window


def check_component(component: str) -> str:
    """The component to rank by ("" means the total)."""
    if not component:
        return TOTAL
    names = [*COMPONENTS, TOTAL]
    if component not in names:
        raise InvalidArgument("component", f"{component!r} is not a score component; choose one of {', '.join(names)}")
    return component


def as_of_day(state: EmployeeState, watermark_ms: int) -> int:
    """Figures are as of the newer of the employee's last activity and the global event-time watermark."""
    return max(state.as_of_day, watermark_ms // DAY_MS)


def as_of_ms(day: int, watermark_ms: int) -> int:
    """The event time the figures stand for (the same rule as ScoreChanged.occurred_at)."""
    return max(watermark_ms, day * DAY_MS)


# ---------------------------------------------------------------- who may see what


class Visibility(enum.Enum):
    FULL = "full"  # windows, signals, explanation
    PUBLIC = "public"  # windows only: what a colleague who takes part in ranking shows on leaderboards
    NONE = "none"


def score_visibility(caller: Principal, employee_id: str, opted_out: bool) -> Visibility:
    """Own score and comms/HR (admin) or system (service) callers: everything. A colleague's score only while
    that colleague takes part in ranking, and then without the detailed signals (data minimisation)."""
    if caller.subject == employee_id or caller.has(Role.ADMIN) or caller.has(Role.SERVICE):
        return Visibility.FULL
    return Visibility.NONE if opted_out else Visibility.PUBLIC


def may_explain(caller: Principal, employee_id: str) -> bool:
    """Explanations are for the employee themself and for comms/HR (and system callers acting for them)."""
    return caller.subject == employee_id or caller.has(Role.ADMIN) or caller.has(Role.SERVICE)


# ---------------------------------------------------------------- explanation


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
class _Parts:
    """Accumulates (count, points) per activity of one component."""

    component: str
    counts: dict[str, float] = field(default_factory=dict)
    points: dict[str, float] = field(default_factory=dict)

    def add(self, activity: str, count: float, points: float) -> None:
        self.counts[activity] = self.counts.get(activity, 0.0) + count
        self.points[activity] = self.points.get(activity, 0.0) + points


def _split(total: float, parts: Sequence[tuple[str, float]]) -> list[tuple[str, float]]:
    """Shares `total` between activities in proportion to their raw weighted amounts."""
    raw = sum(amount for _, amount in parts)
    if raw <= 0:
        return [(name, 0.0) for name, _ in parts]
    return [(name, total * amount / raw) for name, amount in parts]


def _date(day: int) -> str:
    return datetime.fromtimestamp(day * 86_400, UTC).date().isoformat()


_WORDS = {
    "posts": "posts and questions",
    "active_weeks": "weeks with at least one post",
    "comments_given": "comments on colleagues' posts",
    "reactions_given": "reactions to colleagues' posts",
    "distinct_colleagues": "different colleagues who reacted, commented or answered on your content",
    "other_department_colleagues": "of them from other departments",
    "interactions_received": "reactions, comments and answers received",
    "answers": "answers to colleagues' questions",
    "answers_own_department": "answers to colleagues in your own department (bonus)",
    "accepted_answers": "of your answers accepted",
    "accepted_answers_own_department": "accepted answers in your own department (bonus)",
    "feature_trials": "new features tried",
    "feedback": "pieces of feedback",
    "suggestions": "suggestions",
    "participation": "surveys and sessions attended",
    "profile_completeness": "profile completeness",
    "profile_update_days": "days with a profile update",
    "pilot_surveys": "pre-launch surveys answered",
    "pilot_workshops": "pre-launch workshops attended",
    "pilot_interviews": "pre-launch interviews given",
    "pilot_contributions": "pre-launch sessions with a contribution",
}


def _describe(activity: str, count: float, points: float, decayed: bool) -> str:
    if activity == "profile_completeness":
        amount = f"profile {count:.0%} complete"
    else:
        amount = f"{count:g} {_WORDS[activity]}"
    weighting = " (recent days weigh more)" if decayed else ""
    return f"{amount}: {points:.1f} points{weighting}"


def explain(state: EmployeeState, day: int, cfg: ScoringConfig, window: str) -> Explanation:
    """The contributions behind the `window` scores of `state` as of `day`, largest first, with notes."""
    keep = cfg.keep_days
    decayed = window == DECAYED
    length = keep if decayed else cfg.windows.days[window]
    half_life = cfg.windows.decay_half_life_days

    def weight(age: int) -> float:
        if age < 0 or age >= length:
            return 0.0
        return 0.5 ** (age / half_life) if decayed else 1.0

    content, conversation, reach = _Parts("content"), _Parts("conversation"), _Parts("reach")
    helpfulness, innovation, profile, pilot = (
        _Parts("helpfulness"),
        _Parts("innovation"),
        _Parts("profile"),
        _Parts("pilot"),
    )
    co, cv, h, i, r = cfg.content, cfg.conversation, cfg.helpfulness, cfg.innovation, cfg.reach
    capped: dict[str, int] = {"content": 0, "conversation": 0, "helpfulness": 0, "innovation": 0}
    bursts = 0
    received_weighted = 0.0
    update_days_weighted = 0.0
    update_days = 0
    post_weeks: dict[int, int] = {}  # ISO week index -> newest day with a post
    for d, c in state.days.items():
        w = weight(day - d)
        if w == 0.0:
            continue
        if c[C["posts"]]:
            raw = co.post * c[C["posts"]]
            content.add("posts", c[C["posts"]], w * sat(raw, co.daily_cap))
            capped["content"] += raw >= co.daily_cap
            week = (d + 3) // 7
            post_weeks[week] = max(post_weeks.get(week, d), d)
        given = [
            ("comments_given", cv.comment * c[C["comments"]]),
            ("reactions_given", cv.reaction * c[C["reactions"]]),
        ]
        raw = sum(a for _, a in given)
        if raw > 0:
            capped["conversation"] += raw >= cv.daily_cap
            for (name, pts), count in zip(
                _split(w * sat(raw, cv.daily_cap), given), (c[C["comments"]], c[C["reactions"]]), strict=True
            ):
                conversation.add(name, count, pts)
        if c[C["answers"]] or c[C["accepted"]]:
            parts = [
                ("answers", h.answer * c[C["answers"]]),
                ("answers_own_department", h.answer_own_department * c[C["answers_own"]]),
                ("accepted_answers", h.accepted * c[C["accepted"]]),
                ("accepted_answers_own_department", h.accepted_own_department * c[C["accepted_own"]]),
            ]
            raw = sum(a for _, a in parts)
            capped["helpfulness"] += raw >= h.daily_cap
            counts = (c[C["answers"]], c[C["answers_own"]], c[C["accepted"]], c[C["accepted_own"]])
            for (name, pts), count in zip(_split(w * sat(raw, h.daily_cap), parts), counts, strict=True):
                helpfulness.add(name, count, pts)
        if c[C["trials"]] or c[C["feedback"]] or c[C["suggestions"]] or c[C["participation"]]:
            parts = [
                ("feature_trials", i.feature_trial * c[C["trials"]]),
                ("feedback", i.feedback * c[C["feedback"]]),
                ("suggestions", i.suggestion * c[C["suggestions"]]),
                ("participation", i.participation * c[C["participation"]]),
            ]
            raw = sum(a for _, a in parts)
            capped["innovation"] += raw >= i.daily_cap
            counts = (c[C["trials"]], c[C["feedback"]], c[C["suggestions"]], c[C["participation"]])
            for (name, pts), count in zip(_split(w * sat(raw, i.daily_cap), parts), counts, strict=True):
                innovation.add(name, count, pts)
        if c[C["received"]]:
            received_weighted += w * min(c[C["received"]], r.burst_daily_cap)
            reach.add("interactions_received", c[C["received"]], 0.0)
            bursts += c[C["received"]] > r.burst_daily_cap
        if c[C["profile_updates"]]:
            update_days_weighted += w
            update_days += 1

    if post_weeks:
        regular = (
            sum(0.5 ** ((day - newest) / half_life) for newest in post_weeks.values()) if decayed else len(post_weeks)
        )
        content.add("active_weeks", len(post_weeks), co.active_week * regular)

    givers = others = 0.0
    giver_count = other_count = 0
    for d, other in state.givers.values():
        w = weight(day - d)
        if w == 0.0:
            continue
        givers += w
        giver_count += 1
        if other:
            others += w
            other_count += 1
    if giver_count:
        reach.add("distinct_colleagues", giver_count, r.distinct * sat(givers, r.distinct_cap))
    if other_count:
        reach.add("other_department_colleagues", other_count, r.other_department * sat(others, r.distinct_cap))
    if received_weighted:
        reach.points["interactions_received"] = r.received * received_weighted

    receivers = sum(1 for d in state.receivers.values() if 0 <= day - d < length)
    diversity = min(1.0, receivers / cfg.ring.min_distinct_receivers) ** 2
    for name in conversation.points:
        conversation.points[name] *= diversity

    if state.completeness:
        profile.add("profile_completeness", state.completeness, cfg.profile.completeness * state.completeness)
    if update_days:
        credited = min(update_days_weighted, cfg.profile.update_days_cap)
        profile.add("profile_update_days", update_days, cfg.profile.update * credited)

    p = cfg.pilot
    pilot_parts = [
        ("pilot_surveys", state.pilot[0], p.survey * state.pilot[0]),
        ("pilot_workshops", state.pilot[1], p.workshop * state.pilot[1]),
        ("pilot_interviews", state.pilot[2], p.interview * state.pilot[2]),
        ("pilot_contributions", state.pilot[3], p.contribution * state.pilot[3]),
    ]
    pilot_raw = sum(points for _, _, points in pilot_parts)
    pilot_scale = min(1.0, p.cap / pilot_raw) if pilot_raw > 0 else 0.0
    for name, count, points in pilot_parts:
        if count:
            pilot.add(name, count, points * pilot_scale)

    contributions = [
        Contribution(
            parts.component,
            name,
            parts.counts[name],
            round(points, 6),
            _describe(name, parts.counts[name], points, decayed),
        )
        for parts in (content, conversation, reach, helpfulness, innovation, profile, pilot)
        for name, points in parts.points.items()
        if points > 0
    ]
    contributions.sort(key=lambda x: (-x.points, x.component, x.activity))
    scores = figures(state, day, cfg).windows[window]
    notes = _notes(state, day, cfg, window, receivers, diversity, conversation, capped, bursts, pilot_raw)
    return Explanation(window, scores, contributions, notes)


def _notes(
    state: EmployeeState,
    day: int,
    cfg: ScoringConfig,
    window: str,
    receivers: int,
    diversity: float,
    conversation: _Parts,
    capped: dict[str, int],
    bursts: int,
    pilot_raw: float,
) -> list[str]:
    span = (
        f"recency-weighted over the last {cfg.keep_days} days (half-life {cfg.windows.decay_half_life_days:g} days)"
        if window == DECAYED
        else f"the {cfg.windows.days[window]} days up to and including {_date(day)}"
    )
    notes = [f"Figures cover {span}, in event time."]
    if state.as_of_day >= 0 and state.as_of_day < day:
        notes.append(
            f"Nothing new since {_date(state.as_of_day)}; windowed figures shrink as older days leave the window."
        )
    given = sum(conversation.counts.values())
    if given and diversity < 1.0:
        notes.append(
            f"Your comments and reactions went to {receivers} different colleague(s); conversation counts in full "
            f"from {cfg.ring.min_distinct_receivers} and is at {diversity:.0%} now."
        )
    words = {"content": "posting", "conversation": "commenting and reacting", "helpfulness": "answering"}
    words["innovation"] = "trying and giving feedback"
    for component, days in capped.items():
        if days:
            notes.append(
                f"On {days} day(s) your {words[component]} reached the daily cap of {component}; "
                "more on one day adds little."
            )
    if bursts:
        notes.append(
            f"On {bursts} day(s) you received more than {cfg.reach.burst_daily_cap} interactions; "
            "each day counts at most that many."
        )
    if pilot_raw > cfg.pilot.cap:
        notes.append(f"Pilot points are capped at {cfg.pilot.cap:g}.")
    notes.append("Interactions with your own content earn nothing; reach counts different people, not repeats.")
    if state.opt_out:
        notes.append("You opted out of ranking: you appear on no leaderboard.")
    return notes


# ---------------------------------------------------------------- leaderboards


@dataclass(frozen=True)
class Cursor:
    """Where a leaderboard page continues: raw position in the board, and the last rank and score shown."""

    offset: int = 0
    shown: int = 0
    rank: int = 0
    score: float | None = None


@dataclass(frozen=True)
class Ranked:
    rank: int
    employee_id: str
    score: float


def check_page_size(page_size: int, default: int, maximum: int) -> int:
    if page_size < 0:
        raise InvalidArgument("page_size", "must not be negative")
    if page_size > maximum:
        raise InvalidArgument("page_size", f"is {page_size}; at most {maximum} entries fit on a page")
    return page_size or default


def board_key(window: str, department: str, component: str) -> str:
    return f"{window}|{department}|{component}"


def encode_token(board: str, cursor: Cursor) -> str:
    payload = {"b": board, "o": cursor.offset, "n": cursor.shown, "r": cursor.rank, "s": cursor.score}
    return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_token(token: str, board: str) -> Cursor:
    """The cursor of a token this service issued for the same board; INVALID_ARGUMENT otherwise."""
    if not token:
        return Cursor()
    try:
        payload = json.loads(base64.urlsafe_b64decode(token.encode() + b"=" * (-len(token) % 4)))
        cursor = Cursor(int(payload["o"]), int(payload["n"]), int(payload["r"]), payload["s"])
        same_board = payload["b"] == board
    except (binascii.Error, UnicodeDecodeError, ValueError, KeyError, TypeError):
        raise InvalidArgument(
            "page_token", "is not a token this service issued; pass next_page_token unchanged"
        ) from None
    if (
        cursor.offset < 0
        or cursor.shown < 0
        or cursor.rank < 0
        or not isinstance(cursor.score, (int, float, type(None)))
    ):
        raise InvalidArgument("page_token", "is not a token this service issued; pass next_page_token unchanged")
    if not same_board:
        raise InvalidArgument(
            "page_token",
            "belongs to another leaderboard (window, department or component changed); start again without a token",
        )
    return cursor


def rank_entries(entries: Iterable[tuple[str, float]], cursor: Cursor) -> tuple[list[Ranked], Cursor]:
    """Competition ranks (1, 2, 2, 4) for visible entries in descending score order, continuing `cursor`.

    The returned cursor's offset is left to the caller (it counts raw board positions, hidden ones too).
    """
    out: list[Ranked] = []
    shown, rank, last = cursor.shown, cursor.rank, cursor.score
    for employee, score in entries:
        shown += 1
        if last is None or not math.isclose(score, last, rel_tol=0, abs_tol=1e-9):
            rank = shown
            last = score
        out.append(Ranked(rank, employee, score))
    return out, Cursor(cursor.offset, shown, rank, last)


def component_board(
    states: dict[str, EmployeeState], watermark_ms: int, cfg: ScoringConfig, window: str, component: str
) -> list[tuple[str, float]]:
    """A board computed from state (for components, and windows without an index), best first; leaves out
    opted-out employees."""
    rows = []
    for employee, state in states.items():
        if state.opt_out:
            continue
        scores = figures(state, as_of_day(state, watermark_ms), cfg).windows[window]
        rows.append((employee, scores[component]))
    rows.sort(key=lambda row: (-row[1], row[0]))
    return rows


# ---------------------------------------------------------------- department adoption


@dataclass(frozen=True)
class Adoption:
    department_id: str
    employees: int
    hidden: bool
    active_7d: int = 0
    active_30d: int = 0
    active_previous_7d: int = 0
    engagement_rate_30d: float = 0.0
    trend_7d: float = 0.0


def adoption(
    department: str,
    members: set[int],
    last7: set[int],
    previous7: set[int],
    last30: set[int],
    min_group_size: int,
) -> Adoption:
    """Active members (own activity) in the last 7 and 30 days, the 30-day rate and the 7-day trend, from the
    pseudonyms active in the last 7 days, the 7 days before, and the last 30 days.

    Below the minimum group size nothing is shown, not even the head count. Only current members count, so a
    forgotten or departed employee drops out at once. trend_7d is the relative change against the 7 days
    before (+1.0 when that week had nobody active and this one has someone).
    """
    if len(members) < min_group_size:
        return Adoption(department, 0, True)
    now, before, month = len(last7 & members), len(previous7 & members), len(last30 & members)
    if before:
        trend = (now - before) / before
    else:
        trend = 1.0 if now else 0.0
    return Adoption(department, len(members), False, now, month, before, month / len(members), trend)
