"""gRPC adapter: turns FeedService requests into use-case calls and results into messages.

The acting employee is always `current_principal()` (from the bearer token), never a request field.
"""

from __future__ import annotations

import grpc
from catalyst.events.v1 import interactions_pb2 as ev
from catalyst.feed.v1 import feed_pb2, feed_pb2_grpc
from google.protobuf.timestamp_pb2 import Timestamp

from services.common.auth import current_principal
from services.feed.domain import Comment, Employee, Post, Profile, completeness
from services.feed.handlers import FeedHandlers, MyData

SERVICE_NAME = feed_pb2.DESCRIPTOR.services_by_name["FeedService"].full_name


def _ts(ms: int) -> Timestamp | None:
    if not ms:
        return None
    ts = Timestamp()
    ts.FromMilliseconds(ms)
    return ts


def post_message(post: Post) -> feed_pb2.Post:
    return feed_pb2.Post(
        post_id=post.post_id,
        author_id=post.author_id,
        author_department_id=post.author_department_id,
        kind=post.kind,
        title=post.title,
        body=post.body,
        tags=post.tags,
        target_department_id=post.target_department_id,
        created_at=_ts(post.created_ms),
        edited_at=_ts(post.edited_ms),
        reactions=post.reactions,
        comment_count=post.comment_count,
        accepted_answer_id=post.accepted_answer_id,
    )


def comment_message(comment: Comment) -> feed_pb2.Comment:
    return feed_pb2.Comment(
        comment_id=comment.comment_id,
        post_id=comment.post_id,
        author_id=comment.author_id,
        body=comment.body,
        is_answer=comment.is_answer,
        accepted=comment.accepted,
        created_at=_ts(comment.created_ms),
    )


def profile_message(employee: Employee, profile: Profile) -> feed_pb2.Profile:
    return feed_pb2.Profile(
        employee_id=employee.employee_id,
        display_name=employee.display_name,
        department_id=employee.department_id,
        job_title=profile.job_title,
        location=profile.location,
        about=profile.about,
        skills=profile.skills,
        photo_url=profile.photo_url,
        phone=profile.phone,
        completeness=completeness(profile),
        updated_at=_ts(profile.updated_ms),
    )


def my_data_message(data: MyData) -> feed_pb2.GetMyDataResponse:
    response = feed_pb2.GetMyDataResponse(
        posts=[post_message(p) for p in data.posts],
        comments=[comment_message(c) for c in data.comments],
        reactions=[
            feed_pb2.GivenReaction(post_id=post_id, reaction=ev.ReactionKind.Value(f"REACTION_KIND_{name}"))
            for post_id, name in data.reactions
        ],
        feedback=[
            feed_pb2.Feedback(
                feedback_id=feedback_id,
                kind=record["kind"],
                topic=record["topic"],
                body=record["body"],
                created_at=_ts(record["created_ms"]),
            )
            for feedback_id, record in data.feedback.items()
        ],
        survey_ids=data.surveys,
        session_ids=data.sessions,
    )
    if data.employee is not None:
        e = data.employee
        response.employee.CopyFrom(
            feed_pb2.Employee(
                employee_id=e.employee_id,
                display_name=e.display_name,
                department_id=e.department_id,
                is_manager=e.is_manager,
            )
        )
        response.profile.CopyFrom(profile_message(e, data.profile))
    return response


