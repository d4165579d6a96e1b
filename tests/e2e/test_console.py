"""The web console against the real services: its gRPC adapter as the signed-in person, and a real headless
Chromium (Debian's, driven by Selenium) signing in through the local issuer's page as an employee, a programme
owner and a works council member: accepting an invitation, volunteering, recording a training, seeing the audit
entry of that look-up appear, approving a calibration proposal, switching to German, saving a choice and erasing
the person. Every page visited is checked with axe-core (pinned in tests/e2e/axe, installed by `make tools`): no
serious or critical violation. Screenshots go to reports/console-e2e/."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from catalyst.events.v1 import interactions_pb2 as ev
from catalyst.feed.v1 import feed_pb2, feed_pb2_grpc
from catalyst.recognition.v1 import recognition_pb2 as rec
from catalyst.recognition.v1 import recognition_pb2_grpc
from google.protobuf.timestamp_pb2 import Timestamp
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from services.common.auth import Role
from services.common.grpc_client import bearer
from services.console.adapters.grpc_backend import GrpcBackend
from services.console.backend import BackendError, Failure
from services.console.config import ConsoleSettings
from tests.conftest import RedisServer, free_port, unavailable
from tests.integration.ops.system import ROOT, CatalystSystem, Process, running_system
from tests.integration.recognition.harness import calibrated_rules, small_company_scoring
from tests.waiting import until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]
SCREENSHOTS = ROOT / "reports" / "console-e2e"
AXE = ROOT / "tests" / "e2e" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
AMBASSADOR = "emp-amb"
COLLEAGUES = [f"emp-col-{i:02d}" for i in range(16)]


@pytest.fixture(scope="module")
def system(
    kafka_bootstrap: str, redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CatalystSystem]:
    run_dir = tmp_path_factory.mktemp("console")
    rules, scoring = calibrated_rules(run_dir), small_company_scoring(run_dir)
    for system in running_system(kafka_bootstrap, redis_server.port, run_dir, rules, scoring):
        system.register("emp-console", "emp-browser", "emp-volunteer", AMBASSADOR, *COLLEAGUES)
        yield system


@pytest.fixture(scope="module")
def console(system: CatalystSystem, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`python -m services.console` on a free port, as operators start it; its address as browsers use it."""
    port = free_port()
    url = f"http://localhost:{port}"
    env = {
        **system.processes["feed"].env,
        "CATALYST_CONSOLE_PORT": str(port),
        "CATALYST_FEED_TARGET": system.grpc_target("feed"),
        "CATALYST_ENGAGEMENT_TARGET": system.grpc_target("engagement"),
        "CATALYST_RECOGNITION_TARGET": system.grpc_target("recognition"),
        "CATALYST_CONSOLE_REDIRECT_URL": f"{url}/auth/callback",
    }
    log = tmp_path_factory.mktemp("console-log") / "console.log"
    process = Process("console", ["-m", "services.console"], env, log, ("metrics", port))
    process.start()
    try:
        process.wait_ready()
        yield url
    finally:
        process.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver is None:
        unavailable("Debian's chromium and chromium-driver (`make tools` installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = str(chromium)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1600"):
        options.add_argument(argument)
    session = webdriver.Chrome(options=options, service=Service(str(driver)))
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    try:
        yield session
    finally:
        session.quit()


async def test_the_grpc_adapter_acts_as_the_token_holder(system: CatalystSystem) -> None:
    settings = ConsoleSettings(
        feed_target=system.grpc_target("feed"),
        engagement_target=system.grpc_target("engagement"),
        recognition_target=system.grpc_target("recognition"),
    )
    backend = GrpcBackend(settings)
    try:
        token = system.token("emp-console", Role.EMPLOYEE)
        assert (await backend.profile(token)).profile.employee_id == "emp-console"
        saved = await backend.set_preferences(token, rec.Preferences(hidden_from_lists=True))
        assert saved.preferences.hidden_from_lists
        assert (await backend.preferences(token)).preferences.hidden_from_lists
        assert (await backend.my_data(token)).employee_id == "emp-console"
        with pytest.raises(BackendError) as refused:
            await backend.badges("not-a-token")
        assert refused.value.failure is Failure.UNAUTHENTICATED
    finally:
        await backend.close()


