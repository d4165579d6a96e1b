"""gRPC adapter of catalyst.feed.v1.PreLaunchService: requests in, use cases, messages out."""

from __future__ import annotations

import grpc
from catalyst.feed.v1 import prelaunch_pb2 as pb
from catalyst.feed.v1 import prelaunch_pb2_grpc

from services.common.auth import current_principal
from services.common.errors import InvalidArgument
from services.feed.prelaunch import Session
from services.feed.prelaunch_handlers import PreLaunch

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["PreLaunchService"].full_name


def session_pb(session: Session) -> pb.Session:
    msg = pb.Session(
        session_id=session.session_id,
        type=int(session.type),
        title=session.title,
        department_ids=session.department_ids,
        organiser_id=session.organiser_id,
        pre_launch=session.pre_launch,
        registered_by=session.registered_by,
    )
    msg.starts_at.FromMilliseconds(session.starts_ms)
    msg.ends_at.FromMilliseconds(session.ends_ms)
    return msg


class PreLaunchServicer(prelaunch_pb2_grpc.PreLaunchServiceServicer):
    def __init__(self, prelaunch: PreLaunch) -> None:
        self._p = prelaunch

    def register(self, server: grpc.aio.Server) -> None:
        prelaunch_pb2_grpc.add_PreLaunchServiceServicer_to_server(self, server)

    async def RegisterSession(
        self, request: pb.RegisterSessionRequest, context: grpc.aio.ServicerContext
    ) -> pb.RegisterSessionResponse:
        if not request.HasField("session"):
            raise InvalidArgument("session", "describe the session to register")
        s = request.session
        session = await self._p.register(
            current_principal(),
            s.session_id,
            s.type,
            s.title,
            s.starts_at.ToMilliseconds() if s.HasField("starts_at") else 0,
            s.ends_at.ToMilliseconds() if s.HasField("ends_at") else 0,
            list(s.department_ids),
            s.organiser_id,
            s.pre_launch,
        )
        return pb.RegisterSessionResponse(session=session_pb(session))

    async def ListSessions(
        self, request: pb.ListSessionsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListSessionsResponse:
        return pb.ListSessionsResponse(sessions=[session_pb(s) for s in await self._p.sessions(current_principal())])

    async def ConfirmAttendance(
        self, request: pb.ConfirmAttendanceRequest, context: grpc.aio.ServicerContext
    ) -> pb.ConfirmAttendanceResponse:
        recorded = await self._p.confirm(
            current_principal(),
            request.session_id,
            request.employee_id,
            request.contributed,
            request.answered_questions,
        )
        return pb.ConfirmAttendanceResponse(recorded=recorded)
