"""The person's own data from every service as one document (GDPR Art. 15 and 20): what feed, engagement and
recognition store about them, and who looked at it. One shape, built here, for `catalyst my-data` and the
console's download alike."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from catalyst.audit.v1 import audit_pb2
from catalyst.engagement.v1 import engagement_pb2
from catalyst.feed.v1 import feed_pb2
from catalyst.recognition.v1 import recognition_pb2
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

WINDOWS = ("7d", "30d", "100d", "decayed")


def as_dict(message: Message) -> dict[str, Any]:
    return MessageToDict(message, preserving_proto_field_name=True)


def has_figures(stored: engagement_pb2.GetMyDataResponse) -> bool:
    """Whether engagement stores counts about the person, so a score and explanations exist to add."""
    return bool(stored.days or stored.totals)


def document(
    subject: str,
    feed: feed_pb2.GetMyDataResponse,
    engagement: engagement_pb2.GetMyDataResponse,
    score: engagement_pb2.GetScoreResponse | None,
    explanations: Mapping[str, engagement_pb2.ExplainScoreResponse],
    recognition: recognition_pb2.GetMyDataResponse,
    accesses: audit_pb2.ListMyAccessesResponse,
) -> dict[str, Any]:
    """Each service's own answer, field names as in proto/; engagement's stored counts come with the score
    and every window's explanation computed from them when there are any."""
    engaged: dict[str, Any] = {"stored": as_dict(engagement)}
    if score is not None:
        engaged["score"] = as_dict(score)
        engaged["explanations"] = {window: as_dict(e) for window, e in explanations.items()}
    return {
        "employee_id": subject,
        "feed": as_dict(feed),
        "engagement": engaged,
        "recognition": as_dict(recognition),
        "accesses": as_dict(accesses),
    }
