"""Each interaction kind reaches catalyst.interactions.v1 through the outbox with a correct envelope."""

from __future__ import annotations

import time

import pytest
from catalyst.events.v1 import interactions_pb2 as ev
from catalyst.feed.v1 import feed_pb2 as pb
from catalyst.feed.v1 import prelaunch_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from services.common.auth import Role
from services.feed.events import ingest_event_id
from tests.integration.feed.harness import Feed, read_topic, wait_for

pytestmark = pytest.mark.integration

ALICE, BOB = "e-alice", "e-bob"


async def test_every_api_interaction_arrives_with_a_correct_envelope(
    feed: Feed, kafka_bootstrap: str, topics: dict[str, str]
) -> None:
    f = feed
    started_ms = time.time_ns() // 1_000_000
    await f.directory((ALICE, "Alice", "sales"), (BOB, "Bob", "it"))
    post = (
        await f.call("CreatePost", pb.CreatePostRequest(body="hello", tags=["a"], target_department_id="it"), ALICE)
    ).post
    await f.call("EditPost", pb.EditPostRequest(post_id=post.post_id, body="hello!"), ALICE)
    comment = (await f.call("AddComment", pb.AddCommentRequest(post_id=post.post_id, body="hi"), BOB)).comment
    await f.call("AddReaction", pb.AddReactionRequest(post_id=post.post_id, reaction=ev.REACTION_KIND_LIKE), BOB)
    await f.call("RemoveReaction", pb.RemoveReactionRequest(post_id=post.post_id, reaction=ev.REACTION_KIND_LIKE), BOB)
    question = (await f.call("AskQuestion", pb.AskQuestionRequest(title="Q?", body="why"), BOB)).question
    answer = (
        await f.call("PostAnswer", pb.PostAnswerRequest(question_id=question.post_id, body="because"), ALICE)
    ).answer
    await f.call("AcceptAnswer", pb.AcceptAnswerRequest(question_id=question.post_id, answer_id=answer.comment_id), BOB)
    await f.call("UpdateProfile", pb.UpdateProfileRequest(job_title="Seller", phone="+49 30 1234"), ALICE)
    await f.call("RecordFeatureTrial", pb.RecordFeatureTrialRequest(feature_id="search-v2"), ALICE)
    fb = await f.call(
        "SubmitFeedback", pb.SubmitFeedbackRequest(kind=ev.FEEDBACK_KIND_FEEDBACK, topic="ux", body="nice"), ALICE
    )
    await f.session("s-1", prelaunch_pb2.SESSION_TYPE_SURVEY)
    await f.session("i-1", prelaunch_pb2.SESSION_TYPE_INTERVIEW)
    confirm = prelaunch_pb2.ConfirmAttendanceRequest
    await f.prelaunch("ConfirmAttendance", confirm(session_id="s-1", employee_id=ALICE, answered_questions=7))
    await f.prelaunch("ConfirmAttendance", confirm(session_id="i-1", employee_id=ALICE, contributed=True))
    await f.call("DeletePost", pb.DeletePostRequest(post_id=post.post_id), ALICE)
    await f.call("ForgetMe", pb.ForgetMeRequest(), BOB)

    records = await read_topic(kafka_bootstrap, topics["interactions"], expected=17)
    assert len(records) == 17
    by_type: dict[str, list] = {}
    for r in records:
        env = r.envelope
        assert r.key == env.employee_id
        assert env.producer == "feed"
        assert env.type == "catalyst.events.v1." + type(getattr(env, env.WhichOneof("payload"))).__name__
        assert env.occurred_at.ToMilliseconds() >= started_ms
        assert env.department_id == {"e-alice": "sales", "e-bob": "it"}[env.employee_id]
        by_type.setdefault(env.type.rsplit(".", 1)[1], []).append(env)
    assert len({r.envelope.event_id for r in records}) == 17

    assert sorted(by_type) == sorted(
        [
            "EmployeeRegistered",
            "PostCreated",
            "PostEdited",
            "CommentAdded",
            "ReactionAdded",
            "ReactionRemoved",
            "QuestionAsked",
            "AnswerPosted",
            "AnswerAccepted",
            "ProfileUpdated",
            "FeatureTried",
            "FeedbackSubmitted",
            "SurveyAnswered",
            "WorkshopAttended",
            "PostDeleted",
            "EmployeeForgotten",
        ]
    )
    assert {e.employee_id: e.employee_registered.display_name for e in by_type["EmployeeRegistered"]} == {
        ALICE: "Alice",
        BOB: "Bob",
    }
    created = by_type["PostCreated"][0].post_created
    assert (created.post_id, created.kind, created.body_length, list(created.tags), created.target_department_id) == (
        post.post_id,
        ev.POST_KIND_POST,
        5,
        ["a"],
        "it",
    )
    assert by_type["PostEdited"][0].post_edited.body_length == 6
    added = by_type["CommentAdded"][0]
    assert added.employee_id == BOB and added.comment_added.comment_id == comment.comment_id
    assert (added.comment_added.post_author_id, added.comment_added.post_author_department_id) == (ALICE, "sales")
    reaction = by_type["ReactionAdded"][0].reaction_added
    assert (reaction.post_author_id, reaction.post_author_department_id, reaction.reaction) == (
        ALICE,
        "sales",
        ev.REACTION_KIND_LIKE,
    )
    assert by_type["ReactionRemoved"][0].reaction_removed.post_id == post.post_id
    assert by_type["QuestionAsked"][0].question_asked.question_id == question.post_id
    answered = by_type["AnswerPosted"][0].answer_posted
    assert (answered.question_author_id, answered.question_author_department_id) == (BOB, "it")
    accepted = by_type["AnswerAccepted"][0]
    assert accepted.employee_id == BOB
    assert (accepted.answer_accepted.answer_author_id, accepted.answer_accepted.answer_author_department_id) == (
        ALICE,
        "sales",
    )
    profile = by_type["ProfileUpdated"][0].profile_updated
    assert profile.completeness == pytest.approx(2 / 6, abs=1e-3)
    assert list(profile.changed_fields) == ["job_title", "phone"]
    assert by_type["FeatureTried"][0].feature_tried.feature_id == "search-v2"
    feedback = by_type["FeedbackSubmitted"][0].feedback_submitted
    assert (feedback.feedback_id, feedback.kind, feedback.topic, feedback.body_length) == (
        fb.feedback_id,
        ev.FEEDBACK_KIND_FEEDBACK,
        "ux",
        4,
    )
    assert by_type["SurveyAnswered"][0].survey_answered.answered_questions == 7
    workshop = by_type["WorkshopAttended"][0].workshop_attended
    assert (workshop.kind, workshop.pre_launch, workshop.contributed) == (ev.SESSION_KIND_INTERVIEW, True, True)
    assert by_type["PostDeleted"][0].employee_id == ALICE
    assert by_type["EmployeeForgotten"][0].employee_id == BOB

    # Per employee, the topic holds the events in the order they were written.
    alice = [r.envelope.type.rsplit(".", 1)[1] for r in records if r.key == ALICE]
    assert alice[0] == "EmployeeRegistered" and alice[1] == "PostCreated" and alice[-1] == "PostDeleted"

    await wait_for(lambda: f.metric("feed_relay_published_total") >= 17)
    await wait_for(lambda: f.metric("feed_outbox_depth") == 0)


