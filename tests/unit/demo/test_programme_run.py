"""The simulated programme against an in-memory RecognitionService: who answers how, trainings, withdrawals."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import grpc
import jwt
import pytest
from catalyst.recognition.v1 import recognition_pb2 as pb

from services.common.local_issuer import LocalIssuer
from services.demo.evaluation import AMBASSADOR, Grant
from services.demo.programme import ProgrammeRun
from services.simulator.ground_truth import EmployeeTruth, GroundTruth
from tests.unit.demo.test_evaluation import TRUTH, at

Metadata = tuple[tuple[str, str], ...]


def refused(code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details="refused")


class FakeRecognition:
    """What RecognitionService decides for these calls: only the invited answer, only who accepted is legitimated."""

    def __init__(self, invited: set[str]) -> None:
        self.invited = invited
        self.status: dict[str, str] = {}
        self.volunteers: set[str] = set()
        self.trainings: dict[str, str] = {}  # employee -> offered | completed
        self.calls: Counter[str] = Counter()
        self.withdrawn: set[str] = set()

    @staticmethod
    def _caller(metadata: Metadata) -> tuple[str, list[str]]:
        token = dict(metadata)["authorization"].removeprefix("Bearer ")
        claims = jwt.decode(token, options={"verify_signature": False})
        return claims["sub"], claims["roles"]

    async def RespondToInvitation(self, request: pb.RespondToInvitationRequest, metadata: Metadata) -> object:
        who, _ = self._caller(metadata)
        if who not in self.invited:
            raise refused(grpc.StatusCode.NOT_FOUND)
        self.calls["answer"] += 1
        if self.status.get(who) == "accepted" and not request.accept:
            self.withdrawn.add(who)
        self.status[who] = "accepted" if request.accept else "declined"
        return pb.RespondToInvitationResponse()

    async def Volunteer(self, request: pb.VolunteerRequest, metadata: Metadata) -> object:
        self.volunteers.add(self._caller(metadata)[0])
        return pb.VolunteerResponse(volunteering=True)

    async def RecordLegitimation(self, request: pb.RecordLegitimationRequest, metadata: Metadata) -> object:
        assert self._caller(metadata)[1] == ["programme_owner"] and dict(metadata)["x-catalyst-purpose"]
        if self.status.get(request.employee_id) != "accepted":
            raise refused(grpc.StatusCode.FAILED_PRECONDITION)
        if request.WhichOneof("change") == "complete_training":
            assert self.trainings[request.employee_id] == "offered"
        self.trainings[request.employee_id] = "completed" if request.complete_training else "offered"
        return pb.RecordLegitimationResponse()


@pytest.fixture
def issuer(tmp_path: Path) -> LocalIssuer:
    return LocalIssuer(tmp_path, "https://issuer.test", "catalyst")


def test_invited_people_answer_once_and_who_accepted_is_trained(issuer: LocalIssuer) -> None:
    service = FakeRecognition({"a1", "a2", "a3", "r1"})
    run = ProgrammeRun(service, issuer, TRUTH, seed=7)
    grants = [Grant(e, AMBASSADOR, "single", at(10)) for e in ("a1", "a2", "a3", "r1")]
    grants.append(Grant("a1", "creator", "bronze", at(11)))

    async def rounds() -> None:
        for _ in range(3):
            await run.round(grants)

    asyncio.run(rounds())
    assert service.calls["answer"] == 4  # one answer per invitation however many rounds see it
    assert service.status["r1"] == "declined"  # not a genuine ambassador
    accepted = {e for e, s in service.status.items() if s == "accepted"}
    assert accepted and accepted <= {"a1", "a2", "a3"}
    assert set(service.trainings) == accepted and run.outcomes["trainings offered"] == len(accepted)
    completed = {e for e, t in service.trainings.items() if t == "completed"}
    assert run.outcomes["trainings completed"] == len(completed)
    assert run.outcomes["accepted"] + run.outcomes["declined"] == 4


def test_a_person_decides_the_same_way_in_every_run_of_the_seed(issuer: LocalIssuer) -> None:
    many = [f"a{i}" for i in range(40)]
    people = [
        EmployeeTruth(
            employee_id=e, display_name=e, department_id="d1", team_id="t", is_manager=False,
            persona="ambassador", is_ambassador=True, is_gamer=False,
        )
        for e in many
    ]  # fmt: skip
    truth = GroundTruth(**{**TRUTH.model_dump(), "employees": people})
    outcomes = []
    for order in (many, list(reversed(many))):
        service = FakeRecognition(set(many))
        run = ProgrammeRun(service, issuer, truth, seed=3)
        grants = [Grant(e, AMBASSADOR, "single", at(10)) for e in order]
        asyncio.run(run.volunteer())
        while asyncio.run(run.round(grants)):
            pass
        asyncio.run(run.withdrawals())
        outcomes.append((dict(service.status), set(service.volunteers), set(service.withdrawn), run.outcomes))
    assert outcomes[0] == outcomes[1]
    _, volunteers, withdrawn, counts = outcomes[0]
    assert 0 < counts["declined"] < counts["accepted"]  # most genuine ambassadors accept
    assert 0 < counts["withdrew"] == len(withdrawn) < counts["accepted"]  # a few change their mind
    assert 0 < len(volunteers) < len(many)


def test_a_revoked_invitation_is_counted_not_fatal(issuer: LocalIssuer) -> None:
    service = FakeRecognition(set())
    run = ProgrammeRun(service, issuer, TRUTH, seed=1)
    asyncio.run(run.round([Grant("a1", AMBASSADOR, "single", at(1))]))
    assert run.outcomes == Counter({"no longer invited": 1})
