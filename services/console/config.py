"""The console's settings (CATALYST_CONSOLE_* plus the common CATALYST_* ones), read once at start-up."""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import Field, model_validator

from services.common.settings import CommonSettings

DEVELOPMENT_SESSION_SECRET = "catalyst-local-development-console-session-secret"


class ConsoleSettings(CommonSettings):
    console_host: str = Field("127.0.0.1", description="address the console listens on")
    console_port: int = Field(8080, ge=1, le=65535, description="its port")
    feed_target: str = Field("localhost:50051", min_length=1, description="feed gRPC address")
    engagement_target: str = Field("localhost:50052", min_length=1, description="engagement gRPC address")
    recognition_target: str = Field("localhost:50053", min_length=1, description="recognition gRPC address")
    call_timeout_seconds: float = Field(10.0, gt=0, description="deadline of each gRPC call")
    console_client_id: str = Field("catalyst-console", min_length=1, description="OIDC client id of the console")
    console_redirect_url: str = Field(
        "http://localhost:8080/auth/callback", min_length=1, description="where the identity provider sends back"
    )
    console_session_secret: str = Field(
        DEVELOPMENT_SESSION_SECRET, min_length=32, description="key that signs the session cookie"
    )
    console_secure_cookies: bool = Field(
        True, description="session cookie only over HTTPS (browsers treat http://localhost as secure)"
    )
    console_session_hours: float = Field(8.0, gt=0, le=24, description="a session ends after this long")

    @property
    def public_url(self) -> str:
        """The address people open: the redirect URL's origin (signing in returns there, so the session cookie
        must be set on that host)."""
        parts = urlsplit(self.console_redirect_url)
        return f"{parts.scheme}://{parts.netloc}"

    @model_validator(mode="after")
    def _production_has_its_own_secret(self) -> ConsoleSettings:
        """A session cookie signed with the published development key could be forged by anyone."""
        if self.env == "production" and self.console_session_secret == DEVELOPMENT_SESSION_SECRET:
            raise ValueError("CATALYST_CONSOLE_SESSION_SECRET must be set to a secret of its own in production")
        return self
