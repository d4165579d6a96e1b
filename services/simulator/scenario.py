"""What company to simulate: size, departments, phases and the mix of people (validated config).

A scenario describes the company, never the scoring: nothing here knows a signal or a badge rule.
"""

from __future__ import annotations

import datetime as dt
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator


class PersonaMix(BaseModel):
    """Shares of the whole staff per persona. Managers come from the org structure (see `Scenario.team_size`),
    lurkers are whoever is left, and every gamer kind has a minimum count so small companies still have some."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ambassador: float = Field(0.025, ge=0, le=0.2, description="genuine intranet ambassadors")
    regular: float = Field(0.15, ge=0, le=0.6, description="regular contributors")
    occasional: float = Field(0.30, ge=0, le=0.8, description="occasional posters")
    leading_manager_share: float = Field(0.4, ge=0, le=1, description="share of managers who lead by example")
    reaction_rings: int = Field(3, ge=0, description="number of reaction rings")
    ring_size_min: int = Field(3, ge=2)
    ring_size_max: int = Field(6, ge=2)
    self_promoter: float = Field(0.006, ge=0, le=0.1)
    react_only: float = Field(0.004, ge=0, le=0.1)
    min_self_promoters: int = Field(1, ge=0)
    min_react_only: int = Field(1, ge=0)
    departments_without_ambassador: float = Field(
        0.15, ge=0, lt=1, description="share of departments that happen to have no ambassador"
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.ring_size_min > self.ring_size_max:
            raise ValueError("ring_size_min must not exceed ring_size_max")
        if self.ambassador + self.regular + self.occasional + self.self_promoter + self.react_only >= 0.95:
            raise ValueError("persona shares leave no room for lurkers and managers")
        return self


class Scenario(BaseModel):
    """A simulated company and its timeline. `launch_date` None means: the live phase ends the day before the
    run (see `resolve`), so the simulated history is recent and interactive calls at the end fit after it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = "default"
    seed: int = 1
    employees: int = Field(1500, ge=12, le=200_000)
    departments: int = Field(12, ge=1, le=24, description="at most 24 (named departments)")
    team_size: int = Field(10, ge=3, le=50, description="employees per team lead")
    pre_launch_days: int = Field(42, ge=7, le=365)
    live_days: int = Field(120, ge=7, le=730)
    launch_date: dt.date | None = None
    features_every_days: int = Field(12, ge=1, description="a new intranet feature is released this often")
    activity: float = Field(
        1.0,
        gt=0,
        le=4,
        description="how much the whole company uses the intranet: every person's rates of posting, commenting, "
        "reacting, asking, answering, trying and suggesting scaled by this (gamers game as much in any company)",
    )
    mix: PersonaMix = PersonaMix()

    @model_validator(mode="after")
    def _enough_people(self) -> Self:
        if self.employees < self.departments * 5:
            raise ValueError("every department needs at least 5 employees")
        return self

    @property
    def id_prefix(self) -> str:
        """Prefix of every simulated id, so runs with different seeds never collide in one system."""
        return f"s{self.seed}"

    @property
    def total_days(self) -> int:
        return self.pre_launch_days + self.live_days

    def resolve(self, today: dt.date) -> Scenario:
        """Fixes a missing launch date to the Monday that makes the live phase end before `today`
        (imported interactions may not lie in the future)."""
        if self.launch_date is not None:
            return self
        start = today - dt.timedelta(days=self.live_days)
        return self.model_copy(update={"launch_date": start - dt.timedelta(days=start.weekday())})

    def require_launch_date(self) -> dt.date:
        if self.launch_date is None:
            raise ValueError("the scenario has no launch date; call resolve(today) first")
        return self.launch_date


SMALL = Scenario(
    name="small",
    employees=60,
    departments=4,
    team_size=8,
    pre_launch_days=7,
    live_days=21,
    features_every_days=5,
    mix=PersonaMix(reaction_rings=1, ring_size_min=3, ring_size_max=4),
)

PRESETS: dict[str, Scenario] = {
    "default": Scenario(),
    "small": SMALL,
    # `make seed`: the small company grown to about the smallest whose history earns Intranet Ambassadors
    # (active in 8 of 12 weeks, in conversation with 40 colleagues a month: deploy/config/badges.yaml), so the
    # README's examples have badges to show; ~20,000 interactions.
    "sample": Scenario.model_validate(
        SMALL.model_dump() | {"name": "sample", "seed": 3, "employees": 200, "live_days": 84, "features_every_days": 7}
    ),
    # Other companies, so detection is judged on more than the company the rules were tuned on.
    "quiet": Scenario(name="quiet", activity=0.5),
    "busy": Scenario(name="busy", activity=1.8),
    # Few, large departments with wide teams (fewer managers), more regular contributors, more ambassadors.
    "flat": Scenario(
        name="flat",
        employees=1200,
        departments=5,
        team_size=25,
        mix=PersonaMix(ambassador=0.045, regular=0.22, occasional=0.25, reaction_rings=4),
    ),
    # Many small departments and teams, a thin ambassador network and more gamers.
    "scattered": Scenario(
        name="scattered",
        employees=1800,
        departments=24,
        team_size=6,
        activity=0.8,
        mix=PersonaMix(ambassador=0.012, regular=0.12, self_promoter=0.01, react_only=0.006, reaction_rings=5),
    ),
}

# The company shapes detection is reported on (`python -m services.demo.offline --shapes`, `make demo`).
SHAPES = ("default", "quiet", "busy", "flat", "scattered")


def preset(name: str, seed: int | None = None, launch_date: dt.date | None = None) -> Scenario:
    """A named scenario, optionally with another seed or launch date."""
    if name not in PRESETS:
        raise ValueError(f"unknown scenario {name!r}; choose one of {', '.join(PRESETS)}")
    update: dict[str, object] = {}
    if seed is not None:
        update["seed"] = seed
    if launch_date is not None:
        update["launch_date"] = launch_date
    return PRESETS[name].model_copy(update=update)