class FeedServicer(feed_pb2_grpc.FeedServiceServicer):
    def __init__(self, handlers: FeedHandlers) -> None:
        self._h = handlers

    def register(self, server: grpc.aio.Server) -> None:
        feed_pb2_grpc.add_FeedServiceServicer_to_server(self, server)

    async def CreatePost(
        self, request: feed_pb2.CreatePostRequest, context: grpc.aio.ServicerContext
    ) -> feed_pb2.CreatePostResponse:
        post = await self._h.create_post(
            current_principal(),
            ev.POST_KIND_POST,
            request.title,
            request.body,
            list(request.tags),
            request.target_department_id,
        )
        return feed_pb2.CreatePostResponse(post=post_message(post))

    async def EditPost(
        self, request: feed_pb2.EditPostRequest, context: grpc.aio.ServicerContext
    ) -> feed_pb2.EditPostResponse:
        post = await self._h.edit_post(current_principal(), request.post_id, request.title, request.body, request.tags)
        return feed_pb2.EditPostResponse(post=post_message(post))

    async def DeletePost(
        self, request: feed_pb2.DeletePostRequest, context: grpc.aio.ServicerContext
    ) -> feed_pb2.DeletePostResponse:
        await self._h.delete_post(current_principal(), request.post_id)
        return feed_pb2.DeletePostResponse()

    async def AddComment(
        self, request: feed_pb2.AddCommentRequest, context: grpc.aio.ServicerContext
    ) -> feed_pb2.AddCommentResponse:
        comment = await self._h.add_comment(current_principal(), request.post_id, request.body)
        return feed_pb2.AddCommentResponse(comment=comment_message(comment))

    async def AddReaction(
        self, request: feed_pb2.AddReactionRequest, context: grpc.aio.ServicerContext
    ) -> feed_pb2.AddReactionResponse:
        await self._h.set_reaction(current_principal(), request.post_id, request.reaction, add=True)
        return feed_pb2.AddReactionResponse()

    async def RemoveReaction(
        self, request: feed_pb2.RemoveReactionRequest, context: grpc.aio.ServicerContext
    ) -> feed_pb2.RemoveReactionResponse:
        await self._h.set_reaction(current_principal(), request.post_id, request.reaction, add=False)
        return feed_pb2.RemoveReactionResponse()

    async def AskQuestion(
        self, request: feed_pb2.AskQuestionRequest, context: grpc.aio.ServicerContext
    ) -> feed_pb2.AskQuestionResponse:
        question = await self._h.create_post(
            current_principal(),
            ev.POST_KIND_QUESTION,
            request.title,
            request.body,
            list(request.tags),
            request.target_department_id,
        )
        return feed_pb2.AskQuestionResponse(question=post_message(question))

    async def PostAnswer(
        self, request: feed_pb2.PostAnswerRequest, context: grpc.aio.ServicerContext
    ) -> feed_pb2.PostAnswerResponse:
        answer = await self._h.add_comment(current_principal(), request.question_id, request.body, is_answer=True)
        return feed_pb2.PostAnswerResponse(answer=comment_message(answer))

    async def AcceptAnswer(
        self, request: feed_pb2.AcceptAnswerRequest, context: grpc.aio.ServicerContext
    ) -> feed_pb2.AcceptAnswerResponse:
        await self._h.accept_answer(current_principal(), request.question_id, request.answer_id)
        return feed_pb2.AcceptAnswerResponse()

    async def UpdateProfile(
        self, request: feed_pb2.UpdateProfileRequest, context: grpc.aio.ServicerContext
    ) -> feed_pb2.UpdateProfileResponse:
        employee, profile = await self._h.update_profile(current_principal(), request)
        return feed_pb2.UpdateProfileResponse(profile=profile_message(employee, profile))

    async def RecordFeatureTrial(
        self, request: feed_pb2.RecordFeatureTrialRequest, context: grpc.aio.ServicerContext
    ) -> feed_pb2.RecordFeatureTrialResponse:
        await self._h.record_feature_trial(current_principal(), request.feature_id)
        return feed_pb2.RecordFeatureTrialResponse()

    async def SubmitFeedback(
        self, request: feed_pb2.SubmitFeedbackRequest, context: grpc.aio.ServicerContext
    ) -> feed_pb2.SubmitFeedbackResponse:
        feedback_id = await self._h.submit_feedback(current_principal(), request.kind, request.topic, request.body)
        return feed_pb2.SubmitFeedbackResponse(feedback_id=feedback_id)

    async def RecordSurveyResponse(
        self, request: feed_pb2.RecordSurveyResponseRequest, context: grpc.aio.ServicerContext
    ) -> feed_pb2.RecordSurveyResponseResponse:
        await self._h.record_survey(current_principal(), request.survey_id, request.answered_questions)
        return feed_pb2.RecordSurveyResponseResponse()

    async def RecordWorkshopAttendance(
        self, request: feed_pb2.RecordWorkshopAttendanceRequest, context: grpc.aio.ServicerContext
    ) -> feed_pb2.RecordWorkshopAttendanceResponse:
        await self._h.record_session(current_principal(), request.session_id, request.kind)
        return feed_pb2.RecordWorkshopAttendanceResponse()

    async def GetPost(
        self, request: feed_pb2.GetPostRequest, context: grpc.aio.ServicerContext
    ) -> feed_pb2.GetPostResponse:
        post, comments = await self._h.get_post(current_principal(), request.post_id)
        return feed_pb2.GetPostResponse(post=post_message(post), comments=[comment_message(c) for c in comments])

    async def ListFeed(
        self, request: feed_pb2.ListFeedRequest, context: grpc.aio.ServicerContext
    ) -> feed_pb2.ListFeedResponse:
        posts, token = await self._h.list_feed(
            current_principal(), request.department_id, request.page_size, request.page_token
        )
        return feed_pb2.ListFeedResponse(posts=[post_message(p) for p in posts], next_page_token=token)

    async def GetProfile(
        self, request: feed_pb2.GetProfileRequest, context: grpc.aio.ServicerContext
    ) -> feed_pb2.GetProfileResponse:
        employee, profile = await self._h.get_profile(current_principal(), request.employee_id)
        return feed_pb2.GetProfileResponse(profile=profile_message(employee, profile))

    async def ForgetMe(
        self, request: feed_pb2.ForgetMeRequest, context: grpc.aio.ServicerContext
    ) -> feed_pb2.ForgetMeResponse:
        await self._h.forget_me(current_principal())
        return feed_pb2.ForgetMeResponse()

    async def EraseEmployee(
        self, request: feed_pb2.EraseEmployeeRequest, context: grpc.aio.ServicerContext
    ) -> feed_pb2.EraseEmployeeResponse:
        await self._h.erase_employee(current_principal(), request.employee_id, request.reason)
        return feed_pb2.EraseEmployeeResponse()

    async def GetMyData(
        self, request: feed_pb2.GetMyDataRequest, context: grpc.aio.ServicerContext
    ) -> feed_pb2.GetMyDataResponse:
        return my_data_message(await self._h.my_data(current_principal()))

    async def UpsertEmployees(
        self, request: feed_pb2.UpsertEmployeesRequest, context: grpc.aio.ServicerContext
    ) -> feed_pb2.UpsertEmployeesResponse:
        rows = [(e.employee_id, e.display_name, e.department_id, e.is_manager) for e in request.employees]
        return feed_pb2.UpsertEmployeesResponse(upserted=await self._h.upsert_employees(current_principal(), rows))

    async def IngestInteractions(
        self, request: feed_pb2.IngestInteractionsRequest, context: grpc.aio.ServicerContext
    ) -> feed_pb2.IngestInteractionsResponse:
        accepted, duplicates = await self._h.ingest(current_principal(), request.source, list(request.interactions))
        return feed_pb2.IngestInteractionsResponse(accepted=accepted, duplicates=duplicates)
