"""The console's pages over in-memory fakes of the services and of sign-in: what each page shows, what each
form does, the security headers, cookies and CSRF, both languages, and that no input makes a 500."""

from __future__ import annotations

import re

import pytest
from prometheus_client import CollectorRegistry
from starlette.testclient import TestClient

from services.common.auth import Role
from services.common.policy import Policy, Rankings, load_policy
from services.console.app import SESSION_COOKIE, create_app
from services.console.backend import Failure
from services.console.config import ConsoleSettings
from tests.unit.console.fakes import FakeBackend, FakeSignIn

BASE = "https://console.test"


PROGRAMME_OWNER = FakeSignIn(subject="po-1", roles=frozenset({Role.EMPLOYEE, Role.PROGRAMME_OWNER}))
WORKS_COUNCIL = FakeSignIn(subject="wc-1", roles=frozenset({Role.EMPLOYEE, Role.WORKS_COUNCIL}))


def with_rankings() -> Policy:
    policy = load_policy()
    visibility = policy.visibility.model_copy(update={"rankings": Rankings.OPTED_IN})
    return policy.model_copy(update={"visibility": visibility})


def make_client(
    backend: FakeBackend | None = None, signin: FakeSignIn | None = None, policy: Policy | None = None
) -> TestClient:
    settings = ConsoleSettings(console_redirect_url=f"{BASE}/auth/callback")
    app = create_app(
        settings, backend or FakeBackend(), signin or FakeSignIn(), registry=CollectorRegistry(), policy=policy
    )
    return TestClient(app, base_url=BASE)


def signed_in(
    backend: FakeBackend | None = None, signin: FakeSignIn | None = None, policy: Policy | None = None
) -> TestClient:
    client = make_client(backend, signin, policy)
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
    switched = client.post(
        "/language", data={"csrf_token": token, "language": "de", "next": "https://evil.test/"}, follow_redirects=False
    )
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
    answered = client.post(
        "/me/invitations", data={"csrf_token": token, "badge": "intranet_ambassador", "answer": "accept"}
    )
    assert "you accepted the invitation" in answered.text and "Invitations for you" not in answered.text
    assert ("respond_to_invitation", "token-of-e-1") in backend.calls
    again = client.post(
        "/me/invitations", data={"csrf_token": token, "badge": "intranet_ambassador", "answer": "accept"}
    )
    assert again.status_code == 400 and "no open invitation" in again.text


def test_declining_with_a_reason_code_of_the_catalogue() -> None:
    backend = FakeBackend()
    client = signed_in(backend)
    page = client.get("/me/badges")
    assert '<option value="no_time">I have no time for it now</option>' in page.text
    declined = client.post(
        "/me/invitations",
        data={
            "csrf_token": csrf(client, "/me/badges"),
            "badge": "intranet_ambassador",
            "answer": "decline",
            "reason_code": "no_time",
            "reason": "later",
        },
    )
    assert "You declined the invitation" in declined.text and backend.reason_codes == ["no_time"]
    assert backend.badge_list[0].decline_reason == "later"


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


def test_consent_switches_without_rankings_in_the_policy() -> None:
    backend = FakeBackend()
    client = signed_in(backend)
    page = client.get("/me/consent")
    assert 'name="ranked"' not in page.text and "has no rankings of people" in page.text
    token = csrf(client, "/me/consent")
    saved = client.post(
        "/me/consent",
        data={"csrf_token": token, "ranked": "on", "hidden_from_lists": "on", "appreciations_shared": "on"},
    )
    assert "Your choices are saved." in saved.text
    assert not any(name == "set_ranking_opt_out" for name, _ in backend.calls)
    assert backend.preferences_.hidden_from_lists and backend.preferences_.appreciations_shared
    assert not backend.preferences_.recognition_opt_out
    assert 'id="appreciations_shared" name="appreciations_shared" checked' in saved.text


def test_ranking_is_an_opt_in_where_the_policy_has_rankings() -> None:
    backend = FakeBackend()
    client = signed_in(backend, policy=with_rankings())
    assert 'id="ranked" name="ranked">' in client.get("/me/consent").text  # nobody is ranked before saying yes
    token = csrf(client, "/me/consent")
    saved = client.post("/me/consent", data={"csrf_token": token, "ranked": "on"})
    assert backend.ranking_choice == "opted_in" and 'id="ranked" name="ranked" checked' in saved.text
    client.post("/me/consent", data={"csrf_token": token})
    assert backend.ranking_choice == "opted_out"


