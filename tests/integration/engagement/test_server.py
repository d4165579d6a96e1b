"""EngagementService over a real gRPC socket against a real Redis, seeded by the worker's own code path
(batch planner -> Lua apply -> emitter writing leaderboards), with Kafka publishes recorded in memory."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import urllib.request
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
import redis.asyncio as aioredis
from catalyst.engagement.v1 import engagement_pb2 as pb
from catalyst.engagement.v1 import engagement_pb2_grpc
from catalyst.events.v1 import envelope_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import CollectorRegistry

from services.common.auth import Role, TokenAuthority
from services.common.grpc_client import bearer
from services.engagement.api_config import EngagementApiSettings
from services.engagement.batch import Record
from services.engagement.config import EngagementWorkerSettings, load_scoring
from services.engagement.emitter import Emitter
from services.engagement.metrics import WorkerMetrics
from services.engagement.processor import Processor
from services.engagement.retrying import Retrying
from services.engagement.scoring import COMPONENTS, DAY_MS, figures
from services.engagement.server import EngagementApi, build
from services.engagement.store import EngagementStore, dirty_set, home_bucket, leaderboard, state_key
from tests.conftest import free_port
from tests.unit.engagement.builders import DAY, comment, event, post, react

ROOT = Path(__file__).resolve().parents[3]
SECRET = "engagement-api-integration-secret-0123456789"
CFG = load_scoring()
PARTITIONS = 6
END = 20_400 * DAY  # 2025-11-08
NOW_MS = END * 1000 + 1
ENG = [f"eng-{i}" for i in range(6)]  # a department of 6: figures shown
SALES = ["sales-0", "sales-1", "sales-2"]  # a department of 3: below the minimum group size


def history() -> list[envelope_pb2.Envelope]:
    """Three weeks of activity; eng-0 is the busiest, sales people are active too."""
    out = [event("EmployeeRegistered", e, END - 30 * DAY, "eng", display_name=e.upper()) for e in ENG]
    out += [event("EmployeeRegistered", e, END - 30 * DAY, "sales", display_name=e.upper()) for e in SALES]
    people = ENG + SALES
    dept = {e: ("eng" if e in ENG else "sales") for e in people}
    for day in range(21):
        t = END - (21 - day) * DAY + 3600
        for i, actor in enumerate(people):
            if (day + i) % (1 + i % 4):
                continue
            out.append(post(actor, t + i, dept[actor]))
            for j, other in enumerate(people):
                if other != actor and (i + j + day) % 3 == 0:
                    out.append(react(other, actor, t + 60 + j, dept[other], dept[actor]))
                    if j % 2:
                        out.append(comment(other, actor, t + 120 + j, dept[other], dept[actor]))
    out += [post("eng-0", END - DAY + 7200 + k, "eng") for k in range(4)]
    return out


@dataclass
class Worker:
    """The worker's processor and emitter on real Redis; Kafka publishes are recorded."""

    processor: Processor
    emitter: Emitter
    offsets: dict[int, int] = field(default_factory=lambda: dict.fromkeys(range(PARTITIONS), 0))
    published: list[tuple[str, bytes, bytes | None]] = field(default_factory=list)

    async def feed(self, events: list[envelope_pb2.Envelope]) -> None:
        records = []
        for env in events:
            p = zlib.crc32(env.employee_id.encode()) % PARTITIONS
            records.append(Record(p, self.offsets[p], env.employee_id.encode(), env.SerializeToString(), NOW_MS))
            self.offsets[p] += 1
        for start in range(0, len(records), 200):
            await self.processor.apply(self.processor.plan(records[start : start + 200]))
        await self.emitter.run_once(list(range(PARTITIONS)))


async def make_worker(client: aioredis.Redis) -> Worker:
    settings = EngagementWorkerSettings(interactions_partitions=PARTITIONS)
    metrics = WorkerMetrics(CollectorRegistry())
    retrying = Retrying(metrics, 1.0)
    store = EngagementStore(client, CFG, settings.topic_interactions, PARTITIONS, 3600)
    sent: list[tuple[str, bytes, bytes | None]] = []

    async def publish(topic: str, key: bytes, value: bytes | None) -> asyncio.Future:
        sent.append((topic, key, value))
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    processor = Processor(store, publish, settings, CFG, metrics, retrying)
    await processor.start()
    emitter = Emitter(store, publish, settings, CFG, metrics, retrying, backlog=lambda: 0)
    return Worker(processor, emitter, published=sent)


