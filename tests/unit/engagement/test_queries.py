"""The query API's read side, pure: request checks, privacy rules, page tokens, ranks, adoption, and the
words of the explanation it serves (model/figures.explain; test_model.py holds that it adds up)."""

from __future__ import annotations

import dataclasses

import pytest

from services.common.auth import Principal, Role
from services.common.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from services.common.policy import Rankings, load_policy
from services.engagement.api import queries
from services.engagement.model.config import Daily, ScoringModel, TotalTerm, load_model
from services.engagement.model.figures import TOTAL, explain, figures
from services.engagement.model.state import DAY_MS, State
from tests.unit.engagement.builders import DAY, comment, event, mixed_history, post, react
from tests.unit.engagement.fakes import expected_states
from tests.unit.engagement.test_model import records

MODEL = load_model()
END = 20_100 * DAY
AS_OF = END // DAY
STATES = expected_states(records(list(mixed_history(employees=30, days=120, per_day=60, end_seconds=END))), MODEL)


def employee(who: str) -> Principal:
    return Principal(who, frozenset({Role.EMPLOYEE}))


def programme_owner() -> Principal:
    return Principal("comms", frozenset({Role.PROGRAMME_OWNER}))


def one(events: list, who: str = "a") -> State:
    return expected_states(records(events), MODEL)[who]


def test_contributions_are_sorted_described_and_counted() -> None:
    t = END - 3 * DAY
    events = [post("a", t + i) for i in range(3)]
    events += [react(f"g{i}", "a", t + 100 + i, "d2", "d1") for i in range(4)]
    events += [comment("a", f"r{i}", t + 200 + i) for i in range(2)]
    result = explain(one(events), AS_OF, MODEL, "30d")
    points = [c.points for c in result.contributions]
    assert points == sorted(points, reverse=True)
    by_activity = {c.activity: c for c in result.contributions}
    assert by_activity["posts"].count == 3
    assert by_activity["distinct_colleagues"].count == 4
    assert by_activity["other_department_colleagues"].count == 4
    assert by_activity["comments"].count == 2
    assert by_activity["posts"].description.startswith("3 posts and questions: ")
    assert "points" in by_activity["posts"].description
    # two receivers only: the ring rule shows up in words
    assert any("2 different colleague(s)" in note for note in result.notes)
    assert any("own content earn nothing" in note for note in result.notes)


def test_explanation_notes_inactivity_and_decay_wording() -> None:
    state = one([post("a", END - 20 * DAY)])
    result = explain(state, AS_OF, MODEL, "decayed")
    assert any("Nothing new since" in n for n in result.notes)
    assert all("recent days weigh more" in c.description for c in result.contributions)
    assert explain(state, AS_OF, MODEL, "7d").contributions == []


def test_pilot_points_are_scaled_to_the_cap() -> None:
    cap = next(term.cap for term in MODEL.components["pilot"] if isinstance(term, TotalTerm))
    t = END - DAY
    events = [event("SurveyAnswered", "a", t + i, survey_id=f"s{i}", pre_launch=True) for i in range(10)]
    events += [event("WorkshopAttended", "a", t + 20 + i, session_id=f"w{i}", pre_launch=True) for i in range(10)]
    result = explain(one(events), AS_OF, MODEL, "30d")
    pilot = [c for c in result.contributions if c.component == "pilot"]
    assert sum(c.points for c in pilot) == pytest.approx(cap)
    assert any("capped" in n for n in result.notes)


def test_burst_days_are_noted() -> None:
    cap = next(t.count_cap for t in MODEL.components["reach"] if isinstance(t, Daily) and t.count_cap)
    points = next(t.daily["received"] for t in MODEL.components["reach"] if isinstance(t, Daily) and t.count_cap)
    events = [react(f"g{i}", "a", END - DAY + i) for i in range(cap + 5)]
    events += [react("a", f"g{i}", END - DAY + 100 + i) for i in range(cap + 5)]  # give and take: in full
    result = explain(one(events), AS_OF, MODEL, "7d")
    received = next(c for c in result.contributions if c.activity == "received_interactions")
    assert received.count == cap + 5
    assert received.points == pytest.approx(points * cap)
    assert any("received more than" in n for n in result.notes)


