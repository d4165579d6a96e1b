"""The read side, pure: explanations add up to the scores, privacy rules, page tokens, ranks, adoption."""

from __future__ import annotations

import dataclasses

import pytest

from services.common.auth import Principal, Role
from services.common.errors import InvalidArgument
from services.engagement import queries
from services.engagement.config import load_scoring
from services.engagement.reference import Reference
from services.engagement.scoring import COMPONENTS, C, EmployeeState, figures
from tests.unit.engagement.builders import DAY, comment, event, mixed_history, post, react

CFG = load_scoring()
END = 20_100 * DAY
AS_OF = END // DAY


def employee(who: str) -> Principal:
    return Principal(who, frozenset({Role.EMPLOYEE}))


def admin() -> Principal:
    return Principal("hr", frozenset({Role.ADMIN}))


def history_states() -> dict[str, EmployeeState]:
    ref = Reference(CFG)
    ref.feed(mixed_history(employees=30, days=120, per_day=60, end_seconds=END, seed=3))
    return {e: s for e in ref.employees if (s := ref.state(e)) is not None}


STATES = history_states()


@pytest.mark.parametrize("window", ["7d", "30d", "100d", "decayed"])
@pytest.mark.parametrize("days_later", [0, 5, 40])
def test_contributions_add_up_to_every_component_score(window: str, days_later: int) -> None:
    for who, state in STATES.items():
        day = AS_OF + days_later
        result = queries.explain(state, day, CFG, window)
        expected = figures(state, day, CFG).windows[window]
        assert result.scores == expected
        for component in COMPONENTS:
            got = sum(c.points for c in result.contributions if c.component == component)
            assert got == pytest.approx(expected[component], abs=1e-4), (who, component)


def test_contributions_are_sorted_described_and_counted() -> None:
    t = END - 3 * DAY
    events = [post("a", t + i) for i in range(3)]
    events += [react(f"g{i}", "a", t + 100 + i, "d2", "d1") for i in range(4)]
    events += [comment("a", f"r{i}", t + 200 + i) for i in range(2)]
    ref = Reference(CFG)
    ref.feed(events)
    state = ref.state("a")
    assert state is not None
    result = queries.explain(state, AS_OF, CFG, "30d")
    points = [c.points for c in result.contributions]
    assert points == sorted(points, reverse=True)
    by_activity = {c.activity: c for c in result.contributions}
    assert by_activity["posts"].count == 3
    assert by_activity["distinct_colleagues"].count == 4
    assert by_activity["other_department_colleagues"].count == 4
    assert by_activity["comments_given"].count == 2
    assert by_activity["posts"].description.startswith("3 posts and questions: ")
    assert "points" in by_activity["posts"].description
    # two receivers only: the ring rule shows up in words
    assert any("2 different colleague(s)" in note for note in result.notes)
    assert any("own content earn nothing" in note for note in result.notes)


def test_explanation_notes_inactivity_and_decay_wording() -> None:
    ref = Reference(CFG)
    ref.feed([post("a", END - 20 * DAY)])
    state = ref.state("a")
    assert state is not None
    result = queries.explain(state, AS_OF, CFG, "decayed")
    assert any("Nothing new since" in n for n in result.notes)
    assert all("recent days weigh more" in c.description for c in result.contributions)
    assert queries.explain(state, AS_OF, CFG, "7d").contributions == []


def test_pilot_points_are_scaled_to_the_cap() -> None:
    state = EmployeeState(pilot=(10, 10, 0, 0), as_of_day=AS_OF)
    result = queries.explain(state, AS_OF, CFG, "30d")
    pilot = [c for c in result.contributions if c.component == "pilot"]
    assert sum(c.points for c in pilot) == pytest.approx(CFG.pilot.cap)
    assert any("capped" in n for n in result.notes)


def test_burst_days_are_noted() -> None:
    counts = [0] * len(C)
    counts[C["received"]] = CFG.reach.burst_daily_cap + 5
    state = EmployeeState(days={AS_OF: counts}, as_of_day=AS_OF)
    result = queries.explain(state, AS_OF, CFG, "7d")
    received = next(c for c in result.contributions if c.activity == "interactions_received")
    assert received.count == CFG.reach.burst_daily_cap + 5
    assert received.points == pytest.approx(CFG.reach.received * CFG.reach.burst_daily_cap)
    assert any("received more than" in n for n in result.notes)


