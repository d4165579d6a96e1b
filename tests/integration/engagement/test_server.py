"""EngagementService over a real gRPC socket against a real Redis, seeded through the model's own path
(the worker's handler: model effects -> `RedisStore.apply`) and the publisher's round (ScoreChanged and the
leaderboards), with Kafka publishes recorded in memory."""

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
from aiokafka import AIOKafkaConsumer
from catalyst.engagement.v1 import engagement_pb2 as pb
from catalyst.engagement.v1 import engagement_pb2_grpc
from catalyst.events.v1 import envelope_pb2
from catalyst.events.v1.scores_pb2 import ScoreChanged
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import CollectorRegistry

from services.common.audit import PURPOSE_KEY
from services.common.auth import Role
from services.common.grpc_client import bearer
from services.common.local_issuer import LocalIssuer
from services.engagement.adapters.redis_store import DIRTY, RedisStore, leaderboard, state_key
from services.engagement.adapters.retrying import Retrying
from services.engagement.api import queries
from services.engagement.api.server import EngagementApi, build
from services.engagement.api.settings import EngagementApiSettings
from services.engagement.model.config import COMPONENTS, load_model
from services.engagement.model.figures import TOTAL, figures, iso_date
from services.engagement.model.state import OPT_OUT
from services.engagement.publisher.publisher import Publisher, PublisherMetrics
from services.engagement.publisher.settings import PublisherSettings
from services.engagement.worker.handler import Handler, Record
from services.engagement.worker.metrics import WorkerMetrics
from tests.conftest import RedisServer, free_port, trusted_issuer
from tests.policies import ranking_policy
from tests.unit.engagement.builders import DAY, comment, event, post, react
from tests.unit.engagement.fakes import MARKER_TTL, PSEUDONYM_KEY

ROOT = Path(__file__).resolve().parents[3]
MODEL = load_model()
PARTITIONS = 6
END = 20_400 * DAY  # 2025-11-08
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
class Pipeline:
    """The worker's handler and the publisher on real Redis; Kafka publishes are recorded."""

    store: RedisStore
    handler: Handler
    publisher: Publisher
    published: list[tuple[str, bytes, bytes | None]]
    offsets: dict[int, int] = field(default_factory=lambda: dict.fromkeys(range(PARTITIONS), 0))

    async def feed(self, events: list[envelope_pb2.Envelope]) -> None:
        records = []
        for env in events:
            p = zlib.crc32(env.employee_id.encode()) % PARTITIONS
            records.append(Record(p, self.offsets[p], env.employee_id.encode(), env.SerializeToString(), 0))
            self.offsets[p] += 1
        for start in range(0, len(records), 200):
            await self.handler.apply(self.handler.plan(records[start : start + 200]))
        await self.publisher.run_once()

    def last_score_changed(self, employee: str) -> ScoreChanged:
        for _, key, value in reversed(self.published):
            if key == employee.encode() and value is not None:
                return envelope_pb2.Envelope.FromString(value).score_changed
        raise AssertionError(f"no ScoreChanged of {employee}")


async def make_pipeline(client: aioredis.Redis, policy: Path | None = None) -> Pipeline:
    store = RedisStore(client, MODEL.keep_days, PSEUDONYM_KEY, MARKER_TTL)
    await store.load_scripts()
    settings = PublisherSettings(**({"policy_file": policy} if policy else {}))
    sent: list[tuple[str, bytes, bytes | None]] = []

    async def broadcast(topic: str, key: bytes, value: bytes) -> None:
        sent.append((topic, key, value))

    async def publish(topic: str, messages: list[tuple[bytes, bytes | None]]) -> None:
        sent.extend((topic, key, value) for key, value in messages)

    topics = (settings.topic_interactions, settings.topic_engagement, settings.topic_deadletter)
    worker_metrics = WorkerMetrics(CollectorRegistry())
    handler = Handler(store, publish, MODEL, topics, worker_metrics, Retrying(worker_metrics, 1.0))
    await handler.start()
    metrics = PublisherMetrics(CollectorRegistry())
    publisher = Publisher(store, publish, broadcast, MODEL, settings, metrics, Retrying(metrics, 1.0))
    return Pipeline(store, handler, publisher, sent)