def test_a_facet_badge_is_shown_and_hidden_by_its_holder() -> None:
    backend = FakeBackend()
    client = signed_in(backend)
    page = client.get("/me/badges")
    assert "Only you see this badge." in page.text
    token = csrf(client, "/me/badges")
    shown = client.post("/me/badges/shown", data={"csrf_token": token, "badge": "helper", "shown": "yes"})
    assert "Colleagues now see this badge." in shown.text and backend.badge_list[1].shown
    hidden = client.post("/me/badges/shown", data={"csrf_token": token, "badge": "helper", "shown": "no"})
    assert "private to you again" in hidden.text and not backend.badge_list[1].shown
    assert client.post("/me/badges/shown", data={"csrf_token": token, "badge": "helper"}).status_code == 400


def test_volunteering_and_my_legitimation_records() -> None:
    backend = FakeBackend()
    training = backend.record.trainings.add(training_id="moderation", name="Moderating communities")
    training.offered_at.FromSeconds(1_767_225_600)
    backend.record.time_budget.hours_per_month = 4
    backend.record.time_budget.agreed_by_manager = "m-1"
    backend.record.appreciations.add(text="Thank you for the answers", author_role="hr")
    client = signed_in(backend)
    page = client.get("/me/programme")
    assert "Moderating communities" in page.text and "not yet" in page.text
    assert "4 hours a month, agreed with m-1" in page.text and "Thank you for the answers" in page.text
    token = csrf(client, "/me/programme")
    offered = client.post("/me/programme", data={"csrf_token": token, "choice": "volunteer"})
    assert "your offer is noted" in offered.text
    assert "You offered to be an ambassador on January 1, 2026" in offered.text
    withdrawn = client.post("/me/programme", data={"csrf_token": token, "choice": "withdraw"})
    assert "You withdrew your offer." in withdrawn.text and not backend.record.volunteering
    assert client.post("/me/programme", data={"csrf_token": token, "choice": "maybe"}).status_code == 400


def test_who_looked_at_my_data() -> None:
    page = signed_in().get("/me/accesses")
    assert "po-1" in page.text and "check the ambassador&#39;s evidence" in page.text
    assert "ListCandidates" in page.text and 'href="/me/accesses?page=next"' in page.text


def test_download_my_data_joins_the_services_like_the_command_line() -> None:
    response = signed_in().get("/me/data/download")
    assert response.headers["content-disposition"].startswith('attachment; filename="catalyst-my-data-')
    export = response.json()
    assert export["employee_id"] == "e-1"
    assert export["recognition"]["employee_id"] == "e-1"
    assert export["feed"]["profile"]["display_name"] == "Eva"
    assert export["engagement"]["stored"]["days"][0]["counts"] == {"posts": "3"}
    assert export["engagement"]["score"]["department_id"] == "finance"
    assert set(export["engagement"]["explanations"]) == {"7d", "30d", "100d", "decayed"}
    assert export["accesses"]["accesses"][0]["data_accessed"]["actor"] == "po-1"


def test_download_without_figures_has_only_what_is_stored() -> None:
    export = signed_in(FakeBackend(has_figures=False)).get("/me/data/download").json()
    assert set(export["engagement"]) == {"stored"}


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


def test_each_role_starts_on_its_own_pages() -> None:
    assert signed_in().get("/").url.path == "/me"
    owner = signed_in(signin=PROGRAMME_OWNER)
    assert owner.get("/").url.path == "/programme"
    assert owner.get("/council").status_code == 403
    council = signed_in(signin=WORKS_COUNCIL)
    assert council.get("/").url.path == "/council"
    assert council.get("/programme/candidates").status_code == 403
    assert signed_in().get("/programme").status_code == 403


def test_other_roles_see_their_roles_not_employee_pages() -> None:
    client = signed_in(signin=FakeSignIn(subject="hr-1", roles=frozenset({Role.HR})))
    home = client.get("/")
    assert "hr" in home.text and "open none of them" in home.text
    assert client.get("/me/badges").status_code == 403