def test_profile_and_innovation_contributions() -> None:
    t = END - DAY
    events = [
        event("ProfileUpdated", "a", t, completeness=0.8),
        event("FeatureTried", "a", t + 1, feature_id="f1"),
        event("FeedbackSubmitted", "a", t + 2, feedback_id="x"),
    ]
    by_activity = {c.activity: c for c in explain(one(events), AS_OF, MODEL, "7d").contributions}
    assert by_activity["completeness"].description.startswith("profile 80% complete")
    assert by_activity["profile_update_days"].count == 1
    assert by_activity["trials"].count == 1
    assert by_activity["feedback"].count == 1


def test_windows_and_components_are_checked_with_readable_messages() -> None:
    assert queries.check_window("", MODEL) == "30d"
    assert queries.check_window("decayed", MODEL) == "decayed"
    with pytest.raises(InvalidArgument, match="choose one of 7d, 30d, 100d, decayed"):
        queries.check_window("1y", MODEL)
    assert queries.check_component("") == TOTAL
    assert queries.check_component("reach") == "reach"
    with pytest.raises(InvalidArgument, match="not a score component"):
        queries.check_component("karma")


def test_only_windows_that_resist_a_burst_have_a_board() -> None:
    """The 7-day score is explained, never ranked: a week of bursts outscores an ambassador's quiet week."""
    assert "7d" in MODEL.window_names and "7d" not in MODEL.leaderboards.windows
    assert queries.check_window("7d", MODEL) == "7d"
    assert queries.check_board_window("", MODEL) == "30d"
    for window in MODEL.leaderboards.windows:
        assert queries.check_board_window(window, MODEL) == window
    for window in ("7d", "1y"):
        with pytest.raises(
            InvalidArgument, match="has no leaderboard; windows with a leaderboard: 30d, 100d, decayed"
        ) as e:
            queries.check_board_window(window, MODEL)
        assert e.value.field == "window"


def test_the_default_window_follows_the_scoring_file() -> None:
    raw = MODEL.model_dump(by_alias=True, exclude_none=True)
    raw["windows"]["days"] = {"14d": 14, "100d": 100}
    for term in (t for terms in raw["components"].values() for t in terms if "closed" in t):
        term["closed"]["most"] = {"14d": 3, "100d": 12, "decayed": 3}  # every window states its own
    raw["leaderboards"]["windows"] = ["100d"]
    assert queries.check_window("", ScoringModel.model_validate(raw)) == "14d"
    assert queries.check_board_window("", ScoringModel.model_validate(raw)) == "100d"
    raw["leaderboards"]["windows"] = []
    with pytest.raises(FailedPrecondition, match="no window has a leaderboard"):
        queries.check_board_window("", ScoringModel.model_validate(raw))


def test_score_visibility_follows_the_policy_and_the_ranking_choice() -> None:
    v = queries.Visibility
    default = load_policy().visibility
    ranking = default.model_copy(update={"rankings": Rankings.OPTED_IN, "colleague_scores": Rankings.OPTED_IN})
    for policy in (default, ranking):
        assert queries.score_visibility(employee("a"), "a", False, policy) is v.FULL
        assert queries.score_visibility(programme_owner(), "a", False, policy) is v.FULL
        assert queries.score_visibility(employee("b"), "a", False, policy) is v.NONE
    assert queries.score_visibility(employee("b"), "a", True, default) is v.NONE
    assert queries.score_visibility(employee("b"), "a", True, ranking) is v.PUBLIC
    with pytest.raises(PermissionDenied, match="visibility.rankings: none"):
        queries.require_rankings(default)
    queries.require_rankings(ranking)
    assert queries.may_explain(employee("a"), "a")
    assert queries.may_explain(programme_owner(), "a")
    assert not queries.may_explain(employee("b"), "a")


def test_as_of_follows_the_watermark_so_inactivity_decays() -> None:
    state = State(top=100)
    assert queries.as_of_day(state, 0) == 100
    assert queries.as_of_day(state, 150 * DAY_MS + 5) == 150
    assert queries.as_of_ms(150, 150 * DAY_MS + 5) == 150 * DAY_MS + 5
    assert queries.as_of_ms(150, 0) == 150 * DAY_MS


