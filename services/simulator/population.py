"""Who works at the simulated company: departments, teams, managers, personas and gamer groups.

Pure and deterministic for a scenario (seed included): no I/O, no clock, no iteration over sets.
"""

from __future__ import annotations

import enum
import math
import random
from dataclasses import dataclass, field
from functools import cached_property

from services.simulator.scenario import Scenario

DEPARTMENT_NAMES = (
    "Engineering",
    "Sales",
    "Customer Service",
    "Operations",
    "Finance",
    "Human Resources",
    "Marketing",
    "IT",
    "Product Management",
    "Logistics",
    "Legal",
    "Communications",
    "Procurement",
    "Quality Assurance",
    "Research",
    "Facility Management",
    "Controlling",
    "Data & Analytics",
    "Security",
    "Training",
    "Strategy",
    "Manufacturing",
    "Field Service",
    "Compliance",
)

FIRST_NAMES = (
    "Anna", "Ben", "Clara", "David", "Elif", "Felix", "Greta", "Hannes", "Ines", "Jonas", "Katrin", "Lukas",
    "Mara", "Nils", "Olga", "Paul", "Rana", "Sven", "Tanja", "Umut", "Vera", "Wolfgang", "Yasmin", "Zoe",
    "Aylin", "Bernd", "Chiara", "Dimitri", "Emma", "Frank", "Hanna", "Igor", "Julia", "Kemal", "Lena", "Marco",
)  # fmt: skip
LAST_NAMES = (
    "Albers", "Becker", "Costa", "Demir", "Engel", "Fischer", "Graf", "Hoffmann", "Ivanova", "Jansen",
    "Keller", "Lang", "Meyer", "Novak", "Otto", "Peters", "Quast", "Richter", "Schulz", "Thomsen", "Uysal",
    "Vogel", "Weber", "Yilmaz", "Zimmermann", "Berger", "Kaya", "Lorenz", "Schmidt", "Wagner",
)  # fmt: skip


class Persona(enum.StrEnum):
    AMBASSADOR = "ambassador"
    REGULAR = "regular_contributor"
    OCCASIONAL = "occasional_poster"
    LURKER = "lurker"
    LEADING_MANAGER = "manager_leading_by_example"
    ABSENT_MANAGER = "manager_absent"
    RING_MEMBER = "gamer_reaction_ring"
    SELF_PROMOTER = "gamer_self_promoter"
    REACT_ONLY = "gamer_react_only"

    @property
    def is_gamer(self) -> bool:
        return self in GAMER_PERSONAS

    @property
    def is_manager(self) -> bool:
        return self in (Persona.LEADING_MANAGER, Persona.ABSENT_MANAGER)


GAMER_PERSONAS = frozenset({Persona.RING_MEMBER, Persona.SELF_PROMOTER, Persona.REACT_ONLY})


@dataclass(frozen=True, slots=True)
class Department:
    department_id: str
    name: str
    size: int


@dataclass(frozen=True, slots=True)
class Employee:
    employee_id: str
    display_name: str
    department_id: str
    team_id: str
    is_manager: bool
    persona: Persona
    gamer_group: str = ""

    @property
    def is_ambassador(self) -> bool:
        return self.persona is Persona.AMBASSADOR

    @property
    def is_gamer(self) -> bool:
        return self.persona.is_gamer


@dataclass(frozen=True, slots=True)
class GamerGroup:
    """People who game together; today only reaction rings (self-promoters and react-only accounts act alone)."""

    group_id: str
    kind: str
    members: tuple[str, ...]


@dataclass(frozen=True)
class Population:
    departments: tuple[Department, ...]
    employees: tuple[Employee, ...]
    groups: tuple[GamerGroup, ...] = field(default=())

    @cached_property
    def by_id(self) -> dict[str, Employee]:
        return {e.employee_id: e for e in self.employees}

    @cached_property
    def by_department(self) -> dict[str, tuple[Employee, ...]]:
        members: dict[str, list[Employee]] = {d.department_id: [] for d in self.departments}
        for e in self.employees:
            members[e.department_id].append(e)
        return {k: tuple(v) for k, v in members.items()}

    @cached_property
    def by_team(self) -> dict[str, tuple[Employee, ...]]:
        members: dict[str, list[Employee]] = {}
        for e in self.employees:
            members.setdefault(e.team_id, []).append(e)
        return {k: tuple(v) for k, v in members.items()}

    def with_persona(self, persona: Persona) -> list[Employee]:
        return [e for e in self.employees if e.persona is persona]


def build_population(scenario: Scenario) -> Population:
    """The company for this scenario; the same scenario always gives the same people."""
    rng = random.Random(f"{scenario.seed}:population")
    prefix = scenario.id_prefix
    sizes = _department_sizes(scenario.employees, scenario.departments, rng)
    departments = tuple(Department(f"{prefix}-d{i + 1:02d}", DEPARTMENT_NAMES[i], size) for i, size in enumerate(sizes))
    slots = _org_structure(departments, scenario.team_size)
    personas = _assign_personas(scenario, slots, rng)
    groups = _reaction_rings(scenario, slots, personas, rng)
    member_of = {m: g.group_id for g in groups for m in g.members}
    employees = []
    for index, slot in enumerate(slots):
        employee_id = f"{prefix}-e{index + 1:05d}"
        employees.append(
            Employee(
                employee_id=employee_id,
                display_name=f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}",
                department_id=slot.department_id,
                team_id=slot.team_id,
                is_manager=slot.is_manager,
                persona=personas[index],
                gamer_group=member_of.get(index, ""),
            )
        )
    resolved_groups = tuple(
        GamerGroup(g.group_id, g.kind, tuple(employees[m].employee_id for m in g.members)) for g in groups
    )
    return Population(departments, tuple(employees), resolved_groups)


