"""Grant, hysteresis, grace-period revocation and replays, against real Kafka, Redis and gRPC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from catalyst.events.v1 import badges_pb2
from catalyst.recognition.v1 import recognition_pb2 as pb

from services.recognition.rules import Tier
from services.recognition.store import state_key
from tests.integration.recognition.harness import Harness, eventually, score_changed, start_harness, stop_harness

pytestmark = pytest.mark.integration

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
BRONZE = {"posts_30d": 3}  # creator bronze: grant 3, keep 2, grace 14 days
BETWEEN = {"posts_30d": 2}
BELOW = {"posts_30d": 1}
CONSUMED = "recognition_records_consumed_total"


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


async def test_crossing_the_threshold_grants_once_and_publishes_once(rec: Harness) -> None:
    await rec.scores_applied(score_changed("alice", 1, day(0), {"posts_30d": 2}))
    await rec.scores_applied(score_changed("alice", 2, day(1), BRONZE))
    await rec.scores_applied(score_changed("alice", 3, day(2), {"posts_30d": 4}))

    (granted,) = await rec.events_of("badge_granted", 1)
    assert granted.employee_id == "alice" and granted.department_id == "d1"
    assert granted.badge_granted.badge == "creator" and granted.badge_granted.tier == badges_pb2.TIER_BRONZE
    assert granted.occurred_at.ToDatetime(tzinfo=UTC) == day(1)
    assert not granted.badge_granted.evidence  # personal figures stay in the erasable store

    response = await rec.stub.GetBadges(pb.GetBadgesRequest(), metadata=rec.token("alice"))
    (badge,) = response.badges
    assert badge.badge == "creator" and badge.tier == badges_pb2.TIER_BRONZE
    assert badge.granted_at.ToDatetime(tzinfo=UTC) == day(1)
    (evidence,) = badge.evidence
    assert (evidence.signal, evidence.value, evidence.threshold, evidence.window) == ("posts_30d", 3, 3, "30d")
    grants = await rec.metric("recognition_badge_grants_total", badge="creator", tier="bronze")
    holders = await rec.metric("recognition_badge_holders", badge="creator")
    assert (grants, holders) == (1, 1)


async def test_hovering_between_keep_and_grant_does_not_flap(rec: Harness) -> None:
    await rec.scores_applied(score_changed("bob", 1, day(0), BRONZE))
    for version in range(2, 22):  # 40 event-time days, far beyond the 14-day grace period
        figures = BETWEEN if version % 2 else BRONZE
        await rec.scores(score_changed("bob", version, day(2 * version), figures))
    await eventually(lambda: rec.store.load("bob"), lambda r: r.version == 21)
    await rec.events_of("badge_granted", 1)
    await rec.events_of("badge_revoked", 0)
    holding = (await rec.store.load("bob")).holdings[("creator", Tier.BRONZE)]
    assert holding.held and holding.at_risk_since is None and holding.grant_seq == 1


async def test_below_keep_longer_than_the_grace_period_revokes(rec: Harness) -> None:
    await rec.scores_applied(score_changed("carol", 1, day(0), BRONZE))
    await rec.scores_applied(score_changed("carol", 2, day(5), BELOW))
    record = await rec.store.load("carol")
    assert record.holdings[("creator", Tier.BRONZE)].at_risk_since == day(5)
    at_risk = await rec.stub.GetBadges(pb.GetBadgesRequest(), metadata=rec.token("carol"))
    assert at_risk.badges[0].at_risk_since.ToDatetime(tzinfo=UTC) == day(5)

    await rec.scores_applied(score_changed("carol", 3, day(18), BELOW))  # 13 days: still within grace
    await rec.events_of("badge_revoked", 0)
    await rec.scores_applied(score_changed("carol", 4, day(20), BELOW))

    (revoked,) = await rec.events_of("badge_revoked", 1)
    assert revoked.badge_revoked.badge == "creator" and revoked.occurred_at.ToDatetime(tzinfo=UTC) == day(19)
    assert not revoked.badge_revoked.reason and not revoked.badge_revoked.evidence
    mine = await rec.stub.GetBadges(pb.GetBadgesRequest(), metadata=rec.token("carol"))
    assert not mine.badges and "14-day grace period" in mine.revoked[0].revoke_reason
    assert mine.revoked[0].evidence[0].value == 1 and mine.revoked[0].evidence[0].threshold == 2
    assert mine.revoked[0].revoked_at.ToDatetime(tzinfo=UTC) == day(19)
    assert await rec.metric("recognition_badge_revocations_total", badge="creator", tier="bronze") == 1


async def test_grace_ends_by_event_time_even_without_new_figures_for_the_holder(rec: Harness) -> None:
    """Inactivity may stop score updates for a person; other people's newer events move the clock."""
    await rec.scores_applied(score_changed("dave", 1, day(0), BRONZE))
    await rec.scores_applied(score_changed("dave", 2, day(3), BELOW))
    await rec.scores_applied(score_changed("erin", 1, day(10), {}))
    await rec.events_of("badge_revoked", 0)
    await rec.scores_applied(score_changed("erin", 2, day(30), {}))
    (revoked,) = await rec.events_of("badge_revoked", 1, employee="dave")
    assert revoked.occurred_at.ToDatetime(tzinfo=UTC) == day(17)