@dataclass
class Api:
    service: EngagementApi
    channel: grpc.aio.Channel
    stub: engagement_pb2_grpc.EngagementServiceStub
    redis: aioredis.Redis
    worker: Worker
    authority: TokenAuthority = field(default_factory=lambda: TokenAuthority(SECRET))

    async def call(self, method: str, request: object, subject: str = "eng-1", *roles: Role) -> object:
        token = self.authority.mint(subject, list(roles) or [Role.EMPLOYEE], 600)
        return await getattr(self.stub, method)(request, metadata=bearer(token), timeout=30)

    async def state_figures(self, employee: str, window: str) -> dict[str, float]:
        states = await self.worker.processor.store.read_states([employee])
        state = states[employee]
        assert state is not None
        day = max(state.as_of_day, self.worker.processor.watermark_ms // DAY_MS)
        return figures(state, day, CFG).windows[window]


@pytest.fixture
async def api(redis_url: str) -> AsyncIterator[Api]:
    client = aioredis.Redis.from_url(redis_url)
    worker = await make_worker(client)
    await worker.feed(history())
    settings = EngagementApiSettings(
        redis_url=redis_url,
        jwt_secret=SECRET,
        grpc_host="127.0.0.1",
        grpc_port=0,
        metrics_port=0,
        shutdown_grace_seconds=1,
        interactions_partitions=PARTITIONS,
    )
    service = build(settings, CollectorRegistry())
    await service.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{service.port}")
    yield Api(service, channel, engagement_pb2_grpc.EngagementServiceStub(channel), client, worker)
    await channel.close()
    await service.stop()
    await client.aclose()


async def expect(code: grpc.StatusCode, call: object, match: str = "") -> str:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    assert caught.value.code() == code, caught.value.details()
    assert match in (caught.value.details() or ""), caught.value.details()
    return caught.value.details() or ""


async def all_pages(api: Api, request: pb.GetLeaderboardRequest, subject: str = "eng-1") -> list:
    entries, token, pages = [], "", 0
    while True:
        request.page_token = token
        response = await api.call("GetLeaderboard", request, subject)
        entries += list(response.entries)
        pages += 1
        token = response.next_page_token
        if not token:
            return entries
        assert pages < 50


async def test_get_score_of_the_caller_has_windows_signals_and_as_of(api: Api) -> None:
    response = await api.call("GetScore", pb.GetScoreRequest(), "eng-0")
    assert response.employee_id == "eng-0"
    assert response.department_id == "eng"
    assert response.display_name == "ENG-0"
    assert set(response.windows) == {"7d", "30d", "100d", "decayed"}
    for window in response.windows:
        expected = await api.state_figures("eng-0", window)
        got = response.windows[window]
        for component in [*COMPONENTS, "total"]:
            assert getattr(got, component) == pytest.approx(expected[component]), (window, component)
    assert response.windows["30d"].total > 0
    assert response.signals["posts_30d"] > 0
    assert response.signals["distinct_reach_30d"] > 0
    assert response.as_of.ToMilliseconds() == api.worker.processor.watermark_ms
    assert not response.ranking_opt_out


async def test_get_score_matches_the_published_score_changed(api: Api) -> None:
    last = {}
    for _, key, value in api.worker.published:
        if value is not None:
            last[key.decode()] = envelope_pb2.Envelope.FromString(value).score_changed
    response = await api.call("GetScore", pb.GetScoreRequest(employee_id="eng-2"), "eng-2")
    assert response.windows["30d"].total == pytest.approx(last["eng-2"].windows["30d"].total)
    assert dict(response.signals) == pytest.approx(dict(last["eng-2"].signals))


async def test_colleagues_see_windows_without_signals_and_admins_see_everything(api: Api) -> None:
    colleague = await api.call("GetScore", pb.GetScoreRequest(employee_id="eng-0"), "sales-1")
    assert colleague.windows["30d"].total > 0
    assert not colleague.signals
    hr = await api.call("GetScore", pb.GetScoreRequest(employee_id="eng-0"), "hr-1", Role.ADMIN)
    assert hr.signals["posts_30d"] > 0


async def test_unknown_employees_and_bad_requests_get_readable_errors(api: Api) -> None:
    await expect(grpc.StatusCode.NOT_FOUND, api.call("GetScore", pb.GetScoreRequest(employee_id="nobody")), "nobody")
    await expect(
        grpc.StatusCode.NOT_FOUND,
        api.call("GetScore", pb.GetScoreRequest(employee_id="nobody"), "hr", Role.ADMIN),
        "no recorded activity",
    )
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        api.call("ExplainScore", pb.ExplainScoreRequest(window="1y"), "eng-0"),
        "window: '1y' is not a window; choose one of 7d, 30d, 100d, decayed",
    )
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        api.call("GetScore", pb.GetScoreRequest(employee_id="x" * 200)),
        "longer than 128",
    )
    await expect(grpc.StatusCode.UNAUTHENTICATED, api.stub.GetScore(pb.GetScoreRequest(), timeout=10), "bearer")


