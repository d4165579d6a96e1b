"""The person's own data from every service as one document (GDPR Art. 15 and 20), and erasure by HR."""

from __future__ import annotations

from typing import Any

from catalyst.audit.v1 import audit_pb2
from catalyst.engagement.v1 import engagement_pb2
from catalyst.feed.v1 import feed_pb2
from catalyst.recognition.v1 import recognition_pb2

from services.cli.clients import Caller
from services.common.my_data import WINDOWS, document, has_figures


def my_data(caller: Caller) -> dict[str, Any]:
    """What feed, engagement and recognition store about the caller, and who looked at it."""
    stored = caller.call("engagement", "GetMyData", engagement_pb2.GetMyDataRequest())
    figures = has_figures(stored)
    return document(
        caller.subject,
        caller.call("feed", "GetMyData", feed_pb2.GetMyDataRequest()),
        stored,
        caller.call("engagement", "GetScore", engagement_pb2.GetScoreRequest()) if figures else None,
        {
            window: caller.call("engagement", "ExplainScore", engagement_pb2.ExplainScoreRequest(window=window))
            for window in (WINDOWS if figures else ())
        },
        caller.call("recognition", "GetMyData", recognition_pb2.GetMyDataRequest()),
        caller.call("audit", "ListMyAccesses", audit_pb2.ListMyAccessesRequest()),
    )


def erase(caller: Caller, employee_id: str, reason: str) -> None:
    caller.call("feed", "EraseEmployee", feed_pb2.EraseEmployeeRequest(employee_id=employee_id, reason=reason))