async def test_replays_change_nothing(rec: Harness, common_env: dict[str, str]) -> None:
    history = [
        score_changed("fred", 1, day(0), BRONZE),
        score_changed("fred", 2, day(2), BELOW),
        score_changed("fred", 3, day(30), BELOW),  # revoked at day 16
        score_changed("fred", 4, day(31), BRONZE),  # granted again: a second, distinct grant
        score_changed("gina", 1, day(31), {"posts_30d": 15, "active_weeks_12w": 10, "distinct_reach_30d": 20}),
    ]
    for env in history:
        await rec.scores_applied(env)
    await rec.events_of("badge_granted", 5)
    await rec.events_of("badge_revoked", 1)
    events_before = await rec.recognition_events()
    state_before = {e: await rec.store.redis.hgetall(state_key(e)) for e in ("fred", "gina")}

    for env in history:  # the same records delivered again
        await rec.scores(env)
    # and a second process reading everything from the beginning (a new consumer group) over the same Redis
    replayer = await start_harness(common_env)
    try:
        await replayer.settled()
        outcomes = {o: await replayer.metric(CONSUMED, topic="engagement", outcome=o) for o in ("applied", "unchanged")}
        assert outcomes == {"applied": 0, "unchanged": 2 * len(history)}  # every record evaluated, none changed
    finally:
        await stop_harness(replayer)
    await rec.settled()
    assert await rec.metric(CONSUMED, topic="engagement", outcome="unchanged") == len(history)
    assert await rec.recognition_events() == events_before
    assert {e: await rec.store.redis.hgetall(state_key(e)) for e in ("fred", "gina")} == state_before
    ids = [e.event_id for e in events_before if e is not None]
    assert len(ids) == len(set(ids))


async def test_two_replicas_publish_each_event_once(rec: Harness, common_env: dict[str, str]) -> None:
    # Its own consumer group: both processes evaluate every record against the same Redis and both relays
    # run, the worst case for duplicates.
    replica = await start_harness(common_env)
    try:
        people = [f"p{i}" for i in range(12)]
        for person in people:
            await rec.scores(score_changed(person, 1, day(0), BRONZE))
        await replica.settled()  # the replica evaluated every record; then ours, and both relays drained
        granted = await rec.events_of("badge_granted", len(people))
        for process in (rec, replica):
            evaluated = [
                await process.metric(CONSUMED, topic="engagement", outcome=o) for o in ("applied", "unchanged")
            ]
            assert sum(evaluated) == len(people)
        assert sorted(e.employee_id for e in granted) == sorted(people)
    finally:
        await stop_harness(replica)
