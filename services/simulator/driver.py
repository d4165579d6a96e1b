"""Runs a scenario against the real feed service over gRPC (the simulator's only I/O besides the file).

1. UpsertEmployees with an HR token registers the directory.
2. The history goes, in event-time order, in batches through IngestInteractions with a service token:
   every action is an ImportedInteraction with a deterministic `source_id` and its simulated `occurred_at`,
   so months of event time pass in minutes and a re-run is a no-op (the feed deduplicates by source id).
3. A handful of actions from the end of the history are replayed as CreatePost / AddComment / AddReaction
   calls with the actors' own tokens (see `interactive.py`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import grpc
from catalyst.feed.v1 import feed_pb2, feed_pb2_grpc

from services.common.auth import Role
from services.common.grpc_client import bearer, channel
from services.common.local_issuer import LocalIssuer
from services.simulator import wire
from services.simulator.actions import Action, ActionKind, SimulatedDay
from services.simulator.behaviour import Simulation
from services.simulator.ground_truth import GroundTruth, ground_truth
from services.simulator.interactive import choose_interactive
from services.simulator.population import Employee, build_population
from services.simulator.scenario import Scenario

log = logging.getLogger(__name__)

RETRYABLE = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
    }
)
TAIL_DAYS = 7  # the interactive replay picks its posts from the last week of the history
TOKEN_TTL_SECONDS = 12 * 3600


@dataclass(frozen=True)
class DriverOptions:
    source: str = "simulator"
    batch_size: int = 500
    max_in_flight: int = 2
    directory_batch: int = 500
    seconds_per_day: float = 0.0  # 0: as fast as the feed takes it
    interactive_posts: int = 3
    interactive_budget: int = 40
    call_timeout_seconds: float = 60.0
    max_attempts: int = 8


@dataclass(frozen=True)
class Progress:
    phase: str  # directory, history, interactive, done
    day_index: int
    days_total: int
    simulated_date: dt.date | None
    actions_planned: int
    accepted: int
    duplicates: int
    interactive_calls: int
    elapsed_seconds: float


@dataclass
class SimulationResult:
    ground_truth: GroundTruth
    employees_registered: int = 0
    actions_by_kind: Counter[str] = field(default_factory=Counter)
    interactive_by_kind: Counter[str] = field(default_factory=Counter)
    accepted: int = 0
    duplicates: int = 0
    first_event: dt.datetime | None = None
    last_event: dt.datetime | None = None
    elapsed_seconds: float = 0.0

    @property
    def actions(self) -> int:
        return sum(self.actions_by_kind.values())


class _Tokens:
    """Bearer tokens: one for HR (the directory), one service, and one per employee who calls the API."""

    def __init__(self, authority: LocalIssuer, source: str) -> None:
        self._authority = authority
        self.hr = bearer(authority.mint(f"{source}-hr", [Role.HR], TOKEN_TTL_SECONDS))
        self.service = bearer(authority.mint(source, [Role.SERVICE], TOKEN_TTL_SECONDS))
        self._employees: dict[str, tuple[tuple[str, str]]] = {}

    def employee(self, employee_id: str) -> tuple[tuple[str, str]]:
        if employee_id not in self._employees:
            self._employees[employee_id] = bearer(self._authority.mint(employee_id, [Role.EMPLOYEE], 3600))
        return self._employees[employee_id]


class _Ingestor:
    """Sends ImportedInteractions in batches with a bounded number of calls in flight; retries transient
    failures (safe: a retried batch is deduplicated by source id) and fails the run on anything else."""

    def __init__(
        self,
        stub: feed_pb2_grpc.FeedServiceStub,
        tokens: _Tokens,
        options: DriverOptions,
        tasks: asyncio.TaskGroup,
        result: SimulationResult,
    ) -> None:
        self._stub = stub
        self._tokens = tokens
        self._options = options
        self._tasks = tasks
        self._result = result
        self._slots = asyncio.Semaphore(options.max_in_flight)
        self._buffer: list[feed_pb2.ImportedInteraction] = []

    async def add(self, actions: Sequence[Action]) -> None:
        for action in actions:
            self._buffer.append(wire.imported(action))
            if len(self._buffer) >= self._options.batch_size:
                await self.flush()

    async def flush(self) -> None:
        if not self._buffer:
            return
        batch, self._buffer = self._buffer, []
        await self._slots.acquire()
        self._tasks.create_task(self._send(batch))

    async def _send(self, batch: list[feed_pb2.ImportedInteraction]) -> None:
        request = feed_pb2.IngestInteractionsRequest(source=self._options.source, interactions=batch)
        try:
            response = await _call(
                self._stub.IngestInteractions, request, self._tokens.service, self._options, "IngestInteractions"
            )
            self._result.accepted += response.accepted
            self._result.duplicates += response.duplicates
        finally:
            self._slots.release()


async def _call(
    method: Callable, request: object, metadata: tuple, options: DriverOptions, name: str, retry: bool = True
) -> object:
    delay, attempt = 0.2, 1
    while True:
        try:
            return await method(request, metadata=metadata, timeout=options.call_timeout_seconds)
        except grpc.aio.AioRpcError as exc:
            if not retry or exc.code() not in RETRYABLE or attempt >= options.max_attempts:
                raise SimulatorError(f"{name} failed: {exc.code().name}: {exc.details()}") from exc
            log.warning("%s: %s, retrying in %.1fs", name, exc.code().name, delay)
            await asyncio.sleep(delay)
            delay, attempt = min(delay * 2, 5.0), attempt + 1


class SimulatorError(RuntimeError):
    """The feed service refused the simulation's traffic."""


