"""Actions become feed messages the feed service accepts; the interactive replay is self-contained."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest

from services.feed.domain import Limits, check_comment_body, check_post_draft
from services.feed.ingest import check_interaction
from services.simulator import wire
from services.simulator.actions import Action, ActionKind, SimulatedDay
from services.simulator.behaviour import Simulation
from services.simulator.interactive import choose_interactive
from services.simulator.population import build_population
from services.simulator.scenario import preset


@pytest.fixture(scope="module")
def days() -> list[SimulatedDay]:
    scenario = preset("small", seed=21, launch_date=dt.date(2026, 3, 2))
    return list(Simulation(scenario, build_population(scenario)).days())


def test_every_action_is_an_interaction_the_feed_accepts_with_its_event_time(days: list[SimulatedDay]) -> None:
    now_ms = int(dt.datetime(2026, 11, 26, tzinfo=dt.UTC).timestamp() * 1000)
    seen: set[str] = set()
    for day in days:
        for index, action in enumerate(day.actions):
            item = wire.imported(action)
            checked = check_interaction(item, index, now_ms, 0, Limits())
            assert checked.kind == wire.PAYLOAD_OF[action.kind]
            assert checked.occurred_ms == int(action.occurred_at.timestamp() * 1000)
            assert checked.actor_id == action.actor_id and checked.source_id == action.source_id
            seen.add(checked.kind)
    assert seen == set(wire.PAYLOAD_OF.values())


def test_wire_keeps_targets_and_authors() -> None:
    at = dt.datetime(2026, 3, 3, 9, 30, tzinfo=dt.UTC)
    action = Action(
        "s1-a00000001",
        ActionKind.ACCEPT,
        "s1-e00001",
        at,
        post_id="s1-q0000001",
        item_id="s1-a0000001",
        counterpart_id="s1-e00002",
        counterpart_department_id="s1-d02",
    )
    item = wire.imported(action)
    assert item.answer_accepted.question_id == "s1-q0000001"
    assert item.answer_accepted.answer_id == "s1-a0000001"
    assert item.answer_accepted.answer_author_id == "s1-e00002"
    assert item.answer_accepted.answer_author_department_id == "s1-d02"
    assert item.occurred_at.ToDatetime(tzinfo=dt.UTC) == at


def test_interactive_replay_takes_the_most_answered_posts_of_the_tail_and_only_their_follow_ups(
    days: list[SimulatedDay],
) -> None:
    tail = days[-7:]
    chosen = choose_interactive(tail, posts=3, budget=25)
    posts = [a for a in chosen if a.kind is ActionKind.POST]
    assert len(posts) == 3 and len(chosen) == 25
    created = {p.post_id: p.occurred_at for p in posts}
    for a in chosen:
        assert a.kind in (ActionKind.POST, ActionKind.COMMENT, ActionKind.REACTION)
        if a.kind is not ActionKind.POST:
            assert created[a.post_id] < a.occurred_at
    assert [a.occurred_at for a in chosen] == sorted(a.occurred_at for a in chosen)
    replies = Counter(a.post_id for d in tail for a in d.actions if a.kind in (ActionKind.COMMENT, ActionKind.REACTION))
    tail_posts = [a.post_id for d in tail for a in d.actions if a.kind is ActionKind.POST]
    assert min(replies[p] for p in created) >= sorted((replies[p] for p in tail_posts), reverse=True)[2]
    assert choose_interactive(tail, posts=0, budget=25) == []
    assert len(choose_interactive(tail, posts=3, budget=1)) == 1


def test_interactive_requests_pass_the_feed_rules(days: list[SimulatedDay]) -> None:
    for a in choose_interactive(days[-7:], posts=3, budget=40):
        if a.kind is ActionKind.POST:
            r = wire.create_post_request(a)
            check_post_draft(1, r.title, r.body, r.tags, r.target_department_id, Limits())
            assert len(r.body) == a.body_length
        elif a.kind is ActionKind.COMMENT:
            check_comment_body(wire.add_comment_request(a, "p0000000000000abcdef01").body, Limits())
        else:
            assert wire.add_reaction_request(a, "p0000000000000abcdef01").reaction != 0
