"""People decide: endorsement, invitations, opt-out; progress, lists, coverage and the pilot group."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import grpc
import pytest
from catalyst.events.v1 import badges_pb2
from catalyst.recognition.v1 import recognition_pb2 as pb

from services.common.auth import Role
from services.recognition.events import TIER_PB
from services.recognition.rules import Tier, evaluate, load_rules
from tests.integration.recognition.harness import MECHANICS_RULES, Harness, eventually, score_changed

pytestmark = pytest.mark.integration

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
RULES = load_rules(MECHANICS_RULES)
AMB = "intranet_ambassador"
AMBASSADOR = {c.metric: c.grant for c in RULES.badges[AMB].tiers[Tier.SINGLE].criteria}
GRANTS_WITH_AMBASSADOR = len(evaluate(RULES, AMBASSADOR, {}, T0))  # the figures also earn facet badges


async def expect_error(call: object, code: grpc.StatusCode, text: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    assert info.value.code() == code, info.value.details()
    assert text in info.value.details()


async def make_ambassador(rec: Harness, employee: str, department: str = "d1", version: int = 1) -> None:
    await rec.scores_applied(score_changed(employee, version, T0, AMBASSADOR, department))


async def test_endorsement_needs_the_programme_owner_and_a_current_holder(rec: Harness) -> None:
    await make_ambassador(rec, "amy")
    await rec.scores_applied(score_changed("ben", 1, T0, {"posts_30d": 1}))
    owner = rec.token("po-1", Role.PROGRAMME_OWNER)

    await expect_error(
        rec.stub.Endorse(pb.EndorseRequest(employee_id="amy", badge=AMB), metadata=rec.token("ben")),
        grpc.StatusCode.PERMISSION_DENIED,
        "needs the programme_owner role",
    )
    await expect_error(
        rec.stub.Endorse(pb.EndorseRequest(employee_id="ben", badge=AMB), metadata=owner),
        grpc.StatusCode.FAILED_PRECONDITION,
        "cannot create one",
    )
    await expect_error(
        rec.stub.Endorse(pb.EndorseRequest(employee_id="nobody", badge=AMB), metadata=owner),
        grpc.StatusCode.NOT_FOUND,
        "holds no badges",
    )
    await expect_error(
        rec.stub.Endorse(pb.EndorseRequest(employee_id="amy", badge="rockstar"), metadata=owner),
        grpc.StatusCode.INVALID_ARGUMENT,
        "unknown badge",
    )
    await expect_error(
        rec.stub.Endorse(pb.EndorseRequest(employee_id="amy", badge=AMB)),
        grpc.StatusCode.UNAUTHENTICATED,
        "missing bearer token",
    )

    request = pb.EndorseRequest(employee_id="amy", badge=AMB, note="training slot in May")
    await expect_error(
        rec.stub.Endorse(request, metadata=owner),
        grpc.StatusCode.FAILED_PRECONDITION,
        "the invitation must be accepted first",
    )
    await rec.stub.RespondToInvitation(pb.RespondToInvitationRequest(badge=AMB, accept=True), metadata=rec.token("amy"))
    endorsed = (await rec.stub.Endorse(request, metadata=owner)).badge
    assert endorsed.endorsed and endorsed.endorsed_by == "po-1" and endorsed.endorsement_note == "training slot in May"
    assert (await rec.stub.Endorse(request, metadata=owner)).badge.endorsed  # a retry is harmless
    (event,) = await rec.events_of("badge_endorsed", 1)
    assert event.badge_endorsed.endorsed_by == "po-1" and not event.badge_endorsed.note  # the note stays in the store


async def test_the_holder_accepts_or_declines_the_invitation(rec: Harness) -> None:
    await make_ambassador(rec, "cleo")
    grants = await rec.events_of("badge_granted", GRANTS_WITH_AMBASSADOR)
    (granted,) = [e for e in grants if e.badge_granted.badge == AMB]
    assert granted.badge_granted.invitation
    await rec.scores_applied(score_changed("dan", 1, T0, {"posts_30d": 3}))

    await expect_error(
        rec.stub.RespondToInvitation(pb.RespondToInvitationRequest(badge=AMB, accept=True), metadata=rec.token("dan")),
        grpc.StatusCode.NOT_FOUND,
        "no Intranet Ambassador invitation",
    )
    await expect_error(
        rec.stub.RespondToInvitation(
            pb.RespondToInvitationRequest(badge="creator", accept=True), metadata=rec.token("dan")
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
        "not an invitation",
    )
    employee_view = await rec.stub.ListAmbassadors(pb.ListAmbassadorsRequest(), metadata=rec.token("dan"))
    assert not employee_view.ambassadors  # an open invitation is between the person and comms
    owner_view = await rec.stub.ListAmbassadors(
        pb.ListAmbassadorsRequest(), metadata=rec.token("comms", Role.PROGRAMME_OWNER)
    )
    assert [(a.employee_id, a.status) for a in owner_view.ambassadors] == [("cleo", pb.AMBASSADOR_STATUS_INVITED)]

    accepted = await rec.stub.RespondToInvitation(
        pb.RespondToInvitationRequest(badge=AMB, accept=True), metadata=rec.token("cleo")
    )
    assert accepted.badge.status == pb.AMBASSADOR_STATUS_ACCEPTED
    listed = await rec.stub.ListAmbassadors(pb.ListAmbassadorsRequest(department_id="d1"), metadata=rec.token("dan"))
    assert [(a.employee_id, a.status) for a in listed.ambassadors] == [("cleo", pb.AMBASSADOR_STATUS_ACCEPTED)]
    assert not listed.ambassadors[0].evidence  # figures are personal
    elsewhere = await rec.stub.ListAmbassadors(pb.ListAmbassadorsRequest(department_id="d2"), metadata=rec.token("dan"))
    assert not elsewhere.ambassadors

    declined = await rec.stub.RespondToInvitation(
        pb.RespondToInvitationRequest(badge=AMB, accept=False, reason="no time this quarter"),
        metadata=rec.token("cleo"),
    )
    assert declined.badge.status == pb.AMBASSADOR_STATUS_DECLINED
    await expect_error(
        rec.stub.Endorse(
            pb.EndorseRequest(employee_id="cleo", badge=AMB), metadata=rec.token("comms", Role.PROGRAMME_OWNER)
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
        "declined",
    )
    await rec.events_of("invitation_accepted", 1)
    (no,) = await rec.events_of("invitation_declined", 1)
    assert not no.invitation_declined.reason  # the person's words stay in the store
    owner_view = await rec.stub.ListAmbassadors(
        pb.ListAmbassadorsRequest(), metadata=rec.token("comms", Role.PROGRAMME_OWNER)
    )
    assert not owner_view.ambassadors[0].decline_reason  # reported only in aggregate (SummariseDeclines)
    own_view = await rec.stub.GetBadges(pb.GetBadgesRequest(), metadata=rec.token("cleo"))
    assert [b.decline_reason for b in own_view.badges if b.badge == AMB] == ["no time this quarter"]


async def test_opting_out_hides_existing_badges_and_stops_new_ones(rec: Harness) -> None:
    await make_ambassador(rec, "eve")
    await rec.stub.RespondToInvitation(pb.RespondToInvitationRequest(badge=AMB, accept=True), metadata=rec.token("eve"))
    prefs = pb.Preferences(recognition_opt_out=True)
    saved = await rec.stub.SetPreferences(pb.SetPreferencesRequest(preferences=prefs), metadata=rec.token("eve"))
    assert saved.preferences.recognition_opt_out
    got = await rec.stub.GetPreferences(pb.GetPreferencesRequest(), metadata=rec.token("eve"))
    assert got.preferences == prefs

    other = rec.token("fay")
    owner = rec.token("comms", Role.PROGRAMME_OWNER)
    assert not (await rec.stub.GetBadges(pb.GetBadgesRequest(employee_id="eve"), metadata=other)).badges
    assert not (await rec.stub.GetBadges(pb.GetBadgesRequest(employee_id="eve"), metadata=owner)).badges
    assert not (await rec.stub.ListAmbassadors(pb.ListAmbassadorsRequest(), metadata=owner)).ambassadors
    own = await rec.stub.GetBadges(pb.GetBadgesRequest(), metadata=rec.token("eve"))
    assert {b.badge for b in own.badges} >= {AMB}  # the person still sees their own

    grants_before = len(await rec.events_of("badge_granted", len(own.badges)))
    more = {**AMBASSADOR, "posts_30d": 15, "active_weeks_12w": 10, "distinct_reach_30d": 20}
    await rec.scores_applied(score_changed("eve", 2, T0 + timedelta(days=1), more))
    await rec.events_of("badge_granted", grants_before)  # settled, and nothing new while opted out
    applied = await rec.metric("recognition_records_consumed_total", topic="engagement", outcome="applied")
    assert applied == 2  # the update was evaluated and stored, so its silence is a decision
    progress = await rec.stub.GetProgress(pb.GetProgressRequest(), metadata=rec.token("eve"))
    creator = next(p for p in progress.progress if p.badge == "creator")
    assert "opted out of recognition" in creator.summary

    # Opting back in: badges show again, and the next score update grants what is due.
    await rec.stub.SetPreferences(pb.SetPreferencesRequest(preferences=pb.Preferences()), metadata=rec.token("eve"))
    assert (await rec.stub.GetBadges(pb.GetBadgesRequest(employee_id="eve"), metadata=other)).badges
    await rec.scores_applied(score_changed("eve", 3, T0 + timedelta(days=2), more))
    creator_grants = await rec.events_of("badge_granted", grants_before + 3)
    assert {e.badge_granted.tier for e in creator_grants if e.badge_granted.badge == "creator"} == {
        badges_pb2.TIER_BRONZE,
        badges_pb2.TIER_SILVER,
        badges_pb2.TIER_GOLD,
    }


async def test_hidden_from_lists_keeps_badges_private(rec: Harness) -> None:
    await make_ambassador(rec, "gus")
    await rec.stub.RespondToInvitation(pb.RespondToInvitationRequest(badge=AMB, accept=True), metadata=rec.token("gus"))
    hidden = pb.Preferences(hidden_from_lists=True)
    await rec.stub.SetPreferences(pb.SetPreferencesRequest(preferences=hidden), metadata=rec.token("gus"))
    assert not (await rec.stub.ListAmbassadors(pb.ListAmbassadorsRequest(), metadata=rec.token("x"))).ambassadors
    assert not (await rec.stub.GetBadges(pb.GetBadgesRequest(employee_id="gus"), metadata=rec.token("x"))).badges
    await expect_error(
        rec.stub.Endorse(
            pb.EndorseRequest(employee_id="gus", badge=AMB), metadata=rec.token("comms", Role.PROGRAMME_OWNER)
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
        "opted out",
    )


async def test_progress_figures_agree_with_the_rules_file(rec: Harness) -> None:
    figures = {"posts_30d": 5, "active_weeks_12w": 3, "answers_100d": 4, "profile_completeness": 0.5}
    await rec.scores_applied(score_changed("hal", 1, T0, figures))
    response = await rec.stub.GetProgress(pb.GetProgressRequest(), metadata=rec.token("hal"))
    views = {p.badge: p for p in response.progress}
    assert set(views) == set(RULES.badges)
    for badge_id, view in views.items():
        badge = RULES.badges[badge_id]
        tier = {pb_tier: tier for tier, pb_tier in TIER_PB.items()}[view.next_tier]
        criteria = {c.metric: c for c in badge.tiers[tier].criteria}
        reported = list(view.missing) + list(view.met)
        assert {r.signal for r in reported} == set(criteria)
        for r in reported:
            assert r.required == criteria[r.signal].grant
            assert r.current == figures.get(r.signal, 0.0)
            assert (r.current >= r.required) == (r in view.met)
    creator = views["creator"]
    assert creator.next_tier == badges_pb2.TIER_SILVER  # bronze (3 posts) is held
    assert [m.description for m in creator.missing] == [
        "3 more posts in the last 30 days (5 of 8)",
        "3 more weeks with own activity in the last 12 weeks (3 of 6)",
    ]
    assert "profile completeness of 80% (now 50%)" in views[AMB].summary
    await expect_error(
        rec.stub.GetProgress(pb.GetProgressRequest(employee_id="hal"), metadata=rec.token("ida", Role.PROGRAMME_OWNER)),
        grpc.StatusCode.PERMISSION_DENIED,
        "personal",
    )


async def test_department_coverage_and_pilot_group(rec: Harness) -> None:
    departments = {"sales": 6, "it": 5, "legal": 2}
    for department, size in departments.items():
        for i in range(size):
            await rec.register(f"{department}-{i}", department, f"{department.title()} {i}", T0)
    await make_ambassador(rec, "sales-0", "sales")
    await make_ambassador(rec, "sales-1", "sales")
    await make_ambassador(rec, "it-2", "it")  # invited, not yet accepted: singles nobody out, so not counted
    await rec.stub.RespondToInvitation(
        pb.RespondToInvitationRequest(badge=AMB, accept=True), metadata=rec.token("sales-0")
    )
    await rec.stub.RespondToInvitation(
        pb.RespondToInvitationRequest(badge=AMB, accept=False), metadata=rec.token("sales-1")
    )
    pilots = {"sales-2": (5, 9.0), "sales-3": (3, 7.0), "it-0": (1, 2.0), "it-1": (2, 3.0), "legal-0": (4, 1.0)}
    for employee, (activities, score) in pilots.items():
        await rec.scores_applied(
            score_changed(
                employee, 1, T0, {"pilot_activities": activities}, windows={"decayed": {"pilot": score, "total": score}}
            )
        )
    await rec.scores_applied(
        score_changed("it-4", 1, T0, {"pilot_activities": 9}, windows={"decayed": {"pilot": 50}}, ranking_opt_out=True)
    )
    await eventually(rec.store.departments, lambda d: d == departments)
    await eventually(lambda: rec.store.load("sales-0"), lambda r: r.display_name == "Sales 0")

    owner = rec.token("comms", Role.PROGRAMME_OWNER)
    await expect_error(
        rec.stub.GetDepartmentCoverage(pb.GetDepartmentCoverageRequest(), metadata=rec.token("sales-0")),
        grpc.StatusCode.PERMISSION_DENIED,
        "programme_owner",
    )
    coverage = await rec.stub.GetDepartmentCoverage(pb.GetDepartmentCoverageRequest(), metadata=owner)
    rows = {c.department_id: c for c in coverage.departments}
    assert set(rows) == {"sales", "it"}  # legal is below the minimum group size of 5
    assert (rows["sales"].employees, rows["sales"].ambassadors) == (6, 1)  # the declined one does not count
    assert rows["sales"].ratio == pytest.approx(1 / 6) and rows["sales"].target_ratio == RULES.coverage.target_ratio
    assert rows["sales"].meets_target and not rows["it"].meets_target
    assert coverage.departments_without_ambassador == ["it"]  # legal, below the minimum, is named nowhere
    listed = await rec.stub.ListAmbassadors(pb.ListAmbassadorsRequest(), metadata=owner)
    assert [(a.employee_id, a.display_name, a.department_id) for a in listed.ambassadors] == [
        ("it-2", "It 2", "it"),
        ("sales-0", "Sales 0", "sales"),
        ("sales-1", "Sales 1", "sales"),
    ]

    for i in range(5):  # a department without pre-launch activity, and a small one
        await rec.register(f"ops-{i}", "ops", f"Ops {i}", T0)
    await rec.register("tiny-0", "tiny", "Tiny 0", T0)
    await eventually(rec.store.departments, lambda d: d.get("ops") == 5 and d.get("tiny") == 1)
    group = await rec.stub.ProposePilotGroup(pb.ProposePilotGroupRequest(size=3), metadata=owner)
    chosen = [c.employee_id for c in group.candidates]
    assert sorted(chosen) == ["it-1", "legal-0", "sales-2"]  # best of each department; it-4 opted out of ranking
    assert [(u.department_id, u.employees) for u in group.uncovered_departments] == [("ops", 5)]
    assert "no one there has confirmed pre-launch activity" in group.uncovered_departments[0].reason
    assert group.small_departments_uncovered == 1  # tiny is counted, never named
    assert next(c for c in group.candidates if c.employee_id == "it-1").reason.startswith(
        "strongest pilot signals in department it"
    )
    bigger = await rec.stub.ProposePilotGroup(pb.ProposePilotGroupRequest(size=4), metadata=owner)
    assert [c.employee_id for c in bigger.candidates] == ["sales-2", "sales-3", "it-1", "legal-0"]
    await expect_error(
        rec.stub.ProposePilotGroup(pb.ProposePilotGroupRequest(size=2), metadata=owner),
        grpc.StatusCode.INVALID_ARGUMENT,
        "3 departments have pilot candidates",
    )
    await expect_error(
        rec.stub.ProposePilotGroup(pb.ProposePilotGroupRequest(size=3), metadata=rec.token("sales-2")),
        grpc.StatusCode.PERMISSION_DENIED,
        "programme_owner",
    )