def shot(browser: WebDriver, name: str) -> None:
    browser.save_screenshot(str(SCREENSHOTS / f"{name}.png"))


def test_an_employee_signs_in_chooses_and_erases_themselves(
    system: CatalystSystem, console: str, browser: WebDriver
) -> None:
    # A page being replaced by the next one leaves stale elements behind for a moment: look again then.
    wait = WebDriverWait(browser, 30, ignored_exceptions=(StaleElementReferenceException,))
    browser.get(console)
    browser.find_element(By.LINK_TEXT, "Sign in").click()
    wait.until(lambda b: b.find_elements(By.ID, "subject"))
    accessible(browser, "01-issuer-sign-in")
    browser.find_element(By.ID, "subject").send_keys("emp-browser")
    browser.find_element(By.ID, "role-employee").click()
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait.until(lambda b: "Signed in as emp-browser" in b.page_source)
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
    accessible(browser, "02-my-activity")

    browser.find_element(By.ID, "language").send_keys("Deutsch")
    browser.find_element(By.XPATH, "//form[@action='/language']//button").click()
    wait.until(lambda b: b.find_element(By.TAG_NAME, "html").get_attribute("lang") == "de")
    assert "Meine Aktivität" in browser.page_source

    browser.find_element(By.LINK_TEXT, "Meine Entscheidungen").click()
    wait.until(lambda b: b.find_elements(By.ID, "recognition_opt_out"))
    browser.find_element(By.ID, "recognition_opt_out").click()
    browser.find_element(By.XPATH, "//form[@action='/me/consent']//button").click()
    wait.until(lambda b: "Ihre Entscheidungen sind gespeichert." in b.page_source)
    assert browser.find_element(By.ID, "recognition_opt_out").is_selected()
    accessible(browser, "03-choices-saved-de")

    browser.find_element(By.LINK_TEXT, "Meine Abzeichen").click()
    wait.until(lambda b: "Fortschritt zum nächsten Abzeichen" in b.page_source)
    accessible(browser, "04-badges-de")

    browser.get(f"{console}/me/erase")
    wait.until(lambda b: b.find_elements(By.ID, "confirm"))
    browser.find_element(By.ID, "confirm").click()
    accessible(browser, "05-erase-confirmation")
    browser.find_element(By.XPATH, "//form[@action='/me/erase']//button").click()
    wait.until(lambda b: "Ihre Daten werden gelöscht" in b.page_source)
    accessible(browser, "06-erased")

    def profile_gone() -> bool:
        with grpc.insecure_channel(system.grpc_target("feed")) as channel:
            try:
                feed_pb2_grpc.FeedServiceStub(channel).GetProfile(
                    feed_pb2.GetProfileRequest(),
                    metadata=bearer(system.token("emp-browser", Role.EMPLOYEE)),
                    timeout=10,
                )
            except grpc.RpcError as exc:
                return exc.code() == grpc.StatusCode.NOT_FOUND
        return False

    until(profile_gone, bool, 30)
    browser.get(f"{console}/me")
    wait.until(lambda b: b.find_elements(By.ID, "subject"))  # signed out: back at the issuer's page
    assert Path(SCREENSHOTS / "06-erased.png").stat().st_size > 0


def accessible(browser: WebDriver, name: str) -> None:
    """A screenshot of the page, then axe-core's verdict on it: no serious or critical violation."""
    shot(browser, name)
    if not AXE.is_file():
        pytest.fail(f"axe-core is missing at {AXE}: run `make tools` (npm ci in tests/e2e/axe)", pytrace=False)
    browser.execute_script(AXE.read_text())
    violations: list[dict[str, Any]] = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']}).then(r => done(r.violations), e => done([{id: 'axe-error',"
        " impact: 'critical', help: String(e), nodes: []}]));"
    )
    serious = [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in violations
        if v["impact"] in ("serious", "critical")
    ]
    assert not serious, f"{name} ({browser.current_url}): " + "; ".join(serious)


