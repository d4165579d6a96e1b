"""Domain errors that adapters translate into gRPC status codes; domain code never imports grpc."""

from __future__ import annotations


class CatalystError(Exception):
    """Base class: the message is shown to the caller, so write it for a person."""


class InvalidArgument(CatalystError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class NotFound(CatalystError):
    pass


class PermissionDenied(CatalystError):
    pass


class Unauthenticated(CatalystError):
    pass


class FailedPrecondition(CatalystError):
    pass


class Unavailable(CatalystError):
    pass
