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
    publisher_catchup_backlog: int = Field(
        20_000,
        ge=0,
        description="records the worker group is behind on the interactions topic above which it is importing "
        "history: publishing is paced (publisher_cpu_share), leaving the CPU to the worker; the days it walks "
        "afterwards are kept for it",
    )
    publisher_cpu_share: float = Field(
        0.1,
        gt=0,
        le=1,
        description="while the worker is importing, after a round that took T seconds the next one waits at least "
        "T * (1 - share) / share: the publisher leaves the CPU to the worker and Redis, and more changes coalesce "
        "into each ScoreChanged",
    )
    publisher_nice: int = Field(
        10,
        ge=0,
        le=19,
        description="the process' scheduling niceness: on a machine it shares with the worker, Redis and the broker, "
        "the publisher takes only the CPU they leave (freshness of the state first, of ScoreChanged second); "
        "containers get the same from their CPU requests",
    )
    publisher_chunk: int = Field(200, ge=1, le=2000, description="employees read and published per round trip")
    publisher_redis_backoff_max_seconds: float = Field(5.0, gt=0, description="cap of the retry backoff")
