"""Every FeedService RPC over a real socket against real Redis: happy paths and their errors."""

from __future__ import annotations

import grpc
import pytest
from catalyst.events.v1 import interactions_pb2 as ev
from catalyst.feed.v1 import feed_pb2 as pb
from catalyst.feed.v1 import prelaunch_pb2

from services.common.auth import Role
from tests.integration.feed.harness import Feed

pytestmark = pytest.mark.integration

ALICE, BOB, CARA = "e-alice", "e-bob", "e-cara"


@pytest.fixture
async def people(feed: Feed) -> Feed:
    await feed.directory((ALICE, "Alice A", "sales"), (BOB, "Bob B", "it"), (CARA, "Cara C", "it"))
    return feed


async def expect(code: grpc.StatusCode, call: object, *needles: str) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    assert info.value.code() == code, info.value.details()
    for needle in needles:
        assert needle in info.value.details(), info.value.details()
    return info.value.details()


async def test_create_edit_get_and_delete_a_post(people: Feed) -> None:
    f = people
    created = await f.call(
        "CreatePost", pb.CreatePostRequest(title="Hello", body="First post", tags=["News", "#news", "x"]), ALICE
    )
    post = created.post
    assert post.author_id == ALICE and post.author_department_id == "sales"
    assert post.kind == ev.POST_KIND_POST and list(post.tags) == ["news", "x"]
    assert post.created_at.seconds > 0 and not post.HasField("edited_at")

    edited = await f.call("EditPost", pb.EditPostRequest(post_id=post.post_id, body="Edited", tags=["y"]), ALICE)
    assert edited.post.body == "Edited" and list(edited.post.tags) == ["y"] and edited.post.HasField("edited_at")

    got = await f.call("GetPost", pb.GetPostRequest(post_id=post.post_id), BOB)
    assert got.post.body == "Edited" and got.post.title == ""

    await f.call("DeletePost", pb.DeletePostRequest(post_id=post.post_id), ALICE)
    await expect(grpc.StatusCode.NOT_FOUND, f.call("GetPost", pb.GetPostRequest(post_id=post.post_id), BOB), "post_id")


async def test_post_errors_name_the_field(people: Feed) -> None:
    f = people
    await expect(grpc.StatusCode.INVALID_ARGUMENT, f.call("CreatePost", pb.CreatePostRequest(body="  "), ALICE), "body")
    big = "x" * (f.settings.max_body_chars + 1)
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT, f.call("CreatePost", pb.CreatePostRequest(body=big), ALICE), "body", "at most"
    )
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        f.call("CreatePost", pb.CreatePostRequest(body="b", tags=["t"] * 1 + [f"t{i}" for i in range(20)]), ALICE),
        "tags",
    )
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        f.call("CreatePost", pb.CreatePostRequest(body="b", target_department_id="nowhere"), ALICE),
        "target_department_id",
    )
    await expect(
        grpc.StatusCode.FAILED_PRECONDITION,
        f.call("CreatePost", pb.CreatePostRequest(body="b"), "e-stranger"),
        "not in the directory",
    )
    post = (await f.call("CreatePost", pb.CreatePostRequest(body="mine"), ALICE)).post
    await expect(
        grpc.StatusCode.PERMISSION_DENIED,
        f.call("EditPost", pb.EditPostRequest(post_id=post.post_id, body="hijack"), BOB),
        "only the author",
    )
    await expect(
        grpc.StatusCode.PERMISSION_DENIED, f.call("DeletePost", pb.DeletePostRequest(post_id=post.post_id), BOB)
    )
    await expect(
        grpc.StatusCode.NOT_FOUND,
        f.call("EditPost", pb.EditPostRequest(post_id="p0000000000000deadbeef", body="x"), ALICE),
    )
    await expect(grpc.StatusCode.NOT_FOUND, f.call("GetPost", pb.GetPostRequest(post_id="nonsense"), ALICE), "post_id")
    await expect(grpc.StatusCode.INVALID_ARGUMENT, f.call("GetPost", pb.GetPostRequest(), ALICE), "post_id")


async def test_the_programme_owner_may_delete_any_post(people: Feed) -> None:
    f = people
    post = (await f.call("CreatePost", pb.CreatePostRequest(body="rude"), ALICE)).post
    await f.call("DeletePost", pb.DeletePostRequest(post_id=post.post_id), "comms-1", Role.PROGRAMME_OWNER)
    await expect(grpc.StatusCode.NOT_FOUND, f.call("GetPost", pb.GetPostRequest(post_id=post.post_id), ALICE))


