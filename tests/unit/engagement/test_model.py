"""The score stated once: the shipped model is valid, figures follow from the terms, the explanation adds up,
and every figure is a function of the set of events, whatever order, batching, duplicates or lateness."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.engagement.model import spec
from services.engagement.model import state as model_state
from services.engagement.model.config import COMPONENTS, load_model
from services.engagement.model.figures import TOTAL, explain, figures, kept, sat
from services.engagement.model.state import State, decode
from services.engagement.worker.handler import Record, plan
from tests.unit.engagement.builders import DAY, comment, event, mixed_history, post, react
from tests.unit.engagement.fakes import expected_states

MODEL = load_model()
END = 1_767_225_600  # 2026-01-01
TODAY = END // DAY


def records(events: list, partitions: int = 3) -> list[Record]:
    """Records as a topic with `partitions` partitions keyed by employee would hold them."""
    offsets = [0] * partitions
    out = []
    for env in events:
        partition = hash(env.employee_id) % partitions
        out.append(Record(partition, offsets[partition], env.employee_id.encode(), env.SerializeToString(), 0))
        offsets[partition] += 1
    return out


def states_of(events: list) -> dict[str, State]:
    return expected_states(records(events), MODEL)


def test_the_shipped_model_is_valid_and_names_every_component() -> None:
    assert set(MODEL.components) == set(COMPONENTS)
    assert MODEL.keep_days == 100
    assert "reach_per_post_30d" in MODEL.signals


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("caps:\n  given: 2\n", "caps"),
        ("signals:\n  x: {sum: nothing, days: 30}\n", "unknown counter"),
        ("signals:\n  x: {sum: posts, days: 300}\n", "further back"),
        ("components:\n  content: []\n", "components"),
    ],
)
def test_an_invalid_scoring_file_stops_start_up_with_a_clear_message(tmp_path: Path, change: str, message: str) -> None:
    import yaml

    base = yaml.safe_load(Path("deploy/config/scoring.yaml").read_text())
    base.update(yaml.safe_load(change))
    file = tmp_path / "scoring.yaml"
    file.write_text(yaml.safe_dump(base, sort_keys=False))
    with pytest.raises(SystemExit, match=message):
        load_model(file)


def test_counter_codes_are_unique() -> None:
    codes = [c.code for c in (*spec.COUNTERS, *spec.TOTALS)]
    assert len(codes) == len(set(codes))


def exchange(author: str, colleagues: int, answered: int, t: int) -> list:
    """`colleagues` different colleagues react to the author's post; the author reacts to `answered` of them."""
    return [react(f"g{i}", author, t + 10 + i) for i in range(colleagues)] + [
        react(author, f"g{i}", t + 500 + i) for i in range(answered)
    ]


def test_three_posts_on_one_day_give_the_curve_and_one_active_week() -> None:
    t = END - DAY // 2
    state = states_of([post("a", t), post("a", t + 1), post("a", t + 2), *exchange("a", 24, 24, t)])["a"]
    scores = figures(state, TODAY - 1, MODEL).windows["30d"]
    assert scores["content"] == pytest.approx(sat(9.0, 12.0) + 4.0, abs=1e-6)
    assert scores[TOTAL] == pytest.approx(sum(scores[c] for c in COMPONENTS), abs=1e-5)


@pytest.mark.parametrize(("colleagues", "share"), [(16, 1.0), (4, 0.25), (0, 0.0)])
def test_posts_count_as_far_as_different_colleagues_respond(colleagues: int, share: float) -> None:
    """Eight different colleagues per post count it in full; the same colleague twice counts once."""
    t = END - DAY // 2
    responses = exchange("a", colleagues, colleagues, t) + [
        comment(f"g{i}", "a", t + 100 + i) for i in range(colleagues)
    ]
    state = states_of([post("a", t), post("a", t + 1), *responses])["a"]
    scores = figures(state, TODAY - 1, MODEL).windows["30d"]
    assert scores["content"] == pytest.approx(share * (sat(6.0, 12.0) + 4.0), abs=1e-6)  # the week's points too
    notes = explain(state, TODAY - 1, MODEL, "30d").notes
    assert any(f"{colleagues} different colleague(s) responded to your 2 posts" in n for n in notes) == (share < 1)


