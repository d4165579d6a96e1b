"""Settings shared by every service, read from environment variables and checked at start-up."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, TypeVar

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.common.policy import policy_path
from services.common.topics import topic_name

ROOT = Path(__file__).resolve().parents[2]
LOCAL_ISSUER = "http://127.0.0.1:9107"


class CommonSettings(BaseSettings):
    """Connection and security settings every Catalyst process needs."""

    model_config = SettingsConfigDict(env_prefix="CATALYST_", extra="ignore", frozen=True)

    kafka_bootstrap: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers, comma separated")
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="Redis URL")
    env: Literal["development", "production"] = Field(
        "development", description="production: tokens only from the company's identity provider, no local minting"
    )
    run_dir: Path = Field(ROOT / ".run", description="local state of `make up`")
    local_issuer_dir: Path | None = Field(None, description="the local issuer's signing keys (default: run_dir/issuer)")
    oidc_issuer: str = Field(LOCAL_ISSUER, min_length=1, description="the identity provider's issuer URL ('iss')")
    oidc_audience: str = Field("catalyst", min_length=1, description="the audience ('aud') tokens must be for")
    oidc_jwks_url: str = Field("", description="JWKS URL; empty: from the issuer's OpenID discovery document")
    oidc_roles_claim: str = Field(
        "roles", min_length=1, description="claim holding the roles; a dotted path reads nested claims"
    )
    oidc_leeway_seconds: int = Field(30, ge=0, le=300, description="clock skew allowed for exp, nbf and iat")
    oidc_jwks_cache_seconds: float = Field(300.0, gt=0, description="how long fetched keys are trusted")
    oidc_jwks_refetch_seconds: float = Field(
        30.0, ge=0, description="least time between fetches for an unknown key id (rotation without a flood)"
    )
    pseudonym_key: str = Field(
        "catalyst-local-development-pseudonym-key-change-me",
        min_length=32,
        description="HMAC key of keyed pseudonyms (erasure markers); keep it apart from the data it protects",
    )
    policy_file: Path = Field(default_factory=policy_path, description="the validated policy file (retention)")
    topic_interactions: str = Field(default_factory=lambda: topic_name("interactions"))
    topic_engagement: str = Field(default_factory=lambda: topic_name("engagement"))
    topic_recognition: str = Field(default_factory=lambda: topic_name("recognition"))
    topic_deadletter: str = Field(default_factory=lambda: topic_name("deadletter"))
    topic_audit: str = Field(default_factory=lambda: topic_name("audit"))
    # Consumer groups are named here because other processes (lag exporter, demo) watch them too.
    engagement_group_id: str = Field("catalyst-engagement", min_length=1, description="engagement worker group")
    recognition_group_id: str = Field("catalyst-recognition", min_length=1, description="recognition group")
    log_level: str = "INFO"
    grpc_host: str = "0.0.0.0"
    metrics_host: str = "0.0.0.0"
    shutdown_grace_seconds: float = Field(10.0, gt=0)

    @model_validator(mode="after")
    def _production_trusts_a_real_issuer(self) -> CommonSettings:
        """In production the local issuer (keys on this machine) must not be trusted by mistake."""
        if self.env == "production" and (
            self.oidc_issuer == LOCAL_ISSUER or not self.oidc_issuer.startswith("https://")
        ):
            raise ValueError("CATALYST_OIDC_ISSUER must be the company's identity provider (https://...) in production")
        return self

    @property
    def issuer_key_dir(self) -> Path:
        """Where the local issuer keeps its signing keys."""
        return self.local_issuer_dir or self.run_dir / "issuer"


S = TypeVar("S", bound=BaseSettings)


def load(cls: type[S]) -> S:
    """Builds a settings object, turning validation errors into one readable start-up message."""
    try:
        return cls()
    except ValidationError as exc:
        prefix = cls.model_config.get("env_prefix", "")
        lines = [f"  {prefix}{'.'.join(str(p) for p in err['loc']).upper()}: {err['msg']}" for err in exc.errors()]
        raise SystemExit(f"invalid settings for {cls.__name__}:\n" + "\n".join(lines)) from None
