"""Where the command line finds the services, and who it acts as."""

from __future__ import annotations

from pydantic import Field

from services.common.settings import CommonSettings


class CliSettings(CommonSettings):
    feed_target: str = "localhost:50051"
    engagement_target: str = "localhost:50052"
    recognition_target: str = "localhost:50053"
    # A token to use as is (production: from the identity provider); when empty the CLI mints one with the
    # local issuer (development and demos).
    token: str = ""
    call_timeout_seconds: float = Field(10.0, gt=0)
