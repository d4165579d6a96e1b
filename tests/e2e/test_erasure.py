"""One erasure through the whole system: HR erases a leaver in the feed, and afterwards nothing readable is
left about them in any Redis key, any API or any topic; a late score event does not bring them back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator

import grpc
import pytest
import redis
from catalyst.engagement.v1 import engagement_pb2, engagement_pb2_grpc
from catalyst.events.v1 import envelope_pb2
from catalyst.events.v1 import interactions_pb2 as ev
from catalyst.feed.v1 import feed_pb2, feed_pb2_grpc
from catalyst.recognition.v1 import recognition_pb2, recognition_pb2_grpc
from google.protobuf.json_format import ParseDict
from kafka import KafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from services.common.grpc_client import bearer
from tests.conftest import RedisServer
from tests.integration.ops.system import ROOT, CatalystSystem, running_system
from tests.integration.recognition.harness import read_topic
from tests.integration.recognition.test_erasure import holds_nothing
from tests.waiting import until

pytestmark = pytest.mark.e2e

ANN, BOB = "e2e-ann", "e2e-bob"
SECRET_TEXT = "ann-writes-this-text"


@pytest.fixture(scope="module")
def system(
    kafka_bootstrap: str, redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CatalystSystem]:
    for system in running_system(kafka_bootstrap, redis_server.port, tmp_path_factory.mktemp("e2e-erasure")):
        system.register(ANN, BOB)
        yield system


def metric(system: CatalystSystem, port_name: str, name: str, **labels: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{system.ports[port_name]}/metrics", timeout=5) as response:
        text = response.read().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


def catalyst(system: CatalystSystem, *args: str) -> str:
    """The command line, as a person runs it, against this system."""
    env = {
        **os.environ,
        "PYTHONPATH": f"{ROOT}:{ROOT / 'gen'}",
        "CATALYST_FEED_TARGET": system.grpc_target("feed"),
        "CATALYST_ENGAGEMENT_TARGET": system.grpc_target("engagement"),
        "CATALYST_RECOGNITION_TARGET": system.grpc_target("recognition"),
    }
    done = subprocess.run([sys.executable, "-m", "services.cli", *args], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout


def naming(client: redis.Redis, who: str) -> dict[str, str]:
    """Every key whose name, hash fields and values, or set members mention `who`, with its type."""
    found: dict[str, str] = {}
    needle = who.encode()
    for key in client.scan_iter(count=1000):
        kind = client.type(key).decode()
        if kind == "hash":
            content = b"".join(k + v for k, v in client.hgetall(key).items())
        elif kind == "set":
            content = b"".join(client.smembers(key))
        elif kind == "zset":
            content = b"".join(client.zrange(key, 0, -1))
        elif kind == "string":
            content = client.get(key) or b""
        elif kind == "list":
            content = b"".join(client.lrange(key, 0, -1))
        else:  # streams: the feed's outbox, emptied by its relay
            content = b"".join(str(e).encode() for e in client.xrange(key))
        if needle in key or needle in content:
            found[key.decode()] = kind
    return found


def test_an_erased_leaver_leaves_nothing_readable_in_any_store_api_or_topic(system: CatalystSystem) -> None:
    ann, bob = bearer(system.token(ANN)), bearer(system.token(BOB))
    store = redis.Redis.from_url(system.redis_url)
    with (
        grpc.insecure_channel(system.grpc_target("feed")) as feed_channel,
        grpc.insecure_channel(system.grpc_target("engagement")) as engagement_channel,
        grpc.insecure_channel(system.grpc_target("recognition")) as recognition_channel,
    ):
        feed = feed_pb2_grpc.FeedServiceStub(feed_channel)
        engagement = engagement_pb2_grpc.EngagementServiceStub(engagement_channel)
        recognition = recognition_pb2_grpc.RecognitionServiceStub(recognition_channel)

        posts = [
            feed.CreatePost(feed_pb2.CreatePostRequest(body=f"{SECRET_TEXT} {n}"), metadata=ann).post for n in range(3)
        ]
        question = feed.AskQuestion(feed_pb2.AskQuestionRequest(title="Where?", body="Bob asks"), metadata=bob).question
        feed.PostAnswer(feed_pb2.PostAnswerRequest(question_id=question.post_id, body=SECRET_TEXT), metadata=ann)
        feed.AddReaction(
            feed_pb2.AddReactionRequest(post_id=question.post_id, reaction=ev.REACTION_KIND_LIKE), metadata=ann
        )
        feed.AddComment(feed_pb2.AddCommentRequest(post_id=posts[0].post_id, body="Bob on Ann's post"), metadata=bob)
        feed.SubmitFeedback(
            feed_pb2.SubmitFeedbackRequest(kind=ev.FEEDBACK_KIND_FEEDBACK, topic="t", body=SECRET_TEXT), metadata=ann
        )
        feed.UpdateProfile(feed_pb2.UpdateProfileRequest(about=SECRET_TEXT), metadata=ann)

        # Before: every service holds something about Ann, and she can read all of it.
        badges = until(
            lambda: recognition.GetBadges(recognition_pb2.GetBadgesRequest(), metadata=ann),
            lambda r: any(b.badge == "creator" for b in r.badges),
        )
        assert badges.badges[0].evidence  # the evidence is hers to see, in the store
        assert engagement.GetScore(engagement_pb2.GetScoreRequest(), metadata=ann).signals["posts_30d"] == 3
        assert len(feed.GetMyData(feed_pb2.GetMyDataRequest(), metadata=ann).posts) == 3
        mine = recognition.GetMyData(recognition_pb2.GetMyDataRequest(), metadata=ann)
        assert mine.figures["posts_30d"] == 3 and [b.badge for b in mine.badges] == ["creator"]
        export = json.loads(catalyst(system, "--as", ANN, "--role", "employee", "my-data"))
        assert [p["body"] for p in export["feed"]["posts"]] == [f"{SECRET_TEXT} {n}" for n in range(3)]
        assert (
            export["feed"]["feedback"][0]["body"] == SECRET_TEXT and export["feed"]["profile"]["about"] == SECRET_TEXT
        )
        assert export["engagement"]["score"]["signals"]["posts_30d"] == 3
        assert set(export["engagement"]["explanations"]) == {"7d", "30d", "100d", "decayed"}
        assert export["engagement"]["stored"]["days"] and ANN not in json.dumps(export["engagement"]["stored"]["days"])
        assert export["recognition"]["badges"][0]["evidence"]

        with pytest.raises(grpc.RpcError) as refused_erasure:
            feed.EraseEmployee(feed_pb2.EraseEmployeeRequest(employee_id=ANN, reason="left"), metadata=bob)
        assert refused_erasure.value.code() == grpc.StatusCode.PERMISSION_DENIED
        catalyst(system, "--as", "e2e-hr", "--role", "hr", "erase", ANN, "--reason", "left on 2026-11-30")

        # Every store: nothing names her (the erasure markers are keyed by an HMAC of her id).
        def left() -> dict[str, str]:
            return naming(store, ANN)

        until(left, lambda keys: not keys)

        # Every API.
        def gone(call: Callable[[], object]) -> grpc.StatusCode | None:
            try:
                call()
            except grpc.RpcError as exc:
                return exc.code()
            return None

        assert feed.GetMyData(feed_pb2.GetMyDataRequest(), metadata=ann) == feed_pb2.GetMyDataResponse()
        assert gone(lambda: feed.GetProfile(feed_pb2.GetProfileRequest(employee_id=ANN), metadata=bob)) == (
            grpc.StatusCode.NOT_FOUND
        )
        for post in posts:
            assert gone(
                lambda post=post: feed.GetPost(feed_pb2.GetPostRequest(post_id=post.post_id), metadata=bob)
            ) == (grpc.StatusCode.NOT_FOUND)
        thread = feed.GetPost(feed_pb2.GetPostRequest(post_id=question.post_id), metadata=bob)
        assert not thread.comments and not dict(thread.post.reactions)
        assert [p.post_id for p in feed.ListFeed(feed_pb2.ListFeedRequest(), metadata=bob).posts] == [question.post_id]
        assert gone(lambda: engagement.GetScore(engagement_pb2.GetScoreRequest(), metadata=ann)) == (
            grpc.StatusCode.NOT_FOUND
        )
        assert holds_nothing(recognition.GetMyData(recognition_pb2.GetMyDataRequest(), metadata=ann))
        assert not recognition.GetBadges(recognition_pb2.GetBadgesRequest(), metadata=ann).badges

        # Every topic: raw events carry no text; the compacted figures and the badge log end in a tombstone; badge
        # events never carried her figures.
        raw = read_topic(system.bootstrap, system.topics["interactions"])
        assert not [v for _, v in raw if v and SECRET_TEXT.encode() in v]
        assert any(
            envelope_pb2.Envelope.FromString(v).WhichOneof("payload") == "employee_forgotten"
            for k, v in raw
            if k == ANN.encode() and v
        )
        for topic in ("engagement", "recognition"):
            last = until(
                lambda topic=topic: [
                    v for k, v in read_topic(system.bootstrap, system.topics[topic]) if k == ANN.encode()
                ],
                lambda values: bool(values) and values[-1] is None,
            )
            assert last[-1] is None, topic
        for _, value in read_topic(system.bootstrap, system.topics["recognition"]):
            if value:
                env = envelope_pb2.Envelope.FromString(value)
                payload = getattr(env, env.WhichOneof("payload"))
                assert not getattr(payload, "evidence", None) and not getattr(payload, "reason", ""), env

        # A late or replayed figure about her (consumer lag, a replay) is refused: she is not recreated.
        refused = metric(system, "recognition_metrics", "recognition_records_consumed_total", outcome="erased")
        (figures,) = [
            v for k, v in read_topic(system.bootstrap, system.topics["engagement"]) if k == ANN.encode() and v
        ][-1:]
        late = envelope_pb2.Envelope.FromString(figures)
        late.score_changed.version += 1_000
        producer = KafkaProducer(bootstrap_servers=system.bootstrap, acks="all")
        producer.send(system.topics["engagement"], key=ANN.encode(), value=late.SerializeToString()).get(timeout=30)
        producer.close()
        until(
            lambda: metric(system, "recognition_metrics", "recognition_records_consumed_total", outcome="erased"),
            lambda n: n > refused,
        )
        assert not naming(store, ANN)
        assert recognition.GetMyData(recognition_pb2.GetMyDataRequest(), metadata=ann).badges == []
        after = json.loads(catalyst(system, "--as", ANN, "--role", "employee", "my-data"))
        assert after["feed"] == {} and set(after["engagement"]) == {"stored"}
        assert holds_nothing(ParseDict(after["engagement"]["stored"], engagement_pb2.GetMyDataResponse()))
        assert holds_nothing(ParseDict(after["recognition"], recognition_pb2.GetMyDataResponse()))