async def test_comments_and_reactions(people: Feed) -> None:
    f = people
    post = (await f.call("CreatePost", pb.CreatePostRequest(body="React to me"), ALICE)).post
    comment = (await f.call("AddComment", pb.AddCommentRequest(post_id=post.post_id, body="Nice"), BOB)).comment
    assert comment.author_id == BOB and not comment.is_answer

    like = ev.REACTION_KIND_LIKE
    await f.call("AddReaction", pb.AddReactionRequest(post_id=post.post_id, reaction=like), BOB)
    await f.call("AddReaction", pb.AddReactionRequest(post_id=post.post_id, reaction=like), BOB)  # repeat: no-op
    await f.call("AddReaction", pb.AddReactionRequest(post_id=post.post_id, reaction=ev.REACTION_KIND_CELEBRATE), CARA)
    got = await f.call("GetPost", pb.GetPostRequest(post_id=post.post_id), ALICE)
    assert dict(got.post.reactions) == {"LIKE": 1, "CELEBRATE": 1}
    assert got.post.comment_count == 1 and [c.body for c in got.comments] == ["Nice"]

    await f.call("RemoveReaction", pb.RemoveReactionRequest(post_id=post.post_id, reaction=like), BOB)
    await f.call("RemoveReaction", pb.RemoveReactionRequest(post_id=post.post_id, reaction=like), BOB)  # no-op
    got = await f.call("GetPost", pb.GetPostRequest(post_id=post.post_id), ALICE)
    assert dict(got.post.reactions) == {"CELEBRATE": 1}

    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        f.call("AddReaction", pb.AddReactionRequest(post_id=post.post_id, reaction=like), ALICE),
        "post_id",
        "your own post",
    )
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        f.call("AddReaction", pb.AddReactionRequest(post_id=post.post_id), BOB),
        "reaction",
    )
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        f.call("RemoveReaction", pb.RemoveReactionRequest(post_id=post.post_id, reaction=99), BOB),
        "reaction",
    )
    await expect(
        grpc.StatusCode.NOT_FOUND,
        f.call("AddReaction", pb.AddReactionRequest(post_id="p0000000000000deadbeef", reaction=like), BOB),
        "post_id",
    )
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        f.call("AddComment", pb.AddCommentRequest(post_id=post.post_id, body=""), BOB),
        "body",
    )
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        f.call("AddComment", pb.AddCommentRequest(post_id=post.post_id, body="y" * 5001), BOB),
        "body",
    )
    await expect(
        grpc.StatusCode.NOT_FOUND,
        f.call("AddComment", pb.AddCommentRequest(post_id="p0000000000000deadbeef", body="hi"), BOB),
        "post_id",
    )


async def test_questions_answers_and_acceptance(people: Feed) -> None:
    f = people
    question = (
        await f.call(
            "AskQuestion", pb.AskQuestionRequest(title="How do I book a room?", body="Details", tags=["rooms"]), ALICE
        )
    ).question
    assert question.kind == ev.POST_KIND_QUESTION
    answer = (await f.call("PostAnswer", pb.PostAnswerRequest(question_id=question.post_id, body="Use X"), BOB)).answer
    assert answer.is_answer
    own = (await f.call("PostAnswer", pb.PostAnswerRequest(question_id=question.post_id, body="Me"), ALICE)).answer

    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        f.call("AcceptAnswer", pb.AcceptAnswerRequest(question_id=question.post_id, answer_id=answer.comment_id), CARA),
        "question_id",
        "only the person who asked",
    )
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        f.call("AcceptAnswer", pb.AcceptAnswerRequest(question_id=question.post_id, answer_id=own.comment_id), ALICE),
        "answer_id",
        "own answer",
    )
    await f.call(
        "AcceptAnswer", pb.AcceptAnswerRequest(question_id=question.post_id, answer_id=answer.comment_id), ALICE
    )
    await f.call(
        "AcceptAnswer", pb.AcceptAnswerRequest(question_id=question.post_id, answer_id=answer.comment_id), ALICE
    )
    got = await f.call("GetPost", pb.GetPostRequest(post_id=question.post_id), CARA)
    assert got.post.accepted_answer_id == answer.comment_id
    assert [c.accepted for c in got.comments] == [True, False]

    third = (await f.call("PostAnswer", pb.PostAnswerRequest(question_id=question.post_id, body="Or Y"), CARA)).answer
    await expect(
        grpc.StatusCode.FAILED_PRECONDITION,
        f.call("AcceptAnswer", pb.AcceptAnswerRequest(question_id=question.post_id, answer_id=third.comment_id), ALICE),
        "already has an accepted answer",
    )

    post = (await f.call("CreatePost", pb.CreatePostRequest(body="Not a question"), ALICE)).post
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        f.call("PostAnswer", pb.PostAnswerRequest(question_id=post.post_id, body="?"), BOB),
        "question_id",
        "not a question",
    )
    comment = (await f.call("AddComment", pb.AddCommentRequest(post_id=question.post_id, body="plain"), CARA)).comment
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        f.call(
            "AcceptAnswer", pb.AcceptAnswerRequest(question_id=question.post_id, answer_id=comment.comment_id), ALICE
        ),
        "answer_id",
    )
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        f.call("AskQuestion", pb.AskQuestionRequest(body="no title"), ALICE),
        "title",
    )
    await expect(
        grpc.StatusCode.NOT_FOUND,
        f.call("AcceptAnswer", pb.AcceptAnswerRequest(question_id=question.post_id, answer_id="bogus"), ALICE),
        "answer_id",
    )


