"""`catalyst calibration`: the badge criteria's calibration proposal beside the thresholds in force, and its
approval by the programme owner (decision 0023)."""

from __future__ import annotations

import argparse
import math

from catalyst.events.v1 import badges_pb2
from catalyst.recognition.v1 import recognition_pb2 as pb
from rich.console import Console
from rich.table import Table

from services.cli.clients import Caller

COMMANDS = frozenset({"calibration"})


def add_commands(sub: argparse._SubParsersAction) -> None:
    ca = sub.add_parser(
        "calibration", help="percentile thresholds proposed from the company's figures and in force (aggregates)"
    )
    ca.add_argument("--approve", metavar="PROPOSAL_ID", default="", help="approve that proposal (programme owner)")


def _number(value: float) -> str:
    """Thresholds of decaying figures have long fractions: two decimals say enough."""
    return f"{round(value, 2):g}"


def threshold(t: pb.CalibrationThreshold) -> str:
    """Grant / keep and how many reach grant, in words where a number would mislead."""
    if math.isinf(t.grant):
        return "not comparable yet"
    meeting = "fewer than the minimum group" if t.suppressed else str(t.meeting)
    return f"{_number(t.grant)} / {_number(t.keep)} ({meeting} reach it)"


def proposals(console: Console, response: pb.ListCalibrationProposalsResponse) -> None:
    if not response.criteria:
        console.print("No badge criterion is calibrated: every threshold is a fixed number in the badge rules")
        return
    if response.population:
        console.print(f"Proposal {response.proposal_id}: from {response.population} active colleagues")
    else:
        console.print(f"Fewer than {response.min_population} active colleagues: nobody is compared, nothing to approve")
    table = Table(title="Percentile criteria: grant / keep threshold")
    for column in ("badge", "tier", "criterion", "rule", "proposed", "in force"):
        table.add_column(column)
    for c in response.criteria:
        rule = (
            f"top {_number(100 - c.grant_percentile)}% (keep {_number(100 - c.keep_percentile)}%), "
            f"at least {_number(c.grant_floor)} / {_number(c.keep_floor)}"
        )
        tier = badges_pb2.Tier.Name(c.tier).removeprefix("TIER_").lower()
        table.add_row(c.badge, tier, c.label, rule, threshold(c.proposed), threshold(c.in_force))
    console.print(table)
    if not response.approvals:
        console.print("Nothing approved: the weekly calibration is in force (decision 0019)")
    for a in response.approvals:
        when = a.approved_at.ToDatetime().strftime("%Y-%m-%d %H:%M UTC")
        console.print(f"Approved {a.proposal_id} by {a.approved_by} on {when} ({a.population} active colleagues)")


def run(args: argparse.Namespace, caller: Caller, console: Console) -> None:
    if args.approve:
        request = pb.ApproveCalibrationRequest(proposal_id=args.approve.strip())
        approval = caller.call("recognition", "ApproveCalibration", request).approval
        console.print(f"Approved {approval.proposal_id}: in force until the next approval")
        return
    proposals(console, caller.call("recognition", "ListCalibrationProposals", pb.ListCalibrationProposalsRequest()))
