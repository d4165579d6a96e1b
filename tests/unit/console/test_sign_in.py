"""Sign-in for real: the console's Authlib adapter against the local issuer's interactive endpoints (the
authorization code flow with PKCE), and the issuer's refusals of codes, verifiers and requests."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx2 as httpx
import jwt
import pytest
from prometheus_client import CollectorRegistry
from starlette.testclient import TestClient

from services.common.auth import Role, TokenVerifier
from services.common.local_issuer_login import InteractiveLogin, LoginSettings, s256
from services.console.adapters.oidc import OidcSignIn
from services.console.app import create_app
from services.console.config import ConsoleSettings
from tests.conftest import IssuerKeys
from tests.unit.console.fakes import FakeBackend
from tests.unit.console.issuer_fixture import RunningIssuer, running_issuer

CONSOLE = "https://console.test"
VERIFIER = "v" * 43


@pytest.fixture
def issuer() -> Iterator[RunningIssuer]:
    with running_issuer() as running:
        yield running


def authorize(login: InteractiveLogin, **overrides: str) -> dict[str, str]:
    params = {
        "response_type": "code",
        "client_id": "catalyst-console",
        "redirect_uri": f"{CONSOLE}/auth/callback",
        "scope": "openid",
        "state": "s1",
        "nonce": "n1",
        "code_challenge": s256(VERIFIER),
        "code_challenge_method": "S256",
        **overrides,
    }
    return params


def sign_in_as(login: InteractiveLogin, subject: str, role: str, **overrides: str) -> str:
    form = urlencode({**authorize(login, **overrides), "subject": subject, "role": role}).encode()
    reply = login.handle("POST", "/authorize", "", form)
    assert reply is not None and reply.status == 303, reply
    location = dict(reply.headers)["Location"]
    return parse_qs(urlsplit(location).query)["code"][0]


def exchange(login: InteractiveLogin, code: str, verifier: str = VERIFIER) -> tuple[int, dict[str, object]]:
    form = urlencode(
        {
            "grant_type": "authorization_code",
            "code": code,
            "client_id": "catalyst-console",
            "redirect_uri": f"{CONSOLE}/auth/callback",
            "code_verifier": verifier,
        }
    ).encode()
    reply = login.handle("POST", "/token", "", form)
    assert reply is not None
    return reply.status, json.loads(reply.body)


def test_the_console_signs_in_through_the_issuer_with_pkce(issuer: RunningIssuer) -> None:
    settings = ConsoleSettings(oidc_issuer=issuer.url, console_redirect_url=f"{CONSOLE}/auth/callback")
    app = create_app(settings, FakeBackend(), OidcSignIn(settings), registry=CollectorRegistry())
    client = TestClient(app, base_url=CONSOLE)
    to_issuer = client.get("/login", follow_redirects=False)
    assert to_issuer.status_code == 302
    request = parse_qs(urlsplit(to_issuer.headers["location"]).query)
    assert request["code_challenge_method"] == ["S256"] and request["client_id"] == ["catalyst-console"]
    page = httpx.get(to_issuer.headers["location"])
    assert page.status_code == 200 and "programme owner" in page.text
    hidden = dict(re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
    chosen = httpx.post(f"{issuer.url}/authorize", data={**hidden, "subject": "po-7", "role": "programme_owner"})
    assert chosen.status_code == 303
    back = urlsplit(chosen.headers["location"])
    home = client.get(f"{back.path}?{back.query}")
    assert home.status_code == 200 and "Signed in as po-7" in home.text


def test_a_forged_state_signs_nobody_in(issuer: RunningIssuer) -> None:
    settings = ConsoleSettings(oidc_issuer=issuer.url, console_redirect_url=f"{CONSOLE}/auth/callback")
    client = TestClient(
        create_app(settings, FakeBackend(), OidcSignIn(settings), registry=CollectorRegistry()), base_url=CONSOLE
    )
    client.get("/login", follow_redirects=False)
    code = sign_in_as(issuer.login, "e-1", "employee")
    page = client.get(f"/auth/callback?code={code}&state=forged")
    assert page.status_code == 400 and "Sign in" in page.text and "Signed in as" not in page.text
    denied = client.get("/auth/callback?error=access_denied&error_description=nope")
    assert denied.status_code == 400 and "nope" in denied.text


def test_tokens_carry_the_chosen_role_and_verify_like_any_service_token(issuer: RunningIssuer) -> None:
    status, tokens = exchange(issuer.login, sign_in_as(issuer.login, "wc-2", "works_council"))
    assert status == 200 and tokens["token_type"] == "Bearer"
    keys = IssuerKeys(issuer.issuer)
    verifier = TokenVerifier(issuer.url, "catalyst", keys, "roles", 0)
    access = str(tokens["access_token"])
    principal = verifier.verify(access, keys.fetch(jwt.get_unverified_header(access)["kid"]))
    assert principal.subject == "wc-2" and principal.roles == {Role.EMPLOYEE, Role.WORKS_COUNCIL}
    id_claims = jwt.decode(str(tokens["id_token"]), options={"verify_signature": False})
    assert id_claims["aud"] == "catalyst-console" and id_claims["nonce"] == "n1"


def test_a_code_is_good_once_with_its_own_verifier_only(issuer: RunningIssuer) -> None:
    code = sign_in_as(issuer.login, "e-1", "employee")
    status, answer = exchange(issuer.login, code, verifier="w" * 43)
    assert status == 400 and "PKCE" in str(answer["error_description"])
    assert exchange(issuer.login, code)[0] == 400  # the failed attempt used it up
    fresh = sign_in_as(issuer.login, "e-1", "employee")
    assert exchange(issuer.login, fresh)[0] == 200
    assert exchange(issuer.login, fresh)[1]["error"] == "invalid_grant"


def test_an_expired_code_is_refused(issuer: RunningIssuer) -> None:
    now = [1000.0]
    login = InteractiveLogin(issuer.issuer, LoginSettings(issuer_code_seconds=60), clock=lambda: now[0])
    code = sign_in_as(login, "e-1", "employee")
    now[0] += 61
    assert exchange(login, code)[1]["error"] == "invalid_grant"


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"response_type": "token"}, "response_type"),
        ({"code_challenge_method": "plain"}, "S256"),
        ({"code_challenge": "short"}, "code_challenge"),
        ({"redirect_uri": "javascript:alert(1)"}, "redirect_uri"),
        ({"scope": "profile"}, "openid"),
    ],
)
def test_bad_authorization_requests_are_refused_on_a_page(
    issuer: RunningIssuer, overrides: dict[str, str], words: str
) -> None:
    reply = issuer.login.handle("GET", "/authorize", urlencode(authorize(issuer.login, **overrides)), b"")
    assert reply is not None and reply.status == 400 and words in reply.body.decode()


def test_the_choice_must_be_a_known_role_and_a_plain_id(issuer: RunningIssuer) -> None:
    for subject, role in (("e-1", "operator"), ("<script>", "employee"), ("", "employee")):
        form = urlencode({**authorize(issuer.login), "subject": subject, "role": role}).encode()
        reply = issuer.login.handle("POST", "/authorize", "", form)
        assert reply is not None and reply.status == 400