async def run_simulation(
    scenario: Scenario,
    feed_target: str,
    token_authority: LocalIssuer,
    on_progress: Callable[[Progress], None] | None = None,
    options: DriverOptions | None = None,
    today: dt.date | None = None,
) -> SimulationResult:
    """Simulates the company against the feed service at `feed_target` and returns what was sent, with the
    ground truth. A scenario without a launch date ends its live phase the day before `today` (UTC)."""
    options = options or DriverOptions()
    scenario = scenario.resolve(today or dt.datetime.now(dt.UTC).date())
    population = build_population(scenario)
    simulation = Simulation(scenario, population)
    result = SimulationResult(ground_truth=ground_truth(scenario, population, simulation.traits))
    tokens = _Tokens(token_authority, options.source)
    started = time.monotonic()
    report = _Reporter(on_progress, result, scenario.total_days, started)
    async with channel(feed_target) as ch:
        stub = feed_pb2_grpc.FeedServiceStub(ch)
        report("directory")
        result.employees_registered = await _register(stub, population.employees, tokens, options)
        tail: deque[SimulatedDay] = deque(maxlen=TAIL_DAYS)
        try:
            async with asyncio.TaskGroup() as tasks:
                ingestor = _Ingestor(stub, tokens, options, tasks, result)
                for day in simulation.days():
                    if len(tail) == TAIL_DAYS:
                        await _ingest_day(ingestor, tail[0], result)
                    tail.append(day)
                    report("history", day)
                    await _pace(options, started, day.index)
                interactive = choose_interactive(tail, options.interactive_posts, options.interactive_budget)
                chosen = {a.source_id for a in interactive}
                for day in tail:
                    await _ingest_day(ingestor, day, result, skip=chosen)
                await ingestor.flush()
        except* SimulatorError as group:
            raise group.exceptions[0] from None
        report("interactive")
        await _replay_interactively(stub, interactive, tokens, options, result, report)
    result.elapsed_seconds = time.monotonic() - started
    report("done")
    return result


class _Reporter:
    """Calls `on_progress` with the running totals; remembers the last simulated day it was told about."""

    def __init__(
        self, callback: Callable[[Progress], None] | None, result: SimulationResult, days: int, started: float
    ) -> None:
        self._callback = callback
        self._result = result
        self._days = days
        self._started = started
        self._day: tuple[int, dt.date | None] = (0, None)

    def __call__(self, phase: str, day: SimulatedDay | None = None) -> None:
        if day is not None:
            self._day = (day.index, day.date)
        if self._callback is None:
            return
        r = self._result
        self._callback(
            Progress(
                phase=phase,
                day_index=self._day[0],
                days_total=self._days,
                simulated_date=self._day[1],
                actions_planned=r.actions,
                accepted=r.accepted,
                duplicates=r.duplicates,
                interactive_calls=sum(r.interactive_by_kind.values()),
                elapsed_seconds=time.monotonic() - self._started,
            )
        )


async def _register(
    stub: feed_pb2_grpc.FeedServiceStub, employees: Sequence[Employee], tokens: _Tokens, options: DriverOptions
) -> int:
    upserted = 0
    for i in range(0, len(employees), options.directory_batch):
        chunk = [wire.directory_entry(e) for e in employees[i : i + options.directory_batch]]
        request = feed_pb2.UpsertEmployeesRequest(employees=chunk)
        response = await _call(stub.UpsertEmployees, request, tokens.hr, options, "UpsertEmployees")
        upserted += response.upserted
    return upserted


async def _ingest_day(
    ingestor: _Ingestor, day: SimulatedDay, result: SimulationResult, skip: frozenset[str] | set[str] = frozenset()
) -> None:
    actions = [a for a in day.actions if a.source_id not in skip]
    for a in actions:
        result.actions_by_kind[a.kind.value] += 1
    if actions:
        result.first_event = result.first_event or actions[0].occurred_at
        result.last_event = actions[-1].occurred_at
    await ingestor.add(actions)


async def _pace(options: DriverOptions, started: float, day_index: int) -> None:
    """With `seconds_per_day`, a simulated day takes at least that long (event time still comes from the
    actions; pacing only spreads the traffic so consumers see a live-like stream)."""
    if options.seconds_per_day <= 0:
        return
    wait = started + (day_index + 1) * options.seconds_per_day - time.monotonic()
    if wait > 0:
        await asyncio.sleep(wait)


async def _replay_interactively(
    stub: feed_pb2_grpc.FeedServiceStub,
    actions: Sequence[Action],
    tokens: _Tokens,
    options: DriverOptions,
    result: SimulationResult,
    report: _Reporter,
) -> None:
    """Calls the API as the employees themselves; the server assigns ids and times. Not retried: these
    calls are not idempotent, and a failure here means the per-employee path is broken."""
    real_post_ids: dict[str, str] = {}
    for a in actions:
        auth = tokens.employee(a.actor_id)
        if a.kind is ActionKind.POST:
            response = await _call(stub.CreatePost, wire.create_post_request(a), auth, options, "CreatePost", False)
            real_post_ids[a.post_id] = response.post.post_id
        elif a.kind is ActionKind.COMMENT:
            request = wire.add_comment_request(a, real_post_ids[a.post_id])
            await _call(stub.AddComment, request, auth, options, "AddComment", False)
        else:
            request = wire.add_reaction_request(a, real_post_ids[a.post_id])
            await _call(stub.AddReaction, request, auth, options, "AddReaction", False)
        result.actions_by_kind[a.kind.value] += 1
        result.interactive_by_kind[a.kind.value] += 1
        report("interactive")