async def test_explain_score_adds_up_and_is_only_for_the_employee_and_comms(api: Api) -> None:
    response = await api.call("ExplainScore", pb.ExplainScoreRequest(window="30d"), "eng-0")
    assert response.window == "30d"
    expected = await api.state_figures("eng-0", "30d")
    assert response.total == pytest.approx(expected["total"])
    assert response.scores.total == pytest.approx(expected["total"])
    assert sum(c.points for c in response.contributions) == pytest.approx(expected["total"], abs=1e-3)
    top = response.contributions[0]
    assert top.points >= response.contributions[-1].points
    assert top.description and "points" in top.description
    assert any(c.activity == "posts" and c.count >= 4 for c in response.contributions)
    assert response.notes
    default = await api.call("ExplainScore", pb.ExplainScoreRequest(), "eng-0")
    assert default.window == "30d"
    admin = await api.call(
        "ExplainScore", pb.ExplainScoreRequest(employee_id="eng-0", window="decayed"), "hr", Role.ADMIN
    )
    assert admin.scores.total == pytest.approx((await api.state_figures("eng-0", "decayed"))["total"])
    await expect(
        grpc.StatusCode.PERMISSION_DENIED,
        api.call("ExplainScore", pb.ExplainScoreRequest(employee_id="eng-0"), "eng-1"),
        "explained only to the employee",
    )


async def test_company_leaderboard_is_ranked_and_pages_without_gaps(api: Api) -> None:
    whole = await api.call("GetLeaderboard", pb.GetLeaderboardRequest(window="30d", page_size=100))
    assert not whole.next_page_token
    ids = [e.employee_id for e in whole.entries]
    assert sorted(ids) == sorted(ENG + SALES)
    scores = [e.score for e in whole.entries]
    assert scores == sorted(scores, reverse=True)
    assert whole.entries[0].rank == 1
    for entry in whole.entries:
        assert entry.score == pytest.approx((await api.state_figures(entry.employee_id, "30d"))["total"])
        assert entry.display_name == entry.employee_id.upper()
        assert entry.department_id in ("eng", "sales")
    paged = await all_pages(api, pb.GetLeaderboardRequest(window="30d", page_size=2))
    assert [(e.rank, e.employee_id) for e in paged] == [(e.rank, e.employee_id) for e in whole.entries]


async def test_department_leaderboards_and_component_rankings(api: Api) -> None:
    eng = await all_pages(api, pb.GetLeaderboardRequest(department_id="eng", window="7d", page_size=4))
    assert sorted(e.employee_id for e in eng) == sorted(ENG)
    small = await api.call("GetLeaderboard", pb.GetLeaderboardRequest(department_id="sales"))
    assert small.hidden and not small.entries
    unknown = await api.call("GetLeaderboard", pb.GetLeaderboardRequest(department_id="nowhere"))
    assert unknown.hidden
    reach = await all_pages(api, pb.GetLeaderboardRequest(window="30d", component="reach", page_size=4))
    assert len(reach) == len(ENG + SALES)
    for entry in reach:
        assert entry.score == pytest.approx((await api.state_figures(entry.employee_id, "30d"))["reach"])
    assert [e.score for e in reach] == sorted((e.score for e in reach), reverse=True)


async def test_leaderboard_requests_are_checked(api: Api) -> None:
    first = await api.call("GetLeaderboard", pb.GetLeaderboardRequest(window="30d", page_size=2))
    assert first.next_page_token
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        api.call("GetLeaderboard", pb.GetLeaderboardRequest(window="7d", page_token=first.next_page_token)),
        "another leaderboard",
    )
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        api.call("GetLeaderboard", pb.GetLeaderboardRequest(page_token="not-a-token")),
        "not a token this service issued",
    )
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        api.call("GetLeaderboard", pb.GetLeaderboardRequest(page_size=-1)),
        "page_size",
    )
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        api.call("GetLeaderboard", pb.GetLeaderboardRequest(component="karma")),
        "not a score component",
    )
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT, api.call("GetLeaderboard", pb.GetLeaderboardRequest(window="2w")), "window"
    )


