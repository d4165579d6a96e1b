"""The main job: simulate a company through the running services and report who emerged as ambassadors.

Expects Kafka, Redis and the services to be running (`make demo` starts them on a fresh state).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
import time

import grpc
from catalyst.recognition.v1 import recognition_pb2, recognition_pb2_grpc
from rich.console import Console
from rich.live import Live
from rich.markdown import Markdown

from services.common.audit import PURPOSE_KEY
from services.common.auth import Role
from services.common.grpc_client import bearer, channel
from services.common.local_issuer import local_issuer
from services.common.policy import load_policy
from services.common.settings import load
from services.console.config import ConsoleSettings
from services.demo import offline, report
from services.demo.config import DemoSettings
from services.demo.evaluation import evaluate
from services.demo.live import LiveView
from services.demo.programme import ProgrammeRun
from services.demo.watch import TopicWatcher, group_lag
from services.engagement.adapters.redis_store import RedisStore
from services.engagement.model.config import load_model
from services.recognition.config import DEFAULT_RULES
from services.recognition.rules import load_rules
from services.simulator import ground_truth as truth_file
from services.simulator.behaviour import Simulation
from services.simulator.driver import SimulatorError, run_simulation
from services.simulator.ground_truth import GroundTruth
from services.simulator.population import build_population
from services.simulator.scenario import Scenario, preset


async def settle(settings: DemoSettings, console: Console) -> None:
    """Waits until engagement and recognition have processed everything the simulation produced: no lag, and
    the publisher has walked every day of it."""
    store = RedisStore.connected(settings, load_model().keep_days)
    groups = {
        settings.engagement_group_id: settings.topic_interactions,
        settings.recognition_group_id: settings.topic_engagement,
    }
    deadline = time.monotonic() + settings.demo_settle_timeout_seconds
    quiet_since: float | None = None
    with console.status("waiting for scores and badges to catch up...") as status:
        while time.monotonic() < deadline:
            lags = await group_lag(settings.kafka_bootstrap, groups)
            status.update(f"waiting for scores and badges to catch up: {sum(lags.values()):,} records to go")
            if sum(lags.values()) == 0 and await store.caught_up():
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since >= settings.demo_settle_quiet_seconds:
                    return
            else:
                quiet_since = None
            await asyncio.sleep(1.0)
    raise SystemExit(f"the pipeline did not settle within {settings.demo_settle_timeout_seconds:.0f} s (lag {lags})")


def people_of(scenario: Scenario, today: dt.date) -> GroundTruth:
    """Who the simulated people are (the simulation's own ground truth), so they can act while it runs."""
    resolved = scenario.resolve(today)
    population = build_population(resolved)
    return truth_file.ground_truth(resolved, population, Simulation(resolved, population).traits)


async def main_async(settings: DemoSettings, scenario_name: str, seed: int, console: Console) -> int:
    authority = local_issuer(settings)
    scenario = preset(scenario_name, seed)
    watcher = TopicWatcher(settings.kafka_bootstrap, settings.topic_recognition, settings.topic_engagement)
    await watcher.start()
    view = LiveView(watcher.board)
    started = time.monotonic()
    today = dt.datetime.now(dt.UTC).date()
    token = bearer(authority.mint("demo-comms-team", [Role.PROGRAMME_OWNER], 600))
    owner = (*token, (PURPOSE_KEY, "demo: propose the pilot group"))
    async with channel(settings.recognition_target) as ch:
        stub = recognition_pb2_grpc.RecognitionServiceStub(ch)
        run = ProgrammeRun(stub, authority, people_of(scenario, today), seed)
        running = asyncio.Event()
        running.set()
        programme = asyncio.create_task(
            run.run_while(watcher.board.grants, running, settings.demo_programme_round_seconds)
        )
        try:
            try:
                with Live(view, console=console, refresh_per_second=4, transient=False):
                    result = await run_simulation(
                        scenario, settings.feed_target, authority, view.on_progress, today=today
                    )
                    view.phase = "simulation sent; scores and badges catching up"
                    await settle(settings, console)
            finally:
                running.clear()
                await programme
            while await run.round(watcher.board.grants):  # the last invitations, and trainings confirmed
                await settle(settings, console)
            await run.withdrawals()
            await settle(settings, console)
        except SimulatorError as exc:
            console.print(f"[red]simulation failed:[/] {exc}")
            return 1
        finally:
            await watcher.stop()
        truth = result.ground_truth
        settings.demo_reports_dir.mkdir(parents=True, exist_ok=True)
        truth_file.write(truth, settings.demo_reports_dir / "ground_truth.json")
        coverage = await stub.GetDepartmentCoverage(recognition_pb2.GetDepartmentCoverageRequest(), metadata=owner)
        pilot = await stub.ProposePilotGroup(recognition_pb2.ProposePilotGroupRequest(size=24), metadata=owner)
        funnel = await stub.GetProgrammeFunnel(recognition_pb2.GetProgrammeFunnelRequest(), metadata=owner)
        managers = await stub.GetManagerActivity(recognition_pb2.GetManagerActivityRequest(), metadata=owner)
        emerging = await stub.ListEmerging(
            recognition_pb2.ListEmergingRequest(), metadata=(*token, (PURPOSE_KEY, "demo: who is on track"))
        )
    detection = evaluate(truth, watcher.board.holdings, watcher.board.grants)
    facts = report.RunFacts(
        events_sent=result.accepted,
        simulated_days=(truth.end_date - truth.pre_launch_start).days + 1,
        wall_seconds=time.monotonic() - started,
        score_events=watcher.board.score_events,
        answers=dict(run.outcomes),
    )
    policy = load_policy(settings.policy_file)
    shaped: list[offline.Outcome] = []
    if settings.demo_shapes:
        with console.status("the same rules over other company shapes (offline; minutes unless cached)..."):
            shaped = offline.shapes(load_model(), load_rules(DEFAULT_RULES), seed, workers=settings.demo_shapes_workers)
    shapes = offline.shapes_table(shaped) if shaped else ""
    views = report.Programme(funnel, managers, emerging)
    path = report.write(settings.demo_reports_dir, truth, detection, coverage, pilot, facts, policy, shapes, views)
    console.print(Markdown(report.markdown(truth, detection, coverage, pilot, facts, policy, shapes, views)))
    console.print(
        f"\nReport with plots: [bold]{path}[/]. The system keeps running: try `catalyst ambassadors`, "
        "`catalyst coverage`, `catalyst funnel`, `catalyst emerging`, `catalyst manager-activity`, "
        "`catalyst explain <employee>`; "
        "`make down` stops it."
        f"\nWeb console: [bold]{load(ConsoleSettings).public_url}[/] (sign in as a simulated employee, programme "
        "owner or works council member: any employee id of the report)."
    )
    return 0 if all(report.verdicts(detection).values()) else 3


def main(argv: list[str] | None = None) -> int:
    settings = load(DemoSettings)
    args = argparse.ArgumentParser(prog="python -m services.demo", description=__doc__)
    args.add_argument("--scenario", default=settings.demo_scenario)
    args.add_argument("--seed", type=int, default=settings.demo_seed)
    parsed = args.parse_args(argv)
    console = Console()
    console.rule(f"Catalyst main job: scenario {parsed.scenario}, seed {parsed.seed}, {dt.date.today()}")
    try:
        return asyncio.run(main_async(settings, parsed.scenario, parsed.seed, console))
    except grpc.aio.AioRpcError as exc:
        console.print(f"[red]a service refused the demo:[/] {exc.code().name}: {exc.details()}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
