"""The scoring rules: self-interactions, pair caps, distinct reach, rings, bursts, windows, decay, late events."""

from __future__ import annotations

import random

import pytest

from services.engagement import scoring
from services.engagement.config import ScoringConfig, load_scoring
from services.engagement.reference import Reference
from services.engagement.scoring import COMPONENTS, Figures, effects, pseudonym, sat
from tests.unit.engagement.builders import DAY, comment, event, mixed_history, post, react

CFG = load_scoring()
T0 = 20_000 * DAY  # start of day 20000 (UTC)
AS_OF = 20_000


def run(events: list, as_of: int = AS_OF, cfg: ScoringConfig = CFG) -> dict[str, Figures]:
    ref = Reference(cfg)
    ref.feed(events)
    return ref.figures(as_of)


def test_self_interactions_score_nothing() -> None:
    events = [comment("a", "a", T0), react("a", "a", T0 + 1)]
    assert all(not effects(e).ops for e in events)
    assert run([post("a", T0), *events])["a"].signals["distinct_reach_30d"] == 0


def test_pair_cap_limits_credit_from_one_giver_to_one_receiver_per_day() -> None:
    figs = run([react("a", "b", T0 + i) for i in range(10)])
    assert figs["a"].signals["reactions_given_30d"] == CFG.conversation.pair_cap_per_day
    nextday = run([react("a", "b", T0 + i) for i in range(10)] + [react("a", "b", T0 + DAY + 5)], AS_OF + 1)
    assert nextday["a"].signals["reactions_given_30d"] == CFG.conversation.pair_cap_per_day + 1


def test_reach_counts_distinct_people_and_other_departments_extra() -> None:
    one_person = run([react("x", "a", T0 + i, "d2", "d1") for i in range(20)])["a"]
    assert one_person.signals["distinct_reach_30d"] == 1
    many = run([react(f"x{i}", "a", T0 + i, "d2" if i < 3 else "d1", "d1") for i in range(8)])["a"]
    assert many.signals["distinct_reach_30d"] == 8
    assert many.signals["distinct_reach_other_dept_30d"] == 3
    same_dept = run([react(f"x{i}", "a", T0 + i) for i in range(8)])["a"]
    assert many.windows["30d"]["reach"] > same_dept.windows["30d"]["reach"]


def test_a_reaction_ring_gains_little() -> None:
    ring = ["r1", "r2", "r3", "r4"]
    events = []
    for day in range(29, -1, -1):
        for giver in ring:
            for receiver in ring:
                if giver != receiver:
                    events += [react(giver, receiver, T0 - day * DAY + k) for k in range(15)]
    # an honest colleague with the same credited volume (6 reactions a day), spread over 30 colleagues
    genuine = [react("g", f"c{(day * 6 + k) % 30}", T0 - day * DAY + k) for day in range(29, -1, -1) for k in range(6)]
    figs = run(events + genuine)
    ring_member, honest = figs["r1"], figs["g"]
    assert ring_member.signals["reactions_given_30d"] == honest.signals["reactions_given_30d"] == 180
    assert ring_member.windows["30d"]["conversation"] <= 0.3 * honest.windows["30d"]["conversation"]
    assert ring_member.signals["distinct_reach_30d"] == 3
    # 1350 reactions in the ring are worth less conversation than 60 honest ones
    casual = run([react("h", f"c{i}", T0 - (i % 30) * DAY) for i in range(60)])["h"]
    assert ring_member.windows["30d"]["conversation"] < casual.windows["30d"]["conversation"]


def test_a_burst_on_one_post_is_capped() -> None:
    burst = run([react(f"x{i}", "a", T0 + i) for i in range(300)])["a"]
    r = CFG.reach
    assert burst.signals["received_interactions_30d"] == 300
    expected = r.distinct * sat(300, r.distinct_cap) + r.received * r.burst_daily_cap
    assert burst.windows["30d"]["reach"] == pytest.approx(expected, abs=1e-5)
    assert burst.windows["30d"]["reach"] < r.distinct * r.distinct_cap + r.received * r.burst_daily_cap + 1e-9


def test_conversation_has_diminishing_returns() -> None:
    few = run([comment("a", f"b{i}", T0 + i) for i in range(3)])["a"].windows["7d"]["conversation"]
    many = run([comment("a", f"b{i}", T0 + i) for i in range(60)])["a"].windows["7d"]["conversation"]
    assert many < 20 * few
    assert many <= CFG.conversation.daily_cap + 1e-9


def test_windows_use_event_time_days() -> None:
    events = [post("a", T0 - 3 * DAY), post("b", T0 - 20 * DAY), post("c", T0 - 60 * DAY), post("d", T0 - 120 * DAY)]
    figs = run(events)
    assert figs["a"].windows["7d"]["content"] > 0 and figs["a"].windows["30d"]["content"] > 0
    assert figs["b"].windows["7d"]["content"] == 0 and figs["b"].windows["30d"]["content"] > 0
    assert figs["c"].windows["30d"]["content"] == 0 and figs["c"].windows["100d"]["content"] > 0
    assert figs["d"].windows["100d"]["content"] == 0 and figs["d"].windows["decayed"]["content"] == 0


def test_decayed_total_halves_after_one_half_life() -> None:
    half_life = int(CFG.windows.decay_half_life_days)
    fresh = run([event("FeatureTried", "a", T0, feature_id="f")])["a"].windows["decayed"]["innovation"]
    old = run([event("FeatureTried", "a", T0 - half_life * DAY, feature_id="f")])["a"].windows["decayed"]["innovation"]
    assert old == pytest.approx(fresh / 2, abs=1e-5)