@dataclass
class Api:
    service: EngagementApi
    channel: grpc.aio.Channel
    stub: engagement_pb2_grpc.EngagementServiceStub
    redis: aioredis.Redis
    pipeline: Pipeline
    authority: LocalIssuer = field(default_factory=trusted_issuer)

    async def call(
        self, method: str, request: object, subject: str = "eng-1", *roles: Role, purpose: str = "integration test"
    ) -> object:
        """Calls as `subject`, stating `purpose` (leave it empty to state none)."""
        token = self.authority.mint(subject, list(roles) or [Role.EMPLOYEE], 600)
        metadata = (*bearer(token), (PURPOSE_KEY, purpose)) if purpose else bearer(token)
        return await getattr(self.stub, method)(request, metadata=metadata, timeout=30)

    async def state_figures(self, employee: str, window: str) -> dict[str, float]:
        state = await self.pipeline.store.read_state(employee)
        assert state is not None
        day = queries.as_of_day(state, await self.pipeline.store.watermark())
        return figures(state, day, MODEL).windows[window]


async def serve_api(
    redis_url: str, kafka_bootstrap: str, topics: dict[str, str], policy: Path | None
) -> AsyncIterator[Api]:
    client = aioredis.Redis.from_url(redis_url)
    pipeline = await make_pipeline(client, policy)
    if policy is not None:  # everyone opted in before the history: all of them ranked
        for employee in ENG + SALES:
            await pipeline.store.set_opt_out(employee, False)
    await pipeline.feed(history())
    settings = EngagementApiSettings(
        **({"policy_file": policy} if policy else {}),
        redis_url=redis_url,
        kafka_bootstrap=kafka_bootstrap,
        topic_audit=topics["audit"],
        grpc_host="127.0.0.1",
        grpc_port=0,
        metrics_port=0,
        shutdown_grace_seconds=1,
    )
    service = build(settings, CollectorRegistry())
    await service.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{service.port}")
    yield Api(service, channel, engagement_pb2_grpc.EngagementServiceStub(channel), client, pipeline)
    await channel.close()
    await service.stop()
    await client.aclose()


@pytest.fixture
async def api(redis_url: str, kafka_bootstrap: str, topics: dict[str, str]) -> AsyncIterator[Api]:
    """Under the default policy (works council: no rankings, no colleague's figures)."""
    async for served in serve_api(redis_url, kafka_bootstrap, topics, None):
        yield served


@pytest.fixture
async def ranked(redis_url: str, kafka_bootstrap: str, topics: dict[str, str], tmp_path: Path) -> AsyncIterator[Api]:
    """Under a policy with rankings of the people who opted in; everyone in the history opted in."""
    async for served in serve_api(redis_url, kafka_bootstrap, topics, ranking_policy(tmp_path)):
        yield served


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
        for component in [*COMPONENTS, TOTAL]:
            assert getattr(got, component) == pytest.approx(expected[component]), (window, component)
    assert response.windows["30d"].total > 0
    assert response.signals["posts_30d"] > 0
    assert response.signals["distinct_reach_30d"] > 0
    assert response.as_of.ToMilliseconds() == api.pipeline.handler.watermark_ms
    assert not response.ranking_opt_out


async def test_get_score_matches_the_published_score_changed(api: Api) -> None:
    published = api.pipeline.last_score_changed("eng-2")
    response = await api.call("GetScore", pb.GetScoreRequest(employee_id="eng-2"), "eng-2")
    for window in MODEL.window_names:
        assert response.windows[window].total == pytest.approx(published.windows[window].total), window
    assert dict(response.signals) == pytest.approx(dict(published.signals))


