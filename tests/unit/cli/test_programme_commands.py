"""The programme commands build the requests the recognition service expects."""

from __future__ import annotations

from catalyst.feed.v1 import prelaunch_pb2 as pre
from catalyst.recognition.v1 import recognition_pb2 as pb
from rich.console import Console

from services.cli.main import parser
from services.cli.programme import funnel, legitimation_request, session_request


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
    response.stages.add(detected=8, accepted=6, declined=1, trained=3, accepted_90_days_ago=4, active_after_90_days=3)
    response.stages.add(department_id="sales", detected=5, accepted=5, median_days_to_accept=4)
    console = Console(record=True, width=200)
    funnel(console, response)
    text = console.export_text()
    assert "company" in text and "3 of 4" in text and "sales" in text
    empty = Console(record=True)
    funnel(empty, pb.GetProgrammeFunnelResponse(min_group_size=5))
    assert "fewer than 5 people" in empty.export_text()
