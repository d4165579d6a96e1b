"""The simulated company: deterministic, realistic in its mix, and consistent in what it references."""

from __future__ import annotations

import datetime as dt
import statistics
from collections import Counter
from pathlib import Path

import pytest

from services.simulator import ground_truth as truth_file
from services.simulator.actions import Action, ActionKind, Phase, SimulatedDay
from services.simulator.behaviour import Simulation
from services.simulator.ground_truth import GroundTruth, ground_truth
from services.simulator.population import Persona, Population, build_population
from services.simulator.scenario import PRESETS, PersonaMix, Scenario, preset

LAUNCH = dt.date(2026, 3, 2)


def simulate(scenario: Scenario) -> tuple[Population, list[SimulatedDay], GroundTruth]:
    population = build_population(scenario)
    simulation = Simulation(scenario, population)
    days = list(simulation.days())
    return population, days, ground_truth(scenario, population, simulation.traits)


def actions_of(days: list[SimulatedDay]) -> list[Action]:
    return [a for day in days for a in day.actions]


@pytest.fixture(scope="module")
def small() -> tuple[Scenario, Population, list[SimulatedDay], GroundTruth]:
    scenario = preset("small", seed=11, launch_date=LAUNCH)
    return (scenario, *simulate(scenario))


@pytest.fixture(scope="module")
def medium() -> tuple[Scenario, Population, list[SimulatedDay], GroundTruth]:
    """Large enough for persona statistics, small enough to stay fast."""
    scenario = Scenario(
        name="medium", seed=5, employees=400, departments=8, pre_launch_days=14, live_days=56, launch_date=LAUNCH
    )
    return (scenario, *simulate(scenario))


def test_same_seed_gives_identical_actions_and_ground_truth(small: tuple) -> None:
    scenario, _, days, truth = small
    _, again_days, again_truth = simulate(scenario)
    assert actions_of(again_days) == actions_of(days)
    assert again_truth == truth


def test_another_seed_gives_another_company_and_history(small: tuple) -> None:
    scenario, _, days, truth = small
    _, other_days, other_truth = simulate(scenario.model_copy(update={"seed": 12}))
    assert [e.persona for e in other_truth.employees] != [e.persona for e in truth.employees]
    assert len(actions_of(other_days)) != len(actions_of(days))
    assert {a.source_id for a in actions_of(other_days)}.isdisjoint({a.source_id for a in actions_of(days)})


def test_default_company_has_the_configured_size_and_persona_mix() -> None:
    scenario = preset("default", seed=3, launch_date=LAUNCH)
    population = build_population(scenario)
    counts = Counter(e.persona for e in population.employees)
    n = len(population.employees)
    assert n == 1500
    assert len(population.departments) == 12
    assert all(d.size >= 5 for d in population.departments)
    assert sum(d.size for d in population.departments) == n
    assert 0.02 <= counts[Persona.AMBASSADOR] / n <= 0.03
    assert counts[Persona.REGULAR] == round(n * 0.15)
    # Ring members were occasional posters or lurkers before they joined a ring.
    assert round(n * 0.30) - counts[Persona.RING_MEMBER] <= counts[Persona.OCCASIONAL] <= round(n * 0.30)
    managers = [e for e in population.employees if e.is_manager]
    assert 0.06 <= len(managers) / n <= 0.14
    assert all(e.persona.is_manager for e in managers)
    assert counts[Persona.LEADING_MANAGER] == round(len(managers) * 0.4)
    assert counts[Persona.LURKER] / n > 0.3
    assert len(population.groups) == 3
    assert all(3 <= len(g.members) <= 6 for g in population.groups)
    assert counts[Persona.SELF_PROMOTER] == 9 and counts[Persona.REACT_ONLY] == 6
    for dept in population.departments:
        heads = [e for e in population.by_department[dept.department_id] if e.is_manager]
        assert heads, f"{dept.name} has no manager"


def test_ambassadors_cover_most_departments() -> None:
    for scenario in (preset("default", seed=3, launch_date=LAUNCH), preset("small", seed=4, launch_date=LAUNCH)):
        population = build_population(scenario)
        covered = {e.department_id for e in population.with_persona(Persona.AMBASSADOR)}
        assert len(covered) >= 0.8 * len(population.departments)


