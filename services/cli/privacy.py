"""The person's own data from every service as one document (GDPR Art. 15 and 20), and erasure by HR."""

from __future__ import annotations

from typing import Any

from catalyst.audit.v1 import audit_pb2
from catalyst.engagement.v1 import engagement_pb2
from catalyst.feed.v1 import feed_pb2
from catalyst.recognition.v1 import recognition_pb2
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

from services.cli.clients import Caller

WINDOWS = ("7d", "30d", "100d", "decayed")


def _dict(message: Message) -> dict[str, Any]:
    return MessageToDict(message, preserving_proto_field_name=True)


def _engagement(caller: Caller) -> dict[str, Any]:
    """What engagement stores (counts per day, per colleague as keyed pseudonyms, totals, the ranking choice),
    with the score and every window's explanation computed from it when there is any."""
    stored = _dict(caller.call("engagement", "GetMyData", engagement_pb2.GetMyDataRequest()))
    if not stored.get("days") and not stored.get("totals"):
        return {"stored": stored}
    explanations = {
        window: _dict(caller.call("engagement", "ExplainScore", engagement_pb2.ExplainScoreRequest(window=window)))
        for window in WINDOWS
    }
    score = _dict(caller.call("engagement", "GetScore", engagement_pb2.GetScoreRequest()))
    return {"stored": stored, "score": score, "explanations": explanations}


def my_data(caller: Caller) -> dict[str, Any]:
    """What feed, engagement and recognition store about the caller, and who looked at it."""
    return {
        "employee_id": caller.subject,
        "feed": _dict(caller.call("feed", "GetMyData", feed_pb2.GetMyDataRequest())),
        "engagement": _engagement(caller),
        "recognition": _dict(caller.call("recognition", "GetMyData", recognition_pb2.GetMyDataRequest())),
        "accesses": _dict(caller.call("audit", "ListMyAccesses", audit_pb2.ListMyAccessesRequest())),
    }


def erase(caller: Caller, employee_id: str, reason: str) -> None:
    caller.call("feed", "EraseEmployee", feed_pb2.EraseEmployeeRequest(employee_id=employee_id, reason=reason))
