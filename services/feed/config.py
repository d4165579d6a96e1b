"""Feed service settings: every tunable in one typed object, read from CATALYST_* environment variables."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from services.common.settings import CommonSettings


class FeedSettings(CommonSettings):
    """Ports, input bounds, paging and relay tuning of the feed service."""

    grpc_port: int = Field(50051, ge=0, le=65535, description="gRPC port (0 picks a free one)")
    metrics_port: int = Field(9101, ge=0, le=65535, description="Prometheus /metrics port (0 disables)")

    max_title_chars: int = Field(200, ge=1)
    max_body_chars: int = Field(10_000, ge=1, description="posts and questions")
    max_comment_chars: int = Field(5_000, ge=1, description="comments and answers")
    max_tags: int = Field(10, ge=0)
    max_tag_chars: int = Field(40, ge=1)
    max_id_chars: int = Field(
        64,
        ge=8,
        le=128,
        description="employee, department, feature, survey and session ids (the engagement worker dead-letters "
        "events whose ids are longer than 128 characters)",
    )
    max_feedback_topic_chars: int = Field(100, ge=1)
    max_about_chars: int = Field(2_000, ge=1)
    max_skills: int = Field(30, ge=0)
    max_survey_questions: int = Field(1_000, ge=0)
    max_comments_shown: int = Field(200, ge=1, description="comments GetPost returns, oldest first")
    page_size_default: int = Field(20, ge=1)
    page_size_max: int = Field(100, ge=1)
    max_ingest_batch: int = Field(500, ge=1, description="interactions per IngestInteractions call")
    max_directory_batch: int = Field(1_000, ge=1, description="employees per UpsertEmployees call")
    ingest_max_future_seconds: int = Field(300, ge=0, description="clock skew tolerated on imported times")

    outbox_partitions: int = Field(16, ge=1, le=1024, description="outbox streams; never lower it with entries queued")
    relay_enabled: bool = Field(
        True,
        description="run the outbox relay inside this process (false on gRPC replicas when `python -m "
        "services.feed.relay` runs it in a process of its own)",
    )
    relay_metrics_port: int = Field(
        9108, ge=0, le=65535, description="Prometheus /metrics port of `python -m services.feed.relay` (0 disables)"
    )
    relay_batch_size: int = Field(
        5_000, ge=1, le=50_000, description="outbox entries per publish cycle (below the producer's queue bound)"
    )
    relay_compression: Literal["none", "gzip"] = Field(
        "none",
        description="record batch compression (gzip: a smaller topic for more relay CPU per record)",
    )
    relay_batch_bytes: int = Field(
        262_144, ge=16_384, le=900_000, description="producer batch size per partition (below the broker's 1 MB limit)"
    )
    relay_linger_ms: int = Field(20, ge=0, description="producer linger; each cycle flushes, so it only fills batches")
    relay_idle_seconds: float = Field(
        0.2,
        gt=0,
        le=4.0,
        description="longest blocking wait for a new outbox entry before the lease is renewed (below Redis's "
        "5 s socket timeout)",
    )
    relay_backoff_seconds: float = Field(1.0, gt=0, description="pause after a failed publish")
    relay_lease_seconds: float = Field(15.0, gt=1, description="only the lease holder among replicas publishes")
    relay_drain_seconds: float = Field(20.0, gt=0, description="time to empty the outbox on SIGTERM")
    relay_delivery_timeout_ms: int = Field(
        86_400_000,
        ge=60_000,
        le=2_147_483_647,
        description="the producer keeps retrying a record this long before failing it",
    )
    relay_request_timeout_ms: int = Field(15_000, ge=1_000)
    store_max_retries: int = Field(50, ge=1, description="optimistic transaction retries under contention")

    @model_validator(mode="after")
    def _paging_consistent(self) -> FeedSettings:
        if self.page_size_default > self.page_size_max:
            raise ValueError("page_size_default must not exceed page_size_max")
        return self
