"""Settings of the engagement query API (`python -m services.engagement.api`), from CATALYST_* variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from services.common.settings import CommonSettings
from services.engagement.model.config import DEFAULT_SCORING_FILE


class EngagementApiSettings(CommonSettings):
    """Ports and paging bounds of the EngagementService (who sees what: the policy file)."""

    grpc_port: int = Field(50052, ge=0, le=65535, description="gRPC port (0 picks a free one)")
    metrics_port: int = Field(9102, ge=0, le=65535, description="Prometheus /metrics port (0 disables)")
    scoring_file: Path = Field(DEFAULT_SCORING_FILE, description="the same scoring file the worker reads")
    page_size_default: int = Field(20, ge=1)
    page_size_max: int = Field(100, ge=1)
    component_rank_max_employees: int = Field(
        5_000, ge=1, description="largest board ranked by a component (computed from state)"
    )

    @model_validator(mode="after")
    def _paging(self) -> EngagementApiSettings:
        if self.page_size_default > self.page_size_max:
            raise ValueError("page_size_default must not exceed page_size_max")
        return self