def test_inactivity_lowers_windowed_figures() -> None:
    events = [post("a", T0)]
    assert run(events, AS_OF)["a"].windows["7d"]["total"] > run(events, AS_OF + 8)["a"].windows["7d"]["total"]


def test_late_and_out_of_order_events_land_in_their_own_day() -> None:
    history = list(mixed_history(employees=25, days=40, per_day=120, end_seconds=T0 + DAY))
    in_order = run(history)
    # Interactions received come from other people's partitions in any order; own events stay in order.
    by_actor: dict[str, list] = {}
    for e in history:
        by_actor.setdefault(e.employee_id, []).append(e)
    rng = random.Random(3)
    queues = list(by_actor.values())
    shuffled = []
    while queues:
        q = rng.choice(queues)
        shuffled.append(q.pop(0))
        if not q:
            queues.remove(q)
    assert run(shuffled) == in_order


def test_answers_and_acceptance_in_the_own_department() -> None:
    figs = run(
        [
            event(
                "AnswerPosted",
                "a",
                T0,
                "d1",
                answer_id="x",
                question_id="q",
                question_author_id="b",
                question_author_department_id="d1",
            ),
            event(
                "AnswerPosted",
                "a",
                T0 + 1,
                "d1",
                answer_id="y",
                question_id="r",
                question_author_id="c",
                question_author_department_id="d2",
            ),
            event(
                "AnswerAccepted",
                "b",
                T0 + 2,
                "d1",
                answer_id="x",
                question_id="q",
                answer_author_id="a",
                answer_author_department_id="d1",
            ),
            event(
                "AnswerAccepted",
                "a",
                T0 + 3,
                "d1",
                answer_id="z",
                question_id="s",
                answer_author_id="a",
                answer_author_department_id="d1",
            ),
        ]
    )
    s = figs["a"].signals
    assert (s["answers_100d"], s["answers_own_dept_100d"], s["accepted_answers_100d"]) == (2, 1, 1)
    assert figs["b"].signals["distinct_reach_30d"] == 1  # the answer reached the asker
    assert figs["a"].windows["30d"]["helpfulness"] > 0


def test_profile_pilot_and_activity_signals() -> None:
    figs = run(
        [
            event("ProfileUpdated", "a", T0 - 2 * DAY, completeness=0.9),
            event("ProfileUpdated", "a", T0 - 5 * DAY, completeness=0.4),  # older: does not win
            event("SurveyAnswered", "a", T0 - 300 * DAY, survey_id="s", pre_launch=True),
            event("WorkshopAttended", "a", T0 - 290 * DAY, session_id="w", pre_launch=True, contributed=True),
            post("a", T0 - 15 * DAY),
        ]
    )
    s = figs["a"].signals
    assert s["profile_completeness"] == 0.9
    assert s["profile_updates_100d"] == 2
    assert s["pilot_activities"] == 2
    assert s["active_weeks_12w"] == 2 or s["active_weeks_12w"] == 3
    assert s["active_days_30d"] == 3
    assert figs["a"].windows["7d"]["pilot"] == figs["a"].windows["100d"]["pilot"] > 0


def test_every_window_has_every_component_and_the_total() -> None:
    figs = run([post("a", T0)])["a"]
    assert set(figs.windows) == {"7d", "30d", "100d", "decayed"}
    for scores in figs.windows.values():
        assert set(scores) == {*COMPONENTS, "total"}
        assert scores["total"] == pytest.approx(sum(v for k, v in scores.items() if k != "total"), abs=1e-5)


def test_forgotten_employee_disappears() -> None:
    ref = Reference(CFG)
    ref.feed([post("a", T0), event("EmployeeForgotten", "a", T0 + 1), post("a", T0 + 2)])
    assert "a" not in ref.figures(AS_OF)


def test_reach_per_post_rewards_reach_not_volume() -> None:
    # Two posts that twelve colleagues engage with, against twenty posts that the same four people like.
    focused = [post("a", T0 - 3 * DAY), post("a", T0 - 2 * DAY)]
    focused += [react(f"x{i}", "a", T0 - DAY + i) for i in range(12)]
    flood = [post("b", T0 - 20 * DAY + i * 3600) for i in range(20)]
    flood += [react(f"m{i % 4}", "b", T0 - DAY + i) for i in range(40)]
    figs = run(focused + flood)
    assert figs["a"].signals["reach_per_post_30d"] == 6.0
    assert figs["b"].signals["reach_per_post_30d"] == 0.2
    assert run([react("x", "c", T0)])["c"].signals["reach_per_post_30d"] == 0.0  # no posts: nothing to divide


def test_ops_carry_text_fields() -> None:
    for env in mixed_history(30, 20, 40, T0):
        assert all(type(v) is str for _, op in effects(env).ops for v in (op.kind, op.x, op.y, op.z))


def test_the_pseudonym_cache_is_bounded_and_pseudonyms_stay_stable(monkeypatch: pytest.MonkeyPatch) -> None:
    first = {f"p{n}": pseudonym(f"p{n}") for n in range(50)}
    monkeypatch.setattr(scoring, "PSEUDONYM_CACHE", 16)
    scoring.PSEUDONYMS.clear()  # the same dict: the C planner reads it too
    assert {name: pseudonym(name) for name in first} == first
    assert len(scoring.PSEUDONYMS) <= 16
    assert all(0 < value < 2**31 for value in first.values())
