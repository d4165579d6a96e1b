"""The console's pages over in-memory fakes of the services and of sign-in: what each page shows, what each
form does, the security headers, cookies and CSRF, both languages, and that no input makes a 500."""

from __future__ import annotations

import re

import pytest
from prometheus_client import CollectorRegistry
from starlette.testclient import TestClient

from services.common.auth import Role
from services.console.app import SESSION_COOKIE, create_app
from services.console.backend import Failure
from services.console.config import ConsoleSettings
from tests.unit.console.fakes import FakeBackend, FakeSignIn

BASE = "https://console.test"


def make_client(backend: FakeBackend | None = None, signin: FakeSignIn | None = None) -> TestClient:
    settings = ConsoleSettings(console_redirect_url=f"{BASE}/auth/callback")
    app = create_app(settings, backend or FakeBackend(), signin or FakeSignIn(), registry=CollectorRegistry())
    return TestClient(app, base_url=BASE)


def signed_in(backend: FakeBackend | None = None, signin: FakeSignIn | None = None) -> TestClient:
    client = make_client(backend, signin)
    assert client.get("/login").status_code == 200  # through the callback to the first page
    return client


def csrf(client: TestClient, path: str = "/") -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text)
    assert match, "every page carries the CSRF token in its forms"
    return match.group(1)


def test_health_and_security_headers() -> None:
    response = make_client().get("/healthz")
    assert response.status_code == 200
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src" not in policy and "unsafe-inline" not in policy
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"