def test_every_action_kind_appears(small: tuple) -> None:
    _, _, days, _ = small
    assert {a.kind for a in actions_of(days)} == set(ActionKind)


def test_event_times_lie_inside_their_phase_and_days_run_in_time_order(small: tuple) -> None:
    scenario, _, days, _ = small
    start = dt.datetime.combine(LAUNCH - dt.timedelta(days=scenario.pre_launch_days), dt.time(), tzinfo=dt.UTC)
    launch = dt.datetime.combine(LAUNCH, dt.time(), tzinfo=dt.UTC)
    end = launch + dt.timedelta(days=scenario.live_days)
    assert len(days) == scenario.total_days
    for day in days:
        times = [a.occurred_at for a in day.actions]
        assert times == sorted(times)
        for a in day.actions:
            assert a.occurred_at.date() == day.date
            if day.phase is Phase.PRE_LAUNCH:
                assert start <= a.occurred_at < launch
                assert a.kind in (ActionKind.SURVEY, ActionKind.WORKSHOP) and a.pre_launch
            else:
                assert launch <= a.occurred_at < end
                assert not a.pre_launch
    assert sum(1 for d in days if d.phase is Phase.PRE_LAUNCH) == scenario.pre_launch_days


def test_every_action_points_at_content_that_exists_earlier_with_its_true_author(medium: tuple) -> None:
    _, population, days, _ = medium
    content: dict[str, Action] = {}
    answers: dict[str, Action] = {}
    seen_ids: set[str] = set()
    reactions: set[tuple[str, str, str]] = set()
    for a in actions_of(days):
        assert a.source_id not in seen_ids
        seen_ids.add(a.source_id)
        assert a.actor_id in population.by_id
        if a.kind in (ActionKind.POST, ActionKind.QUESTION):
            content[a.post_id] = a
        elif a.kind in (ActionKind.COMMENT, ActionKind.REACTION, ActionKind.ANSWER):
            target = content[a.post_id]
            assert target.occurred_at < a.occurred_at
            assert a.counterpart_id == target.actor_id
            assert a.counterpart_department_id == population.by_id[target.actor_id].department_id
            assert (target.kind is ActionKind.QUESTION) == (a.kind is ActionKind.ANSWER)
            if a.kind is ActionKind.REACTION:
                assert a.actor_id != target.actor_id, "the intranet does not allow liking one's own post"
                assert (a.actor_id, a.post_id, a.reaction) not in reactions
                reactions.add((a.actor_id, a.post_id, a.reaction))
            if a.kind is ActionKind.ANSWER:
                assert a.actor_id != target.actor_id
                answers[a.item_id] = a
        elif a.kind is ActionKind.ACCEPT:
            answer = answers[a.item_id]
            assert a.actor_id == content[a.post_id].actor_id == answer.counterpart_id
            assert a.counterpart_id == answer.actor_id and answer.occurred_at < a.occurred_at
        elif a.kind is ActionKind.PROFILE_UPDATE:
            assert 0 < a.completeness <= 1 and a.changed_fields


def test_reaction_rings_react_mostly_to_each_other(medium: tuple) -> None:
    _, population, days, truth = medium
    ring_of = {m: g.members for g in population.groups for m in g.members}
    for group in population.groups:
        given = [a for a in actions_of(days) if a.kind is ActionKind.REACTION and a.actor_id in group.members]
        inside = [a for a in given if a.counterpart_id in ring_of[a.actor_id]]
        assert len(given) > 50
        assert len(inside) / len(given) >= 0.7
    assert {m for g in truth.gamer_groups for m in g.members} == set(ring_of)


def weekly(days: list[SimulatedDay], weeks: float, kind: ActionKind) -> Counter[str]:
    counts: Counter[str] = Counter(a.actor_id for a in actions_of(days) if a.kind is kind)
    return Counter({k: v / weeks for k, v in counts.items()})


