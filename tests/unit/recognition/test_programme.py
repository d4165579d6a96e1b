"""The programme's pure rules: the catalogue file, the person's choices, legitimation and aggregates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from services.common.errors import FailedPrecondition, InvalidArgument
from services.recognition import programme
from services.recognition.config import DEFAULT_RULES
from services.recognition.programme import Change, Legitimation, Programme, load_catalogue
from services.recognition.rules import load_rules

T0 = datetime(2025, 3, 3, 12, 0, tzinfo=UTC)
CATALOGUE = load_catalogue()


def change(kind: Change, value: str = "", hours: float = 0.0, by: str = "po-1") -> Legitimation:
    return Legitimation(kind, T0, by, "programme_owner", value=value, hours_per_month=hours)


def test_the_shipped_catalogue_is_valid_and_a_bad_one_names_the_field(tmp_path: Path) -> None:
    assert "ambassador_basics" in CATALOGUE.trainings and "community_channel" in CATALOGUE.resources
    bad = tmp_path / "programme.yaml"
    bad.write_text(
        "trainings: {Basics: {name: x, hours: 1}}\nresources: {r: {name: y, kind: swag}}\n"
        "decline_reasons: {no_time: z}\nmax_time_budget_hours: 10\n"
    )
    with pytest.raises(SystemExit) as info:
        load_catalogue(bad)
    assert "trainings" in str(info.value) and "resources.r.kind" in str(info.value)


def test_a_record_round_trips_through_its_stored_form() -> None:
    p = Programme(volunteered_at=T0, declined=True, decline_reason="no_time", shown_badges=("creator",))
    for step in (
        change(Change.OFFER_TRAINING, "ambassador_basics"),
        change(Change.COMPLETE_TRAINING, "ambassador_basics"),
        change(Change.TIME_BUDGET, "mgr-1", hours=4),
        change(Change.GRANT_RESOURCE, "early_access"),
        change(Change.APPRECIATION, "thank you for the onboarding guide"),
    ):
        p = programme.legitimate(CATALOGUE, p, "e1", step) or p
    assert programme.decode(programme.encode(p)) == p
    assert programme.decode(programme.encode(Programme())).empty


def test_legitimation_is_checked_against_the_catalogue_and_retries_change_nothing() -> None:
    p = Programme()
    with pytest.raises(InvalidArgument, match="offer_training: unknown training 'juggling'"):
        programme.legitimate(CATALOGUE, p, "e1", change(Change.OFFER_TRAINING, "juggling"))
    with pytest.raises(FailedPrecondition, match="was not offered"):
        programme.legitimate(CATALOGUE, p, "e1", change(Change.COMPLETE_TRAINING, "ambassador_basics"))
    offered = programme.legitimate(CATALOGUE, p, "e1", change(Change.OFFER_TRAINING, "ambassador_basics"))
    assert offered is not None
    assert programme.legitimate(CATALOGUE, offered, "e1", change(Change.OFFER_TRAINING, "ambassador_basics")) is None
    with pytest.raises(InvalidArgument, match="time_budget.hours_per_month"):
        programme.legitimate(CATALOGUE, p, "e1", change(Change.TIME_BUDGET, "mgr-1", hours=200))
    with pytest.raises(InvalidArgument, match="time_budget.agreed_by_manager"):
        programme.legitimate(CATALOGUE, p, "e1", change(Change.TIME_BUDGET, "", hours=4))
    with pytest.raises(InvalidArgument, match="grant_resource: unknown resource"):
        programme.legitimate(CATALOGUE, p, "e1", change(Change.GRANT_RESOURCE, "free_lunch"))
    with pytest.raises(InvalidArgument, match="appreciation"):
        programme.legitimate(CATALOGUE, p, "e1", change(Change.APPRECIATION, "  "))
    with pytest.raises(FailedPrecondition, match="not recorded for yourself"):
        programme.legitimate(CATALOGUE, p, "e1", change(Change.APPRECIATION, "me", by="e1"))
    with pytest.raises(FailedPrecondition, match="the invitation must be accepted first"):
        programme.must_have_accepted("invited", "e1")


def test_choices_volunteering_and_a_decline_that_stands_until_changed() -> None:
    p = programme.volunteer(Programme(), T0, withdraw=False)
    assert p.volunteering and programme.volunteer(p, T0, withdraw=False) == p
    assert not programme.volunteer(p, T0, withdraw=True).volunteering
    shown = programme.show_badge(Programme(), "creator", shown=True)
    assert shown.shown_badges == ("creator",) and programme.show_badge(shown, "creator", shown=False).empty
    declined = programme.answered(Programme(), accept=False, reason_code="no_time", at=T0)
    assert declined.declined and declined.decline_reason == "no_time"
    assert not programme.answered(declined, accept=True, reason_code="", at=T0).declined
    with pytest.raises(InvalidArgument, match="reason_code: unknown reason"):
        CATALOGUE.decline_reason("bored", "reason_code")


def test_declines_are_reported_only_in_groups_of_the_minimum_size() -> None:
    def declined(code: str) -> Programme:
        return Programme(declined=True, decline_reason=code)

    few = programme.summarise_declines([declined("no_time")] * 4, 5)
    assert few.declined == 0 and not few.reasons and few.suppressed
    many = programme.summarise_declines([declined("no_time")] * 5 + [declined("other")] * 2 + [Programme()], 5)
    assert many.declined == 7 and many.reasons == {"no_time": 5} and many.suppressed


def journey(
    dept: str,
    accepted: int | None,
    trained: int | None = None,
    lapse: programme.Lapse | None = None,
    lapsed: int | None = None,
    declined: bool = False,
    volunteered: bool = False,
    invited: bool = True,
) -> programme.Journey:
    day = timedelta(days=1)
    return programme.Journey(
        department=dept,
        invited_at=T0 if invited else None,
        accepted_at=T0 + accepted * day if accepted is not None else None,
        trained_at=T0 + trained * day if trained is not None else None,
        declined=declined,
        active=accepted is not None and lapse is None,
        volunteered=volunteered,
        lapse=lapse,
        lapsed_at=T0 + lapsed * day if lapsed is not None else None,
    )


def test_the_funnel_adds_up_and_shows_no_small_group() -> None:
    day = timedelta(days=1)
    inactive = programme.Lapse.INACTIVE
    people = [journey("a", d, d + 10) for d in (1, 2, 3, 4, 5)]
    people += [journey("a", 100, lapse=inactive, lapsed=110), journey("a", None, declined=True), journey("b", 7)]
    people += [journey("a", None), journey("a", None, volunteered=True, invited=False)]
    rows = programme.funnel(people, {"a": 20, "b": 3}, T0 + 120 * day, 5)
    company, a = rows
    assert [r.scope for r in rows] == ["", "a"]  # b has 3 employees: no row
    assert (company.detected, company.accepted, company.declined, company.trained, company.lapsed) == (9, 7, 1, 5, 1)
    assert company.detected == company.pending + company.accepted + company.declined
    assert company.accepted == company.active + company.lapsed and company.pending == 1
    assert (company.volunteered, company.volunteers_invited) == (1, 0)
    assert (company.accepted_90_days_ago, company.active_after_90_days) == (6, 6)
    assert company.median_days_to_accept == 4 and company.median_days_to_train == 10
    assert company.lapse_reasons == {} and company.median_days_to_lapse is None  # one lapse: not shown
    assert (a.detected, a.accepted) == (8, 6)
    none = programme.funnel(people[:3], {"a": 20}, T0, 5)[0]
    assert none.median_days_to_accept is None  # three durations: about individuals, not shown


def test_lapses_have_reasons_and_retention_counts_who_stayed() -> None:
    day = timedelta(days=1)
    withdrew, inactive = programme.Lapse.WITHDREW, programme.Lapse.INACTIVE
    people = [journey("a", 0) for _ in range(4)]
    people += [journey("a", 0, lapse=inactive, lapsed=40) for _ in range(5)]
    people += [journey("a", 0, lapse=withdrew, lapsed=10) for _ in range(2)]
    (company,) = programme.funnel(people, {"a": 3, "b": 3}, T0 + 200 * day, 5)
    assert (company.accepted, company.active, company.lapsed) == (11, 4, 7)
    assert company.lapse_reasons == {"inactive": 5}  # two withdrew: fewer than five, left out
    assert company.median_days_to_lapse == 40
    assert [(r.days, r.cohort, r.retained) for r in company.retention] == [(30, 11, 9), (90, 11, 4), (180, 11, 4)]
    young = programme.funnel(people, {"a": 11}, T0 + 60 * day, 5)[0]
    assert [r.days for r in young.retention] == [30]  # nobody accepted 90 days ago yet


def test_declining_after_accepting_is_a_withdrawal_and_accepting_again_lifts_it() -> None:
    accepted = programme.answered(Programme(), accept=True, reason_code="", at=T0)
    withdrew = programme.answered(
        accepted, accept=False, reason_code="no_time", at=T0 + timedelta(days=3), was_accepted=True
    )
    assert withdrew.accepted_at == T0 and withdrew.withdrew_at == T0 + timedelta(days=3) and withdrew.declined
    assert programme.decode(programme.encode(withdrew)) == withdrew
    again = programme.answered(withdrew, accept=True, reason_code="", at=T0 + timedelta(days=5))
    assert again.withdrew_at is None and not again.declined
    plain = programme.answered(Programme(), accept=False, reason_code="", at=T0)
    assert plain.withdrew_at is None and plain.accepted_at is None


def test_a_volunteer_does_not_wait_for_the_confirmation_period() -> None:
    rules = load_rules(DEFAULT_RULES)
    amb = rules.coverage.badge
    lifted = programme.without_confirmation(rules, amb)
    assert all(t.confirm_days == 0 for t in lifted.badges[amb].tiers.values())
    assert lifted.badges["creator"] == rules.badges["creator"]  # other badges keep theirs
    assert any(t.confirm_days for t in load_rules(DEFAULT_RULES).badges["creator"].tiers.values())