def test_reach_drawn_by_the_volume_of_posts_counts_as_far_as_each_post_reaches_eight_colleagues() -> None:
    """Twelve colleagues respond to a post: all the reach; the same twelve spread over six posts (two each, the
    volume a self-promoter or a ring posts): a quarter of it."""
    t = END - DAY // 2
    responses = exchange("a", 12, 12, t)
    one = figures(states_of([post("a", t), *responses])["a"], TODAY - 1, MODEL).windows["30d"]
    state = states_of([*(post("a", t + k) for k in range(6)), *responses])["a"]
    six = figures(state, TODAY - 1, MODEL).windows["30d"]
    assert six["reach"] == pytest.approx(one["reach"] * 12 / (8 * 6), abs=1e-6)
    notes = explain(state, TODAY - 1, MODEL, "30d").notes
    assert any(
        n.startswith("12 different colleague(s) responded to your 6 posts") and "reach counts" in n for n in notes
    )


def test_reach_and_posts_count_in_full_while_one_responds_to_as_many_as_respond() -> None:
    """Give and take: a broadcaster whom 20 colleagues answer and who answers 5 keeps a quarter."""
    t = END - DAY // 2
    both = figures(states_of([post("a", t), *exchange("a", 20, 20, t)])["a"], TODAY - 1, MODEL).windows["30d"]
    state = states_of([post("a", t), *exchange("a", 20, 5, t)])["a"]
    one_way = figures(state, TODAY - 1, MODEL).windows["30d"]
    assert one_way["reach"] == pytest.approx(both["reach"] / 4, abs=1e-6)
    assert one_way["content"] == pytest.approx(both["content"] / 4, abs=1e-6)
    notes = explain(state, TODAY - 1, MODEL, "30d").notes
    assert sum("20 different colleague(s) responded to you and you responded to 5" in n for n in notes) == 2


def test_interactions_with_the_same_colleagues_again_and_again_count_up_to_three_each() -> None:
    """A ring's mates, every day: 30 comments to 7 colleagues (one of them daily) count 3 * 7 / 30 of the points."""
    t = END - DAY // 2
    daily = [comment("a", "b", t - k * DAY) for k in range(24)]
    once = [comment("a", f"g{i}", t + 10 + i) for i in range(6)]
    state = states_of(daily + once)["a"]
    scores = figures(state, TODAY - 1, MODEL).windows["30d"]
    assert scores["conversation"] == pytest.approx(0.7 * (23 * sat(1.0, 6.0) + sat(7.0, 6.0)), abs=1e-6)
    notes = explain(state, TODAY - 1, MODEL, "30d").notes
    assert any("the same colleagues again and again, 4.3 times each" in n and "at 70% now" in n for n in notes)


def test_a_closed_group_keeps_the_open_share_of_its_exchanges_squared() -> None:
    """a and b comment on each other's posts on 10 days, a on 6 others once: 6 of a's 16 (colleague, day)
    responses go beyond the 4 days of exchange with one colleague that count in full in 30 days."""
    t = END - DAY // 2
    mine = [comment("a", "b", t - k * DAY) for k in range(10)] + [comment("a", f"g{i}", t + 10 + i) for i in range(6)]
    theirs = [comment("b", "a", t - k * DAY + 60) for k in range(10)]
    one_way = figures(states_of(mine)["a"], TODAY - 1, MODEL).windows["30d"]["conversation"]
    state = states_of(mine + theirs)["a"]
    assert figures(state, TODAY - 1, MODEL).windows["30d"]["conversation"] == pytest.approx(
        one_way * (10 / 16) ** 2, abs=1e-6
    )
    within = figures(states_of(mine + theirs[:4])["a"], TODAY - 1, MODEL).windows["30d"]["conversation"]
    assert within == pytest.approx(one_way, abs=1e-6)
    explained = explain(state, TODAY - 1, MODEL, "30d")
    for component in COMPONENTS:
        added = sum(c.points for c in explained.contributions if c.component == component)
        assert added == pytest.approx(explained.scores[component], abs=1e-5)
    notes = explained.notes
    assert any("You and 1 colleague(s) responded to each other on more than 4 days" in n for n in notes)
    assert any("conversation counts in full" in n and "at 39% now" in n for n in notes)