def test_gamers_act_as_described(medium: tuple) -> None:
    scenario, population, days, _ = medium
    weeks = scenario.live_days / 7
    actions = actions_of(days)
    for e in population.with_persona(Persona.REACT_ONLY):
        mine = [a for a in actions if a.actor_id == e.employee_id]
        assert {a.kind for a in mine} <= {ActionKind.REACTION, ActionKind.SURVEY, ActionKind.PROFILE_UPDATE}
        assert sum(a.kind is ActionKind.REACTION for a in mine) / weeks > 100
    for e in population.with_persona(Persona.SELF_PROMOTER):
        per_day = Counter(
            a.occurred_at.date() for a in actions if a.actor_id == e.employee_id and a.kind is ActionKind.POST
        )
        assert max(per_day.values()) >= 6, "self-promoters post in bursts"
        replies = [
            a
            for a in actions
            if a.actor_id == e.employee_id and a.kind is ActionKind.COMMENT and a.counterpart_id != e.employee_id
        ]
        assert len(replies) < sum(per_day.values())


def test_ambassadors_are_broad_but_not_separable_by_any_single_count(medium: tuple) -> None:
    scenario, population, days, _ = medium
    weeks = scenario.live_days / 7
    ambassadors = [e.employee_id for e in population.with_persona(Persona.AMBASSADOR)]
    regulars = [e.employee_id for e in population.with_persona(Persona.REGULAR)]
    beaten = 0
    for kind in (ActionKind.POST, ActionKind.REACTION, ActionKind.COMMENT, ActionKind.ANSWER, ActionKind.FEATURE_TRIAL):
        rates = weekly(days, weeks, kind)
        typical_ambassador = statistics.median(rates[a] for a in ambassadors)
        assert typical_ambassador > statistics.median(rates[r] for r in regulars)
        beaten += any(rates[r] >= typical_ambassador for r in regulars)
    assert beaten >= 3, "some regular contributors match ambassadors in single dimensions"
    # Ambassadors reach across departments: their reactions go to many people in other departments.
    dept = {e.employee_id: e.department_id for e in population.employees}
    for a in ambassadors:
        given = [x for x in actions_of(days) if x.kind is ActionKind.REACTION and x.actor_id == a]
        other = {x.counterpart_id for x in given if x.counterpart_department_id != dept[a]}
        assert len(other) >= 5


def test_pre_launch_has_both_surveys_workshops_and_interviews(small: tuple) -> None:
    scenario, _, days, _ = small
    pre = [a for d in days if d.phase is Phase.PRE_LAUNCH for a in d.actions]
    surveys = {a.item_id for a in pre if a.kind is ActionKind.SURVEY}
    assert surveys == {f"{scenario.id_prefix}-survey-wishlist", f"{scenario.id_prefix}-survey-intranet-name"}
    assert {a.session_kind.value for a in pre if a.kind is ActionKind.WORKSHOP} == {"workshop", "interview"}


def test_ground_truth_round_trips_and_names_ambassadors_and_gamers(small: tuple, tmp_path: Path) -> None:
    scenario, population, _, truth = small
    path = tmp_path / "reports" / "ground_truth.json"
    truth_file.write(truth, path)
    loaded = truth_file.read(path)
    assert loaded == truth
    assert loaded.launch_date == LAUNCH
    assert loaded.end_date == LAUNCH + dt.timedelta(days=scenario.live_days - 1)
    assert loaded.scenario["seed"] == scenario.seed
    assert set(loaded.ambassadors) == {e.employee_id for e in population.with_persona(Persona.AMBASSADOR)}
    gamer_personas = {"gamer_reaction_ring", "gamer_self_promoter", "gamer_react_only"}
    assert set(loaded.gamers) == {e.employee_id for e in loaded.employees if e.persona in gamer_personas}
    assert not set(loaded.ambassadors) & set(loaded.gamers)


def test_a_scenario_without_launch_date_ends_before_the_run_day_and_starts_on_a_monday() -> None:
    today = dt.date(2026, 11, 26)
    for name in PRESETS:
        scenario = preset(name).resolve(today)
        launch = scenario.require_launch_date()
        assert launch.weekday() == 0
        end = launch + dt.timedelta(days=scenario.live_days - 1)
        assert today - dt.timedelta(days=7) <= end < today


def test_scenario_rejects_impossible_companies() -> None:
    with pytest.raises(ValueError, match="at least 5 employees"):
        Scenario(employees=20, departments=12)
    with pytest.raises(ValueError, match="ring_size_min"):
        PersonaMix(ring_size_min=5, ring_size_max=3)
    with pytest.raises(ValueError, match="unknown scenario"):
        preset("huge")