async def test_under_the_default_policy_nobody_sees_a_colleagues_figures_or_any_ranking(api: Api) -> None:
    await expect(
        grpc.StatusCode.NOT_FOUND,
        api.call("GetScore", pb.GetScoreRequest(employee_id="eng-0"), "sales-1"),
        "keep their score private",
    )
    for role in (Role.EMPLOYEE, Role.PROGRAMME_OWNER, Role.HR, Role.WORKS_COUNCIL):
        await expect(
            grpc.StatusCode.PERMISSION_DENIED,
            api.call("GetLeaderboard", pb.GetLeaderboardRequest(window="30d"), "eng-1", role),
            "visibility.rankings: none",
        )
    assert [key async for key in api.redis.scan_iter(match="eng:lb:*")] == []  # no ranking is even stored
    owner = await api.call("GetScore", pb.GetScoreRequest(employee_id="eng-0"), "po-1", Role.PROGRAMME_OWNER)
    assert owner.signals["posts_30d"] > 0


async def test_a_ranking_policy_shows_colleagues_who_opted_in_without_signals(ranked: Api) -> None:
    colleague = await ranked.call("GetScore", pb.GetScoreRequest(employee_id="eng-0"), "sales-1")
    assert colleague.windows["30d"].total > 0
    assert not colleague.signals
    owner = await ranked.call("GetScore", pb.GetScoreRequest(employee_id="eng-0"), "po-1", Role.PROGRAMME_OWNER)
    assert owner.signals["posts_30d"] > 0


async def test_unknown_employees_and_bad_requests_get_readable_errors(api: Api) -> None:
    await expect(grpc.StatusCode.NOT_FOUND, api.call("GetScore", pb.GetScoreRequest(employee_id="nobody")), "nobody")
    await expect(
        grpc.StatusCode.NOT_FOUND,
        api.call("GetScore", pb.GetScoreRequest(employee_id="nobody"), "hr", Role.PROGRAMME_OWNER),
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
    owner = await api.call(
        "ExplainScore", pb.ExplainScoreRequest(employee_id="eng-0", window="decayed"), "hr", Role.PROGRAMME_OWNER
    )
    assert owner.scores.total == pytest.approx((await api.state_figures("eng-0", "decayed"))["total"])
    await expect(
        grpc.StatusCode.PERMISSION_DENIED,
        api.call("ExplainScore", pb.ExplainScoreRequest(employee_id="eng-0"), "eng-1"),
        "explained only to the employee",
    )


async def test_a_look_up_of_someone_elses_score_needs_a_purpose_and_is_audited(
    api: Api, kafka_bootstrap: str, topics: dict[str, str]
) -> None:
    request = pb.ExplainScoreRequest(employee_id="eng-0", window="30d")
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        api.call("ExplainScore", request, "po-1", Role.PROGRAMME_OWNER, purpose=""),
        PURPOSE_KEY,
    )
    await api.call("GetScore", pb.GetScoreRequest(), "eng-0", purpose="")  # one's own: no purpose, no entry
    await api.call("ExplainScore", request, "po-1", Role.PROGRAMME_OWNER, purpose="invitation for the pilot")
    consumer = AIOKafkaConsumer(topics["audit"], bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        record = await asyncio.wait_for(consumer.getone(), timeout=10)
    finally:
        await consumer.stop()
    entry = envelope_pb2.Envelope.FromString(record.value)
    assert record.key == b"eng-0" and entry.employee_id == "eng-0" and entry.producer == "engagement-api"
    assert entry.data_accessed.actor == "po-1" and entry.data_accessed.purpose == "invitation for the pilot"
    assert entry.data_accessed.method == "catalyst.engagement.v1.EngagementService/ExplainScore"


async def test_company_leaderboard_is_ranked_and_pages_without_gaps(ranked: Api) -> None:
    whole = await ranked.call("GetLeaderboard", pb.GetLeaderboardRequest(window="30d", page_size=100))
    assert not whole.next_page_token
    ids = [e.employee_id for e in whole.entries]
    assert sorted(ids) == sorted(ENG + SALES)
    scores = [e.score for e in whole.entries]
    assert scores == sorted(scores, reverse=True)
    assert whole.entries[0].rank == 1
    for entry in whole.entries:
        assert entry.score == pytest.approx((await ranked.state_figures(entry.employee_id, "30d"))["total"])
        assert entry.display_name == entry.employee_id.upper()
        assert entry.department_id in ("eng", "sales")
    paged = await all_pages(ranked, pb.GetLeaderboardRequest(window="30d", page_size=2))
    assert [(e.rank, e.employee_id) for e in paged] == [(e.rank, e.employee_id) for e in whole.entries]


async def test_department_leaderboards_and_component_rankings(ranked: Api) -> None:
    eng = await all_pages(ranked, pb.GetLeaderboardRequest(department_id="eng", window="100d", page_size=4))
    assert sorted(e.employee_id for e in eng) == sorted(ENG)
    small = await ranked.call("GetLeaderboard", pb.GetLeaderboardRequest(department_id="sales"))
    assert small.hidden and not small.entries
    unknown = await ranked.call("GetLeaderboard", pb.GetLeaderboardRequest(department_id="nowhere"))
    assert unknown.hidden
    reach = await all_pages(ranked, pb.GetLeaderboardRequest(window="30d", component="reach", page_size=4))
    assert len(reach) == len(ENG + SALES)
    for entry in reach:
        assert entry.score == pytest.approx((await ranked.state_figures(entry.employee_id, "30d"))["reach"])
    assert [e.score for e in reach] == sorted((e.score for e in reach), reverse=True)


async def test_leaderboard_requests_are_checked(ranked: Api) -> None:
    first = await ranked.call("GetLeaderboard", pb.GetLeaderboardRequest(window="30d", page_size=2))
    assert first.next_page_token
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        ranked.call("GetLeaderboard", pb.GetLeaderboardRequest(window="100d", page_token=first.next_page_token)),
        "another leaderboard",
    )
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        ranked.call("GetLeaderboard", pb.GetLeaderboardRequest(page_token="not-a-token")),
        "not a token this service issued",
    )
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        ranked.call("GetLeaderboard", pb.GetLeaderboardRequest(page_size=-1)),
        "page_size",
    )
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        ranked.call("GetLeaderboard", pb.GetLeaderboardRequest(component="karma")),
        "not a score component",
    )
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT, ranked.call("GetLeaderboard", pb.GetLeaderboardRequest(window="2w")), "window"
    )


