"""Blocking gRPC calls for the command line, with errors turned into sentences."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
from catalyst.audit.v1 import audit_pb2_grpc
from catalyst.engagement.v1 import engagement_pb2_grpc
from catalyst.feed.v1 import feed_pb2_grpc, prelaunch_pb2_grpc
from catalyst.recognition.v1 import recognition_pb2_grpc

from services.cli.config import CliSettings
from services.common.audit import PURPOSE_KEY
from services.common.auth import Role
from services.common.grpc_client import bearer
from services.common.local_issuer import local_issuer


class CliError(Exception):
    """A failure to show to the person at the terminal, without a traceback."""


_HINTS = {
    grpc.StatusCode.UNAVAILABLE: "is not reachable at {target}; is it running? (`make up` starts everything)",
    grpc.StatusCode.DEADLINE_EXCEEDED: "at {target} did not answer in time",
}

_STUBS: dict[str, tuple[type, str]] = {
    "feed": (feed_pb2_grpc.FeedServiceStub, "feed_target"),
    "prelaunch": (prelaunch_pb2_grpc.PreLaunchServiceStub, "feed_target"),
    "engagement": (engagement_pb2_grpc.EngagementServiceStub, "engagement_target"),
    "recognition": (recognition_pb2_grpc.RecognitionServiceStub, "recognition_target"),
    "audit": (audit_pb2_grpc.AuditServiceStub, "recognition_target"),
}


@dataclass
class Caller:
    settings: CliSettings
    subject: str
    role: Role
    purpose: str = ""

    def token(self) -> str:
        if self.settings.token:
            return self.settings.token
        return local_issuer(self.settings).mint(self.subject, [self.role], ttl_seconds=300)

    def call(self, service: str, method: str, request: Any) -> Any:
        stub_class, target_field = _STUBS[service]
        target = getattr(self.settings, target_field)
        with grpc.insecure_channel(target) as channel:
            rpc: Callable[..., Any] = getattr(stub_class(channel), method)
            try:
                metadata = (*bearer(self.token()), *(((PURPOSE_KEY, self.purpose),) if self.purpose else ()))
                return rpc(request, metadata=metadata, timeout=self.settings.call_timeout_seconds)
            except grpc.RpcError as exc:
                code = exc.code()
                if code in _HINTS:
                    raise CliError(f"the {service} service " + _HINTS[code].format(target=target)) from None
                hint = " (state it with --purpose '<why>')" if (exc.details() or "").startswith(PURPOSE_KEY) else ""
                raise CliError(f"{service} refused {method}: {code.name.lower()}: {exc.details()}{hint}") from None