def test_one_colleague_s_responses_are_capped_a_day() -> None:
    t = END - DAY // 2
    events = [post("a", t), *(react("b", "a", t + i) for i in range(1, 6)), comment("b", "a", t + 9)]
    signals = figures(states_of(events)["a"], TODAY - 1, MODEL).signals
    assert signals["received_interactions_30d"] == 2.0
    assert signals["distinct_reach_30d"] == 1.0


def test_reactions_give_at_most_a_point_a_day_however_many() -> None:
    """A reaction bot's hundreds of likes a day on colleagues' posts count as a handful."""
    t = END - DAY // 2
    bot = [react("bot", f"author{i}", t + i) for i in range(300)]
    scores = figures(states_of(bot)["bot"], TODAY - 1, MODEL).windows
    assert 0.99 < scores["30d"]["conversation"] <= 1.0
    assert scores["30d"][TOTAL] <= 1.0


def test_interactions_with_oneself_count_nothing() -> None:
    t = END - DAY
    assert "a" not in states_of([react("a", "a", t), comment("a", "a", t)])


def test_the_pair_cap_credits_the_most_valuable_kinds_first_whatever_arrived_first() -> None:
    t = END - DAY // 2
    reactions_first = [react("a", "b", t), react("a", "b", t + 1), comment("a", "b", t + 2)]
    for events in (reactions_first, list(reversed(reactions_first))):
        signals = figures(states_of(events)["a"], TODAY - 1, MODEL).signals
        assert signals["comments_given_30d"] == 1.0
        assert signals["reactions_given_30d"] == 1.0  # the cap of 2 per colleague and day: the comment first


def test_reach_counts_distinct_colleagues_and_other_departments() -> None:
    t = END - DAY // 2
    events = [react(g, "a", t, dept="d2" if g == "x" else "d1", author_dept="d1") for g in ("x", "y", "y")]
    signals = figures(states_of(events)["a"], TODAY - 1, MODEL).signals
    assert signals["distinct_reach_30d"] == 2.0
    assert signals["distinct_reach_other_dept_30d"] == 1.0
    assert signals["received_interactions_30d"] == 3.0


def test_the_explanation_adds_up_to_the_scores() -> None:
    states = states_of(list(mixed_history(12, 60, 40, END)))
    for state in states.values():
        for window in MODEL.window_names:
            e = explain(state, TODAY, MODEL, window)
            for component in COMPONENTS:
                parts = sum(c.points for c in e.contributions if c.component == component)
                assert math.isclose(parts, e.scores[component], abs_tol=1e-4), (window, component)
            assert e.scores == figures(state, TODAY, MODEL).windows[window]