async def test_there_is_no_ranking_over_a_week(ranked: Api) -> None:
    """A week of bursts outscores an ambassador's quiet week, so 7 days are scored and explained, never ranked."""
    for department in ("", "eng"):
        for component in ("", "content"):
            request = pb.GetLeaderboardRequest(window="7d", department_id=department, component=component)
            await expect(
                grpc.StatusCode.INVALID_ARGUMENT,
                ranked.call("GetLeaderboard", request),
                "window: '7d' has no leaderboard; windows with a leaderboard: 30d, 100d, decayed",
            )
    assert "7d" in (await ranked.call("GetScore", pb.GetScoreRequest(), "eng-0")).windows
    assert (await ranked.call("ExplainScore", pb.ExplainScoreRequest(window="7d"), "eng-0")).window == "7d"
    assert not [key async for key in ranked.redis.scan_iter(match=leaderboard("7d") + "*")]


async def test_ranking_opt_out_hides_and_opt_in_restores_idempotently(ranked: Api) -> None:
    before = await ranked.call("GetLeaderboard", pb.GetLeaderboardRequest(window="30d", page_size=100))
    score_before = next(e.score for e in before.entries if e.employee_id == "eng-3")
    for _ in range(2):
        response = await ranked.call("SetRankingPreference", pb.SetRankingPreferenceRequest(opt_out=True), "eng-3")
        assert response.opt_out
    assert await ranked.redis.hget(state_key("eng-3"), OPT_OUT) == b"1"
    for window in MODEL.leaderboards.windows:
        assert await ranked.redis.zscore(leaderboard(window), "eng-3") is None
        assert await ranked.redis.zscore(leaderboard(window, "eng"), "eng-3") is None
    assert await ranked.redis.zscore(DIRTY, "eng-3") is not None

    # the publisher re-publishes with the new preference and does not put the entry back
    await ranked.pipeline.publisher.run_once()
    assert ranked.pipeline.last_score_changed("eng-3").ranking_opt_out
    assert await ranked.redis.zscore(leaderboard("30d"), "eng-3") is None

    boards = [
        await all_pages(ranked, pb.GetLeaderboardRequest(window="30d", page_size=3)),
        await all_pages(ranked, pb.GetLeaderboardRequest(department_id="eng", window="30d", page_size=3)),
        await all_pages(ranked, pb.GetLeaderboardRequest(window="30d", component="content", page_size=3)),
    ]
    for board in boards:
        assert "eng-3" not in [e.employee_id for e in board]
    await expect(
        grpc.StatusCode.NOT_FOUND,
        ranked.call("GetScore", pb.GetScoreRequest(employee_id="eng-3"), "eng-1"),
        "keep their score private",
    )
    own = await ranked.call("GetScore", pb.GetScoreRequest(), "eng-3")
    assert own.ranking_opt_out and own.windows["30d"].total == pytest.approx(score_before)
    explained = await ranked.call("ExplainScore", pb.ExplainScoreRequest(), "eng-3")
    assert any("opted out of ranking" in n for n in explained.notes)

    for _ in range(2):
        response = await ranked.call("SetRankingPreference", pb.SetRankingPreferenceRequest(opt_out=False), "eng-3")
        assert not response.opt_out
    assert await ranked.redis.hget(state_key("eng-3"), OPT_OUT) == b"0"  # opting in is kept as a choice
    assert await ranked.redis.zscore(leaderboard("30d"), "eng-3") == pytest.approx(score_before)
    assert await ranked.redis.zscore(leaderboard("30d", "eng"), "eng-3") == pytest.approx(score_before)
    after = await ranked.call("GetLeaderboard", pb.GetLeaderboardRequest(window="30d", page_size=100))
    assert [(e.employee_id, e.score) for e in after.entries] == [(e.employee_id, e.score) for e in before.entries]
    await ranked.pipeline.publisher.run_once()
    assert not ranked.pipeline.last_score_changed("eng-3").ranking_opt_out
    assert await ranked.redis.zscore(leaderboard("30d"), "eng-3") == pytest.approx(score_before)


