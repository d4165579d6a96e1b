"""Settings of the engagement worker (`python -m services.engagement.worker`), from CATALYST_* variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from services.common.settings import CommonSettings
from services.engagement.model.config import DEFAULT_SCORING_FILE, ROOT


class EngagementWorkerSettings(CommonSettings):
    """Consumer, Redis and process settings; the score itself is the scoring file's."""

    scoring_file: Path = Field(DEFAULT_SCORING_FILE, description="scoring weights, windows and caps")
    worker_metrics_port: int = Field(9103, ge=0, le=65535, description="Prometheus /metrics port (0 disables)")
    worker_web_port: int = Field(6066, ge=1, le=65535, description="faust web port (/health); unique per worker")
    worker_web_host: str = Field("127.0.0.1", description="faust web bind address")
    worker_data_dir: Path = Field(ROOT / ".run" / "engagement", description="faust data directory (per worker)")
    worker_batch_size: int = Field(
        30_000, ge=1, description="most records per getmany() and processing batch (bigger batches coalesce more)"
    )
    worker_poll_seconds: float = Field(
        0.5, gt=0, le=10, description="longest getmany() wait when nothing is buffered (a batch never waits to fill)"
    )
    worker_fetch_min_bytes: int = Field(
        1, ge=1, description="bytes the broker gathers before it answers a fetch (bigger batches, fewer requests)"
    )
    worker_fetch_max_wait_ms: int = Field(
        500, ge=0, le=10_000, description="longest the broker holds a fetch that has not reached its minimum bytes"
    )
    worker_commit_interval_seconds: float = Field(
        1.0, gt=0, le=60, description="offset commit period; bounds the replay after a crash (writes are idempotent)"
    )
    worker_session_timeout_seconds: float = Field(30.0, gt=0, description="consumer group session timeout")
    worker_heartbeat_seconds: float = Field(3.0, gt=0, description="consumer group heartbeat interval")
    worker_rebalance_timeout_seconds: float = Field(
        60.0, gt=0, description="how long a rebalance may wait for the in-flight batch before the group moves on"
    )
    worker_offset_reset: str = Field("earliest", pattern="^(earliest|latest)$", description="for a new group")
    worker_redis_backoff_max_seconds: float = Field(5.0, gt=0, description="cap of the retry backoff")
    worker_lag_interval_seconds: float = Field(5.0, gt=0, description="consumer lag gauge refresh period")

    @model_validator(mode="after")
    def _timeouts(self) -> EngagementWorkerSettings:
        if self.worker_heartbeat_seconds * 3 > self.worker_session_timeout_seconds:
            raise ValueError("worker_heartbeat_seconds must be at most a third of worker_session_timeout_seconds")
        return self
