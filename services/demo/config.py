"""Settings of the main job (the simulated-company demo)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from services.common.settings import CommonSettings

ROOT = Path(__file__).resolve().parents[2]


class DemoSettings(CommonSettings):
    demo_scenario: str = Field("default", description="simulator preset")
    demo_seed: int = Field(42, description="seed of the simulated company")
    demo_reports_dir: Path = Field(ROOT / "reports", description="where the report and plots are written")
    demo_settle_quiet_seconds: float = Field(6.0, gt=0, description="no lag for this long = pipeline settled")
    demo_settle_timeout_seconds: float = Field(900.0, gt=0)
    demo_seed_timeout_seconds: float = Field(300.0, gt=0, description="`make seed`: longest wait for an ambassador")
    demo_shapes: bool = Field(
        True, description="also report detection over the other company shapes (offline; minutes unless cached)"
    )
    demo_programme_round_seconds: float = Field(
        3.0, gt=0, description="how often the simulated programme answers invitations and confirms trainings"
    )
    demo_shapes_workers: int = Field(2, ge=1, description="processes for the company shapes (cached after a run)")
    feed_target: str = "localhost:50051"
    recognition_target: str = "localhost:50053"
