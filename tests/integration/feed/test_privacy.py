"""Access, erasure and retention in the feed, over a real socket against real Redis and Kafka."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
import yaml
from catalyst.events.v1 import interactions_pb2 as ev
from catalyst.feed.v1 import feed_pb2 as pb
from catalyst.feed.v1 import prelaunch_pb2

from services.common.auth import Role
from services.common.policy import DEFAULT_POLICY_FILE
from tests.integration.feed.harness import Feed, feed_settings, read_topic, start_feed, stop_feed, wait_for
from tests.integration.feed.test_rpcs import expect

pytestmark = pytest.mark.integration

ALICE, BOB = "e-alice", "e-bob"


@pytest.fixture
async def people(feed: Feed) -> Feed:
    await feed.directory((ALICE, "Alice A", "sales"), (BOB, "Bob B", "it"))
    return feed


async def keys_naming(f: Feed, who: str) -> list[str]:
    return [k.decode() for k in await f.service.store.redis.keys(f"*{who}*")]


async def write_everything(f: Feed, who: str, other: str) -> dict[str, str]:
    """One of every kind of thing a person can leave in the feed; returns their ids."""
    post = (await f.call("CreatePost", pb.CreatePostRequest(body="my post"), who)).post
    question = (await f.call("AskQuestion", pb.AskQuestionRequest(title="Why?", body="Tell me"), other)).question
    comment = await f.call("PostAnswer", pb.PostAnswerRequest(question_id=question.post_id, body="Because"), who)
    await f.call("AddReaction", pb.AddReactionRequest(post_id=question.post_id, reaction=ev.REACTION_KIND_LIKE), who)
    feedback = await f.call(
        "SubmitFeedback", pb.SubmitFeedbackRequest(kind=ev.FEEDBACK_KIND_SUGGESTION, topic="search", body="faster"), who
    )
    await f.session("s-1", prelaunch_pb2.SESSION_TYPE_SURVEY, pre_launch=False)
    await f.session("w-1", prelaunch_pb2.SESSION_TYPE_WORKSHOP, pre_launch=False)
    await f.call("RecordSurveyResponse", pb.RecordSurveyResponseRequest(survey_id="s-1", answered_questions=3), who)
    await f.call("RecordWorkshopAttendance", pb.RecordWorkshopAttendanceRequest(session_id="w-1", kind=1), who)
    await f.call("UpdateProfile", pb.UpdateProfileRequest(job_title="Seller", phone="+49 30 1234"), who)
    return {
        "post": post.post_id,
        "question": question.post_id,
        "comment": comment.answer.comment_id,
        "feedback": feedback.feedback_id,
    }


async def test_get_my_data_returns_everything_the_feed_holds_about_the_caller(people: Feed) -> None:
    f = people
    ids = await write_everything(f, ALICE, BOB)
    mine = await f.call("GetMyData", pb.GetMyDataRequest(), ALICE)
    assert (mine.employee.employee_id, mine.employee.display_name, mine.employee.department_id) == (
        ALICE,
        "Alice A",
        "sales",
    )
    assert (mine.profile.job_title, mine.profile.phone) == ("Seller", "+49 30 1234")
    assert [(p.post_id, p.body) for p in mine.posts] == [(ids["post"], "my post")]
    assert [(c.comment_id, c.body, c.is_answer) for c in mine.comments] == [(ids["comment"], "Because", True)]
    assert [(r.post_id, r.reaction) for r in mine.reactions] == [(ids["question"], ev.REACTION_KIND_LIKE)]
    (feedback,) = mine.feedback
    assert (feedback.feedback_id, feedback.kind, feedback.topic, feedback.body) == (
        ids["feedback"],
        ev.FEEDBACK_KIND_SUGGESTION,
        "search",
        "faster",
    )
    assert list(mine.survey_ids) == ["s-1"] and list(mine.session_ids) == ["w-1"]
    theirs = await f.call("GetMyData", pb.GetMyDataRequest(), BOB)
    assert [p.post_id for p in theirs.posts] == [ids["question"]] and not theirs.feedback


async def test_hr_erases_a_leaver_from_every_key_and_tells_the_consumers(people: Feed) -> None:
    f = people
    ids = await write_everything(f, ALICE, BOB)
    erase = pb.EraseEmployeeRequest(employee_id=ALICE, reason="left the company on 2026-03-31")

    await expect(grpc.StatusCode.PERMISSION_DENIED, f.call("EraseEmployee", erase, BOB), "hr")
    await expect(grpc.StatusCode.PERMISSION_DENIED, f.call("EraseEmployee", erase, "po-1", Role.PROGRAMME_OWNER))
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        f.call("EraseEmployee", pb.EraseEmployeeRequest(employee_id=ALICE), "hr-1", Role.HR),
        "reason",
    )
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        f.call("EraseEmployee", pb.EraseEmployeeRequest(reason="left"), "hr-1", Role.HR),
        "employee_id",
    )
    await f.call("EraseEmployee", erase, "hr-1", Role.HR)

    assert await keys_naming(f, ALICE) == []
    assert await f.call("GetMyData", pb.GetMyDataRequest(), ALICE) == pb.GetMyDataResponse()
    await expect(grpc.StatusCode.NOT_FOUND, f.call("GetPost", pb.GetPostRequest(post_id=ids["post"]), BOB))
    thread = await f.call("GetPost", pb.GetPostRequest(post_id=ids["question"]), BOB)
    assert not thread.comments and dict(thread.post.reactions) == {}
    redis = f.service.store.redis
    for key in await redis.keys("feed:*"):
        kind = await redis.type(key)
        if kind == b"hash":
            assert ALICE.encode() not in b"".join(v for kv in (await redis.hgetall(key)).items() for v in kv), key
        elif kind in (b"set", b"zset"):
            members = await (redis.smembers(key) if kind == b"set" else redis.zrange(key, 0, -1))
            assert not any(ALICE.encode() in m for m in members), key

    await f.call("EraseEmployee", pb.EraseEmployeeRequest(employee_id="e-gone", reason="left in 2024"), "hr-1", Role.HR)
    records = await read_topic(f.settings.kafka_bootstrap, f.settings.topic_interactions, 12)
    forgotten = [r.key for r in records if r.envelope.WhichOneof("payload") == "employee_forgotten"]
    assert sorted(forgotten) == [ALICE, "e-gone"]


def policy_file(tmp_path: Path, **feed: str) -> Path:
    raw = yaml.safe_load(DEFAULT_POLICY_FILE.read_text())
    raw["retention"]["feed"] = feed
    raw["retention"]["sweep_interval"] = "1s"
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


async def test_retention_removes_texts_past_their_limit_and_counts_them(
    redis_url: str, kafka_bootstrap: str, topics: dict[str, str], tmp_path: Path
) -> None:
    policy = policy_file(tmp_path, posts="3s", feedback="3s")
    f = await start_feed(feed_settings(redis_url, kafka_bootstrap, topics["interactions"], policy_file=policy))
    try:
        await f.directory((ALICE, "Alice A", "sales"), (BOB, "Bob B", "it"))
        ids = await write_everything(f, ALICE, BOB)
        assert await f.service.handlers.expire_posts(3_600_000) == (0, 0)  # younger than an hour: kept
        assert len((await f.call("GetMyData", pb.GetMyDataRequest(), ALICE)).feedback) == 1

        await wait_for(lambda: f.metric("feed_retention_removed_total", {"kind": "feedback"}) == 1)
        await wait_for(lambda: f.metric("feed_retention_removed_total", {"kind": "posts"}) == 2)
        assert f.metric("feed_retention_removed_total", {"kind": "comments"}) == 1
        for post_id in (ids["post"], ids["question"]):
            await expect(grpc.StatusCode.NOT_FOUND, f.call("GetPost", pb.GetPostRequest(post_id=post_id), BOB))
        mine = await f.call("GetMyData", pb.GetMyDataRequest(), ALICE)
        assert not (mine.posts or mine.comments or mine.reactions or mine.feedback)
        assert mine.profile.job_title == "Seller"  # the profile is current, not history: no retention
        redis = f.service.store.redis
        assert await redis.keys("feed:post:*") == [] and await redis.keys("feed:comment:*") == []
        assert not (await f.call("ListFeed", pb.ListFeedRequest(), BOB)).posts
    finally:
        await stop_feed(f)
