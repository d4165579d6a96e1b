"""The simulator's ground truth: who is a genuine ambassador and who games, written as JSON.

Evaluation (precision and recall of the Intranet Ambassador badge, badges held by gamers) reads this file;
nothing in Catalyst's services may read it.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from services.simulator.population import Population
from services.simulator.scenario import Scenario
from services.simulator.traits import Traits

FORMAT = 1


class EmployeeTruth(BaseModel):
    model_config = ConfigDict(frozen=True)

    employee_id: str
    display_name: str
    department_id: str
    team_id: str
    is_manager: bool
    persona: str
    is_ambassador: bool
    is_gamer: bool
    gamer_group: str = ""
    # A regular contributor as strong as an ambassador in one dimension (e.g. "helper"); empty otherwise.
    specialty: str = ""


class DepartmentTruth(BaseModel):
    model_config = ConfigDict(frozen=True)

    department_id: str
    name: str
    size: int


class GroupTruth(BaseModel):
    model_config = ConfigDict(frozen=True)

    group_id: str
    kind: str
    members: list[str]


class GroundTruth(BaseModel):
    model_config = ConfigDict(frozen=True)

    format: int = FORMAT
    scenario: dict[str, Any]
    seed: int
    pre_launch_start: dt.date
    launch_date: dt.date
    end_date: dt.date
    departments: list[DepartmentTruth]
    gamer_groups: list[GroupTruth]
    employees: list[EmployeeTruth]

    @property
    def ambassadors(self) -> list[str]:
        return [e.employee_id for e in self.employees if e.is_ambassador]

    @property
    def gamers(self) -> list[str]:
        return [e.employee_id for e in self.employees if e.is_gamer]

    def persona_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for e in self.employees:
            counts[e.persona] = counts.get(e.persona, 0) + 1
        return dict(sorted(counts.items()))


def ground_truth(scenario: Scenario, population: Population, traits: dict[str, Traits]) -> GroundTruth:
    launch = scenario.require_launch_date()
    return GroundTruth(
        scenario=scenario.model_dump(mode="json"),
        seed=scenario.seed,
        pre_launch_start=launch - dt.timedelta(days=scenario.pre_launch_days),
        launch_date=launch,
        end_date=launch + dt.timedelta(days=scenario.live_days - 1),
        departments=[
            DepartmentTruth(department_id=d.department_id, name=d.name, size=d.size) for d in population.departments
        ],
        gamer_groups=[GroupTruth(group_id=g.group_id, kind=g.kind, members=list(g.members)) for g in population.groups],
        employees=[
            EmployeeTruth(
                employee_id=e.employee_id,
                display_name=e.display_name,
                department_id=e.department_id,
                team_id=e.team_id,
                is_manager=e.is_manager,
                persona=e.persona.value,
                is_ambassador=e.is_ambassador,
                is_gamer=e.is_gamer,
                gamer_group=e.gamer_group,
                specialty=traits[e.employee_id].specialty,
            )
            for e in population.employees
        ],
    )


def write(truth: GroundTruth, path: Path) -> None:
    """Writes atomically (temp file, then rename), so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(truth.model_dump(mode="json"), indent=2) + "\n")
    tmp.replace(path)


def read(path: Path) -> GroundTruth:
    return GroundTruth.model_validate_json(path.read_text())
