"""Who may do what: tokens missing, expired, badly signed; roles checked per RPC."""

from __future__ import annotations

import grpc
import jwt
import pytest
from catalyst.feed.v1 import feed_pb2 as pb

from services.common.auth import Role, TokenAuthority
from services.common.grpc_client import bearer
from tests.integration.feed.harness import SECRET, Feed

pytestmark = pytest.mark.integration


async def status_of(call: object) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return info.value.code(), info.value.details()


async def test_missing_token_is_unauthenticated(feed: Feed) -> None:
    code, details = await status_of(feed.stub.ListFeed(pb.ListFeedRequest(), timeout=10))
    assert code == grpc.StatusCode.UNAUTHENTICATED and "missing bearer token" in details


async def test_malformed_header_is_unauthenticated(feed: Feed) -> None:
    code, details = await status_of(
        feed.stub.ListFeed(pb.ListFeedRequest(), metadata=(("authorization", "Basic abc"),), timeout=10)
    )
    assert code == grpc.StatusCode.UNAUTHENTICATED and "Bearer" in details


async def test_expired_token_is_unauthenticated(feed: Feed) -> None:
    expired = TokenAuthority(SECRET, leeway_seconds=0).mint("e-1", [Role.EMPLOYEE], ttl_seconds=-120)
    code, details = await status_of(feed.stub.ListFeed(pb.ListFeedRequest(), metadata=bearer(expired), timeout=10))
    assert code == grpc.StatusCode.UNAUTHENTICATED and "expired" in details


async def test_badly_signed_token_is_unauthenticated(feed: Feed) -> None:
    forged = TokenAuthority("some-other-secret-that-is-long-enough-00").mint("e-1", [Role.HR])
    code, details = await status_of(feed.stub.ListFeed(pb.ListFeedRequest(), metadata=bearer(forged), timeout=10))
    assert code == grpc.StatusCode.UNAUTHENTICATED and "signature" in details
    garbage = jwt.encode({"sub": "e-1"}, SECRET, algorithm="HS256")
    code, _ = await status_of(feed.stub.ListFeed(pb.ListFeedRequest(), metadata=bearer(garbage), timeout=10))
    assert code == grpc.StatusCode.UNAUTHENTICATED


async def test_employee_calling_an_hr_rpc_is_permission_denied(feed: Feed) -> None:
    request = pb.UpsertEmployeesRequest(employees=[pb.Employee(employee_id="e-2", display_name="X", department_id="d")])
    code, details = await status_of(feed.call("UpsertEmployees", request, "e-1", Role.EMPLOYEE))
    assert code == grpc.StatusCode.PERMISSION_DENIED and "hr role" in details


async def test_only_the_service_role_may_ingest(feed: Feed) -> None:
    request = pb.IngestInteractionsRequest(source="legacy")
    for role in (Role.EMPLOYEE, Role.HR, Role.PROGRAMME_OWNER, Role.OPERATOR):
        code, details = await status_of(feed.call("IngestInteractions", request, "e-1", role))
        assert code == grpc.StatusCode.PERMISSION_DENIED and "service role" in details


async def test_a_service_token_cannot_act_as_an_employee(feed: Feed) -> None:
    code, _ = await status_of(feed.call("CreatePost", pb.CreatePostRequest(body="x"), "bridge", Role.SERVICE))
    assert code == grpc.StatusCode.PERMISSION_DENIED


async def test_the_actor_comes_from_the_token(feed: Feed) -> None:
    await feed.directory(("e-1", "One", "d1"), ("e-2", "Two", "d2"))
    post = (await feed.call("CreatePost", pb.CreatePostRequest(body="x"), "e-2")).post
    assert post.author_id == "e-2" and post.author_department_id == "d2"