async def test_opting_out_before_any_activity_is_kept_and_services_cannot_opt_out(ranked: Api) -> None:
    await ranked.call("SetRankingPreference", pb.SetRankingPreferenceRequest(opt_out=True), "newcomer")
    await ranked.pipeline.feed([event("EmployeeRegistered", "newcomer", END, "eng"), post("newcomer", END + 60, "eng")])
    board = await all_pages(ranked, pb.GetLeaderboardRequest(window="30d", page_size=50))
    assert "newcomer" not in [e.employee_id for e in board]
    assert await ranked.redis.zscore(leaderboard("30d"), "newcomer") is None
    await expect(
        grpc.StatusCode.PERMISSION_DENIED,
        ranked.call("SetRankingPreference", pb.SetRankingPreferenceRequest(opt_out=True), "importer", Role.SERVICE),
        "employee or programme_owner or hr role",
    )


async def test_forgotten_employees_are_not_found_and_cannot_be_resurrected(ranked: Api) -> None:
    stale = [leaderboard("7d"), leaderboard("7d", "eng")]  # boards a former scoring file ranked
    for key in stale:
        await ranked.redis.zadd(key, {"eng-5": 1.0})
    await ranked.pipeline.feed([event("EmployeeForgotten", "eng-5", END + 10, "eng")])
    for key in stale:
        assert await ranked.redis.zscore(key, "eng-5") is None
    await expect(
        grpc.StatusCode.NOT_FOUND, ranked.call("GetScore", pb.GetScoreRequest(), "eng-5"), "no recorded activity"
    )
    await expect(
        grpc.StatusCode.NOT_FOUND,
        ranked.call("SetRankingPreference", pb.SetRankingPreferenceRequest(opt_out=True), "eng-5"),
        "erased",
    )
    assert not await ranked.redis.exists(state_key("eng-5"))  # only the keyed erasure marker stays
    assert await ranked.redis.ttl(ranked.pipeline.store.gone("eng-5")) > 0
    board = await all_pages(ranked, pb.GetLeaderboardRequest(window="30d", page_size=50))
    assert "eng-5" not in [e.employee_id for e in board]


