"""Settings of the local issuer process (CATALYST_ISSUER_* plus the common CATALYST_* ones)."""

from __future__ import annotations

from pydantic import Field

from services.common.local_issuer_login import LoginSettings
from services.common.settings import CommonSettings


class IssuerSettings(CommonSettings, LoginSettings):
    issuer_host: str = Field("127.0.0.1", description="address the discovery document and the JWKS are served on")
    issuer_port: int = Field(9107, ge=1, le=65535, description="their port")
