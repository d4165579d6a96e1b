"""Every bad request gets a clear answer and nothing accepted is dropped (issue 23), over a real socket:
undecodable bodies, impossible times, people outside the directory, imports looser than the API and a Redis
restart each get the status a client can act on, never UNKNOWN or INTERNAL."""

from __future__ import annotations

import grpc
import pytest
from catalyst.events.v1 import interactions_pb2 as ev
from catalyst.feed.v1 import feed_pb2 as pb
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from services.common.auth import Role
from tests.conftest import RedisServer
from tests.integration.feed.harness import Feed, wait_for

pytestmark = pytest.mark.integration

ALICE, BOB = "e-alice", "e-bob"
FEED = "/catalyst.feed.v1.FeedService/"
T0 = 1_650_000_000


@pytest.fixture
async def people(feed: Feed) -> Feed:
    await feed.directory((ALICE, "Alice", "sales"), (BOB, "Bob", "it"))
    return feed


def with_bad_utf8(message: Message, marker: str) -> bytes:
    """The message's bytes with `marker` (set in a string field) replaced by as many invalid UTF-8 bytes."""
    data = message.SerializeToString()
    assert marker.encode() in data
    return data.replace(marker.encode(), b"\xff" * len(marker))


async def raw_call(feed: Feed, method: str, body: bytes, *roles: Role) -> grpc.aio.AioRpcError:
    call = feed.channel.unary_unary(FEED + method)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call(body, metadata=feed.auth(ALICE, *roles), timeout=30)
    return info.value


async def ingest(feed: Feed, *items: pb.ImportedInteraction) -> pb.IngestInteractionsResponse:
    request = pb.IngestInteractionsRequest(source="legacy", interactions=items)
    return await feed.call("IngestInteractions", request, "bridge", Role.SERVICE)


async def refused(feed: Feed, *items: pb.ImportedInteraction) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await ingest(feed, *items)
    return info.value


def imported(
    source_id: str, actor: str = ALICE, seconds: int = T0, nanos: int = 0, **kind: object
) -> pb.ImportedInteraction:
    at = Timestamp(seconds=seconds, nanos=nanos)
    return pb.ImportedInteraction(source_id=source_id, actor_id=actor, occurred_at=at, **kind)


MARK = "MARKER-FOR-INVALID-UTF8"
UNDECODABLE = [
    ("CreatePost", with_bad_utf8(pb.CreatePostRequest(body=MARK), MARK), ()),
    ("UpdateProfile", with_bad_utf8(pb.UpdateProfileRequest(about=MARK), MARK), ()),
    (
        "IngestInteractions",
        with_bad_utf8(
            pb.IngestInteractionsRequest(
                source="legacy",
                interactions=[imported("1", feature_tried=ev.FeatureTried(feature_id=MARK))],
            ),
            MARK,
        ),
        (Role.SERVICE,),
    ),
    (
        "UpsertEmployees",
        with_bad_utf8(
            pb.UpsertEmployeesRequest(employees=[pb.Employee(employee_id="e-x", display_name=MARK, department_id="d")]),
            MARK,
        ),
        (Role.HR,),
    ),
    ("CreatePost", pb.CreatePostRequest(title="t", body="a longer body").SerializeToString()[:-3], ()),
    ("AddComment", bytes(range(7, 250, 3)), ()),
]


@pytest.mark.parametrize(("method", "body", "roles"), UNDECODABLE)
async def test_an_undecodable_body_is_invalid_argument_not_unknown(
    people: Feed, method: str, body: bytes, roles: tuple[Role, ...]
) -> None:
    error = await raw_call(people, method, body, *roles)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert error.details().startswith("request: the body is not a valid message"), error.details()
    labels = {"grpc_service": "catalyst.feed.v1.FeedService", "grpc_method": method, "grpc_code": "INVALID_ARGUMENT"}
    assert people.metric("grpc_server_handled_total", labels) == 1


async def test_an_undecodable_health_check_is_invalid_argument(feed: Feed) -> None:
    check = feed.channel.unary_unary("/grpc.health.v1.Health/Check")
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await check(b"\x0a\x05\xff\xfe\xfd\xfc\xfb", timeout=30)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, info.value.details()


