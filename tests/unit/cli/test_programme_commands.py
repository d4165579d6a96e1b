"""The programme commands build the requests the recognition service expects."""

from __future__ import annotations

from datetime import UTC, datetime

from catalyst.feed.v1 import prelaunch_pb2 as pre
from catalyst.recognition.v1 import recognition_pb2 as pb
from rich.console import Console

from services.cli.main import parser
from services.cli.programme import emerging, funnel, legitimation_request, manager_activity, session_request


def test_each_legitimation_option_fills_its_field_of_the_oneof() -> None:
    cases = {
        ("--offer-training", "ambassador_basics"): ("offer_training", "ambassador_basics"),
        ("--complete-training", "ambassador_basics"): ("complete_training", "ambassador_basics"),
        ("--resource", "early_access"): ("grant_resource", "early_access"),
        ("--appreciation", "thank you"): ("appreciation", "thank you"),
    }
    for argv, (field, value) in cases.items():
        request = legitimation_request(parser().parse_args(["legitimate", "amy", *argv]))
        assert request.employee_id == "amy" and request.WhichOneof("change") == field
        assert getattr(request, field) == value
    budget = legitimation_request(parser().parse_args(["legitimate", "amy", "--time-budget", "4", "--manager", "mia"]))
    assert (budget.time_budget.hours_per_month, budget.time_budget.agreed_by_manager) == (4, "mia")


def test_answering_needs_a_choice() -> None:
    args = parser().parse_args(["--as", "amy", "answer", "--decline", "--reason-code", "no_time"])
    assert args.decline and not args.accept and args.reason_code == "no_time"


def test_a_session_registration_carries_its_dates_and_departments() -> None:
    argv = ["register-session", "w-1", "--type", "workshop", "--title", "Name it", "--starts", "2026-03-02"]
    args = parser().parse_args([*argv, "--department", "sales", "--department", "it", "--pre-launch"])
    session = session_request(args).session
    assert (session.session_id, session.type, session.pre_launch) == ("w-1", pre.SESSION_TYPE_WORKSHOP, True)
    assert list(session.department_ids) == ["sales", "it"] and not session.HasField("ends_at")
    assert session.starts_at.ToDatetime().date().isoformat() == "2026-03-02"


def test_the_funnel_table_shows_every_stage() -> None:
    response = pb.GetProgrammeFunnelResponse(min_group_size=5)
    company = response.stages.add(
        detected=8, pending=1, accepted=6, declined=1, trained=3, active=5, lapsed=1, volunteered=3
    )
    company.accepted_90_days_ago, company.active_after_90_days = 4, 3
    company.lapse_reasons.add(reason="inactive", count=5)
    company.retention.add(days=30, cohort=6, retained=5)
    response.stages.add(department_id="sales", detected=5, accepted=5, median_days_to_accept=4)
    response.adoption.departments_with = 2
    response.adoption.with_ambassadors.people = 40
    response.adoption.with_ambassadors.active_30d_share = 0.75
    week = response.adoption_history.add(week="2026-03-02")
    week.adoption.without_ambassadors.active_30d_share = 0.4
    console = Console(record=True, width=250)
    funnel(console, response)
    text = console.export_text()
    assert "company" in text and "3 of 4" in text and "sales" in text and "4 / - / -" in text
    assert "inactive 5" in text and "5 of 6" in text and "75%" in text and "too few to show" in text
    assert "2026-03-02" in text and "40%" in text
    empty = Console(record=True)
    funnel(empty, pb.GetProgrammeFunnelResponse(min_group_size=5))
    assert "fewer than 5 people" in empty.export_text()


def test_manager_activity_names_groups_not_people() -> None:
    response = pb.GetManagerActivityResponse(min_group_size=5, too_small=["legal"], small_departments=2)
    row = response.departments.add(department_id="sales")
    row.managers.people, row.managers.active_30d_share = 6, 0.5
    row.others.people, row.others.active_30d_share = 30, 0.8
    console = Console(record=True, width=250)
    manager_activity(console, response)
    text = console.export_text()
    assert "sales: managers" in text and "50%" in text and "80%" in text
    assert "legal" in text and "2 departments below 5" in text
    assert parser().parse_args(["manager-activity"]).command == "manager-activity"


def test_the_emerging_list_shows_the_expected_date_and_what_is_missing() -> None:
    response = pb.ListEmergingResponse()
    soon = response.emerging.add(employee_id="amy", display_name="Amy", department_id="sales")
    soon.expected_at.FromDatetime(datetime(2026, 10, 12, tzinfo=UTC))
    soon.expected = "answers in the last 100 days 8 of 10: 25 more days at the pace of the last 100 days"
    soon.progress.missing.add(description="2 more answers in the last 100 days (8 of 10)")
    soon.progress.met.add(description="12 colleagues")
    response.emerging.add(employee_id="bo", department_id="it", expected="no date: profile 50% of 80%")
    console = Console(record=True, width=300)
    emerging(console, response)
    text = console.export_text()
    assert "Amy" in text and "2026-10-12" in text and "1 of 2" in text and "2 more answers" in text
    assert "bo" in text and "no date" in text and "2 on track; not announced" in text
    assert parser().parse_args(["emerging", "--department", "it"]).department == "it"
    console = Console(record=True)
    emerging(console, pb.ListEmergingResponse())
    assert "Nobody is on track" in console.export_text()
