"""Settings shared by every service, read from environment variables and checked at start-up."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.common.policy import policy_path
from services.common.topics import topic_name


class CommonSettings(BaseSettings):
    """Connection and security settings every Catalyst process needs."""

    model_config = SettingsConfigDict(env_prefix="CATALYST_", extra="ignore", frozen=True)

    kafka_bootstrap: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers, comma separated")
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="Redis URL")
    jwt_secret: str = Field(
        "catalyst-local-development-secret-change-me",
        min_length=32,
        description="HMAC key that signs and checks bearer tokens (HS256)",
    )
    jwt_issuer: str = "catalyst"
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
    # Consumer groups are named here because other processes (lag exporter, demo) watch them too.
    engagement_group_id: str = Field("catalyst-engagement", min_length=1, description="engagement worker group")
    recognition_group_id: str = Field("catalyst-recognition", min_length=1, description="recognition group")
    log_level: str = "INFO"
    grpc_host: str = "0.0.0.0"
    metrics_host: str = "0.0.0.0"
    shutdown_grace_seconds: float = Field(10.0, gt=0)


S = TypeVar("S", bound=BaseSettings)


def load(cls: type[S]) -> S:
    """Builds a settings object, turning validation errors into one readable start-up message."""
    try:
        return cls()
    except ValidationError as exc:
        prefix = cls.model_config.get("env_prefix", "")
        lines = [f"  {prefix}{'.'.join(str(p) for p in err['loc']).upper()}: {err['msg']}" for err in exc.errors()]
        raise SystemExit(f"invalid settings for {cls.__name__}:\n" + "\n".join(lines)) from None