def sign_in(browser: WebDriver, wait: WebDriverWait, console: str, subject: str, role: str) -> None:
    """Through the local issuer's page, as `subject` in `role` (each role is an employee as well)."""
    browser.get(f"{console}/healthz")
    browser.delete_all_cookies()  # the console's (session, language): the issuer asks anew every time anyway
    browser.get(f"{console}/login")
    wait.until(lambda b: b.find_elements(By.ID, "subject"))
    browser.find_element(By.ID, "subject").send_keys(subject)
    browser.find_element(By.ID, f"role-{role}").click()
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait.until(lambda b: f"Signed in as {subject}" in b.page_source)


def imported(source_id: str, actor: str, at: datetime, **kind: Any) -> feed_pb2.ImportedInteraction:
    moment = Timestamp()
    moment.FromDatetime(at)
    return feed_pb2.ImportedInteraction(source_id=source_id, actor_id=actor, occurred_at=moment, **kind)


@pytest.fixture(scope="module")
def invited(system: CatalystSystem) -> str:
    """An employee whose imported history meets the ambassador criteria (a post in each of nine weeks that
    sixteen colleagues react to, five answers, a complete profile), once recognition has invited them."""
    now = datetime.now(UTC) - timedelta(hours=1)
    history = [imported("profile", AMBASSADOR, now, profile_updated=ev.ProfileUpdated(completeness=1.0))]
    for week in range(9):
        post = f"amb-post-{week}"
        at = now - timedelta(days=7 * week)
        history.append(imported(post, AMBASSADOR, at, post_created=ev.PostCreated(post_id=post, body_length=400)))
        for i, colleague in enumerate(COLLEAGUES):
            reaction = ev.ReactionAdded(post_id=post, post_author_id=AMBASSADOR, reaction=1)
            history.append(imported(f"{post}-r{i}", colleague, at + timedelta(minutes=i + 1), reaction_added=reaction))
    for i, colleague in enumerate(COLLEAGUES[:6]):
        question, at = f"q-{i}", now - timedelta(days=i + 1)
        history.append(imported(question, colleague, at, question_asked=ev.QuestionAsked(question_id=question)))
        answer = ev.AnswerPosted(answer_id=f"a-{i}", question_id=question, question_author_id=colleague)
        history.append(imported(f"a-{i}", AMBASSADOR, at + timedelta(minutes=5), answer_posted=answer))
    with grpc.insecure_channel(system.grpc_target("feed")) as channel:
        feed_pb2_grpc.FeedServiceStub(channel).IngestInteractions(
            feed_pb2.IngestInteractionsRequest(source="console-e2e", interactions=history),
            metadata=bearer(system.token("legacy-bridge", Role.SERVICE)),
            timeout=30,
        )

    def invitation() -> bool:
        with grpc.insecure_channel(system.grpc_target("recognition")) as channel:
            badges = recognition_pb2_grpc.RecognitionServiceStub(channel).GetBadges(
                rec.GetBadgesRequest(), metadata=bearer(system.token(AMBASSADOR, Role.EMPLOYEE)), timeout=10
            )
        return any(b.status == rec.AMBASSADOR_STATUS_INVITED for b in badges.badges)

    until(invitation, bool, 120)
    return AMBASSADOR


