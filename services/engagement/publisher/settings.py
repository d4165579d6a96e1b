"""Settings of the ScoreChanged publisher (`python -m services.engagement.publisher`), from CATALYST_* variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from services.common.settings import CommonSettings
from services.engagement.model.config import DEFAULT_SCORING_FILE


class PublisherSettings(CommonSettings):
    scoring_file: Path = Field(DEFAULT_SCORING_FILE, description="the same scoring file the worker reads")
    publisher_metrics_port: int = Field(9106, ge=0, le=65535, description="Prometheus /metrics port (0 disables)")
    publisher_interval_seconds: float = Field(
        1.0, gt=0, description="a round at most this often: an employee's figures go out at most once per round"
    )
    publisher_cpu_share: float = Field(
        0.1,
        gt=0,
        le=1,
        description="while the worker's watermark moves, after a round that took T seconds the next one waits at "
        "least T * (1 - share) / share: during an import the publisher leaves the CPU to the worker and Redis and "
        "more changes coalesce into each ScoreChanged; live rounds are short and follow publisher_interval_seconds",
    )
    publisher_chunk: int = Field(200, ge=1, le=2000, description="employees read and published per round trip")
    publisher_rollover_interval_seconds: float = Field(
        60.0,
        ge=0,
        description="least wall time between day rollovers (re-publishing everyone whose windows moved): a backfill "
        "crosses a day every few seconds, and re-publishing everyone each time would be wasted",
    )
    publisher_redis_backoff_max_seconds: float = Field(5.0, gt=0, description="cap of the retry backoff")
