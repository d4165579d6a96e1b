"""The simulated company runs the ambassador programme while its months pass.

People decide as people would: a genuine ambassador mostly accepts the invitation (one in five has no time
now), anyone else declines, with a reason code; a few motivated people volunteer before anyone found them;
the programme owner offers a training to everyone who accepted and confirms it once they took it (most do);
at the end a few ambassadors withdraw. Everything goes through RecognitionService with the person's or the
programme owner's own token, so the funnel the report shows is what the service counted.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Protocol

import grpc
from catalyst.recognition.v1 import recognition_pb2 as pb

from services.common.audit import PURPOSE_KEY
from services.common.auth import Role
from services.common.grpc_client import bearer
from services.common.local_issuer import LocalIssuer
from services.demo.evaluation import AMBASSADOR, Grant
from services.simulator.ground_truth import GroundTruth
from services.simulator.population import Persona

TRAINING = "ambassador_basics"
ACCEPT_SHARE = 0.8  # of genuine ambassadors; the others have no time now
TRAINED_SHARE = 0.8  # of those offered the training, take it
VOLUNTEER_AMBASSADORS = 0.15  # of genuine ambassadors, say so before anyone found them
VOLUNTEER_REGULARS = 0.05  # of regular contributors
WITHDRAW_SHARE = 0.06  # of ambassadors who accepted, change their mind by the end
SKIPPED = (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND)  # e.g. the badge was revoked meanwhile
Metadata = tuple[tuple[str, str], ...]


class Stub(Protocol):
    """The RecognitionService calls the programme makes (the generated stub, or a fake in tests)."""

    async def RespondToInvitation(self, request: pb.RespondToInvitationRequest, metadata: Metadata) -> object: ...

    async def Volunteer(self, request: pb.VolunteerRequest, metadata: Metadata) -> object: ...

    async def RecordLegitimation(self, request: pb.RecordLegitimationRequest, metadata: Metadata) -> object: ...


@dataclass
class ProgrammeRun:
    stub: Stub
    authority: LocalIssuer
    truth: GroundTruth
    seed: int
    outcomes: Counter[str] = field(default_factory=Counter)
    _answered: set[tuple[str, int]] = field(default_factory=set)  # (employee, grant number)
    _accepted: set[str] = field(default_factory=set)
    _offered: set[str] = field(default_factory=set)
    _settled: set[str] = field(default_factory=set)  # took the training or decided not to

    def _rng(self, employee: str, what: str) -> random.Random:
        """One person's decision, the same in every run of the seed whatever the order of events."""
        return random.Random(f"{self.seed}/{employee}/{what}")

    def _person(self, employee: str) -> Metadata:
        return bearer(self.authority.mint(employee, [Role.EMPLOYEE], 600))

    def _owner(self) -> Metadata:
        token = bearer(self.authority.mint("demo-comms-team", [Role.PROGRAMME_OWNER], 600))
        return (*token, (PURPOSE_KEY, "demo: run the ambassador programme"))

    async def _call(self, outcome: str, call: Awaitable[object]) -> bool:
        try:
            await call
        except grpc.aio.AioRpcError as exc:
            if exc.code() not in SKIPPED:
                raise
            self.outcomes["no longer invited" if outcome in ("accepted", "declined") else "skipped"] += 1
            return False
        self.outcomes[outcome] += 1
        return True

    async def volunteer(self) -> None:
        """Before launch some motivated people offer themselves: they are invited once they meet the criteria."""
        shares = {Persona.AMBASSADOR.value: VOLUNTEER_AMBASSADORS, Persona.REGULAR.value: VOLUNTEER_REGULARS}
        for e in self.truth.employees:
            if self._rng(e.employee_id, "volunteer").random() < shares.get(e.persona, 0.0):
                offer = self.stub.Volunteer(pb.VolunteerRequest(), metadata=self._person(e.employee_id))
                await self._call("volunteered", offer)

    async def round(self, grants: list[Grant]) -> bool:
        """Answers every new invitation, offers the training to whoever accepted, confirms trainings taken;
        False when there was nothing left to do."""
        before = sum(self.outcomes.values())
        genuine = set(self.truth.ambassadors)
        seen: Counter[str] = Counter()
        for g in grants:
            if g.badge != AMBASSADOR:
                continue
            seen[g.employee_id] += 1
            if (g.employee_id, seen[g.employee_id]) in self._answered:
                continue
            self._answered.add((g.employee_id, seen[g.employee_id]))
            accept = g.employee_id in genuine and self._rng(g.employee_id, "accept").random() < ACCEPT_SHARE
            code = "" if accept else ("no_time" if g.employee_id in genuine else "not_my_role")
            request = pb.RespondToInvitationRequest(badge=AMBASSADOR, accept=accept, reason_code=code)
            answered = self.stub.RespondToInvitation(request, metadata=self._person(g.employee_id))
            if await self._call("accepted" if accept else "declined", answered) and accept:
                self._accepted.add(g.employee_id)
        for employee in sorted(self._offered - self._settled):
            self._settled.add(employee)
            if self._rng(employee, "train").random() < TRAINED_SHARE:
                request = pb.RecordLegitimationRequest(employee_id=employee, complete_training=TRAINING)
                await self._call("trainings completed", self.stub.RecordLegitimation(request, metadata=self._owner()))
        for employee in sorted(self._accepted - self._offered):
            self._offered.add(employee)
            request = pb.RecordLegitimationRequest(employee_id=employee, offer_training=TRAINING)
            await self._call("trainings offered", self.stub.RecordLegitimation(request, metadata=self._owner()))
        return sum(self.outcomes.values()) > before

    async def run_while(self, grants: list[Grant], running: asyncio.Event, interval: float) -> None:
        """Volunteers come forward once the directory is in, then rounds every `interval` seconds until `running`
        is cleared."""
        await asyncio.sleep(interval)
        await self.volunteer()
        while running.is_set():
            await self.round(list(grants))
            await asyncio.sleep(interval)

    async def withdrawals(self) -> None:
        """At the end a few ambassadors change their mind."""
        for employee in sorted(self._accepted):
            if self._rng(employee, "withdraw").random() < WITHDRAW_SHARE:
                request = pb.RespondToInvitationRequest(badge=AMBASSADOR, accept=False, reason_code="no_time")
                await self._call("withdrew", self.stub.RespondToInvitation(request, metadata=self._person(employee)))