async def test_list_feed_pages_newest_first_and_by_department(people: Feed) -> None:
    f = people
    ids = []
    for i in range(5):
        author = ALICE if i % 2 == 0 else BOB
        ids.append((await f.call("CreatePost", pb.CreatePostRequest(body=f"post {i}"), author)).post.post_id)
    targeted = (
        await f.call("CreatePost", pb.CreatePostRequest(body="for IT", target_department_id="it"), ALICE)
    ).post.post_id
    ids.append(targeted)

    seen: list[str] = []
    token = ""
    while True:
        page = await f.call("ListFeed", pb.ListFeedRequest(page_size=4, page_token=token), CARA)
        seen += [p.post_id for p in page.posts]
        token = page.next_page_token
        if not token:
            break
    assert seen == list(reversed(ids))

    it_feed = await f.call("ListFeed", pb.ListFeedRequest(department_id="it", page_size=10), CARA)
    assert [p.post_id for p in it_feed.posts] == [targeted, ids[3], ids[1]]

    await expect(
        grpc.StatusCode.INVALID_ARGUMENT, f.call("ListFeed", pb.ListFeedRequest(page_size=1000), CARA), "page_size"
    )
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        f.call("ListFeed", pb.ListFeedRequest(page_token="garbage!"), CARA),
        "page_token",
    )
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        f.call("ListFeed", pb.ListFeedRequest(department_id="mars"), CARA),
        "department_id",
    )


async def test_profile_update_computes_completeness(people: Feed) -> None:
    f = people
    empty = (await f.call("GetProfile", pb.GetProfileRequest(), ALICE)).profile
    assert empty.employee_id == ALICE and empty.display_name == "Alice A" and empty.completeness == 0.0

    request = pb.UpdateProfileRequest(job_title="Seller", location="Berlin", skills=["Negotiation", "negotiation"])
    profile = (await f.call("UpdateProfile", request, ALICE)).profile
    assert profile.completeness == pytest.approx(0.5) and list(profile.skills) == ["Negotiation"]
    seen_by_bob = (await f.call("GetProfile", pb.GetProfileRequest(employee_id=ALICE), BOB)).profile
    assert seen_by_bob.job_title == "Seller" and seen_by_bob.department_id == "sales"

    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        f.call("UpdateProfile", pb.UpdateProfileRequest(photo_url="ftp://x"), ALICE),
        "photo_url",
    )
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        f.call("UpdateProfile", pb.UpdateProfileRequest(about="a" * 2001), ALICE),
        "about",
    )
    await expect(
        grpc.StatusCode.NOT_FOUND, f.call("GetProfile", pb.GetProfileRequest(employee_id="e-nobody"), ALICE), "e-nobody"
    )


