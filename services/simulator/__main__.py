"""`python -m services.simulator --scenario small --seed 7 --feed localhost:50051 --ground-truth reports/gt.json`

Writes the ground truth first (it depends only on the scenario), then drives the feed service.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import sys
from collections import Counter
from pathlib import Path

from services.common.local_issuer import local_issuer
from services.common.logging import configure_logging
from services.common.settings import load
from services.simulator import ground_truth as truth_file
from services.simulator.behaviour import Simulation
from services.simulator.config import SimulatorSettings
from services.simulator.driver import DriverOptions, Progress, SimulatorError, run_simulation
from services.simulator.ground_truth import ground_truth
from services.simulator.population import build_population
from services.simulator.scenario import PRESETS, Scenario, preset

log = logging.getLogger("simulator")


def parser(settings: SimulatorSettings) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m services.simulator", description=__doc__.splitlines()[0])
    p.add_argument("--scenario", default="default", choices=sorted(PRESETS))
    p.add_argument("--seed", type=int, default=None, help="overrides the scenario's seed")
    p.add_argument("--launch-date", type=dt.date.fromisoformat, default=None, help="YYYY-MM-DD (default: recent)")
    p.add_argument("--feed", default=settings.sim_feed_target, help="feed gRPC address")
    p.add_argument("--ground-truth", type=Path, default=Path("reports/ground_truth.json"))
    p.add_argument("--seconds-per-day", type=float, default=settings.sim_seconds_per_day)
    p.add_argument("--max-in-flight", type=int, default=settings.sim_max_in_flight)
    p.add_argument("--dry-run", action="store_true", help="write the ground truth and print the plan; send nothing")
    return p


def plan_summary(scenario: Scenario) -> dict[str, object]:
    """Actions per kind and per persona, without a feed service."""
    population = build_population(scenario)
    by_kind: Counter[str] = Counter()
    by_persona: Counter[str] = Counter()
    persona_of = {e.employee_id: e.persona.value for e in population.employees}
    for day in Simulation(scenario, population).days():
        for a in day.actions:
            by_kind[a.kind.value] += 1
            by_persona[persona_of[a.actor_id]] += 1
    return {"actions": sum(by_kind.values()), "by_kind": dict(by_kind), "by_persona": dict(by_persona)}


def main(argv: list[str] | None = None) -> int:
    settings = load(SimulatorSettings)
    configure_logging("simulator", settings.log_level)
    args = parser(settings).parse_args(argv)
    today = dt.datetime.now(dt.UTC).date()
    scenario = preset(args.scenario, args.seed, args.launch_date).resolve(today)
    population = build_population(scenario)
    truth = ground_truth(scenario, population, Simulation(scenario, population).traits)
    truth_file.write(truth, args.ground_truth)
    log.info("ground truth written", extra={"path": str(args.ground_truth), "personas": truth.persona_counts()})
    if args.dry_run:
        print(json.dumps(plan_summary(scenario), indent=2))
        return 0
    options = DriverOptions(
        source=settings.sim_source,
        batch_size=settings.sim_batch_size,
        max_in_flight=args.max_in_flight,
        seconds_per_day=args.seconds_per_day,
        interactive_posts=settings.sim_interactive_posts,
        interactive_budget=settings.sim_interactive_budget,
        call_timeout_seconds=settings.sim_call_timeout_seconds,
    )
    authority = local_issuer(settings)
    try:
        result = asyncio.run(run_simulation(scenario, args.feed, authority, _log_progress, options, today))
    except SimulatorError as exc:
        log.error("simulation failed: %s", exc)
        return 1
    log.info(
        "simulation finished",
        extra={
            "employees_registered": result.employees_registered,
            "actions": result.actions,
            "accepted": result.accepted,
            "duplicates": result.duplicates,
            "interactive": dict(result.interactive_by_kind),
            "seconds": round(result.elapsed_seconds, 1),
        },
    )
    return 0


def _log_progress(progress: Progress) -> None:
    if progress.phase != "history" or progress.day_index % 7 == 0:
        log.info(
            "progress",
            extra={
                "phase": progress.phase,
                "day": f"{progress.day_index + 1}/{progress.days_total}",
                "date": str(progress.simulated_date),
                "accepted": progress.accepted,
                "interactive": progress.interactive_calls,
            },
        )


if __name__ == "__main__":
    sys.exit(main())
