"""Calibration proposals and their approval against a real recognition process (Kafka, Redis, gRPC): the
proposal counts who reaches each threshold (never below the minimum group), only the programme owner approves,
only the proposal listed last can be approved, and the approved thresholds decide the next grants."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from catalyst.events.v1 import badges_pb2
from catalyst.recognition.v1 import recognition_pb2 as pb

from services.common.auth import Role
from services.recognition.calibration import day_of
from tests.integration.recognition.harness import (
    Harness,
    calibrated_rules,
    distribution_of,
    eventually,
    score_changed,
    settings_for,
    start_harness,
    stop_harness,
)

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
PEOPLE = [f"e{i:02d}" for i in range(20)]


@pytest.fixture
async def rec(common_env: dict[str, str], tmp_path: Path) -> AsyncIterator[Harness]:
    harness = await start_harness(common_env, settings_for(common_env, badge_rules_file=calibrated_rules(tmp_path)))
    yield harness
    await stop_harness(harness)


async def refused(call: object, code: grpc.StatusCode, text: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call  # type: ignore[misc]
    assert info.value.code() == code, info.value.details()
    assert text in (info.value.details() or "")


def helper_bronze(response: pb.ListCalibrationProposalsResponse) -> pb.CalibrationCriterion:
    (criterion,) = response.criteria
    assert (criterion.badge, criterion.tier, criterion.metric) == ("helper", badges_pb2.TIER_BRONZE, "answers_100d")
    return criterion


async def test_the_programme_owner_approves_the_proposal_listed_and_it_decides_the_next_grants(rec: Harness) -> None:
    # The first figures arrive before engagement published any day's distribution, so nobody is compared and
    # Helper bronze cannot be earned yet.
    for n, person in enumerate(PEOPLE):
        await rec.scores_applied(score_changed(person, 1, T0, {"answers_100d": n, "active_days_30d": 5}))
    await rec.settled()
    assert not (await rec.stub.GetBadges(pb.GetBadgesRequest(), metadata=rec.token("e19"))).badges
    # The day ends: its distribution is what the proposal offers.
    everyone = [{"answers_100d": float(n), "active_days_30d": 5.0} for n in range(len(PEOPLE))]
    await rec.distribution_recorded(distribution_of(day_of(T0), everyone))

    owner, council = rec.token("comms", Role.PROGRAMME_OWNER), rec.token("wc", Role.WORKS_COUNCIL)
    await refused(
        rec.stub.ListCalibrationProposals(pb.ListCalibrationProposalsRequest(), metadata=rec.token("e01")),
        grpc.StatusCode.PERMISSION_DENIED,
        "programme_owner or works_council",
    )
    seen = await rec.stub.ListCalibrationProposals(pb.ListCalibrationProposalsRequest(), metadata=council)
    assert (seen.population, seen.min_population, seen.min_group_size) == (20, 5, 5) and not seen.approvals
    criterion = helper_bronze(seen)
    assert (criterion.grant_percentile, criterion.keep_percentile, criterion.grant_floor) == (70, 50, 3)
    # 14 answers: what the top 30 % of the 20 reach; six people reach it (e14..e19), a count of at least five.
    assert (criterion.proposed.grant, criterion.proposed.keep, criterion.proposed.meeting) == (14, 10, 6)
    assert criterion.in_force.grant == float("inf") and criterion.in_force.meeting == 0

    await refused(
        rec.stub.ApproveCalibration(pb.ApproveCalibrationRequest(proposal_id=seen.proposal_id), metadata=council),
        grpc.StatusCode.PERMISSION_DENIED,
        "programme_owner",
    )
    await refused(
        rec.stub.ApproveCalibration(pb.ApproveCalibrationRequest(), metadata=owner),
        grpc.StatusCode.INVALID_ARGUMENT,
        "proposal_id",
    )
    await refused(
        rec.stub.ApproveCalibration(pb.ApproveCalibrationRequest(proposal_id="0123456789abcdef"), metadata=owner),
        grpc.StatusCode.FAILED_PRECONDITION,
        "list them again",
    )
    approved = await rec.stub.ApproveCalibration(
        pb.ApproveCalibrationRequest(proposal_id=seen.proposal_id), metadata=owner
    )
    assert (approved.approval.approved_by, approved.approval.population) == ("comms", 20)

    after = await rec.stub.ListCalibrationProposals(pb.ListCalibrationProposalsRequest(), metadata=owner)
    assert (helper_bronze(after).in_force.grant, helper_bronze(after).in_force.keep) == (14, 10)
    assert [a.proposal_id for a in after.approvals] == [seen.proposal_id]

    # The next figures are judged with the approved thresholds: 14 answers and more earn Helper bronze.
    await rec.scores_applied(
        score_changed("e19", 2, T0 + timedelta(days=1), {"answers_100d": 19, "active_days_30d": 5})
    )
    await rec.scores_applied(
        score_changed("e13", 2, T0 + timedelta(days=1), {"answers_100d": 13, "active_days_30d": 5})
    )
    badges = await eventually(
        lambda: rec.stub.GetBadges(pb.GetBadgesRequest(), metadata=rec.token("e19")), lambda r: bool(r.badges)
    )
    (badge,) = badges.badges
    assert (badge.badge, badge.tier) == ("helper", badges_pb2.TIER_BRONZE)
    assert (
        "what the 30% of active colleagues with the most answers in the last 100 days reach"
        in badge.evidence[0].description
    )
    await rec.settled()
    assert not (await rec.stub.GetBadges(pb.GetBadgesRequest(), metadata=rec.token("e13"))).badges
