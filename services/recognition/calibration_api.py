"""Calibration proposals and approvals as messages of catalyst.recognition.v1 (decision 0023)."""

from __future__ import annotations

from catalyst.recognition.v1 import recognition_pb2 as pb

from services.recognition.calibration import Approval, Calibration, CriterionProposal, Reached, proposal_id
from services.recognition.events import TIER_PB
from services.recognition.rules import Rules, Tier


def threshold_pb(reached: Reached) -> pb.CalibrationThreshold:
    return pb.CalibrationThreshold(
        grant=reached.grant,
        keep=reached.keep,
        meeting=reached.meeting or 0,
        suppressed=reached.meeting is None,
    )


def approval_pb(approval: Approval) -> pb.CalibrationApproval:
    msg = pb.CalibrationApproval(
        proposal_id=approval.proposal_id,
        approved_by=approval.approved_by,
        population=approval.calibration.population,
    )
    msg.approved_at.FromDatetime(approval.approved_at)
    return msg


def proposals_pb(
    rules: Rules,
    proposal: Calibration,
    criteria: list[CriterionProposal],
    approvals: list[Approval],
    min_group_size: int,
) -> pb.ListCalibrationProposalsResponse:
    """The population is told only when the proposal compares people at all (at least min_population)."""
    response = pb.ListCalibrationProposalsResponse(
        proposal_id=proposal_id(proposal),
        population=proposal.population if proposal.quantiles else 0,
        min_population=proposal.min_population,
        min_group_size=min_group_size,
        approvals=[approval_pb(a) for a in approvals],
    )
    for p in criteria:
        percentile = p.criterion.percentile
        assert percentile is not None
        response.criteria.add(
            badge=p.badge,
            tier=TIER_PB[Tier(p.tier)],
            metric=p.criterion.metric,
            label=p.criterion.label,
            grant_percentile=percentile.grant,
            keep_percentile=percentile.keep,
            grant_floor=p.criterion.grant,
            keep_floor=p.criterion.keep,
            proposed=threshold_pb(p.proposed),
            in_force=threshold_pb(p.in_force),
        )
    return response
