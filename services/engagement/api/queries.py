"""The read side of engagement, pure: request checks, who may see whose score, leaderboard ranks and page
tokens, and department adoption figures (no I/O; the server feeds it state and the watermark).

Scores and their explanation come from `model/figures.py`: nothing here restates the score.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeGuard

from services.common.auth import Principal, Role
from services.common.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from services.common.policy import Rankings, VisibilityPolicy
from services.engagement.model.config import COMPONENTS, ScoringModel
from services.engagement.model.figures import TOTAL, figures
from services.engagement.model.state import DAY_MS, State

PREFERRED_WINDOW = "30d"  # the window most badge rules read; the default when the scoring file has it

# ---------------------------------------------------------------- request checks


def default_window(model: ScoringModel) -> str:
    """The window an empty request means: 30d, or the first configured window if the file has no 30d."""
    names = model.window_names
    return PREFERRED_WINDOW if PREFERRED_WINDOW in names else names[0]


def check_window(window: str, model: ScoringModel) -> str:
    """The window to use ("" means the default); a readable INVALID_ARGUMENT otherwise."""
    if not window:
        return default_window(model)
    names = model.window_names
    if window not in names:
        raise InvalidArgument("window", f"{window!r} is not a window; choose one of {', '.join(names)}")
    return window


def default_board_window(model: ScoringModel) -> str:
    """The window an empty leaderboard request means: 30d, or the first window with a board ("" if none has)."""
    boards = model.leaderboards.windows
    return PREFERRED_WINDOW if PREFERRED_WINDOW in boards else next(iter(boards), "")


def check_board_window(window: str, model: ScoringModel) -> str:
    """The window to rank by ("" means the default): only a window with a board (`leaderboards.windows`, those
    that resist a burst); a readable INVALID_ARGUMENT naming the ones that have a board otherwise."""
    boards = model.leaderboards.windows
    if not boards:
        raise FailedPrecondition("no window has a leaderboard in this installation's scoring model")
    if not window:
        return default_board_window(model)
    if window not in boards:
        raise InvalidArgument(
            "window", f"{window!r} has no leaderboard; windows with a leaderboard: {', '.join(boards)}"
        )
    return window


def check_component(component: str) -> str:
    """The component to rank by ("" means the total)."""
    if not component:
        return TOTAL
    names = [*COMPONENTS, TOTAL]
    if component not in names:
        raise InvalidArgument("component", f"{component!r} is not a score component; choose one of {', '.join(names)}")
    return component


def as_of_day(state: State, watermark_ms: int) -> int:
    """Figures are as of the newer of the employee's newest day and the global event-time watermark, so
    someone inactive decays as soon as anyone else's events move time forward."""
    return max(state.top, watermark_ms // DAY_MS)


def as_of_ms(day: int, watermark_ms: int) -> int:
    """The event time the figures stand for (the same rule as ScoreChanged.occurred_at)."""
    return max(watermark_ms, day * DAY_MS)


def recorded(state: State | None) -> TypeGuard[State]:
    """True when anything was ever applied to the state; a hash holding only the opt-out is no record."""
    return state is not None and state.changes > 0


def board_totals(state: State, watermark_ms: int, model: ScoringModel) -> dict[str, float]:
    """The totals of the indexed leaderboard windows, as the publisher indexes them."""
    windows = figures(state, as_of_day(state, watermark_ms), model).windows
    return {window: windows[window][TOTAL] for window in model.leaderboards.windows}


# ---------------------------------------------------------------- who may see what


class Visibility(enum.Enum):
    FULL = "full"  # windows, signals, explanation
    PUBLIC = "public"  # windows only: what a colleague who takes part in ranking shows on leaderboards
    NONE = "none"


def score_visibility(caller: Principal, employee_id: str, opted_in: bool, policy: VisibilityPolicy) -> Visibility:
    """Own score and the programme owner (comms) or system (service) callers: everything. A colleague's score
    only where the policy shows colleagues' scores and that colleague opted in to ranking, and then without
    the detailed signals (data minimisation)."""
    if caller.subject == employee_id or caller.has(Role.PROGRAMME_OWNER) or caller.has(Role.SERVICE):
        return Visibility.FULL
    return Visibility.PUBLIC if policy.colleague_scores is Rankings.OPTED_IN and opted_in else Visibility.NONE


def require_rankings(policy: VisibilityPolicy) -> None:
    """Leaderboards exist only where the policy has rankings (of people who opted in)."""
    if policy.rankings is Rankings.NONE:
        raise PermissionDenied(
            "there are no rankings of people under this installation's policy (visibility.rankings: none, "
            f"profile {policy.profile.value}); each person sees their own score"
        )


def may_explain(caller: Principal, employee_id: str) -> bool:
    """Explanations are for the employee themself and for the programme owner (and system callers for them)."""
    return caller.subject == employee_id or caller.has(Role.PROGRAMME_OWNER) or caller.has(Role.SERVICE)


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
    foreign = InvalidArgument("page_token", "is not a token this service issued; pass next_page_token unchanged")
    try:
        payload = json.loads(base64.urlsafe_b64decode(token.encode() + b"=" * (-len(token) % 4)))
        cursor = Cursor(int(payload["o"]), int(payload["n"]), int(payload["r"]), payload["s"])
        same_board = payload["b"] == board
    except (binascii.Error, UnicodeDecodeError, ValueError, KeyError, TypeError):
        raise foreign from None
    if min(cursor.offset, cursor.shown, cursor.rank) < 0 or not isinstance(cursor.score, int | float | None):
        raise foreign
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
    states: dict[str, State], watermark_ms: int, model: ScoringModel, window: str, component: str
) -> list[tuple[str, float]]:
    """A board computed from state (for components), best first; only the employees who opted in to ranking."""
    rows = []
    for employee, state in states.items():
        if not state.opted_in:
            continue
        scores = figures(state, as_of_day(state, watermark_ms), model).windows[window]
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
    members' pseudonyms and the pseudonyms active in the last 7 days, the 7 days before, and the last 30 days.

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