def test_events_older_than_the_longest_window_are_ignored_and_old_days_dropped() -> None:
    old = post("a", END - 150 * DAY)
    new = post("a", END - DAY // 2)
    state = states_of([new, old])["a"]
    assert set(state.daily) == {TODAY - 1}


HISTORY = list(mixed_history(10, 40, 30, END, seed=3))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), partitions=st.integers(1, 4), batch=st.integers(1, 400))
def test_figures_depend_on_the_set_of_events_not_their_order(seed: int, partitions: int, batch: int) -> None:
    """Shuffled, split into batches, partly delivered twice (a replay at the same offsets), with events far
    older than the rest arriving last: the same state and the same figures as in event-time order."""
    rng = random.Random(seed)
    expected = states_of(HISTORY)
    shuffled = HISTORY[:]
    rng.shuffle(shuffled)
    delivered = records(shuffled, partitions)
    replay = delivered[: rng.randrange(len(delivered))]
    fields: dict[str, dict[str, str]] = {}
    from services.engagement.model import state as model_state

    for chunk in [delivered[i : i + batch] for i in range(0, len(delivered), batch)] + [replay]:
        work = plan(chunk, 1 << 62, 0)
        for employee, parts in work.writes.items():
            model_state.apply(fields.setdefault(employee, {}), parts, MODEL.keep_days)
    got = {e: decode(f) for e, f in fields.items()}
    assert set(got) == set(expected)
    for employee, state in expected.items():
        assert figures(got[employee], TODAY, MODEL) == figures(state, TODAY, MODEL)


def test_days_of_one_state_viewed_with_what_they_share_give_each_day_s_own_figures() -> None:
    """A walk over many days credits each kept day once (`kept`); every day's figures are still exactly those
    of viewing the state as of that day alone."""
    first = TODAY - MODEL.keep_days - 10
    for state in states_of(HISTORY).values():
        shared = kept(state, first, TODAY + 3, MODEL)
        for day in range(first, TODAY + 4):
            assert figures(state, day, MODEL, shared) == figures(state, day, MODEL)


def test_accepted_answers_are_capped_per_colleague_and_day() -> None:
    t = END - DAY // 2
    accepts = [
        event("AnswerAccepted", "asker", t + i, answer_id=f"x{i}", question_id="q", answer_author_id="helper")
        for i in range(4)
    ]
    signals = figures(states_of(accepts)["helper"], TODAY - 1, MODEL).signals
    assert signals["accepted_answers_100d"] == 2.0


def test_a_feature_counts_once_a_day() -> None:
    t = END - DAY // 2
    trials = [event("FeatureTried", "a", t + i, feature_id="f1") for i in range(3)]
    trials.append(event("FeatureTried", "a", t + 9, feature_id="f2"))
    assert figures(states_of(trials)["a"], TODAY - 1, MODEL).signals["feature_trials_100d"] == 2.0


def test_questions_asked_are_a_signal_of_their_own() -> None:
    t = END - DAY // 2
    events = [event("QuestionAsked", "a", t, question_id="q", body_length=5), post("a", t + 1)]
    signals = figures(states_of(events)["a"], TODAY - 1, MODEL).signals
    assert (signals["questions_asked_30d"], signals["posts_30d"]) == (1.0, 2.0)


def test_active_weeks_count_any_own_activity_not_only_posts() -> None:
    events = [react("a", "b", END - 3 * 7 * DAY), post("a", END - DAY // 2), react("a", "b", END - 2 * 7 * DAY)]
    assert figures(states_of(events)["a"], TODAY - 1, MODEL).signals["active_weeks_12w"] == 3.0


def test_pseudonyms_are_keyed_so_hashing_known_ids_does_not_re_identify() -> None:
    try:
        model_state.set_pseudonym_key("")
        unkeyed = {e: model_state.pseudonym(e) for e in ("e-1", "e-2")}
        model_state.set_pseudonym_key("installation secret one")
        one = {e: model_state.pseudonym(e) for e in ("e-1", "e-2")}
        assert one == {e: model_state.pseudonym(e) for e in ("e-1", "e-2")}  # stable for one key
        assert model_state.tag("e-1") == model_state.tag("e-1")
        model_state.set_pseudonym_key("installation secret two")
        two = {e: model_state.pseudonym(e) for e in ("e-1", "e-2")}
        assert len({*unkeyed.values(), *one.values(), *two.values()}) == 6
        assert all(0 < p < 1 << 31 for p in two.values())
    finally:
        model_state.set_pseudonym_key("")
