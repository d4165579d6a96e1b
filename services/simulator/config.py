"""Simulator settings (CATALYST_SIM_* plus the common CATALYST_* ones); command-line flags override them."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.common.settings import CommonSettings


class SimulatorSettings(CommonSettings):
    """Where the feed service is and how hard to drive it. Tokens come from the local issuer of
    CommonSettings (CATALYST_OIDC_*), the one the feed service trusts."""

    model_config = SettingsConfigDict(env_prefix="CATALYST_", extra="ignore", frozen=True)

    sim_feed_target: str = Field("localhost:50051", description="feed gRPC address")
    sim_source: str = Field("simulator", description="source name of the imported interactions")
    sim_batch_size: int = Field(500, ge=1, le=500, description="interactions per IngestInteractions call")
    sim_max_in_flight: int = Field(2, ge=1, le=64, description="IngestInteractions calls in flight")
    sim_seconds_per_day: float = Field(0.0, ge=0, description="minimum wall seconds per simulated day (0: no pacing)")
    sim_interactive_posts: int = Field(3, ge=0, description="posts replayed through CreatePost at the end")
    sim_interactive_budget: int = Field(40, ge=0, description="interactive calls at most")
    sim_call_timeout_seconds: float = Field(60.0, gt=0)
