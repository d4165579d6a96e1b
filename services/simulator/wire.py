"""Translation of simulator actions into feed API messages (pure: protobuf objects in, nothing sent)."""

from __future__ import annotations

from catalyst.events.v1 import interactions_pb2 as ev
from catalyst.feed.v1 import feed_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from services.simulator.actions import Action, ActionKind, FeedbackKind, Reaction, SessionKind
from services.simulator.population import Employee

REACTION_KINDS = {
    Reaction.LIKE: ev.REACTION_KIND_LIKE,
    Reaction.CELEBRATE: ev.REACTION_KIND_CELEBRATE,
    Reaction.INSIGHTFUL: ev.REACTION_KIND_INSIGHTFUL,
    Reaction.SUPPORT: ev.REACTION_KIND_SUPPORT,
    Reaction.FUNNY: ev.REACTION_KIND_FUNNY,
}
FEEDBACK_KINDS = {
    FeedbackKind.FEEDBACK: ev.FEEDBACK_KIND_FEEDBACK,
    FeedbackKind.SUGGESTION: ev.FEEDBACK_KIND_SUGGESTION,
    FeedbackKind.BUG_REPORT: ev.FEEDBACK_KIND_BUG_REPORT,
}
SESSION_KINDS = {SessionKind.WORKSHOP: ev.SESSION_KIND_WORKSHOP, SessionKind.INTERVIEW: ev.SESSION_KIND_INTERVIEW}

# The Envelope payload each action kind becomes on catalyst.interactions.v1.
PAYLOAD_OF = {
    ActionKind.POST: "post_created",
    ActionKind.QUESTION: "question_asked",
    ActionKind.COMMENT: "comment_added",
    ActionKind.REACTION: "reaction_added",
    ActionKind.ANSWER: "answer_posted",
    ActionKind.ACCEPT: "answer_accepted",
    ActionKind.PROFILE_UPDATE: "profile_updated",
    ActionKind.FEATURE_TRIAL: "feature_tried",
    ActionKind.FEEDBACK: "feedback_submitted",
    ActionKind.SURVEY: "survey_answered",
    ActionKind.WORKSHOP: "workshop_attended",
}


def directory_entry(e: Employee) -> feed_pb2.Employee:
    return feed_pb2.Employee(
        employee_id=e.employee_id, display_name=e.display_name, department_id=e.department_id, is_manager=e.is_manager
    )


def imported(action: Action) -> feed_pb2.ImportedInteraction:
    """The action as an interaction imported with its own id (`source_id`) and event time."""
    at = Timestamp()
    at.FromDatetime(action.occurred_at)
    item = feed_pb2.ImportedInteraction(source_id=action.source_id, actor_id=action.actor_id, occurred_at=at)
    a = action
    match a.kind:
        case ActionKind.POST:
            item.post_created.CopyFrom(
                ev.PostCreated(
                    post_id=a.post_id,
                    kind=ev.POST_KIND_POST,
                    body_length=a.body_length,
                    tags=a.tags,
                    target_department_id=a.audience_department_id,
                )
            )
        case ActionKind.QUESTION:
            item.question_asked.CopyFrom(
                ev.QuestionAsked(
                    question_id=a.post_id,
                    body_length=a.body_length,
                    tags=a.tags,
                    target_department_id=a.audience_department_id,
                )
            )
        case ActionKind.COMMENT:
            item.comment_added.CopyFrom(
                ev.CommentAdded(
                    comment_id=a.item_id,
                    post_id=a.post_id,
                    post_author_id=a.counterpart_id,
                    post_author_department_id=a.counterpart_department_id,
                    body_length=a.body_length,
                )
            )
        case ActionKind.REACTION:
            assert a.reaction is not None
            item.reaction_added.CopyFrom(
                ev.ReactionAdded(
                    post_id=a.post_id,
                    post_author_id=a.counterpart_id,
                    post_author_department_id=a.counterpart_department_id,
                    reaction=REACTION_KINDS[a.reaction],
                )
            )
        case ActionKind.ANSWER:
            item.answer_posted.CopyFrom(
                ev.AnswerPosted(
                    answer_id=a.item_id,
                    question_id=a.post_id,
                    question_author_id=a.counterpart_id,
                    question_author_department_id=a.counterpart_department_id,
                    body_length=a.body_length,
                )
            )
        case ActionKind.ACCEPT:
            item.answer_accepted.CopyFrom(
                ev.AnswerAccepted(
                    answer_id=a.item_id,
                    question_id=a.post_id,
                    answer_author_id=a.counterpart_id,
                    answer_author_department_id=a.counterpart_department_id,
                )
            )
        case ActionKind.PROFILE_UPDATE:
            item.profile_updated.CopyFrom(
                ev.ProfileUpdated(completeness=a.completeness, changed_fields=a.changed_fields)
            )
        case ActionKind.FEATURE_TRIAL:
            item.feature_tried.CopyFrom(ev.FeatureTried(feature_id=a.item_id))
        case ActionKind.FEEDBACK:
            assert a.feedback_kind is not None
            item.feedback_submitted.CopyFrom(
                ev.FeedbackSubmitted(
                    feedback_id=a.item_id,
                    kind=FEEDBACK_KINDS[a.feedback_kind],
                    topic=a.topic,
                    body_length=a.body_length,
                )
            )
        case ActionKind.SURVEY:
            item.survey_answered.CopyFrom(
                ev.SurveyAnswered(survey_id=a.item_id, pre_launch=a.pre_launch, answered_questions=a.answered_questions)
            )
        case ActionKind.WORKSHOP:
            assert a.session_kind is not None
            item.workshop_attended.CopyFrom(
                ev.WorkshopAttended(
                    session_id=a.item_id,
                    kind=SESSION_KINDS[a.session_kind],
                    pre_launch=a.pre_launch,
                    contributed=a.contributed,
                )
            )
    return item


def text_of(length: int, what: str) -> str:
    """Placeholder text of the simulated length (the system only ever sees its length)."""
    sentence = f"Simulated {what} text. "
    return (sentence * (length // len(sentence) + 1))[: max(1, length)]


def create_post_request(action: Action) -> feed_pb2.CreatePostRequest:
    return feed_pb2.CreatePostRequest(
        title=f"Simulated post {action.post_id}",
        body=text_of(action.body_length, "post"),
        tags=action.tags,
        target_department_id=action.audience_department_id,
    )


def add_comment_request(action: Action, post_id: str) -> feed_pb2.AddCommentRequest:
    return feed_pb2.AddCommentRequest(post_id=post_id, body=text_of(action.body_length, "comment"))


def add_reaction_request(action: Action, post_id: str) -> feed_pb2.AddReactionRequest:
    assert action.reaction is not None
    return feed_pb2.AddReactionRequest(post_id=post_id, reaction=REACTION_KINDS[action.reaction])
