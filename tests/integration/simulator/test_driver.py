"""The small scenario through a real feed service (real gRPC socket, Redis, Kafka): every simulated action
arrives on the interactions topic once, with its kind, actor and (for imported ones) its simulated time."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest

from services.simulator import wire
from services.simulator.actions import Action
from services.simulator.behaviour import Simulation
from services.simulator.driver import DriverOptions, Progress, run_simulation
from services.simulator.population import build_population
from services.simulator.scenario import preset
from tests.integration.feed.harness import Feed, read_topic

pytestmark = pytest.mark.integration

TODAY = dt.date(2026, 11, 26)


async def test_small_scenario_reaches_the_interactions_topic(
    feed: Feed, kafka_bootstrap: str, topics: dict[str, str]
) -> None:
    scenario = preset("small", seed=8).resolve(TODAY)
    population = build_population(scenario)
    planned: list[Action] = [a for day in Simulation(scenario, population).days() for a in day.actions]
    progress: list[Progress] = []
    options = DriverOptions(batch_size=200, max_in_flight=3, interactive_posts=2, interactive_budget=12)

    result = await run_simulation(
        scenario, f"127.0.0.1:{feed.service.port}", feed.authority, progress.append, options, TODAY
    )

    employees = len(population.employees)
    assert result.employees_registered == employees
    assert result.actions == len(planned)
    interactive = sum(result.interactive_by_kind.values())
    assert 1 <= result.interactive_by_kind["post"] and interactive <= 12
    assert result.accepted == len(planned) - interactive and result.duplicates == 0
    assert [p.phase for p in progress][0] == "directory" and progress[-1].phase == "done"
    assert max(p.day_index for p in progress) == scenario.total_days - 1

    records = await read_topic(kafka_bootstrap, topics["interactions"], employees + len(planned), timeout=120)
    assert len(records) == employees + len(planned)
    assert len({r.envelope.event_id for r in records}) == len(records)
    kinds = Counter(r.envelope.WhichOneof("payload") for r in records)
    expected = Counter(wire.PAYLOAD_OF[a.kind] for a in planned)
    expected["employee_registered"] = employees
    assert kinds == expected
    assert all(r.key == r.envelope.employee_id for r in records)

    by_actor_and_time = Counter((a.actor_id, int(a.occurred_at.timestamp() * 1000)) for a in planned)
    imported = [r for r in records if r.envelope.producer == "ingest:simulator"]
    assert len(imported) == len(planned) - interactive
    for r in imported:
        key = (r.envelope.employee_id, r.envelope.occurred_at.ToMilliseconds())
        assert by_actor_and_time[key] > 0, "an imported event carries its simulated actor and time"
    dept = {e.employee_id: e.department_id for e in population.employees}
    assert all(r.envelope.department_id == dept[r.envelope.employee_id] for r in records)

    # A re-run imports nothing twice; only the actions replayed interactively before are new to ingestion.
    rerun = DriverOptions(interactive_posts=0)
    again = await run_simulation(scenario, f"127.0.0.1:{feed.service.port}", feed.authority, None, rerun, TODAY)
    assert again.accepted == interactive and again.duplicates == len(planned) - interactive