async def test_signals_feature_feedback_survey_workshop(people: Feed) -> None:
    f = people
    await f.call("RecordFeatureTrial", pb.RecordFeatureTrialRequest(feature_id="search-v2"), ALICE)
    feedback = await f.call(
        "SubmitFeedback",
        pb.SubmitFeedbackRequest(kind=ev.FEEDBACK_KIND_SUGGESTION, topic="search", body="Add filters"),
        ALICE,
    )
    assert feedback.feedback_id.startswith("f")
    await f.session("s-1", prelaunch_pb2.SESSION_TYPE_SURVEY, pre_launch=False)
    await f.session("w-1", prelaunch_pb2.SESSION_TYPE_WORKSHOP, pre_launch=False)
    await f.call("RecordSurveyResponse", pb.RecordSurveyResponseRequest(survey_id="s-1"), ALICE)
    await f.call(
        "RecordWorkshopAttendance",
        pb.RecordWorkshopAttendanceRequest(session_id="w-1", kind=ev.SESSION_KIND_WORKSHOP),
        ALICE,
    )

    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        f.call("RecordFeatureTrial", pb.RecordFeatureTrialRequest(), ALICE),
        "feature_id",
    )
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        f.call("SubmitFeedback", pb.SubmitFeedbackRequest(topic="t", body="b"), ALICE),
        "kind",
    )
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        f.call("SubmitFeedback", pb.SubmitFeedbackRequest(kind=ev.FEEDBACK_KIND_FEEDBACK, topic="t"), ALICE),
        "body",
    )
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        f.call("RecordSurveyResponse", pb.RecordSurveyResponseRequest(survey_id="s", answered_questions=-1), ALICE),
        "answered_questions",
    )
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        f.call("RecordWorkshopAttendance", pb.RecordWorkshopAttendanceRequest(session_id="w-2"), ALICE),
        "kind",
    )
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        f.call("RecordWorkshopAttendance", pb.RecordWorkshopAttendanceRequest(kind=ev.SESSION_KIND_INTERVIEW), ALICE),
        "session_id",
    )


async def test_upsert_employees_validates_and_counts_changes(feed: Feed) -> None:
    f = feed
    assert await f.directory((ALICE, "Alice", "sales"), (BOB, "Bob", "it")) == 2
    assert await f.directory((ALICE, "Alice", "sales"), (BOB, "Bob", "hr")) == 1
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        f.call("UpsertEmployees", pb.UpsertEmployeesRequest(), "hr-1", Role.HR),
        "employees",
    )
    bad = pb.UpsertEmployeesRequest(employees=[pb.Employee(employee_id="x y", display_name="X", department_id="d")])
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT, f.call("UpsertEmployees", bad, "hr-1", Role.HR), "employees[0].employee_id"
    )
    twice = pb.UpsertEmployeesRequest(employees=[pb.Employee(employee_id="a", display_name="A", department_id="d")] * 2)
    await expect(grpc.StatusCode.INVALID_ARGUMENT, f.call("UpsertEmployees", twice, "hr-1", Role.HR), "more than once")


async def test_forget_me_removes_content_and_directory_entry(people: Feed) -> None:
    f = people
    mine = (await f.call("CreatePost", pb.CreatePostRequest(body="mine"), ALICE)).post
    await f.call("AddComment", pb.AddCommentRequest(post_id=mine.post_id, body="on alice"), BOB)
    question = (await f.call("AskQuestion", pb.AskQuestionRequest(title="Q?", body="q"), BOB)).question
    answer = (await f.call("PostAnswer", pb.PostAnswerRequest(question_id=question.post_id, body="A"), ALICE)).answer
    await f.call("AcceptAnswer", pb.AcceptAnswerRequest(question_id=question.post_id, answer_id=answer.comment_id), BOB)
    await f.call(
        "AddReaction", pb.AddReactionRequest(post_id=question.post_id, reaction=ev.REACTION_KIND_INSIGHTFUL), ALICE
    )
    await f.call("UpdateProfile", pb.UpdateProfileRequest(job_title="Seller"), ALICE)

    await f.call("ForgetMe", pb.ForgetMeRequest(), ALICE)

    await expect(grpc.StatusCode.NOT_FOUND, f.call("GetPost", pb.GetPostRequest(post_id=mine.post_id), BOB))
    got = await f.call("GetPost", pb.GetPostRequest(post_id=question.post_id), BOB)
    assert got.post.comment_count == 0 and not got.comments
    assert got.post.accepted_answer_id == "" and dict(got.post.reactions) == {}
    await expect(grpc.StatusCode.NOT_FOUND, f.call("GetProfile", pb.GetProfileRequest(employee_id=ALICE), BOB))
    feed_now = await f.call("ListFeed", pb.ListFeedRequest(), BOB)
    assert [p.post_id for p in feed_now.posts] == [question.post_id]
    leftover = [k for k in await f.service.store.redis.keys("*e-alice*")]
    assert leftover == []
    await expect(grpc.StatusCode.FAILED_PRECONDITION, f.call("ForgetMe", pb.ForgetMeRequest(), ALICE))