def test_signed_out_pages_send_to_sign_in_and_back() -> None:
    client = make_client()
    first = client.get("/me", follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"] == "/login"
    page = client.get("/me")  # /login -> (provider) -> /auth/callback -> / -> /me
    assert page.status_code == 200
    assert "Signed in as e-1" in page.text
    cookie = next(v for k, v in page.history[2].headers.multi_items() if k == "set-cookie")
    assert cookie.startswith(SESSION_COOKIE + "=")
    assert all(flag in cookie.lower() for flag in ("secure", "httponly", "samesite=lax"))


def test_activity_in_words_and_numbers_in_each_language() -> None:
    client = signed_in()
    english = client.get("/me", headers={"accept-language": "en-GB,en;q=0.8"})
    assert '<html lang="en">' in english.text
    assert "1,234.5" in english.text and "12 answers to colleagues in Finance" in english.text
    assert 'value="51.4"' in english.text  # helpfulness: 634.5 of 1234.5 as a bar
    german = client.get("/me?window=7d", headers={"accept-language": "fr, de-DE;q=0.9"})
    assert '<html lang="de">' in german.text and german.headers["content-language"] == "de"
    assert "1.234,5" in german.text and "Hilfsbereitschaft" in german.text
    assert "letzte 7 Tage" in german.text and "1. Januar 2026" in german.text


def test_no_figures_yet_is_a_page_not_an_error() -> None:
    page = signed_in(FakeBackend(has_figures=False)).get("/me")
    assert page.status_code == 200 and "no figures about you yet" in page.text


def test_language_switch_needs_the_form_token_and_stays_on_site() -> None:
    client = signed_in()
    refused = client.post("/language", data={"language": "de", "next": "/me"})
    assert refused.status_code == 403 and "The form had expired" in refused.text
    token = csrf(client)
    switched = client.post("/language", data={"csrf_token": token, "language": "de", "next": "https://evil.test/"},
                           follow_redirects=False)
    assert switched.status_code == 303 and switched.headers["location"] == "/"
    assert "secure" in switched.headers["set-cookie"].lower()
    assert "Meine Aktivität" in client.get("/me", headers={"accept-language": "en"}).text


def test_badges_progress_and_answering_an_invitation() -> None:
    backend = FakeBackend()
    client = signed_in(backend)
    page = client.get("/me/badges")
    assert "Invitations for you" in page.text and "Intranet Ambassador" in page.text
    assert '<meter id="req-1-2" min="0" max="1" value="0.25">' in page.text  # 1 of 4 accepted answers
    token = csrf(client, "/me/badges")
    answered = client.post("/me/invitations",
                           data={"csrf_token": token, "badge": "intranet_ambassador", "answer": "accept"})
    assert "you accepted the invitation" in answered.text and "Invitations for you" not in answered.text
    assert backend.calls[-3] == ("respond_to_invitation", "token-of-e-1")
    again = client.post("/me/invitations",
                        data={"csrf_token": token, "badge": "intranet_ambassador", "answer": "accept"})
    assert again.status_code == 400 and "no open invitation" in again.text


@pytest.mark.parametrize(
    "form",
    [
        {"badge": "intranet_ambassador", "answer": "maybe"},
        {"badge": "", "answer": "accept"},
        {"badge": "x" * 65, "answer": "accept"},
        {"badge": "intranet_ambassador", "answer": "decline", "reason": "r" * 501},
    ],
)
def test_bad_invitation_answers_are_refused(form: dict[str, str]) -> None:
    backend = FakeBackend()
    client = signed_in(backend)
    response = client.post("/me/invitations", data={"csrf_token": csrf(client), **form})
    assert response.status_code == 400
    assert not any(name == "respond_to_invitation" for name, _ in backend.calls)


def test_consent_switches_are_saved_in_both_services() -> None:
    backend = FakeBackend()
    client = signed_in(backend)
    token = csrf(client, "/me/consent")
    saved = client.post("/me/consent", data={"csrf_token": token, "ranking_opt_out": "on", "hidden_from_lists": "on"})
    assert "Your choices are saved." in saved.text
    assert backend.ranking_opt_out and backend.preferences_.hidden_from_lists
    assert not backend.preferences_.recognition_opt_out
    assert 'id="ranking_opt_out" name="ranking_opt_out" checked' in saved.text


def test_download_my_data() -> None:
    response = signed_in().get("/me/data/download")
    assert response.headers["content-disposition"].startswith('attachment; filename="catalyst-my-data-')
    export = response.json()
    assert export["recognition"]["employee_id"] == "e-1"
    assert export["feed"]["profile"]["display_name"] == "Eva"
    assert export["engagement"]["department_id"] == "finance"


def test_erasure_needs_a_clear_confirmation_then_signs_out() -> None:
    backend = FakeBackend()
    client = signed_in(backend)
    token = csrf(client, "/me/erase")
    unconfirmed = client.post("/me/erase", data={"csrf_token": token})
    assert unconfirmed.status_code == 400 and "tick the box" in unconfirmed.text and not backend.forgotten
    erased = client.post("/me/erase", data={"csrf_token": token, "confirm": "yes"})
    assert erased.status_code == 200 and backend.forgotten
    assert client.get("/me", follow_redirects=False).headers["location"] == "/login"


@pytest.mark.parametrize(
    ("failure", "status", "words"),
    [
        (Failure.UNAVAILABLE, 503, "not reachable right now"),
        (Failure.PERMISSION_DENIED, 403, "not open to you"),
        (Failure.REFUSED, 400, "fake refusal"),
        (Failure.ERROR, 502, "on our side"),
    ],
)
def test_service_failures_become_pages(failure: Failure, status: int, words: str) -> None:
    backend = FakeBackend()
    client = signed_in(backend)
    backend.fail = failure
    page = client.get("/me/badges")
    assert page.status_code == status and words in page.text


def test_a_refused_token_ends_the_session() -> None:
    backend = FakeBackend()
    client = signed_in(backend)
    backend.fail = Failure.UNAUTHENTICATED
    assert client.get("/me/consent").status_code == 401
    backend.fail = None
    assert client.get("/me", follow_redirects=False).headers["location"] == "/login"


def test_other_roles_see_their_roles_not_employee_pages() -> None:
    client = signed_in(signin=FakeSignIn(subject="wc-1", roles=frozenset({Role.WORKS_COUNCIL})))
    home = client.get("/")
    assert "works_council" in home.text
    assert client.get("/me/badges").status_code == 403


def test_a_refused_sign_in_says_so() -> None:
    page = make_client(signin=FakeSignIn(refuse=True)).get("/login")
    assert page.status_code == 400 and "Sign-in did not work" in page.text


@pytest.mark.parametrize(
    ("method", "path", "data"),
    [
        ("GET", "/me?window=" + "9" * 17, None),
        ("GET", "/me?window=%00%ff", None),
        ("GET", "/me/badges/../../etc/passwd", None),
        ("GET", "/static/../app.py", None),
        ("POST", "/me/consent", {"csrf_token": ["a", "b"]}),
        ("POST", "/me/erase", None),
        ("POST", "/language", {"csrf_token": "x" * 5000}),
        ("PUT", "/me/consent", None),
        ("GET", "/auth/callback?state=forged&code=x", None),
    ],
)
def test_no_client_input_makes_a_500(method: str, path: str, data: dict[str, object] | None) -> None:
    client = signed_in()
    response = client.request(method, path, data=data)
    assert 400 <= response.status_code < 500 or response.status_code in (200, 303), response.status_code


def test_metrics_count_pages_by_route() -> None:
    client = signed_in()
    client.get("/me")
    client.get("/no/such/page/" + "x" * 50)
    text = client.get("/metrics").text
    assert 'console_requests_total{page="/me",status="200"}' in text
    assert "x" * 50 not in text