def test_windows_and_components_are_checked_with_readable_messages() -> None:
    assert queries.check_window("", CFG) == "30d"
    assert queries.check_window("decayed", CFG) == "decayed"
    with pytest.raises(InvalidArgument, match="choose one of 7d, 30d, 100d, decayed"):
        queries.check_window("1y", CFG)
    assert queries.check_component("") == "total"
    assert queries.check_component("reach") == "reach"
    with pytest.raises(InvalidArgument, match="not a score component"):
        queries.check_component("karma")


def test_score_visibility_respects_the_ranking_opt_out() -> None:
    v = queries.Visibility
    assert queries.score_visibility(employee("a"), "a", opted_out=True) is v.FULL
    assert queries.score_visibility(admin(), "a", opted_out=True) is v.FULL
    assert queries.score_visibility(employee("b"), "a", opted_out=False) is v.PUBLIC
    assert queries.score_visibility(employee("b"), "a", opted_out=True) is v.NONE
    assert queries.may_explain(employee("a"), "a")
    assert queries.may_explain(admin(), "a")
    assert not queries.may_explain(employee("b"), "a")


def test_as_of_follows_the_watermark_so_inactivity_decays() -> None:
    state = EmployeeState(as_of_day=100)
    assert queries.as_of_day(state, 0) == 100
    assert queries.as_of_day(state, 150 * 86_400_000 + 5) == 150
    assert queries.as_of_ms(150, 150 * 86_400_000 + 5) == 150 * 86_400_000 + 5


def test_page_sizes() -> None:
    assert queries.check_page_size(0, 20, 100) == 20
    assert queries.check_page_size(7, 20, 100) == 7
    with pytest.raises(InvalidArgument, match="negative"):
        queries.check_page_size(-1, 20, 100)
    with pytest.raises(InvalidArgument, match="at most 100"):
        queries.check_page_size(101, 20, 100)


def test_page_tokens_round_trip_and_are_bound_to_their_board() -> None:
    board = queries.board_key("30d", "d1", "total")
    cursor = queries.Cursor(offset=12, shown=10, rank=9, score=4.5)
    token = queries.encode_token(board, cursor)
    assert queries.decode_token(token, board) == cursor
    assert queries.decode_token("", board) == queries.Cursor()
    with pytest.raises(InvalidArgument, match="another leaderboard"):
        queries.decode_token(token, queries.board_key("7d", "d1", "total"))
    for bad in ("garbage!", "e30", token[:-3]):
        with pytest.raises(InvalidArgument, match="not a token this service issued"):
            queries.decode_token(bad, board)


def test_competition_ranks_continue_across_pages() -> None:
    first, cursor = queries.rank_entries([("a", 9.0), ("b", 7.0), ("c", 7.0)], queries.Cursor())
    assert [(r.rank, r.employee_id) for r in first] == [(1, "a"), (2, "b"), (2, "c")]
    second, cursor = queries.rank_entries([("d", 7.0), ("e", 3.0)], cursor)
    assert [(r.rank, r.employee_id) for r in second] == [(2, "d"), (5, "e")]
    assert cursor.shown == 5


def test_component_board_leaves_out_opted_out_and_sorts() -> None:
    states = dict(list(STATES.items())[:8])
    hidden = next(iter(states))
    states[hidden] = dataclasses.replace(states[hidden], opt_out=True)
    rows = queries.component_board(states, END * 1000, CFG, "30d", "reach")
    assert hidden not in [e for e, _ in rows]
    scores = [s for _, s in rows]
    assert scores == sorted(scores, reverse=True)
    assert len(rows) == 7


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


def test_profile_and_innovation_contributions() -> None:
    t = END - DAY
    events = [
        event("ProfileUpdated", "a", t, completeness=0.8),
        event("FeatureTried", "a", t + 1, feature_id="f1"),
        event("FeedbackSubmitted", "a", t + 2, feedback_id="x"),
    ]
    ref = Reference(CFG)
    ref.feed(events)
    state = ref.state("a")
    assert state is not None
    by_activity = {c.activity: c for c in queries.explain(state, AS_OF, CFG, "7d").contributions}
    assert by_activity["profile_completeness"].description.startswith("profile 80% complete")
    assert by_activity["profile_update_days"].count == 1
    assert by_activity["feature_trials"].count == 1
    assert by_activity["feedback"].count == 1