async def test_get_my_data_returns_the_callers_stored_state_and_nothing_of_anyone_else(api: Api) -> None:
    mine = await api.call("GetMyData", pb.GetMyDataRequest(), "eng-1", purpose="")
    assert mine.employee_id == "eng-1"  # the request names nobody: it is always the caller's own
    state = await api.pipeline.store.read_state("eng-1")
    assert state is not None
    assert [d.date for d in mine.days] == [iso_date(d) for d in sorted({*state.daily, *state.paired})]
    assert {d.date: dict(d.counts) for d in mine.days if d.counts} == {
        iso_date(day): counts for day, counts in state.daily.items()
    }
    keyed = {(d.date, c): dict(k.counts) for d in mine.days for c, k in d.keyed.items()}
    assert keyed == {(iso_date(day), c): per for day, by in state.paired.items() for c, per in by.items()}
    assert "eng-0" not in str(mine)  # colleagues appear only as keyed pseudonyms
    assert dict(mine.latest)["department"] == "eng" and mine.changes == state.changes
    assert mine.ranking_choice == ""
    nobody = await api.call("GetMyData", pb.GetMyDataRequest(), "never-seen")
    assert nobody.employee_id == "never-seen" and not nobody.days


async def test_department_adoption_with_minimum_group_size(api: Api) -> None:
    response = await api.call("GetDepartmentAdoption", pb.GetDepartmentAdoptionRequest(), "hr", Role.PROGRAMME_OWNER)
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
    assert response.as_of.ToMilliseconds() == api.pipeline.handler.watermark_ms
    one = await api.call("GetDepartmentAdoption", pb.GetDepartmentAdoptionRequest(department_id="eng"))
    assert [d.department_id for d in one.departments] == ["eng"]
    unknown = await api.call("GetDepartmentAdoption", pb.GetDepartmentAdoptionRequest(department_id="nowhere"))
    assert unknown.departments[0].hidden


async def test_figures_follow_the_watermark_so_inactive_people_decay(api: Api) -> None:
    before = await api.call("GetScore", pb.GetScoreRequest(), "eng-1")
    assert before.windows["7d"].total > before.windows["7d"].profile
    # only someone else is active, 40 days later: eng-1's windows empty out without any event of their own
    await api.pipeline.feed([post("sales-0", END + 40 * DAY, "sales")])
    after = await api.call("GetScore", pb.GetScoreRequest(), "eng-1")
    assert after.as_of.ToMilliseconds() == (END + 40 * DAY) * 1000
    assert after.windows["7d"].total == pytest.approx(after.windows["7d"].pilot + after.windows["7d"].profile)
    assert after.windows["30d"].total < before.windows["30d"].total
    assert after.windows["100d"].total == pytest.approx(before.windows["100d"].total)
    adoption = await api.call("GetDepartmentAdoption", pb.GetDepartmentAdoptionRequest(department_id="eng"))
    assert adoption.departments[0].active_7d == 0


async def test_a_redis_outage_answers_unavailable_and_passes(api: Api, redis_server: RedisServer) -> None:
    redis_server.stop()
    try:
        await expect(grpc.StatusCode.UNAVAILABLE, api.call("GetScore", pb.GetScoreRequest(), "eng-0"), "Redis")
    finally:
        redis_server.start()
    assert (await api.call("GetScore", pb.GetScoreRequest(), "eng-0")).windows["30d"].total > 0


async def test_the_process_serves_health_and_metrics_and_stops_on_sigterm(redis_url: str, tmp_path: Path) -> None:
    grpc_port, metrics_port = free_port(), free_port()
    env = {
        **os.environ,
        "PYTHONPATH": f"{ROOT}:{ROOT / 'gen'}",
        "CATALYST_REDIS_URL": redis_url,
        "CATALYST_GRPC_HOST": "127.0.0.1",
        "CATALYST_GRPC_PORT": str(grpc_port),
        "CATALYST_METRICS_HOST": "127.0.0.1",
        "CATALYST_METRICS_PORT": str(metrics_port),
        "CATALYST_SHUTDOWN_GRACE_SECONDS": "2",
    }
    log = (tmp_path / "api.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "services.engagement.api"], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
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
            token = trusted_issuer().mint("hr", [Role.PROGRAMME_OWNER], 60)
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