def test_the_programme_overview_shows_groups_as_charts() -> None:
    page = signed_in(signin=PROGRAMME_OWNER).get("/programme")
    assert page.status_code == 200
    assert page.text.count('<svg class="chart" role="img"') == 2
    assert "detected and invited" in page.text and "Median days from invitation to acceptance: 3.5" in page.text
    assert "Departments without an ambassador: sales" in page.text
    assert 'class="chart-bar chart-ok"' in page.text and "none" in page.text
    assert "no_time: 5" in page.text
    german = signed_in(signin=PROGRAMME_OWNER).get("/programme", headers={"accept-language": "de"})
    assert "Der Trichter" in german.text and "Median der Tage von der Einladung bis zur Zusage: 3,5" in german.text
    assert "7 von 8" in german.text and "5\u00a0%" in german.text


def test_looking_at_candidates_needs_a_purpose_sent_with_the_call() -> None:
    backend = FakeBackend()
    client = signed_in(backend, PROGRAMME_OWNER)
    form = client.get("/programme/candidates")
    assert 'id="purpose"' in form.text and not any(name == "candidates" for name, _ in backend.calls)
    page = client.get("/programme/candidates", params={"purpose": "invite ambassadors"})
    assert backend.purposes == ["invite ambassadors"]
    assert "Eva" in page.text and "Jo" in page.text and "missing: 2 more posts" in page.text
    assert "answers_30d: 12 (needed: 10)" in page.text and "invited" in page.text
    assert "employee=e-1&amp;purpose=invite+ambassadors" in page.text
    assert client.get("/programme/candidates", params={"purpose": "p" * 201}).status_code == 400


def test_the_programme_owner_records_a_training() -> None:
    backend = FakeBackend()
    client = signed_in(backend, PROGRAMME_OWNER)
    asked = client.get("/programme/person", params={"employee": "e-1"})
    assert 'id="purpose"' in asked.text and backend.purposes == []
    page = client.get("/programme/person", params={"employee": "e-1", "purpose": "record a training"})
    assert backend.purposes == ["record a training"] and "Moderating communities" in page.text
    token = csrf(client, "/programme")
    done = client.post(
        "/programme/legitimation",
        data={
            "csrf_token": token,
            "employee": "e-1",
            "purpose": "record a training",
            "change": "complete_training",
            "value": "moderation",
        },
    )
    assert "Recorded." in done.text and backend.recorded[-1].complete_training == "moderation"
    assert backend.purposes[-1] == "record a training"  # the purpose stated goes with the record too
    assert done.url.path == "/programme/person" and "January 1, 2026" in done.text
    client.post(
        "/programme/legitimation",
        data={"csrf_token": token, "employee": "e-1", "change": "time_budget", "hours": "4,5", "manager": "m-1"},
    )
    assert backend.recorded[-1].time_budget.hours_per_month == 4.5


@pytest.mark.parametrize(
    "form",
    [
        {"employee": "e-1", "change": "delete_everything", "value": "x"},
        {"employee": "", "change": "appreciation", "value": "thanks"},
        {"employee": "e-1", "change": "appreciation", "value": ""},
        {"employee": "e-1", "change": "time_budget", "hours": "many", "manager": "m-1"},
    ],
)
def test_bad_legitimation_forms_are_refused(form: dict[str, str]) -> None:
    backend = FakeBackend()
    client = signed_in(backend, PROGRAMME_OWNER)
    assert client.post("/programme/legitimation", data={"csrf_token": csrf(client), **form}).status_code == 400
    assert not backend.recorded


def test_the_pilot_group_proposal() -> None:
    backend = FakeBackend()
    client = signed_in(backend, PROGRAMME_OWNER)
    page = client.get("/programme/pilot", params={"purpose": "plan the pilot", "size": "10"})
    assert "attended 2 workshops" in page.text and "sales" in page.text and "2 smaller departments" in page.text
    assert client.get("/programme/pilot", params={"purpose": "x", "size": "ten"}).status_code == 400


def test_the_works_council_sees_the_policy_aggregates_and_the_audit_log() -> None:
    backend = FakeBackend()
    client = signed_in(backend, WORKS_COUNCIL)
    page = client.get("/council")
    assert "min_group_size" in page.text and "<code>5</code>" in page.text and "730d" in page.text
    assert '<svg class="chart" role="img"' in page.text and "invite ambassadors" in page.text
    log = client.get("/council/audit", params={"employee": "e-9"})
    assert "e-9" in log.text and "check the ambassador&#39;s evidence" in log.text
    assert client.get("/council/audit", params={"employee": "e-9", "actor": "po-1"}).status_code == 400