def imported(source_id: str, actor: str, seconds: int, **kind: object) -> pb.ImportedInteraction:
    return pb.ImportedInteraction(source_id=source_id, actor_id=actor, occurred_at=Timestamp(seconds=seconds), **kind)


async def test_ingestion_keeps_original_ids_and_times_and_a_retry_is_a_no_op(
    feed: Feed, kafka_bootstrap: str, topics: dict[str, str]
) -> None:
    f = feed
    await f.directory((ALICE, "Alice", "sales"), (BOB, "Bob", "it"))
    t0 = 1_650_000_000
    batch = pb.IngestInteractionsRequest(
        source="legacy",
        interactions=[
            imported("1", ALICE, t0, post_created=ev.PostCreated(post_id="old-p1", body_length=40)),
            imported(
                "2",
                BOB,
                t0 + 60,
                comment_added=ev.CommentAdded(comment_id="old-c1", post_id="old-p1", post_author_id=ALICE),
            ),
            imported(
                "3", BOB, t0 + 120, reaction_added=ev.ReactionAdded(post_id="old-p1", post_author_id=ALICE, reaction=1)
            ),
            imported("4", ALICE, t0 + 180, question_asked=ev.QuestionAsked(question_id="old-q1")),
            imported(
                "5",
                BOB,
                t0 + 240,
                answer_posted=ev.AnswerPosted(answer_id="old-a1", question_id="old-q1", question_author_id=ALICE),
            ),
            imported(
                "6",
                ALICE,
                t0 + 300,
                answer_accepted=ev.AnswerAccepted(answer_id="old-a1", question_id="old-q1", answer_author_id=BOB),
            ),
            imported("7", ALICE, t0 + 360, profile_updated=ev.ProfileUpdated(completeness=0.5)),
            imported("8", ALICE, t0 + 420, feature_tried=ev.FeatureTried(feature_id="wiki")),
            imported("9", ALICE, t0 + 480, feedback_submitted=ev.FeedbackSubmitted(feedback_id="fb", kind=2)),
            imported("10", ALICE, t0 + 540, survey_answered=ev.SurveyAnswered(survey_id="s", pre_launch=True)),
            imported("11", ALICE, t0 + 600, workshop_attended=ev.WorkshopAttended(session_id="w", kind=1)),
        ],
    )
    first = await f.call("IngestInteractions", batch, "legacy-bridge", Role.SERVICE)
    assert (first.accepted, first.duplicates) == (11, 0)
    again = await f.call("IngestInteractions", batch, "legacy-bridge", Role.SERVICE)
    assert (again.accepted, again.duplicates) == (0, 11)

    records = [
        r
        for r in await read_topic(kafka_bootstrap, topics["interactions"], expected=13)
        if r.envelope.producer != "feed"
    ]
    assert len(records) == 11
    for r in records:
        env = r.envelope
        source_id = str((env.occurred_at.seconds - t0) // 60 + 1)
        assert env.event_id == ingest_event_id("legacy", source_id)
        assert env.producer == "ingest:legacy"
        assert env.department_id == {ALICE: "sales", BOB: "it"}[env.employee_id] and r.key == env.employee_id
    comment = next(r.envelope for r in records if r.envelope.HasField("comment_added"))
    assert comment.comment_added.post_author_department_id == "sales"
    accepted = next(r.envelope for r in records if r.envelope.HasField("answer_accepted"))
    assert accepted.answer_accepted.answer_author_department_id == "it"


async def test_ingestion_errors(feed: Feed) -> None:
    import grpc

    f = feed
    await f.directory((ALICE, "Alice", "sales"))
    post = ev.PostCreated(post_id="p")

    async def ingest(*items: pb.ImportedInteraction, source: str = "legacy") -> grpc.aio.AioRpcError:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await f.call(
                "IngestInteractions",
                pb.IngestInteractionsRequest(source=source, interactions=items),
                "bridge",
                Role.SERVICE,
            )
        return info.value

    assert (
        "interactions[0].actor_id"
        in (await ingest(imported("1", "e-ghost", 1_650_000_000, post_created=post))).details()
    )
    assert "interactions[0].occurred_at" in (await ingest(imported("1", ALICE, 0, post_created=post))).details()
    future = int(time.time()) + 3600
    assert "future" in (await ingest(imported("1", ALICE, future, post_created=post))).details()
    assert "interactions[0].kind" in (await ingest(imported("1", ALICE, 1_650_000_000))).details()
    assert "source" in (await ingest(imported("1", ALICE, 1_650_000_000, post_created=post), source="")).details()
    empty_id = imported("1", ALICE, 1_650_000_000, post_created=ev.PostCreated())
    error = await ingest(empty_id)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "post_created.post_id" in error.details()
    assert "interactions" in (await ingest()).details()
    # Nothing of a rejected batch was taken: a valid item from it is still new.
    ok = await f.call(
        "IngestInteractions",
        pb.IngestInteractionsRequest(
            source="legacy", interactions=[imported("1", ALICE, 1_650_000_000, post_created=post)]
        ),
        "bridge",
        Role.SERVICE,
    )
    assert ok.accepted == 1
