"""Property-based fuzzing of every RPC of the feed, recognition and engagement services, running as real
processes against the real broker and Redis, with a fixed budget: deterministic examples (hypothesis,
derandomized), at most `CATALYST_FUZZ_EXAMPLES` per RPC and kind.

Every request, valid, at the edges or corrupted on the wire, must get a status a client can act on (never
INTERNAL, UNKNOWN or a timeout, and always with a message). Afterwards every service is SERVING, the
engagement worker has consumed the whole interactions topic, everything the feed acknowledged is on that
topic, every person an event names is in the directory (no phantom gets a score), and nothing was
dead-lettered: the feed refuses at its API whatever the worker could not score.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
import yaml
from catalyst.engagement.v1 import engagement_pb2
from catalyst.events.v1 import envelope_pb2
from catalyst.feed.v1 import feed_pb2
from catalyst.recognition.v1 import recognition_pb2
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import DecodeError
from google.protobuf.message_factory import GetMessageClass
from grpc_health.v1 import health_pb2
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from services.common.auth import Role
from services.common.grpc_client import bearer
from services.common.grpc_server import MAX_REQUEST_BYTES
from services.feed.events import ingest_event_id
from services.feed.ingest import TARGET_AUTHOR_FIELDS
from tests.conftest import RedisServer
from tests.integration.engagement.harness import committed_all, wait_until
from tests.integration.fuzz.messages import Pools, corrupted, messages
from tests.integration.ops.system import CatalystSystem, running_system
from tests.integration.recognition.harness import read_topic

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
SERVICES = {
    "feed": feed_pb2.DESCRIPTOR.services_by_name["FeedService"],
    "recognition": recognition_pb2.DESCRIPTOR.services_by_name["RecognitionService"],
    "engagement": engagement_pb2.DESCRIPTOR.services_by_name["EngagementService"],
}
METHODS = [(service, method) for service, descriptor in SERVICES.items() for method in descriptor.methods]
EXAMPLES = int(os.environ.get("CATALYST_FUZZ_EXAMPLES", "40"))
IMPORT_WEIGHT = 5
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    phases=(Phase.explicit, Phase.generate),
    suppress_health_check=list(HealthCheck),
)
CALL_SECONDS = 20.0
STREAM_SECONDS = 0.3  # a valid StreamBadgeEvents call stays open until its deadline
CLIENT_ANSWERS = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.FAILED_PRECONDITION,
}

MEMBERS = {"d-fuzz-a": ["fz-0", "fz-1", "fz-2"], "d-fuzz-b": ["fz-3", "fz-4", "fz-5"]}
PEOPLE = [e for people in MEMBERS.values() for e in people]
BADGES = list(yaml.safe_load((ROOT / "tests/integration/mechanics_badges.yaml").read_text())["badges"])
# RPC -> the id of what its response acknowledges; an event carrying that id must reach the topic.
ACKNOWLEDGED = {
    "CreatePost": lambda r: r.post.post_id,
    "AskQuestion": lambda r: r.question.post_id,
    "AddComment": lambda r: r.comment.comment_id,
    "PostAnswer": lambda r: r.answer.comment_id,
    "SubmitFeedback": lambda r: r.feedback_id,
}
# payload -> the field holding the id of the content it is about
CONTENT_ID = {
    "post_created": "post_id",
    "question_asked": "question_id",
    "comment_added": "comment_id",
    "answer_posted": "answer_id",
    "feedback_submitted": "feedback_id",
}


@dataclass
class Fuzzed:
    """The running system, a channel per service, what the requests draw from and what the feed acknowledged."""

    system: CatalystSystem
    channels: dict[str, grpc.Channel]
    pools: Pools
    acknowledged: set[str] = field(default_factory=set)  # content ids and event ids

    def tokens(self) -> st.SearchStrategy[tuple[tuple[str, str], ...]]:
        roles = st.lists(st.sampled_from(list(Role)), min_size=1, max_size=2, unique=True)
        subject = st.sampled_from([*PEOPLE, "fz-ghost", "hr-fuzz"])
        valid = st.builds(lambda s, r: bearer(self.system.token(s, *r)), subject, roles)
        broken = st.sampled_from([(), (("authorization", "Bearer not-a-token"),), (("authorization", "Basic x"),)])
        return st.one_of(valid, valid, valid, broken)

    def send(self, service: str, method: MethodDescriptor, body: bytes, metadata: tuple[tuple[str, str], ...]) -> None:
        """Sends raw request bytes; asserts a status a client can act on and records what was acknowledged."""
        path = f"/{SERVICES[service].full_name}/{method.name}"
        channel = self.channels[service]
        try:
            if method.server_streaming:
                with_deadline = channel.unary_stream(path)(body, metadata=metadata, timeout=STREAM_SECONDS)
                next(iter(with_deadline), None)
                with_deadline.cancel()
                return
            response = channel.unary_unary(path)(body, metadata=metadata, timeout=CALL_SECONDS)
        except grpc.RpcError as error:
            code, details = error.code(), error.details() or ""
            streamed = method.server_streaming and code in (
                grpc.StatusCode.DEADLINE_EXCEEDED,
                grpc.StatusCode.CANCELLED,
            )
            oversized = len(body) > MAX_REQUEST_BYTES and code == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert streamed or oversized or code in CLIENT_ANSWERS, f"{path} answered {code.name}: {details}"
            assert streamed or details.strip(), f"{path} answered {code.name} without a message"
            return
        self._acknowledge(method, body, response)

    def _acknowledge(self, method: MethodDescriptor, body: bytes, response: bytes) -> None:
        if method.name in ACKNOWLEDGED:
            self.acknowledged.add(ACKNOWLEDGED[method.name](GetMessageClass(method.output_type).FromString(response)))
        elif method.name == "IngestInteractions":
            request = feed_pb2.IngestInteractionsRequest.FromString(body)
            source = request.source.strip()
            self.acknowledged.update(ingest_event_id(source, item.source_id.strip()) for item in request.interactions)


def _seed(system: CatalystSystem, feed: grpc.Channel) -> dict[str, list[str]]:
    """Directory entries and one post, question and answer, so that valid requests reach deep."""
    for department, people in MEMBERS.items():
        system.register(*people, department=department)

    def call(method: str, request: object, subject: str) -> object:
        rpc = getattr(feed_pb2, f"{method}Response")
        unary = feed.unary_unary(
            f"/catalyst.feed.v1.FeedService/{method}",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=rpc.FromString,
        )
        return unary(request, metadata=bearer(system.token(subject)), timeout=CALL_SECONDS)

    post = call("CreatePost", feed_pb2.CreatePostRequest(title="Fuzz", body="A post to react to"), "fz-0").post
    question = call("AskQuestion", feed_pb2.AskQuestionRequest(title="Why?", body="Tell me"), "fz-1").question
    answer = call("PostAnswer", feed_pb2.PostAnswerRequest(question_id=question.post_id, body="So"), "fz-2").answer
    return {"posts": [post.post_id, question.post_id], "answers": [answer.comment_id]}


@pytest.fixture(scope="module")
def fuzzed(
    kafka_bootstrap: str, redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Fuzzed]:
    for system in running_system(kafka_bootstrap, redis_server.port, tmp_path_factory.mktemp("fuzz")):
        channels = {service: grpc.insecure_channel(system.grpc_target(service)) for service in SERVICES}
        seeded = _seed(system, channels["feed"])
        people = [*PEOPLE, "fz-ghost"]
        departments = [*MEMBERS, "d-unknown"]
        pools: dict[str, list[str]] = {
            **dict.fromkeys(
                ["employee_id", "actor_id", "post_author_id", "question_author_id", "answer_author_id"], people
            ),
            **dict.fromkeys(
                [
                    "department_id",
                    "target_department_id",
                    "post_author_department_id",
                    "question_author_department_id",
                    "answer_author_department_id",
                ],
                departments,
            ),
            **dict.fromkeys(["post_id", "question_id"], seeded["posts"]),
            **dict.fromkeys(["answer_id", "comment_id"], seeded["answers"]),
            "source": ["legacy", "hr-import"],
            "source_id": ["s-1", "s-2", "s-3"],
            "feature_id": ["search-v2"],
            "survey_id": ["pre-launch"],
            "session_id": ["ws-1"],
            "badge": BADGES,
            "window": ["7d", "30d", "100d", "decayed"],
            "component": ["total", "content", "conversation", "reach", "helpfulness", "innovation", "pilot"],
            "title": ["A title"],
            "body": ["A body of text"],
            "topic": ["search"],
            "display_name": ["Fuzz Person"],
        }
        try:
            yield Fuzzed(system, channels, pools)
        finally:
            for channel in channels.values():
                channel.close()


def _method_id(value: object) -> str:
    return value.name if isinstance(value, MethodDescriptor) else str(value)


@pytest.mark.parametrize("spoiled", [False, True], ids=["message", "corrupted"])
@pytest.mark.parametrize(("service", "method"), METHODS, ids=_method_id)
@FUZZ
@given(data=st.data())
def test_every_request_gets_a_status_a_client_can_act_on(
    fuzzed: Fuzzed, service: str, method: MethodDescriptor, spoiled: bool, data: st.DataObject
) -> None:
    """Requests as a client library builds them, and their bytes spoiled on the wire."""
    requests = messages(method.input_type, fuzzed.pools).map(lambda request: request.SerializeToString())
    body = data.draw(corrupted(method.input_type, fuzzed.pools) if spoiled else requests, label="body")
    fuzzed.send(service, method, body, data.draw(fuzzed.tokens(), label="metadata"))


INGEST = SERVICES["feed"].methods_by_name["IngestInteractions"]


@settings(FUZZ, max_examples=EXAMPLES * IMPORT_WEIGHT)
@given(data=st.data())
def test_imported_interactions_are_refused_or_taken_whole(fuzzed: Fuzzed, data: st.DataObject) -> None:
    """Imports are where one odd field among plausible ones hides best (a time, a kind, a person), so they
    get more examples; the final test finds whatever was taken but not scorable on the topic."""
    request = data.draw(messages(INGEST.input_type, fuzzed.pools), label="request")
    fuzzed.send("feed", INGEST, request.SerializeToString(), bearer(fuzzed.system.token("bridge", Role.SERVICE)))


@FUZZ
@given(body=corrupted(health_pb2.HealthCheckRequest.DESCRIPTOR, {"service": list(SERVICES)}))
def test_health_checks_answer_corrupted_bytes_without_unknown(fuzzed: Fuzzed, body: bytes) -> None:
    try:
        health_pb2.HealthCheckRequest.FromString(body)
        decodable = True
    except DecodeError:
        decodable = False
    for channel in fuzzed.channels.values():
        try:
            channel.unary_unary("/grpc.health.v1.Health/Check")(body, timeout=CALL_SECONDS)
        except grpc.RpcError as error:
            assert error.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND), error.details()
            assert decodable or error.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_afterwards_every_service_serves_the_worker_consumed_all_and_nothing_acknowledged_is_lost(
    fuzzed: Fuzzed,
) -> None:
    system = fuzzed.system
    for process in system.processes.values():
        process.wait_ready(timeout=60)
    assert fuzzed.acknowledged, "the fuzzing acknowledged no write at all; the pools no longer reach the handlers"
    topics = system.topics

    def on_topic() -> set[str]:
        found: set[str] = set()
        for _, value in read_topic(system.bootstrap, topics["interactions"]):
            env = envelope_pb2.Envelope.FromString(value or b"")
            payload = env.WhichOneof("payload")
            found.add(env.event_id)
            if payload in CONTENT_ID:
                found.add(getattr(getattr(env, payload), CONTENT_ID[payload]))
        return found

    wait_until(lambda: fuzzed.acknowledged <= on_topic(), 120, "every acknowledged write on the topic")
    events = [
        envelope_pb2.Envelope.FromString(v or b"") for _, v in read_topic(system.bootstrap, topics["interactions"])
    ]
    registered = {e.employee_id for e in events if e.HasField("employee_registered")}
    named = {e.employee_id for e in events} | {
        getattr(getattr(e, e.WhichOneof("payload")), TARGET_AUTHOR_FIELDS[e.WhichOneof("payload")][0])
        for e in events
        if e.WhichOneof("payload") in TARGET_AUTHOR_FIELDS
    }
    assert named <= registered, f"events name people never registered: {sorted(named - registered)[:10]}"
    wait_until(
        lambda: committed_all(system.bootstrap, system.engagement_group, topics["interactions"]),
        180,
        "the engagement worker to consume the whole interactions topic",
    )
    dead = [envelope_pb2.DeadLetter.FromString(v or b"") for _, v in read_topic(system.bootstrap, topics["deadletter"])]
    assert not dead, [(d.consumer, d.reason) for d in dead]
