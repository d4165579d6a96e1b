"""The interaction records the engagement worker accepts: which event types, and how long an id may be.

The checks themselves run in C with the rest of a record's planning (`_plan.c`, docs/decisions/0008): anything
the processor cannot score safely becomes a dead letter with a reason a person understands.
"""

from __future__ import annotations

PREFIX = "catalyst.events.v1."
# Envelope.type -> the oneof field that must carry the payload. Only these are accepted on the interactions topic.
PAYLOAD_FIELD = {
    f"{PREFIX}PostCreated": "post_created",
    f"{PREFIX}PostEdited": "post_edited",
    f"{PREFIX}PostDeleted": "post_deleted",
    f"{PREFIX}CommentAdded": "comment_added",
    f"{PREFIX}ReactionAdded": "reaction_added",
    f"{PREFIX}ReactionRemoved": "reaction_removed",
    f"{PREFIX}QuestionAsked": "question_asked",
    f"{PREFIX}AnswerPosted": "answer_posted",
    f"{PREFIX}AnswerAccepted": "answer_accepted",
    f"{PREFIX}ProfileUpdated": "profile_updated",
    f"{PREFIX}FeatureTried": "feature_tried",
    f"{PREFIX}FeedbackSubmitted": "feedback_submitted",
    f"{PREFIX}SurveyAnswered": "survey_answered",
    f"{PREFIX}WorkshopAttended": "workshop_attended",
    f"{PREFIX}EmployeeForgotten": "employee_forgotten",
    f"{PREFIX}EmployeeRegistered": "employee_registered",
}
MAX_ID = 128  # characters in an employee id or the other party's id

# payload field -> its event kind as metrics name it (`PostCreated`)
KIND = {payload: type_name.removeprefix(PREFIX) for type_name, payload in PAYLOAD_FIELD.items()}