async def test_ranking_opt_out_hides_and_opt_in_restores_idempotently(api: Api) -> None:
    before = await api.call("GetLeaderboard", pb.GetLeaderboardRequest(window="30d", page_size=100))
    score_before = next(e.score for e in before.entries if e.employee_id == "eng-3")
    for _ in range(2):
        response = await api.call("SetRankingPreference", pb.SetRankingPreferenceRequest(opt_out=True), "eng-3")
        assert response.opt_out
    assert await api.redis.hget(state_key("eng-3"), "oo") == b"1"
    for window in CFG.leaderboards.windows:
        assert await api.redis.zscore(leaderboard(window), "eng-3") is None
        assert await api.redis.zscore(leaderboard(window, "eng"), "eng-3") is None
    assert await api.redis.zscore(dirty_set(home_bucket("eng-3", PARTITIONS)), "eng-3") is not None

    # the worker re-publishes with the new preference and does not put the entry back
    await api.worker.emitter.run_once(list(range(PARTITIONS)))
    change = envelope_pb2.Envelope.FromString(api.worker.published[-1][2]).score_changed
    assert change.employee_id == "eng-3" and change.ranking_opt_out
    assert await api.redis.zscore(leaderboard("30d"), "eng-3") is None

    boards = [
        await all_pages(api, pb.GetLeaderboardRequest(window="30d", page_size=3)),
        await all_pages(api, pb.GetLeaderboardRequest(department_id="eng", window="30d", page_size=3)),
        await all_pages(api, pb.GetLeaderboardRequest(window="30d", component="content", page_size=3)),
    ]
    for board in boards:
        assert "eng-3" not in [e.employee_id for e in board]
    await expect(
        grpc.StatusCode.NOT_FOUND,
        api.call("GetScore", pb.GetScoreRequest(employee_id="eng-3"), "eng-1"),
        "keep their score private",
    )
    own = await api.call("GetScore", pb.GetScoreRequest(), "eng-3")
    assert own.ranking_opt_out and own.windows["30d"].total == pytest.approx(score_before)
    explained = await api.call("ExplainScore", pb.ExplainScoreRequest(), "eng-3")
    assert any("opted out of ranking" in n for n in explained.notes)

    for _ in range(2):
        response = await api.call("SetRankingPreference", pb.SetRankingPreferenceRequest(opt_out=False), "eng-3")
        assert not response.opt_out
    assert await api.redis.hget(state_key("eng-3"), "oo") is None
    assert await api.redis.zscore(leaderboard("30d"), "eng-3") == pytest.approx(score_before)
    assert await api.redis.zscore(leaderboard("30d", "eng"), "eng-3") == pytest.approx(score_before)
    after = await api.call("GetLeaderboard", pb.GetLeaderboardRequest(window="30d", page_size=100))
    assert [(e.employee_id, e.score) for e in after.entries] == [(e.employee_id, e.score) for e in before.entries]
    await api.worker.emitter.run_once(list(range(PARTITIONS)))
    assert not envelope_pb2.Envelope.FromString(api.worker.published[-1][2]).score_changed.ranking_opt_out


async def test_opting_out_before_any_activity_is_kept_and_services_cannot_opt_out(api: Api) -> None:
    await api.call("SetRankingPreference", pb.SetRankingPreferenceRequest(opt_out=True), "newcomer")
    await api.worker.feed([event("EmployeeRegistered", "newcomer", END, "eng"), post("newcomer", END + 60, "eng")])
    board = await all_pages(api, pb.GetLeaderboardRequest(window="7d", page_size=50))
    assert "newcomer" not in [e.employee_id for e in board]
    assert await api.redis.zscore(leaderboard("7d"), "newcomer") is None
    await expect(
        grpc.StatusCode.PERMISSION_DENIED,
        api.call("SetRankingPreference", pb.SetRankingPreferenceRequest(opt_out=True), "importer", Role.SERVICE),
        "employee or admin role",
    )


