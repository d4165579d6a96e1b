"""The programme against the real service: consent first, volunteering, legitimation as data, declines in
aggregate only, and an audit of every programme-owner look-up."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from catalyst.audit.v1 import audit_pb2, audit_pb2_grpc
from catalyst.events.v1 import envelope_pb2, programme_pb2
from catalyst.events.v1.programme_pb2 import LEGITIMATION_KIND_TRAINING_COMPLETED
from catalyst.recognition.v1 import recognition_pb2 as pb

from services.common.auth import Role
from services.recognition.rules import Tier, load_rules
from services.recognition.server import GET_PROGRAMME, LIST_CANDIDATES
from tests.integration.recognition.harness import MECHANICS_RULES, Harness, eventually, registered, score_changed

pytestmark = pytest.mark.integration

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
RULES = load_rules(MECHANICS_RULES)
AMB = "intranet_ambassador"
AMBASSADOR = {c.metric: c.grant for c in RULES.badges[AMB].tiers[Tier.SINGLE].criteria}
CREATOR = {c.metric: c.grant for c in RULES.badges["creator"].tiers[Tier.BRONZE].criteria}


async def expect_error(call: object, code: grpc.StatusCode, text: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    assert info.value.code() == code, info.value.details()
    assert text in info.value.details(), info.value.details()


async def accept(rec: Harness, employee: str) -> None:
    await rec.stub.RespondToInvitation(
        pb.RespondToInvitationRequest(badge=AMB, accept=True), metadata=rec.token(employee)
    )


async def test_a_facet_badge_stays_private_until_its_holder_shows_it(rec: Harness) -> None:
    await rec.scores_applied(score_changed("ivy", 1, T0, CREATOR))
    colleague = rec.token("jon")
    owner = rec.token("comms", Role.PROGRAMME_OWNER)
    own = await rec.stub.GetBadges(pb.GetBadgesRequest(), metadata=rec.token("ivy"))
    assert [(b.badge, b.shown) for b in own.badges] == [("creator", False)]
    assert not (await rec.stub.GetBadges(pb.GetBadgesRequest(employee_id="ivy"), metadata=colleague)).badges
    assert [b.badge for b in (await rec.stub.GetBadges(pb.GetBadgesRequest(employee_id="ivy"), metadata=owner)).badges]
    await expect_error(
        rec.stub.Endorse(pb.EndorseRequest(employee_id="ivy", badge="creator"), metadata=owner),
        grpc.StatusCode.FAILED_PRECONDITION,
        "must be shown by its holder first",
    )

    shown = await rec.stub.SetBadgeShown(
        pb.SetBadgeShownRequest(badge="creator", shown=True), metadata=rec.token("ivy")
    )
    assert list(shown.shown_badges) == ["creator"]
    seen = await rec.stub.GetBadges(pb.GetBadgesRequest(employee_id="ivy"), metadata=colleague)
    assert [(b.badge, b.shown, len(b.evidence)) for b in seen.badges] == [("creator", True, 0)]
    await rec.stub.SetBadgeShown(pb.SetBadgeShownRequest(badge="creator", shown=False), metadata=rec.token("ivy"))
    assert not (await rec.stub.GetBadges(pb.GetBadgesRequest(employee_id="ivy"), metadata=colleague)).badges

    await expect_error(
        rec.stub.SetBadgeShown(pb.SetBadgeShownRequest(badge=AMB, shown=True), metadata=rec.token("ivy")),
        grpc.StatusCode.INVALID_ARGUMENT,
        "badge: Intranet Ambassador is shown by accepting the invitation",
    )
    await expect_error(
        rec.stub.SetBadgeShown(pb.SetBadgeShownRequest(badge="rockstar", shown=True), metadata=rec.token("ivy")),
        grpc.StatusCode.INVALID_ARGUMENT,
        "badge: unknown badge",
    )


async def test_volunteers_stand_beside_detected_candidates_with_the_same_evidence(rec: Harness) -> None:
    # kim met the criteria while opted out; back in, volunteering invites her at once.
    opt_out = pb.SetPreferencesRequest(preferences=pb.Preferences(recognition_opt_out=True))
    await rec.stub.SetPreferences(opt_out, metadata=rec.token("kim"))
    await rec.scores_applied(score_changed("kim", 1, T0, AMBASSADOR))
    await rec.stub.SetPreferences(pb.SetPreferencesRequest(preferences=pb.Preferences()), metadata=rec.token("kim"))
    assert not (await rec.stub.GetBadges(pb.GetBadgesRequest(), metadata=rec.token("kim"))).badges
    kim = await rec.stub.Volunteer(pb.VolunteerRequest(), metadata=rec.token("kim"))
    assert kim.volunteering and kim.status == pb.AMBASSADOR_STATUS_INVITED and not kim.progress.badge
    invitation = await rec.events_of("badge_granted", 1)
    assert [(e.employee_id, e.badge_granted.badge) for e in invitation] == [("kim", AMB)]

    # leo does not meet them yet and sees what is missing; lou was detected by the rules.
    await rec.scores_applied(score_changed("leo", 1, T0, {"posts_30d": 1}))
    leo = await rec.stub.Volunteer(pb.VolunteerRequest(), metadata=rec.token("leo"))
    assert leo.volunteering and leo.status == pb.AMBASSADOR_STATUS_UNSPECIFIED
    assert leo.progress.badge == AMB and leo.progress.missing
    await rec.scores_applied(score_changed("lou", 1, T0, AMBASSADOR))

    await expect_error(
        rec.stub.ListCandidates(pb.ListCandidatesRequest(), metadata=rec.token("leo")),
        grpc.StatusCode.PERMISSION_DENIED,
        "programme_owner",
    )
    purpose = "planning the spring cohort"
    owner = rec.token("comms", Role.PROGRAMME_OWNER, purpose=purpose)
    listed = await rec.stub.ListCandidates(pb.ListCandidatesRequest(), metadata=owner)
    rows = {c.badge.employee_id: c for c in listed.candidates}
    assert {e: (c.detected, c.volunteered) for e, c in rows.items()} == {
        "kim": (True, True),
        "leo": (False, True),
        "lou": (True, False),
    }
    for c in rows.values():  # every candidate with the ambassador criteria against their figures
        assert len(c.progress.met) + len(c.progress.missing) == len(AMBASSADOR)
    assert not rows["lou"].progress.missing and rows["leo"].progress.missing

    accesses = await eventually(
        lambda: audit_pb2_grpc.AuditServiceStub(rec.channel).ListMyAccesses(
            audit_pb2.ListMyAccessesRequest(), metadata=rec.token("leo")
        ),
        lambda r: len(r.accesses) == 1,
        timeout=10,
    )
    assert (accesses.accesses[0].data_accessed.method, accesses.accesses[0].data_accessed.purpose) == (
        LIST_CANDIDATES,
        purpose,
    )

    withdrawn = await rec.stub.Volunteer(pb.VolunteerRequest(withdraw=True), metadata=rec.token("leo"))
    assert not withdrawn.volunteering
    again = await rec.stub.ListCandidates(pb.ListCandidatesRequest(), metadata=owner)
    assert sorted(c.badge.employee_id for c in again.candidates) == ["kim", "lou"]


async def test_legitimation_is_recorded_for_people_who_accepted_and_shown_to_them(rec: Harness) -> None:
    await rec.scores_applied(score_changed("max", 1, T0, AMBASSADOR))
    owner = rec.token("comms", Role.PROGRAMME_OWNER)
    offer = pb.RecordLegitimationRequest(employee_id="max", offer_training="ambassador_basics")
    await expect_error(
        rec.stub.RecordLegitimation(offer, metadata=owner),
        grpc.StatusCode.FAILED_PRECONDITION,
        "the invitation must be accepted first",
    )
    await accept(rec, "max")
    await expect_error(
        rec.stub.RecordLegitimation(offer, metadata=rec.token("max")),
        grpc.StatusCode.PERMISSION_DENIED,
        "programme_owner",
    )
    await expect_error(
        rec.stub.RecordLegitimation(
            pb.RecordLegitimationRequest(employee_id="max", offer_training="juggling"), metadata=owner
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "offer_training: unknown training 'juggling'",
    )
    await expect_error(
        rec.stub.RecordLegitimation(pb.RecordLegitimationRequest(employee_id="max"), metadata=owner),
        grpc.StatusCode.INVALID_ARGUMENT,
        "change: name one change",
    )
    for request in (
        offer,
        pb.RecordLegitimationRequest(employee_id="max", complete_training="ambassador_basics"),
        pb.RecordLegitimationRequest(
            employee_id="max", time_budget=pb.TimeBudgetChange(hours_per_month=4, agreed_by_manager="mia")
        ),
        pb.RecordLegitimationRequest(employee_id="max", grant_resource="community_channel"),
        pb.RecordLegitimationRequest(employee_id="max", appreciation="Thank you for the onboarding guide"),
    ):
        await rec.stub.RecordLegitimation(request, metadata=owner)
    await rec.stub.RecordLegitimation(
        pb.RecordLegitimationRequest(employee_id="max", appreciation="HR thanks you too"),
        metadata=rec.token("hr-1", Role.HR),
    )

    mine = (await rec.stub.GetProgramme(pb.GetProgrammeRequest(), metadata=rec.token("max"))).programme
    assert mine.status == pb.AMBASSADOR_STATUS_ACCEPTED
    (training,) = mine.trainings
    assert training.training_id == "ambassador_basics" and training.completed_at.seconds and training.confirmed_by
    assert (mine.time_budget.hours_per_month, mine.time_budget.agreed_by_manager) == (4, "mia")
    assert [(r.resource_id, r.kind) for r in mine.resources] == [("community_channel", "community_channel")]
    assert [(a.text, a.author_role) for a in mine.appreciations] == [
        ("Thank you for the onboarding guide", "programme_owner"),
        ("HR thanks you too", "hr"),
    ]
    data = await rec.stub.GetMyData(pb.GetMyDataRequest(), metadata=rec.token("max"))
    assert data.programme == mine

    colleague = rec.token("ned")
    seen = (await rec.stub.GetProgramme(pb.GetProgrammeRequest(employee_id="max"), metadata=colleague)).programme
    assert seen.status == pb.AMBASSADOR_STATUS_ACCEPTED and not seen.appreciations and not seen.trainings
    shared = pb.SetPreferencesRequest(preferences=pb.Preferences(appreciations_shared=True))
    await rec.stub.SetPreferences(shared, metadata=rec.token("max"))
    seen = (await rec.stub.GetProgramme(pb.GetProgrammeRequest(employee_id="max"), metadata=colleague)).programme
    assert len(seen.appreciations) == 2 and not seen.trainings and not seen.HasField("time_budget")

    purpose = "preparing the training plan"
    full = await rec.stub.GetProgramme(
        pb.GetProgrammeRequest(employee_id="max"), metadata=rec.token("comms", Role.PROGRAMME_OWNER, purpose=purpose)
    )
    assert full.programme.trainings and full.programme.time_budget.agreed_by_manager == "mia"
    await eventually(
        lambda: audit_pb2_grpc.AuditServiceStub(rec.channel).ListMyAccesses(
            audit_pb2.ListMyAccessesRequest(), metadata=rec.token("max")
        ),
        lambda r: any(
            a.data_accessed.method == GET_PROGRAMME and a.data_accessed.purpose == purpose for a in r.accesses
        ),
        timeout=10,
    )


async def test_declines_and_their_reasons_are_reported_only_in_groups_of_the_minimum_size(rec: Harness) -> None:
    owner = rec.token("comms", Role.PROGRAMME_OWNER)
    people = [f"p{i}" for i in range(6)]
    for i, person in enumerate(people):
        await rec.scores_applied(score_changed(person, 1, T0 + timedelta(minutes=i), AMBASSADOR))
    await expect_error(
        rec.stub.RespondToInvitation(
            pb.RespondToInvitationRequest(badge=AMB, accept=False, reason_code="bored"), metadata=rec.token("p0")
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "reason_code: unknown reason 'bored'",
    )
    for person in people[:4]:
        await rec.stub.RespondToInvitation(
            pb.RespondToInvitationRequest(badge=AMB, accept=False, reason_code="no_time"), metadata=rec.token(person)
        )
    few = await rec.stub.SummariseDeclines(pb.SummariseDeclinesRequest(), metadata=owner)
    assert (few.declined, list(few.reasons), few.suppressed, few.min_group_size) == (0, [], True, 5)

    await rec.stub.RespondToInvitation(
        pb.RespondToInvitationRequest(badge=AMB, accept=False, reason_code="no_time"), metadata=rec.token("p4")
    )
    await rec.stub.RespondToInvitation(pb.RespondToInvitationRequest(badge=AMB, accept=False), metadata=rec.token("p5"))
    many = await rec.stub.SummariseDeclines(pb.SummariseDeclinesRequest(), metadata=owner)
    assert many.declined == 6 and [(r.reason_code, r.count) for r in many.reasons] == [("no_time", 5)]
    assert many.suppressed  # the one without a reason is a group of one
    await expect_error(
        rec.stub.SummariseDeclines(pb.SummariseDeclinesRequest(), metadata=rec.token("p0")),
        grpc.StatusCode.PERMISSION_DENIED,
        "programme_owner",
    )

    # Changing one's mind lifts the decline.
    await accept(rec, "p5")
    after = await rec.stub.SummariseDeclines(pb.SummariseDeclinesRequest(), metadata=owner)
    assert (after.declined, after.suppressed) == (5, False)


async def test_the_funnel_adds_up_to_what_happened(rec: Harness) -> None:
    people = [f"f{i}" for i in range(8)]
    for person in people:
        await rec.register(person, "d1", person.upper(), T0)
    await rec.register("x0", "d2", "X0", T0)
    for i, person in enumerate(people[:6]):
        await rec.scores_applied(score_changed(person, 1, T0 + timedelta(minutes=i), AMBASSADOR, "d1"))
    await rec.scores_applied(score_changed("x0", 1, T0, AMBASSADOR, "d2"))
    await rec.scores_applied(score_changed("f6", 1, T0, {}, "d1"))
    await eventually(rec.store.departments, lambda d: d == {"d1": 8, "d2": 1})
    for person in people[:5]:
        await accept(rec, person)
    decline = pb.RespondToInvitationRequest(badge=AMB, accept=False, reason_code="no_time")
    await rec.stub.RespondToInvitation(decline, metadata=rec.token("f5"))
    await rec.stub.RespondToInvitation(decline, metadata=rec.token("f4"))  # accepted, then withdrew
    await rec.scores_applied(score_changed("f3", 2, T0 + timedelta(days=1), {}, "d1"))  # below keep ...
    await rec.scores_applied(score_changed("f3", 3, T0 + timedelta(days=40), {}, "d1"))  # ... past the grace period
    await eventually(lambda: rec.store.load("f3"), lambda r: r.top_holding(RULES, AMB) is None)
    await rec.stub.Volunteer(pb.VolunteerRequest(), metadata=rec.token("f6"))  # meets no criterion: not invited
    owner = rec.token("comms", Role.PROGRAMME_OWNER)
    for person in people[:2]:
        for request in (
            pb.RecordLegitimationRequest(employee_id=person, offer_training="ambassador_basics"),
            pb.RecordLegitimationRequest(employee_id=person, complete_training="ambassador_basics"),
        ):
            await rec.stub.RecordLegitimation(request, metadata=owner)

    await expect_error(
        rec.stub.GetProgrammeFunnel(pb.GetProgrammeFunnelRequest(), metadata=rec.token("f0")),
        grpc.StatusCode.PERMISSION_DENIED,
        "programme_owner or works_council",
    )
    funnel = await rec.stub.GetProgrammeFunnel(
        pb.GetProgrammeFunnelRequest(), metadata=rec.token("wc-1", Role.WORKS_COUNCIL)
    )
    company, d1 = funnel.stages  # d2 has one employee: no row of its own
    assert (company.department_id, d1.department_id, funnel.min_group_size) == ("", "d1", 5)

    # the funnel is what the events on catalyst.recognition.v1 say happened
    def people_with(kind: str, test: Callable[[envelope_pb2.Envelope], bool] = lambda e: True) -> set[str]:
        return {e.employee_id for e in topic if e is not None and e.WhichOneof("payload") == kind and test(e)}

    await rec.settled()
    topic = await rec.recognition_events()
    invited = people_with("badge_granted", lambda e: e.badge_granted.badge == AMB)
    accepted = people_with("invitation_accepted")
    trained = people_with(
        "legitimation_recorded", lambda e: e.legitimation_recorded.kind == LEGITIMATION_KIND_TRAINING_COMPLETED
    )
    lapsed = people_with("badge_revoked", lambda e: e.badge_revoked.badge == AMB) & accepted
    withdrew = accepted & people_with("invitation_declined")
    declined = people_with("invitation_declined") - accepted
    assert company.detected == len(invited) == 7
    assert company.accepted == len(accepted) == 5 and company.trained == len(trained) == 2
    assert company.declined == len(declined) == 1 and company.lapsed == len(lapsed | withdrew) == 2
    assert company.volunteered == len(people_with("volunteered")) == 1 and company.volunteers_invited == 0
    assert company.pending == 1  # x0 has not answered
    assert company.detected == company.pending + company.accepted + company.declined
    assert company.accepted == company.active + company.lapsed and company.active == 3

    assert (d1.detected, d1.pending, d1.accepted, d1.declined, d1.trained, d1.active, d1.lapsed) == (
        6,
        0,
        5,
        1,
        2,
        3,
        2,
    )
    assert not d1.lapse_reasons and not d1.retention  # two lapses, nobody accepted 30 days ago: too few to report
    assert d1.HasField("median_days_to_accept") and not d1.HasField("median_days_to_train")  # five, two
    assert (d1.accepted_90_days_ago, d1.active_after_90_days) == (0, 0)
    adoption = funnel.adoption  # d1 has ambassadors (f0 to f2); d2 is too small to compare
    assert (adoption.departments_with, adoption.departments_without) == (1, 0)
    assert adoption.with_ambassadors.people == 5 and not adoption.HasField("without_ambassadors")
    own = (await rec.stub.GetProgramme(pb.GetProgrammeRequest(), metadata=rec.token("f4"))).programme
    assert own.accepted_at.seconds and own.withdrew_at.seconds >= own.accepted_at.seconds  # in their own view
    history = [(w.week, w.adoption.departments_with) for w in funnel.adoption_history]  # a week's first sweep
    assert history[0] == ("2025-02-24", 0) and history[-1] == ("2025-04-07", 1), history
    assert not await rec.store.add_adoption_week("2025-03-10", "{}", 104)  # a week passed: not taken from today's


async def test_an_erasure_leaves_nothing_of_the_programme(rec: Harness) -> None:
    await rec.register("ada", "d1", "Ada", T0)
    await rec.scores_applied(score_changed("ada", 1, T0, AMBASSADOR))
    await accept(rec, "ada")
    await rec.stub.Volunteer(pb.VolunteerRequest(), metadata=rec.token("ada"))
    await rec.stub.RecordLegitimation(
        pb.RecordLegitimationRequest(employee_id="ada", appreciation="Thank you"),
        metadata=rec.token("comms", Role.PROGRAMME_OWNER),
    )
    assert "ada" in await rec.store.in_programme() and "ada" in await rec.store.detected()

    gone = registered("ada", "d1", "", T0 + timedelta(days=1))
    gone.ClearField("employee_registered")
    gone.employee_forgotten.SetInParent()
    gone.type, gone.event_id = "catalyst.events.v1.EmployeeForgotten", "forget-ada"
    await rec.produce("interactions", "ada", gone.SerializeToString())
    await eventually(lambda: rec.redis_keys("ada"), lambda keys: keys == [])

    async def indexed() -> bool:
        return "ada" in await rec.store.in_programme() or "ada" in await rec.store.detected()

    await eventually(indexed, lambda found: not found)


async def test_programme_events_say_what_happened_without_anyone_s_words(rec: Harness) -> None:
    await rec.register("ada", "d1", "Ada", T0)
    await rec.scores_applied(score_changed("ada", 1, T0, AMBASSADOR))
    await rec.stub.Volunteer(pb.VolunteerRequest(), metadata=rec.token("ada"))
    await rec.stub.Volunteer(pb.VolunteerRequest(), metadata=rec.token("ada"))  # a retry: no second event
    await rec.stub.Volunteer(pb.VolunteerRequest(withdraw=True), metadata=rec.token("ada"))
    await accept(rec, "ada")
    owner = rec.token("comms", Role.PROGRAMME_OWNER)
    for request in (
        pb.RecordLegitimationRequest(employee_id="ada", grant_resource="community_channel"),
        pb.RecordLegitimationRequest(employee_id="ada", grant_resource="community_channel"),  # a retry
        pb.RecordLegitimationRequest(employee_id="ada", appreciation="Thank you for the FAQ"),
        pb.RecordLegitimationRequest(
            employee_id="ada", time_budget=pb.TimeBudgetChange(hours_per_month=4, agreed_by_manager="mia")
        ),
    ):
        await rec.stub.RecordLegitimation(request, metadata=owner)

    (offer,) = await rec.events_of("volunteered", 1)
    (withdrawn,) = await rec.events_of("volunteering_withdrawn", 1)
    given = await rec.events_of("legitimation_recorded", 3)
    assert offer.event_id != withdrawn.event_id and offer.department_id == "d1"
    assert [(e.legitimation_recorded.kind, e.legitimation_recorded.item_id) for e in given] == [
        (programme_pb2.LEGITIMATION_KIND_RESOURCE_GRANTED, "community_channel"),
        (programme_pb2.LEGITIMATION_KIND_APPRECIATION_GIVEN, ""),
        (programme_pb2.LEGITIMATION_KIND_TIME_BUDGET_AGREED, ""),
    ]
    assert all(b"Thank you" not in e.SerializeToString() and b"mia" not in e.SerializeToString() for e in given)


async def test_managers_are_compared_with_everyone_else_in_groups_of_the_minimum_size(rec: Harness) -> None:
    staff = [(f"m{i}", "d1", True, 4.0 * i) for i in range(5)] + [(f"e{i}", "d1", False, 10.0) for i in range(6)]
    staff += [(f"n{i}", "d2", i == 0, 1.0) for i in range(6)]  # one manager: too few to compare
    staff += [("s0", "d3", True, 1.0), ("s1", "d3", False, 1.0)]  # two people: counted, never named
    for employee, department, manager, _ in staff:
        await rec.register(employee, department, employee.upper(), T0, manager)
    for employee, department, _, days in staff:
        await rec.scores_applied(score_changed(employee, 1, T0, {"active_days_30d": days}, department))
    await eventually(rec.store.departments, lambda d: d == {"d1": 11, "d2": 6, "d3": 2})

    await expect_error(
        rec.stub.GetManagerActivity(pb.GetManagerActivityRequest(), metadata=rec.token("e0")),
        grpc.StatusCode.PERMISSION_DENIED,
        "programme_owner or works_council",
    )
    view = await rec.stub.GetManagerActivity(
        pb.GetManagerActivityRequest(), metadata=rec.token("wc-1", Role.WORKS_COUNCIL, purpose="")
    )
    company, d1 = view.departments
    assert (company.department_id, d1.department_id, view.min_group_size) == ("", "d1", 5)
    assert (company.managers.people, company.others.people) == (7, 12)
    assert (d1.managers.people, d1.others.people) == (5, 6)
    assert d1.managers.active_30d_share == 0.8 and d1.managers.mean_active_days_30d == 8
    assert d1.others.active_30d_share == 1 and d1.others.mean_active_days_30d == 10
    assert list(view.too_small) == ["d2"] and view.small_departments == 1
    assert b"m1" not in view.SerializeToString()  # groups, never people
    assert (await rec.stub.GetMyData(pb.GetMyDataRequest(), metadata=rec.token("m1"))).manager  # stored, shown
