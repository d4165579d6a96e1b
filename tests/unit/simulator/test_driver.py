"""The driver against a fake FeedService on a local socket: who calls what with which token, batching,
the in-flight bound, retries of transient failures, and a clear error for refused traffic."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections import Counter
from collections.abc import AsyncIterator

import grpc
import pytest
from catalyst.feed.v1 import feed_pb2, feed_pb2_grpc

from services.common.auth import Principal, Role, bearer_token
from services.simulator.behaviour import Simulation
from services.simulator.driver import DriverOptions, SimulatorError, run_simulation
from services.simulator.population import build_population
from services.simulator.scenario import Scenario, preset
from tests.conftest import trusted_issuer, verify

TODAY = dt.date(2026, 11, 26)


class FakeFeed(feed_pb2_grpc.FeedServiceServicer):
    """Records calls with the verified caller; can fail the first ingest calls with a chosen status."""

    def __init__(self, fail_first: int = 0, fail_code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE) -> None:
        self.calls: list[tuple[str, Principal]] = []
        self.ingested: list[feed_pb2.ImportedInteraction] = []
        self.sources: set[str] = set()
        self.batch_sizes: list[int] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.fail_first = fail_first
        self.fail_code = fail_code
        self.posts = 0

    def _caller(self, method: str, context: grpc.aio.ServicerContext) -> Principal:
        principal = verify(bearer_token(context.invocation_metadata()))
        self.calls.append((method, principal))
        return principal

    async def UpsertEmployees(
        self, request: feed_pb2.UpsertEmployeesRequest, context: grpc.aio.ServicerContext
    ) -> feed_pb2.UpsertEmployeesResponse:
        self._caller("UpsertEmployees", context)
        return feed_pb2.UpsertEmployeesResponse(upserted=len(request.employees))

    async def IngestInteractions(
        self, request: feed_pb2.IngestInteractionsRequest, context: grpc.aio.ServicerContext
    ) -> feed_pb2.IngestInteractionsResponse:
        self._caller("IngestInteractions", context)
        if self.fail_first > 0:
            self.fail_first -= 1
            await context.abort(self.fail_code, "try again")
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        await asyncio.sleep(0.005)
        self.in_flight -= 1
        self.sources.add(request.source)
        self.batch_sizes.append(len(request.interactions))
        self.ingested.extend(request.interactions)
        return feed_pb2.IngestInteractionsResponse(accepted=len(request.interactions))

    async def CreatePost(
        self, request: feed_pb2.CreatePostRequest, context: grpc.aio.ServicerContext
    ) -> feed_pb2.CreatePostResponse:
        principal = self._caller("CreatePost", context)
        self.posts += 1
        post_id = f"p{self.posts:013d}0000abcd"
        return feed_pb2.CreatePostResponse(post=feed_pb2.Post(post_id=post_id, author_id=principal.subject))

    async def AddComment(
        self, request: feed_pb2.AddCommentRequest, context: grpc.aio.ServicerContext
    ) -> feed_pb2.AddCommentResponse:
        self._caller("AddComment", context)
        assert request.post_id.startswith("p")
        return feed_pb2.AddCommentResponse(comment=feed_pb2.Comment(post_id=request.post_id))

    async def AddReaction(
        self, request: feed_pb2.AddReactionRequest, context: grpc.aio.ServicerContext
    ) -> feed_pb2.AddReactionResponse:
        self._caller("AddReaction", context)
        assert request.post_id.startswith("p")
        return feed_pb2.AddReactionResponse()


@contextlib.asynccontextmanager
async def serve(fake: FakeFeed) -> AsyncIterator[str]:
    server = grpc.aio.server()
    feed_pb2_grpc.add_FeedServiceServicer_to_server(fake, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(0)


@pytest.fixture
def scenario() -> Scenario:
    return preset("small", seed=31).resolve(TODAY)


async def test_history_is_ingested_in_bounded_batches_and_the_tail_replayed_as_employees(scenario: Scenario) -> None:
    fake = FakeFeed()
    population = build_population(scenario)
    planned = [a for day in Simulation(scenario, population).days() for a in day.actions]
    options = DriverOptions(batch_size=100, max_in_flight=2, interactive_posts=2, interactive_budget=10)
    async with serve(fake) as target:
        result = await run_simulation(scenario, target, trusted_issuer(), None, options, TODAY)

    interactive = sum(result.interactive_by_kind.values())
    assert result.actions == len(planned) and 2 <= interactive <= 10
    assert len(fake.ingested) == result.accepted == len(planned) - interactive
    assert {i.source_id for i in fake.ingested} < {a.source_id for a in planned}
    assert fake.sources == {"simulator"} and max(fake.batch_sizes) == 100
    assert fake.max_in_flight <= 2
    roles = {method: p.roles for method, p in fake.calls}
    assert roles["UpsertEmployees"] == {Role.HR}
    assert roles["IngestInteractions"] == {Role.SERVICE}
    assert fake.calls[0][0] == "UpsertEmployees"
    employee_calls = [(m, p) for m, p in fake.calls if m in ("CreatePost", "AddComment", "AddReaction")]
    assert len(employee_calls) == interactive
    assert all(p.roles == {Role.EMPLOYEE} and p.subject in population.by_id for _, p in employee_calls)
    assert Counter(m for m, _ in employee_calls)["CreatePost"] == result.interactive_by_kind["post"]
    times = [i.occurred_at.ToDatetime(tzinfo=dt.UTC) for i in fake.ingested]
    assert max(times).date() < TODAY


async def test_transient_failures_are_retried(scenario: Scenario) -> None:
    fake = FakeFeed(fail_first=2)
    options = DriverOptions(interactive_posts=0)
    async with serve(fake) as target:
        result = await run_simulation(scenario, target, trusted_issuer(), None, options, TODAY)
    assert result.accepted == result.actions == len(fake.ingested)


async def test_refused_traffic_stops_the_run_with_the_reason(scenario: Scenario) -> None:
    fake = FakeFeed(fail_first=1, fail_code=grpc.StatusCode.INVALID_ARGUMENT)
    async with serve(fake) as target:
        with pytest.raises(SimulatorError, match="IngestInteractions failed: INVALID_ARGUMENT: try again"):
            await run_simulation(scenario, target, trusted_issuer(), None, DriverOptions(), TODAY)
