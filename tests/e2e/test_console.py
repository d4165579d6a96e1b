"""The web console against the real services: its gRPC adapter as the signed-in person, and a real headless
Chromium (Debian's, driven by Selenium) signing in through the local issuer's page, switching to German,
saving a choice and erasing the person, with screenshots under reports/console-e2e/."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from catalyst.feed.v1 import feed_pb2, feed_pb2_grpc
from catalyst.recognition.v1 import recognition_pb2 as rec
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
from tests.waiting import until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]
SCREENSHOTS = ROOT / "reports" / "console-e2e"


@pytest.fixture(scope="module")
def system(
    kafka_bootstrap: str, redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CatalystSystem]:
    for system in running_system(kafka_bootstrap, redis_server.port, tmp_path_factory.mktemp("console")):
        system.register("emp-console", "emp-browser")
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
    shot(browser, "01-issuer-sign-in")
    browser.find_element(By.ID, "subject").send_keys("emp-browser")
    browser.find_element(By.ID, "role-employee").click()
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait.until(lambda b: "Signed in as emp-browser" in b.page_source)
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
    shot(browser, "02-my-activity")

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
    shot(browser, "03-choices-saved-de")

    browser.find_element(By.LINK_TEXT, "Meine Abzeichen").click()
    wait.until(lambda b: "Fortschritt zum nächsten Abzeichen" in b.page_source)
    shot(browser, "04-badges-de")

    browser.get(f"{console}/me/erase")
    wait.until(lambda b: b.find_elements(By.ID, "confirm"))
    browser.find_element(By.ID, "confirm").click()
    shot(browser, "05-erase-confirmation")
    browser.find_element(By.XPATH, "//form[@action='/me/erase']//button").click()
    wait.until(lambda b: "Ihre Daten werden gelöscht" in b.page_source)
    shot(browser, "06-erased")

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
