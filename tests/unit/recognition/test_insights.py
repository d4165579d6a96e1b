"""Managers as role models and adoption where ambassadors are: aggregates only, never about a small group."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

from services.recognition.insights import (
    ACTIVE_DAYS,
    SCORE_30D,
    Member,
    adoption_by_coverage,
    decode_adoption,
    encode_adoption,
    role_models,
    week_of,
)


def member(dept: str, manager: bool = False, days: float = 0.0, ambassador: bool = False) -> Member:
    return Member(dept, manager, ambassador, {ACTIVE_DAYS: days, SCORE_30D: days * 10})


def test_managers_are_compared_with_everyone_else_only_where_both_groups_are_large_enough() -> None:
    people = [member("a", manager=True, days=d) for d in (0, 0, 4, 8, 10)] + [member("a", days=2)] * 6
    people += [member("b", manager=True, days=5)] * 4 + [member("b", days=1)] * 10  # four managers: too few
    people += [member("c", manager=True)] + [member("c")] * 2  # three people: counted, not named
    view = role_models(people, 5)
    assert [r.scope for r in view.rows] == ["", "a"]
    assert view.too_small == ["b"] and view.small_departments == 1
    a = view.rows[1]
    assert (a.managers.people, a.others.people) == (5, 6)
    assert a.managers.active_30d_share == 0.6 and a.others.active_30d_share == 1.0
    assert a.managers.mean_active_days_30d == 4.4 and a.managers.median_score_30d == 40
    company = view.rows[0]
    assert (company.managers.people, company.others.people) == (10, 18)


def test_no_row_at_all_when_the_company_has_fewer_managers_than_the_minimum() -> None:
    view = role_models([member("a", manager=True)] * 4 + [member("a")] * 20, 5)
    assert view.rows == [] and view.too_small == ["a"]


def test_adoption_compares_colleagues_of_ambassadors_with_departments_without_one() -> None:
    people = [member("a", days=20, ambassador=True)] + [member("a", days=3)] * 6
    people += [member("b", days=0)] * 5 + [member("b", days=1)] * 5
    people += [member("c", ambassador=True)] + [member("c")] * 2  # below the minimum size: not compared
    view = adoption_by_coverage(people, 5)
    assert (view.departments_with, view.departments_without) == (1, 1)
    assert view.with_ambassadors is not None and view.with_ambassadors.people == 6  # the ambassador left out
    assert view.with_ambassadors.mean_active_days_30d == 3
    assert view.without_ambassadors is not None and view.without_ambassadors.active_30d_share == 0.5
    assert adoption_by_coverage(people[:5] + people[7:], 5).with_ambassadors is None  # four colleagues only


def test_a_week_of_adoption_is_stored_as_its_aggregates_and_named_by_its_monday() -> None:
    people = [member("a", days=20, ambassador=True)] + [member("a", days=3)] * 6 + [member("b")] * 4
    view = adoption_by_coverage(people, 5)
    assert decode_adoption(encode_adoption(view)) == view
    fields = {"with_ambassadors", "departments_with", "without_ambassadors", "departments_without"}
    assert set(json.loads(encode_adoption(view))) == fields  # aggregates only: no department, nobody
    assert week_of(datetime(2026, 3, 5, 23, 0, tzinfo=UTC)) == date(2026, 3, 2)
