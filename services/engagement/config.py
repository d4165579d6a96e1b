"""The scoring configuration (deploy/config/scoring.yaml) and the worker's settings, both checked at start-up."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from services.common import cpus
from services.common.settings import CommonSettings
from services.common.topics import load_topics

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SCORING_FILE = ROOT / "deploy" / "config" / "scoring.yaml"
SIGNAL_DAYS = 100  # the longest signal window the badge rules read (…_100d)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Windows(_Section):
    days: dict[str, int] = Field(default_factory=lambda: {"7d": 7, "30d": 30, "100d": 100})
    decay_half_life_days: float = Field(14.0, gt=0)

    @field_validator("days")
    @classmethod
    def _days(cls, value: dict[str, int]) -> dict[str, int]:
        if not value:
            raise ValueError("at least one window is needed")
        for name, days in value.items():
            if name == "decayed":
                raise ValueError("'decayed' is the name of the decayed total, not a window")
            if not 1 <= days <= 400:
                raise ValueError(f"window {name}: days must be between 1 and 400")
        if max(value.values()) < SIGNAL_DAYS:
            raise ValueError(f"the longest window must cover at least {SIGNAL_DAYS} days (100-day signals)")
        return value


class Content(_Section):
    post: float = Field(3.0, ge=0)
    daily_cap: float = Field(12.0, gt=0)
    active_week: float = Field(4.0, ge=0)


class Conversation(_Section):
    comment: float = Field(1.0, ge=0)
    reaction: float = Field(0.25, ge=0)
    daily_cap: float = Field(6.0, gt=0)
    pair_cap_per_day: int = Field(2, ge=1)
    pair_memory_days: int = Field(3, ge=1, le=30)


class Ring(_Section):
    min_distinct_receivers: int = Field(6, ge=1)


class Reach(_Section):
    distinct: float = Field(1.5, ge=0)
    other_department: float = Field(1.0, ge=0)
    distinct_cap: float = Field(40.0, gt=0)
    received: float = Field(0.1, ge=0)
    burst_daily_cap: int = Field(20, ge=0)


class Helpfulness(_Section):
    answer: float = Field(2.0, ge=0)
    answer_own_department: float = Field(1.0, ge=0)
    accepted: float = Field(3.0, ge=0)
    accepted_own_department: float = Field(1.0, ge=0)
    daily_cap: float = Field(15.0, gt=0)


class Innovation(_Section):
    feature_trial: float = Field(1.0, ge=0)
    feedback: float = Field(2.0, ge=0)
    suggestion: float = Field(3.0, ge=0)
    participation: float = Field(1.0, ge=0)
    daily_cap: float = Field(8.0, gt=0)


class Profile(_Section):
    completeness: float = Field(10.0, ge=0)
    update: float = Field(1.0, ge=0)
    update_days_cap: int = Field(4, ge=0)


class Pilot(_Section):
    survey: float = Field(2.0, ge=0)
    workshop: float = Field(4.0, ge=0)
    interview: float = Field(4.0, ge=0)
    contribution: float = Field(2.0, ge=0)
    cap: float = Field(30.0, ge=0)


class Leaderboards(_Section):
    windows: list[str] = Field(default_factory=lambda: ["7d", "30d", "100d", "decayed"])
    size: int = Field(500, ge=1, description="company boards keep the top this many per window")
    department_size: int = Field(100, ge=1, description="department boards keep the top this many per window")


class Limits(_Section):
    max_future_skew_hours: float = Field(24.0, ge=0)


class ScoringConfig(_Section):
    """Every weight, window and cap of the engagement score."""

    windows: Windows = Field(default_factory=Windows)
    content: Content = Field(default_factory=Content)
    conversation: Conversation = Field(default_factory=Conversation)
    ring: Ring = Field(default_factory=Ring)
    reach: Reach = Field(default_factory=Reach)
    helpfulness: Helpfulness = Field(default_factory=Helpfulness)
    innovation: Innovation = Field(default_factory=Innovation)
    profile: Profile = Field(default_factory=Profile)
    pilot: Pilot = Field(default_factory=Pilot)
    leaderboards: Leaderboards = Field(default_factory=Leaderboards)
    limits: Limits = Field(default_factory=Limits)

    model_config = ConfigDict(extra="forbid", frozen=True, ignored_types=(cached_property,))

    @model_validator(mode="after")
    def _leaderboard_windows(self) -> ScoringConfig:
        known = {*self.windows.days, "decayed"}
        unknown = [w for w in self.leaderboards.windows if w not in known]
        if unknown:
            raise ValueError(f"leaderboards.windows: unknown windows {unknown}; known: {sorted(known)}")
        return self

    @cached_property
    def keep_days(self) -> int:
        """Days of state kept per employee: the longest window."""
        return max(self.windows.days.values())


def load_scoring(path: str | Path = DEFAULT_SCORING_FILE) -> ScoringConfig:
    """Reads and validates the scoring file; any problem becomes one readable start-up error."""
    file = Path(path)
    try:
        raw = yaml.safe_load(file.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise SystemExit(f"cannot read scoring config {file}: {exc}") from None
    try:
        return ScoringConfig.model_validate(raw)
    except ValidationError as exc:
        lines = [f"  {'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()]
        raise SystemExit(f"invalid scoring config {file}:\n" + "\n".join(lines)) from None


def _interactions_partitions() -> int:
    return load_topics()["interactions"].partitions


class EngagementWorkerSettings(CommonSettings):
    """Settings of the engagement worker (`python -m services.engagement`), from CATALYST_* variables."""

    scoring_file: Path = Field(DEFAULT_SCORING_FILE, description="scoring weights, windows and caps")
    worker_metrics_port: int = Field(9103, ge=0, le=65535, description="Prometheus /metrics port (0 disables)")
    worker_web_port: int = Field(6066, ge=1, le=65535, description="faust web port (/health); unique per worker")
    worker_web_host: str = Field("127.0.0.1", description="faust web bind address")
    worker_data_dir: Path = Field(ROOT / ".run" / "engagement", description="faust data directory (per worker)")
    interactions_partitions: int = Field(default_factory=_interactions_partitions, ge=1)
    worker_batch_size: int = Field(
        10_000, ge=1, description="most records per getmany() and processing batch (bigger batches coalesce more)"
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
    worker_emit_interval_seconds: float = Field(1.0, gt=0, description="coalescing interval of ScoreChanged")
    worker_emit_chunk: int = Field(
        200,
        ge=1,
        le=2000,
        description="employees read and published per round trip of the publisher process (at most 2,000: "
        "TAKE_DIRTY passes a chunk to ZADD as Lua arguments)",
    )
    worker_emit_catchup_backlog: int = Field(
        20_000, ge=0, description="records behind the partitions' ends above which the worker is catching up"
    )
    worker_emit_catchup_interval_seconds: float = Field(
        15.0, gt=0, description="while catching up: one emit round at most this often, no day rollovers"
    )
    worker_publisher_cpu_share: float = Field(
        0.1,
        gt=0,
        le=1,
        description="share of one core the publisher process may use while the worker is busy (the worker's idle "
        "time is the publisher's; under load more changes coalesce into each ScoreChanged; its Redis and broker "
        "requests grow with it)",
    )
    worker_publisher_nice: int = Field(
        19,
        ge=0,
        le=19,
        description="CPU niceness of the publisher process: it takes only the CPU time the consumer, Redis and the "
        "broker leave (under load more changes coalesce into each ScoreChanged)",
    )
    worker_cpus: str = Field(
        "",
        description="CPUs the consumer process runs on, as a Linux CPU list ('3', '2-3'); empty: wherever the OS "
        "puts it. Give it a core nothing else uses (docs/operations.md, 'A core of its own')",
    )
    worker_publisher_cpus: str = Field(
        "",
        description="CPUs of the publisher process; empty: any CPU but worker_cpus when that is set, else any",
    )
    worker_session_timeout_seconds: float = Field(30.0, gt=0, description="consumer group session timeout")
    worker_heartbeat_seconds: float = Field(3.0, gt=0, description="consumer group heartbeat interval")
    worker_rebalance_timeout_seconds: float = Field(
        60.0, gt=0, description="how long a rebalance may wait for the in-flight batch before the group moves on"
    )
    worker_offset_reset: str = Field("earliest", pattern="^(earliest|latest)$", description="for a new group")
    worker_redis_backoff_max_seconds: float = Field(5.0, gt=0, description="cap of the retry backoff")
    worker_lag_interval_seconds: float = Field(5.0, gt=0, description="consumer lag gauge refresh period")
    worker_forgotten_ttl_days: int = Field(400, ge=1, description="keep forgotten markers as long as raw events")

    @field_validator("worker_cpus", "worker_publisher_cpus")
    @classmethod
    def _cpu_list(cls, value: str) -> str:
        cpus.parse(value)  # the one check of the format (and of ranges running backwards)
        return value

    @property
    def consumer_cpus(self) -> frozenset[int]:
        """Empty: not pinned."""
        return cpus.parse(self.worker_cpus)

    @property
    def publisher_cpus(self) -> frozenset[int]:
        """Off the consumer's core unless set otherwise; empty: not pinned."""
        return cpus.parse(self.worker_publisher_cpus) or (
            cpus.others(self.consumer_cpus) if self.worker_cpus else frozenset()
        )

    @model_validator(mode="after")
    def _timeouts(self) -> EngagementWorkerSettings:
        if self.worker_heartbeat_seconds * 3 > self.worker_session_timeout_seconds:
            raise ValueError("worker_heartbeat_seconds must be at most a third of worker_session_timeout_seconds")
        return self