@dataclass(frozen=True, slots=True)
class _Slot:
    department_id: str
    team_id: str
    is_manager: bool


@dataclass(frozen=True, slots=True)
class _IndexGroup:
    group_id: str
    kind: str
    members: tuple[int, ...]


def _department_sizes(total: int, count: int, rng: random.Random) -> list[int]:
    """Unequal departments (a few large ones, several small), each with at least five people."""
    weights = [rng.lognormvariate(0.0, 0.6) for _ in range(count)]
    spare = total - 5 * count
    shares = [spare * w / sum(weights) for w in weights]
    sizes = [5 + math.floor(s) for s in shares]
    by_remainder = sorted(range(count), key=lambda i: shares[i] - math.floor(shares[i]), reverse=True)
    for i in by_remainder[: total - sum(sizes)]:
        sizes[i] += 1
    return sizes


def _org_structure(departments: tuple[Department, ...], team_size: int) -> list[_Slot]:
    """A head per department and a lead per team; small departments are one team led by the head."""
    slots: list[_Slot] = []
    for dept in departments:
        did = dept.department_id
        teams = max(1, round((dept.size - 1) / (team_size + 1)))
        if teams == 1:
            slots.append(_Slot(did, f"{did}-t1", True))
            slots.extend(_Slot(did, f"{did}-t1", False) for _ in range(dept.size - 1))
            continue
        slots.append(_Slot(did, f"{did}-t0", True))
        members = dept.size - 1 - teams
        for t in range(teams):
            team_id = f"{did}-t{t + 1}"
            slots.append(_Slot(did, team_id, True))
            share = members // teams + (1 if t < members % teams else 0)
            slots.extend(_Slot(did, team_id, False) for _ in range(share))
    return slots


def _assign_personas(scenario: Scenario, slots: list[_Slot], rng: random.Random) -> list[Persona]:
    mix = scenario.mix
    total = len(slots)
    personas: list[Persona | None] = [None] * total
    managers = [i for i, s in enumerate(slots) if s.is_manager]
    leading = set(rng.sample(managers, round(len(managers) * mix.leading_manager_share)))
    for i in managers:
        personas[i] = Persona.LEADING_MANAGER if i in leading else Persona.ABSENT_MANAGER

    dept_ids = list(dict.fromkeys(s.department_id for s in slots))
    free_by_dept = {d: [i for i, s in enumerate(slots) if s.department_id == d and not s.is_manager] for d in dept_ids}
    for free in free_by_dept.values():
        rng.shuffle(free)

    # Ambassadors: one in each of most departments first, then the rest where people are.
    wanted = round(total * mix.ambassador) if mix.ambassador else 0
    with_ambassador = len(dept_ids) - math.floor(len(dept_ids) * mix.departments_without_ambassador)
    chosen_depts = rng.sample(dept_ids, min(with_ambassador, len(dept_ids)))
    wanted = max(wanted, len(chosen_depts)) if wanted else 0
    for d in chosen_depts[:wanted]:
        personas[free_by_dept[d].pop()] = Persona.AMBASSADOR
    for _ in range(wanted - min(wanted, len(chosen_depts))):
        pool = [d for d in chosen_depts if free_by_dept[d]]
        d = rng.choices(pool, weights=[len(free_by_dept[p]) for p in pool])[0]
        personas[free_by_dept[d].pop()] = Persona.AMBASSADOR

    free = [i for d in dept_ids for i in free_by_dept[d]]
    rng.shuffle(free)
    counts = [
        (Persona.SELF_PROMOTER, max(mix.min_self_promoters, round(total * mix.self_promoter))),
        (Persona.REACT_ONLY, max(mix.min_react_only, round(total * mix.react_only))),
        (Persona.REGULAR, round(total * mix.regular)),
        (Persona.OCCASIONAL, round(total * mix.occasional)),
    ]
    for persona, count in counts:
        for _ in range(min(count, len(free))):
            personas[free.pop()] = persona
    for i in free:
        personas[i] = Persona.LURKER
    return [p if p is not None else Persona.LURKER for p in personas]


def _reaction_rings(
    scenario: Scenario, slots: list[_Slot], personas: list[Persona], rng: random.Random
) -> list[_IndexGroup]:
    """Rings form among colleagues who know each other: mostly one department, some friends elsewhere.

    Members are taken from lurkers and occasional posters (people who joined a ring change how they act)."""
    mix = scenario.mix
    candidates = [i for i, p in enumerate(personas) if p in (Persona.LURKER, Persona.OCCASIONAL)]
    groups: list[_IndexGroup] = []
    for g in range(mix.reaction_rings):
        size = rng.randint(mix.ring_size_min, mix.ring_size_max)
        if len(candidates) < size:
            break
        home = slots[rng.choice(candidates)].department_id
        members: list[int] = []
        while len(members) < size:
            same = [i for i in candidates if slots[i].department_id == home and i not in members]
            pool = same if same and rng.random() < 0.7 else [i for i in candidates if i not in members]
            pick = rng.choice(pool)
            members.append(pick)
        for m in members:
            candidates.remove(m)
            personas[m] = Persona.RING_MEMBER
        groups.append(_IndexGroup(f"{scenario.id_prefix}-ring{g + 1}", "reaction_ring", tuple(sorted(members))))
    return groups