@pytest.mark.parametrize(
    ("seconds", "nanos", "field"),
    [
        (T0, -1, "occurred_at.nanos"),
        (T0, 1_000_000_000, "occurred_at.nanos"),
        (253_402_300_800, 0, "occurred_at"),
        (0, 1_000_000, "occurred_at.seconds"),  # accepted before, then dead-lettered as "occurred_at is missing"
    ],
)
async def test_an_impossible_time_is_invalid_argument_not_internal(
    people: Feed, seconds: int, nanos: int, field: str
) -> None:
    error = await refused(
        people, imported("1", seconds=seconds, nanos=nanos, feature_tried=ev.FeatureTried(feature_id="f"))
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert error.details().startswith(f"interactions[0].{field}:"), error.details()


async def test_a_reaction_to_someone_outside_the_directory_is_refused_not_scored(people: Feed) -> None:
    reaction = ev.ReactionAdded(post_id="old-1", post_author_id="e-ghost", reaction=ev.REACTION_KIND_LIKE)
    error = await refused(people, imported("1", actor=BOB, reaction_added=reaction))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "interactions[0].reaction_added.post_author_id" in error.details() and "e-ghost" in error.details()
    known = ev.ReactionAdded(post_id="old-1", post_author_id=ALICE, reaction=ev.REACTION_KIND_LIKE)
    assert (await ingest(people, imported("1", actor=BOB, reaction_added=known))).accepted == 1


@pytest.mark.parametrize(
    ("kind", "field"),
    [
        ({"feedback_submitted": ev.FeedbackSubmitted(feedback_id="f", kind=99)}, "feedback_submitted.kind"),
        ({"workshop_attended": ev.WorkshopAttended(session_id="w", kind=99)}, "workshop_attended.kind"),
        ({"post_created": ev.PostCreated(post_id="p", kind=99)}, "post_created.kind"),
        (
            {"survey_answered": ev.SurveyAnswered(survey_id="s", answered_questions=-1)},
            "survey_answered.answered_questions",
        ),
        (
            {"survey_answered": ev.SurveyAnswered(survey_id="s", answered_questions=2**31 - 1)},
            "survey_answered.answered_questions",
        ),
    ],
)
async def test_an_import_is_as_strict_as_the_per_employee_rpcs(
    people: Feed, kind: dict[str, object], field: str
) -> None:
    error = await refused(people, imported("1", **kind))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith(f"interactions[0].{field}:"), error.details()


async def test_a_redis_restart_is_unavailable_with_a_retry_hint_then_calls_succeed(
    people: Feed, redis_server: RedisServer
) -> None:
    trial = imported("1", feature_tried=ev.FeatureTried(feature_id="f"))
    redis_server.stop()
    try:
        for call in (
            ingest(people, trial),
            people.call("RecordFeatureTrial", pb.RecordFeatureTrialRequest(feature_id="f"), ALICE),
            people.call("GetProfile", pb.GetProfileRequest(), ALICE),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await call
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE, info.value.details()
            assert "Redis" in info.value.details() and "retry" in info.value.details()
            assert ("grpc-retry-pushback-ms", "1000") in tuple(info.value.trailing_metadata() or ())
    finally:
        redis_server.start()
    await wait_for(lambda: _accepted(people, trial), timeout=30)


async def _accepted(feed: Feed, item: pb.ImportedInteraction) -> bool:
    """One more try of a call the outage refused (Redis may still be loading its data)."""
    try:
        await ingest(feed, item)
    except grpc.aio.AioRpcError as error:
        assert error.code() == grpc.StatusCode.UNAVAILABLE, error.details()
        return False
    return True


async def test_a_display_name_the_worker_would_dead_letter_is_refused(feed: Feed) -> None:
    employees = [pb.Employee(employee_id="e-1", display_name="Eve\x01", department_id="d")]
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await feed.call("UpsertEmployees", pb.UpsertEmployeesRequest(employees=employees), "hr", Role.HR)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details().startswith("employees[0].display_name:")