def test_the_programme_owner_approves_a_calibration_proposal() -> None:
    backend = FakeBackend()
    client = signed_in(backend, PROGRAMME_OWNER)
    page = client.get("/programme/calibration")
    assert "240 active colleagues" in page.text and "14 to earn, 9 to keep" in page.text
    assert "24 people reach it" in page.text and "fewer than 5 people reach it" in page.text
    assert "the most active 10% of active colleagues reach, at least 5" in page.text
    assert "the proposal differs" in page.text and "Nothing has been approved" in page.text
    token = csrf(client, "/programme/calibration")
    assert client.post("/programme/calibration", data={"proposal_id": "p-1"}).status_code == 403  # no CSRF token
    done = client.post("/programme/calibration", data={"csrf_token": token, "proposal_id": "p-1"})
    assert done.url.path == "/programme/calibration" and backend.approved == ["p-1"]
    assert "Approved: the proposed thresholds are in force" in done.text and "Jan 1, 2026" in done.text
    stale = client.post("/programme/calibration", data={"csrf_token": token, "proposal_id": "old"})
    assert stale.status_code == 400 and "not the newest proposal" in stale.text
    assert client.post("/programme/calibration", data={"csrf_token": token}).status_code == 400
    german = client.get("/programme/calibration", headers={"accept-language": "de"})
    assert "Abzeichen-Schwellen" in german.text and "14 zum Erwerben, 9 zum Behalten" in german.text


def test_the_works_council_reads_the_calibration_but_cannot_approve() -> None:
    backend = FakeBackend()
    client = signed_in(backend, WORKS_COUNCIL)
    page = client.get("/programme/calibration")
    assert page.status_code == 200 and "240 active colleagues" in page.text and "proposal_id" not in page.text
    token = csrf(client, "/council")
    assert client.post("/programme/calibration", data={"csrf_token": token, "proposal_id": "p-1"}).status_code == 403
    assert signed_in(FakeBackend()).get("/programme/calibration").status_code == 403  # an employee


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
        ("GET", "/me/accesses?page=" + "x" * 201, None),
        ("POST", "/me/programme", {"choice": "volunteer"}),
        ("POST", "/me/badges/shown", {"badge": ["a", "b"], "shown": "yes"}),
        ("GET", "/programme/person", None),
        ("GET", "/programme/person?employee=%00&purpose=" + "p" * 300, None),
        ("GET", "/programme/pilot?purpose=x&size=-1", None),
        ("GET", "/programme/pilot?purpose=x&size=9999999", None),
        ("GET", "/programme/candidates?purpose=x&department=" + "d" * 129, None),
        ("POST", "/programme/legitimation", {"employee": "e-1", "change": "appreciation", "value": "v" * 501}),
        ("GET", "/council/audit?employee=a&actor=b", None),
        ("POST", "/programme/calibration", {"proposal_id": "p" * 65}),
        ("POST", "/programme/calibration", {"proposal_id": ["a", "b"]}),
        ("GET", "/council/audit?page=%ff%fe", None),
    ],
)
def test_no_client_input_makes_a_500(method: str, path: str, data: dict[str, object] | None) -> None:
    client = signed_in(signin=FakeSignIn(roles=frozenset({Role.EMPLOYEE, Role.PROGRAMME_OWNER, Role.WORKS_COUNCIL})))
    response = client.request(method, path, data=data)
    assert 400 <= response.status_code < 500 or response.status_code in (200, 303), response.status_code


def test_metrics_count_pages_by_route() -> None:
    client = signed_in()
    client.get("/me")
    client.get("/no/such/page/" + "x" * 50)
    text = client.get("/metrics").text
    assert 'console_requests_total{page="/me",status="200"}' in text
    assert "x" * 50 not in text


def test_the_address_people_open_is_where_sign_in_returns() -> None:
    settings = ConsoleSettings(console_redirect_url="https://catalyst.example.com:8443/auth/callback")
    assert settings.public_url == "https://catalyst.example.com:8443"
    assert ConsoleSettings().public_url == "http://localhost:8080"
