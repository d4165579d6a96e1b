"""Recognition service settings: one typed object read from CATALYST_* environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from services.common.settings import CommonSettings
from services.engagement.model.config import DEFAULT_SCORING_FILE

DEFAULT_RULES = Path(__file__).resolve().parents[2] / "deploy" / "config" / "badges.yaml"
DEFAULT_PROGRAMME = Path(__file__).resolve().parents[2] / "deploy" / "config" / "programme.yaml"


class RecognitionSettings(CommonSettings):
    """Ports, the rules file and consumer / relay tuning of the recognition service."""

    grpc_port: int = Field(50053, ge=0, le=65535, description="gRPC port (0 picks a free one)")
    metrics_port: int = Field(9104, ge=0, le=65535, description="Prometheus /metrics port (0 disables)")
    badge_rules_file: Path = Field(DEFAULT_RULES, description="badge rules (YAML), validated at start-up")
    programme_file: Path = Field(
        DEFAULT_PROGRAMME, description="the programme's catalogue: trainings, resources, decline reasons (YAML)"
    )
    scoring_file: Path = Field(
        DEFAULT_SCORING_FILE, description="engagement's scoring file: the signals and windows badge rules may read"
    )
    audit_group_id: str = Field("catalyst-audit", min_length=1, description="group projecting the audit topic")
    consumer_max_records: int = Field(500, ge=1, description="records per poll")
    consumer_poll_ms: int = Field(500, ge=10, description="longest wait for records in one poll")
    consumer_session_timeout_ms: int = Field(30_000, ge=6_000)
    consumer_heartbeat_ms: int = Field(3_000, ge=100)
    store_max_retries: int = Field(50, ge=1, description="compare-and-set retries under contention")
    redis_retry_max_seconds: float = Field(5.0, gt=0, description="longest back-off while Redis is unreachable")
    relay_idle_seconds: float = Field(0.2, gt=0, description="outbox poll interval when nothing is pending")
    relay_backoff_seconds: float = Field(1.0, gt=0, description="pause after a failed publish")
    relay_lease_seconds: float = Field(15.0, gt=1, description="only the lease holder among replicas publishes")
    relay_batch_size: int = Field(200, ge=1, description="employees drained per relay round")
    stream_queue_size: int = Field(1000, ge=1, description="events buffered per StreamBadgeEvents client")
