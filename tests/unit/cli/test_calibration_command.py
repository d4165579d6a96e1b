"""`catalyst calibration` shows the proposal beside the thresholds in force, never a count below the minimum."""

from __future__ import annotations

from catalyst.events.v1 import badges_pb2
from catalyst.recognition.v1 import recognition_pb2 as pb
from rich.console import Console

from services.cli.calibration import proposals
from services.cli.main import parser


def test_the_table_shows_rule_proposal_and_what_is_in_force() -> None:
    response = pb.ListCalibrationProposalsResponse(proposal_id="abc123", population=240, min_population=30)
    response.criteria.add(
        badge="intranet_ambassador",
        tier=badges_pb2.TIER_SINGLE,
        label="answers in the last 100 days",
        grant_percentile=90,
        keep_percentile=75,
        grant_floor=5,
        keep_floor=3,
        proposed=pb.CalibrationThreshold(grant=14, keep=9.20181, meeting=24),
        in_force=pb.CalibrationThreshold(grant=float("inf"), keep=3),
    )
    response.criteria.add(badge="helper", label="comments", proposed=pb.CalibrationThreshold(grant=3, suppressed=True))
    approval = response.approvals.add(proposal_id="old1", approved_by="comms", population=200)
    approval.approved_at.FromSeconds(1_767_225_600)
    console = Console(record=True, width=250)
    proposals(console, response)
    text = console.export_text()
    assert "Proposal abc123: from 240 active colleagues" in text
    assert "top 10% (keep 25%), at least 5 / 3" in text and "14 / 9.2 (24 reach it)" in text
    assert "not comparable yet" in text and "fewer than the minimum group reach it" in text
    assert "Approved old1 by comms on 2026-01-01 00:00 UTC" in text


def test_approving_names_the_proposal() -> None:
    assert parser().parse_args(["calibration", "--approve", "abc123"]).approve == "abc123"
    assert parser().parse_args(["calibration"]).approve == ""