def test_a_state_holding_only_the_opt_out_is_no_record() -> None:
    assert not queries.recorded(None)
    assert not queries.recorded(State(opt_out=True))
    assert queries.recorded(next(iter(STATES.values())))


def test_board_totals_are_the_totals_of_the_indexed_windows() -> None:
    state = next(iter(STATES.values()))
    totals = queries.board_totals(state, END * 1000, MODEL)
    assert list(totals) == MODEL.leaderboards.windows
    windows = figures(state, AS_OF, MODEL).windows
    assert totals == {w: windows[w][TOTAL] for w in MODEL.leaderboards.windows}


def test_page_sizes() -> None:
    assert queries.check_page_size(0, 20, 100) == 20
    assert queries.check_page_size(7, 20, 100) == 7
    with pytest.raises(InvalidArgument, match="negative"):
        queries.check_page_size(-1, 20, 100)
    with pytest.raises(InvalidArgument, match="at most 100"):
        queries.check_page_size(101, 20, 100)


def test_page_tokens_round_trip_and_are_bound_to_their_board() -> None:
    board = queries.board_key("30d", "d1", TOTAL)
    cursor = queries.Cursor(offset=12, shown=10, rank=9, score=4.5)
    token = queries.encode_token(board, cursor)
    assert queries.decode_token(token, board) == cursor
    assert queries.decode_token("", board) == queries.Cursor()
    with pytest.raises(InvalidArgument, match="another leaderboard"):
        queries.decode_token(token, queries.board_key("7d", "d1", TOTAL))
    negative = queries.encode_token(board, queries.Cursor(offset=-1))
    for bad in ("garbage!", "e30", token[:-3], negative):
        with pytest.raises(InvalidArgument, match="not a token this service issued"):
            queries.decode_token(bad, board)


def test_competition_ranks_continue_across_pages() -> None:
    first, cursor = queries.rank_entries([("a", 9.0), ("b", 7.0), ("c", 7.0)], queries.Cursor())
    assert [(r.rank, r.employee_id) for r in first] == [(1, "a"), (2, "b"), (2, "c")]
    second, cursor = queries.rank_entries([("d", 7.0), ("e", 3.0)], cursor)
    assert [(r.rank, r.employee_id) for r in second] == [(2, "d"), (5, "e")]
    assert cursor.shown == 5


def test_component_board_ranks_only_who_opted_in_and_sorts() -> None:
    states = {e: dataclasses.replace(s, opted_in=True) for e, s in list(STATES.items())[:8]}
    hidden = next(iter(states))
    states[hidden] = dataclasses.replace(states[hidden], opted_in=False, opt_out=True)
    rows = queries.component_board(states, END * 1000, MODEL, "30d", "reach")
    assert hidden not in [e for e, _ in rows]
    scores = [s for _, s in rows]
    assert scores == sorted(scores, reverse=True)
    assert len(rows) == 7
    for who, score in rows:
        assert score == figures(states[who], AS_OF, MODEL).windows["30d"]["reach"]


def test_adoption_counts_current_members_and_hides_small_groups() -> None:
    members = set(range(1, 11))
    last7 = {1, 2, 3, 99}  # 99 left the department: not counted
    previous7 = {1, 2}
    last30 = {1, 2, 3, 4, 5, 99}
    a = queries.adoption("d1", members, last7, previous7, last30, 5)
    assert (a.hidden, a.employees, a.active_7d, a.active_previous_7d, a.active_30d) == (False, 10, 3, 2, 5)
    assert a.engagement_rate_30d == pytest.approx(0.5)
    assert a.trend_7d == pytest.approx(0.5)
    small = queries.adoption("d2", {1, 2, 3, 4}, {1}, set(), {1}, 5)
    assert small == queries.Adoption("d2", 0, True)
    fresh = queries.adoption("d3", members, {1}, set(), {1}, 5)
    assert fresh.trend_7d == 1.0
    quiet = queries.adoption("d4", members, set(), set(), set(), 5)
    assert quiet.trend_7d == 0.0