def test_each_role_does_its_part_and_every_page_is_accessible(
    system: CatalystSystem, console: str, browser: WebDriver, invited: str
) -> None:
    wait = WebDriverWait(browser, 30, ignored_exceptions=(StaleElementReferenceException,))

    sign_in(browser, wait, console, invited, "employee")
    accessible(browser, "10-employee-activity")
    browser.find_element(By.LINK_TEXT, "My badges").click()
    wait.until(lambda b: "Invitations for you" in b.page_source)
    accessible(browser, "11-employee-invitation")
    browser.find_element(By.XPATH, "//form[@action='/me/invitations']//button[@value='accept']").click()
    wait.until(lambda b: "you accepted the invitation" in b.page_source)
    accessible(browser, "12-employee-accepted")
    for page, name in (
        ("/me/programme", "13-employee-programme"),
        ("/me/consent", "14-employee-choices"),
        ("/me/data", "15-employee-data"),
        ("/me/accesses", "16-employee-nobody-looked"),
    ):
        browser.get(console + page)
        wait.until(lambda b: "Signed in as" in b.page_source)
        accessible(browser, name)
    assert "Nobody has looked at your data." in browser.page_source

    sign_in(browser, wait, console, "emp-volunteer", "employee")
    browser.get(f"{console}/me/programme")
    browser.find_element(By.XPATH, "//button[@value='volunteer']").click()
    wait.until(lambda b: "your offer is noted" in b.page_source)
    accessible(browser, "20-volunteered")

    sign_in(browser, wait, console, "po-browser", "programme_owner")
    wait.until(lambda b: "The ambassador programme" in b.page_source)
    assert "Departments without an ambassador" in browser.page_source or "has an ambassador" in browser.page_source
    accessible(browser, "30-programme-overview")
    browser.find_element(By.LINK_TEXT, "Candidates").click()
    wait.until(lambda b: b.find_elements(By.ID, "purpose"))
    browser.find_element(By.ID, "purpose").send_keys("plan the ambassadors' first training")
    browser.find_element(By.XPATH, "//form[@action='/programme/candidates']//button").click()
    wait.until(lambda b: "emp-volunteer" in b.page_source and invited in b.page_source)
    accessible(browser, "31-programme-candidates")
    browser.find_element(By.LINK_TEXT, invited).click()
    wait.until(lambda b: b.find_elements(By.ID, "offer-training"))
    accessible(browser, "32-programme-person")
    browser.find_element(By.XPATH, "//form[.//input[@value='offer_training']]//button").click()
    wait.until(lambda b: "Recorded." in b.page_source)
    browser.find_element(By.XPATH, "//form[.//input[@value='complete_training']]//button").click()
    wait.until(lambda b: "Recorded." in b.page_source and "not yet" not in b.page_source)
    accessible(browser, "33-programme-training-recorded")
    browser.get(f"{console}/programme/pilot")
    accessible(browser, "34-programme-pilot")
    browser.find_element(By.LINK_TEXT, "Calibration").click()
    wait.until(lambda b: "active colleagues" in b.page_source and "Nothing has been approved" in b.page_source)
    accessible(browser, "35-programme-calibration")
    browser.find_element(By.XPATH, "//form[@action='/programme/calibration']//button").click()
    wait.until(lambda b: "the proposed thresholds are in force until the next approval" in b.page_source)
    assert "po-browser" in browser.page_source  # the approval, with who approved it
    accessible(browser, "36-programme-calibration-approved")

    sign_in(browser, wait, console, invited, "employee")
    browser.get(f"{console}/me/accesses")
    wait.until(
        lambda b: (
            "plan the ambassadors&#39; first training" in b.page_source
            or "plan the ambassadors' first training" in b.page_source
        )
    )
    assert "po-browser" in browser.page_source
    accessible(browser, "17-employee-who-looked")
    browser.get(f"{console}/me/programme")
    wait.until(lambda b: "Completed" in b.page_source)
    assert "not yet" not in browser.page_source

    sign_in(browser, wait, console, "wc-browser", "works_council")
    wait.until(lambda b: "The active policy" in b.page_source)
    assert "min_group_size" in browser.page_source
    accessible(browser, "40-council")
    browser.get(f"{console}/council/audit?employee={invited}")
    wait.until(lambda b: "po-browser" in b.page_source)
    assert "ListCandidates" in browser.page_source and "GetProgramme" in browser.page_source
    assert "RecordLegitimation" in browser.page_source  # with the purpose stated on the person's page
    assert "record the programme" not in browser.page_source
    accessible(browser, "41-council-audit-log")

    sign_in(browser, wait, console, invited, "employee")
    browser.get(f"{console}/me/erase")
    accessible(browser, "18-employee-erase")
    browser.find_element(By.ID, "confirm").click()
    browser.find_element(By.XPATH, "//form[@action='/me/erase']//button").click()
    wait.until(lambda b: "Your data is being erased" in b.page_source)
    accessible(browser, "19-employee-erased")
