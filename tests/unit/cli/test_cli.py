"""The command line without services: minting, the message when a service is down, and empty answers."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from catalyst.engagement.v1 import engagement_pb2
from catalyst.recognition.v1 import recognition_pb2
from rich.console import Console

from services.cli import render
from services.cli.main import main, parser
from services.common.auth import Role
from services.engagement.model.config import load_model
from tests.conftest import free_port, verify


def test_token_command_mints_a_token_the_services_accept(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["token", "emp-7", "--token-role", "programme_owner"]) == 0
    token = capsys.readouterr().out.strip()
    principal = verify(token)
    assert principal.subject == "emp-7" and principal.has(Role.PROGRAMME_OWNER)


def test_a_service_that_is_down_gets_a_clear_message(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    monkeypatch.setenv("CATALYST_RECOGNITION_TARGET", f"127.0.0.1:{port}")
    assert main(["coverage"]) == 2
    err = capsys.readouterr().err
    assert f"the recognition service is not reachable at 127.0.0.1:{port}" in err
    assert "make up" in err


def test_leaderboard_windows_are_the_scoring_files_and_explain_keeps_every_window(
    capsys: pytest.CaptureFixture[str],
) -> None:
    model = load_model()
    assert parser().parse_args(["leaderboard"]).window == "30d"
    assert parser().parse_args(["explain", "e-1", "--window", "7d"]).window == "7d"
    for window in model.leaderboards.windows:
        assert parser().parse_args(["leaderboard", "--window", window]).window == window
    with pytest.raises(SystemExit):
        parser().parse_args(["leaderboard", "--window", "7d"])
    assert "invalid choice: '7d'" in capsys.readouterr().err


EMPTY_ANSWERS = [
    (lambda c: render.leaderboard(c, engagement_pb2.GetLeaderboardResponse(), LEADERBOARD_30D), "no scores to rank"),
    (lambda c: render.explanation(c, engagement_pb2.ExplainScoreResponse(employee_id="e-1", window="7d")), "no scored"),
    (lambda c: render.badges(c, recognition_pb2.GetBadgesResponse(), "e-1"), "e-1 holds no badges yet"),
    (lambda c: render.ambassadors(c, recognition_pb2.ListAmbassadorsResponse(), ""), "no Intranet Ambassadors yet"),
    (lambda c: render.ambassadors(c, recognition_pb2.ListAmbassadorsResponse(), "d-9"), "Ambassadors in d-9 yet"),
    (lambda c: render.coverage(c, recognition_pb2.GetDepartmentCoverageResponse()), "no departments to show"),
    (lambda c: render.pilot_group(c, recognition_pb2.ProposePilotGroupResponse()), "no pilot candidates yet"),
    (lambda c: render.adoption(c, engagement_pb2.GetDepartmentAdoptionResponse(), ""), "no departments to show"),
]
LEADERBOARD_30D = engagement_pb2.GetLeaderboardRequest(window="30d")


@pytest.mark.parametrize(("show", "why"), EMPTY_ANSWERS)
def test_an_empty_answer_says_why_and_what_to_do_next(show: Callable[[Console], None], why: str) -> None:
    console = Console(record=True, width=400)
    show(console)
    text = console.export_text()
    assert why in text
    assert "`" in text, "the sentence names a command to run next"
    assert "┃" not in text, "no empty table is drawn"
