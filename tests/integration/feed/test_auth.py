"""Who may do what: tokens missing, expired, not from the identity provider; keys of both algorithms and a
rotation; roles checked per RPC."""

from __future__ import annotations

from pathlib import Path

import grpc
import jwt
import pytest
from catalyst.feed.v1 import feed_pb2 as pb
from prometheus_client import CollectorRegistry

from services.common.auth import Role
from services.common.grpc_client import bearer
from services.common.local_issuer import Algorithm, LocalIssuer
from services.issuer.server import serve
from tests.conftest import free_port
from tests.integration.feed.harness import Feed, feed_settings, start_feed, stop_feed

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
    expired = feed.authority.mint("e-1", [Role.EMPLOYEE], ttl_seconds=-120)
    code, details = await status_of(feed.stub.ListFeed(pb.ListFeedRequest(), metadata=bearer(expired), timeout=10))
    assert code == grpc.StatusCode.UNAUTHENTICATED and "expired" in details


def stranger(tmp_path: Path, issuer: str, algorithm: Algorithm = "ES256") -> LocalIssuer:
    """An issuer whose keys the feed has never seen."""
    return LocalIssuer(tmp_path / "stranger", issuer, "catalyst", algorithm=algorithm)


async def test_tokens_the_identity_provider_did_not_sign_are_unauthenticated(feed: Feed, tmp_path: Path) -> None:
    trusted = feed.authority
    cases = {
        "does not publish": stranger(tmp_path, trusted.issuer).mint("e-1", [Role.HR]),
        "not issued by": trusted.mint("e-1", [Role.HR], iss="https://idp.example.com"),
        "not meant for this system": trusted.mint("e-1", [Role.EMPLOYEE], aud="another-app"),
        "signed with 'HS256'": jwt.encode({"sub": "e-1"}, "a-shared-secret-is-no-longer-accepted", algorithm="HS256"),
        "not a JWT": "not-a-token",
    }
    own_kid = jwt.get_unverified_header(trusted.mint("e-1", [Role.EMPLOYEE]))["kid"]
    impostor = stranger(tmp_path, trusted.issuer).keys()[-1]
    cases["signature does not match"] = jwt.encode(
        {"sub": "e-1", "iss": trusted.issuer, "aud": "catalyst", "iat": 0, "exp": 2**40},
        impostor.private,
        algorithm="ES256",
        headers={"kid": own_kid},
    )
    for reason, token in cases.items():
        code, details = await status_of(feed.stub.ListFeed(pb.ListFeedRequest(), metadata=bearer(token), timeout=10))
        assert (code, reason in details) == (grpc.StatusCode.UNAUTHENTICATED, True), (reason, details)


async def test_rs256_and_es256_keys_and_a_rotation_are_accepted(
    redis_url: str, kafka_bootstrap: str, topics: dict[str, str], tmp_path: Path
) -> None:
    port = free_port()
    issuer = LocalIssuer(tmp_path / "keys", f"http://127.0.0.1:{port}", "catalyst", "realm_access.roles", "RS256")
    issuer.ensure_key()
    server = serve(issuer, "127.0.0.1", port, CollectorRegistry())
    settings = feed_settings(
        redis_url,
        kafka_bootstrap,
        topics["interactions"],
        oidc_issuer=issuer.issuer,
        oidc_roles_claim="realm_access.roles",
        oidc_jwks_refetch_seconds=0,
    )
    service = await start_feed(settings)
    try:
        first = issuer.mint("hr-1", [Role.HR])
        directory = pb.UpsertEmployeesRequest(
            employees=[pb.Employee(employee_id="e-1", display_name="E", department_id="d")]
        )
        assert (await service.stub.UpsertEmployees(directory, metadata=bearer(first), timeout=10)).upserted == 1
        issuer.algorithm = "ES256"
        rotated = issuer.rotate()
        second = issuer.mint("e-1", [Role.EMPLOYEE])
        assert jwt.get_unverified_header(second) == {"alg": "ES256", "kid": rotated, "typ": "JWT"}
        await service.stub.ListFeed(pb.ListFeedRequest(), metadata=bearer(second), timeout=10)
        await service.stub.ListFeed(pb.ListFeedRequest(), metadata=bearer(first), timeout=10)  # old keys stay valid
    finally:
        await stop_feed(service)
        server.shutdown()


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