async def test_forgotten_employees_are_not_found_and_cannot_be_resurrected(api: Api) -> None:
    await api.worker.feed([event("EmployeeForgotten", "eng-5", END + 10, "eng")])
    await expect(grpc.StatusCode.NOT_FOUND, api.call("GetScore", pb.GetScoreRequest(), "eng-5"), "no recorded activity")
    await expect(
        grpc.StatusCode.NOT_FOUND,
        api.call("SetRankingPreference", pb.SetRankingPreferenceRequest(opt_out=True), "eng-5"),
        "erased",
    )
    assert not await api.redis.exists(state_key("eng-5"))
    board = await all_pages(api, pb.GetLeaderboardRequest(window="30d", page_size=50))
    assert "eng-5" not in [e.employee_id for e in board]


async def test_department_adoption_with_minimum_group_size(api: Api) -> None:
    response = await api.call("GetDepartmentAdoption", pb.GetDepartmentAdoptionRequest(), "hr", Role.ADMIN)
    assert response.minimum_group_size == 5
    by_id = {d.department_id: d for d in response.departments}
    assert set(by_id) == {"eng", "sales"}
    eng = by_id["eng"]
    assert not eng.hidden and eng.employees == 6
    assert 0 < eng.active_7d <= eng.active_30d <= 6
    assert eng.engagement_rate_30d == pytest.approx(eng.active_30d / 6)
    assert eng.active_previous_7d > 0
    assert eng.trend_7d == pytest.approx((eng.active_7d - eng.active_previous_7d) / eng.active_previous_7d)
    sales = by_id["sales"]
    assert sales.hidden and sales.employees == 0 and sales.active_30d == 0
    assert response.as_of.ToMilliseconds() == api.worker.processor.watermark_ms
    one = await api.call("GetDepartmentAdoption", pb.GetDepartmentAdoptionRequest(department_id="eng"))
    assert [d.department_id for d in one.departments] == ["eng"]
    unknown = await api.call("GetDepartmentAdoption", pb.GetDepartmentAdoptionRequest(department_id="nowhere"))
    assert unknown.departments[0].hidden


async def test_figures_follow_the_watermark_so_inactive_people_decay(api: Api) -> None:
    before = await api.call("GetScore", pb.GetScoreRequest(), "eng-1")
    assert before.windows["7d"].total > before.windows["7d"].profile
    # only someone else is active, 40 days later: eng-1's windows empty out without any event of their own
    await api.worker.feed([post("sales-0", END + 40 * DAY, "sales")])
    after = await api.call("GetScore", pb.GetScoreRequest(), "eng-1")
    assert after.as_of.ToMilliseconds() == (END + 40 * DAY) * 1000
    assert after.windows["7d"].total == pytest.approx(after.windows["7d"].pilot + after.windows["7d"].profile)
    assert after.windows["30d"].total < before.windows["30d"].total
    assert after.windows["100d"].total == pytest.approx(before.windows["100d"].total)
    adoption = await api.call("GetDepartmentAdoption", pb.GetDepartmentAdoptionRequest(department_id="eng"))
    assert adoption.departments[0].active_7d == 0


async def test_the_process_serves_health_and_metrics_and_stops_on_sigterm(redis_url: str, tmp_path: Path) -> None:
    grpc_port, metrics_port = free_port(), free_port()
    env = {
        **os.environ,
        "PYTHONPATH": f"{ROOT}:{ROOT / 'gen'}",
        "CATALYST_REDIS_URL": redis_url,
        "CATALYST_JWT_SECRET": SECRET,
        "CATALYST_GRPC_HOST": "127.0.0.1",
        "CATALYST_GRPC_PORT": str(grpc_port),
        "CATALYST_METRICS_HOST": "127.0.0.1",
        "CATALYST_METRICS_PORT": str(metrics_port),
        "CATALYST_SHUTDOWN_GRACE_SECONDS": "2",
    }
    log = (tmp_path / "api.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "services.engagement.server"], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            request = health_pb2.HealthCheckRequest(service="catalyst.engagement.v1.EngagementService")
            for _ in range(100):
                try:
                    status = (await health.Check(request, timeout=2)).status
                    break
                except grpc.aio.AioRpcError:
                    await asyncio.sleep(0.2)
            assert status == health_pb2.HealthCheckResponse.SERVING
            token = TokenAuthority(SECRET).mint("hr", [Role.ADMIN], 60)
            stub = engagement_pb2_grpc.EngagementServiceStub(channel)
            adoption = await stub.GetDepartmentAdoption(pb.GetDepartmentAdoptionRequest(), metadata=bearer(token))
            assert adoption.minimum_group_size == 5
        page = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
        assert 'grpc_method="GetDepartmentAdoption"' in page
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
