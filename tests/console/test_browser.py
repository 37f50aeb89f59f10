"""The console in a real browser: headless Chromium (Debian's `chromium` and
`chromium-driver`, driven by Selenium; nothing downloads a browser) against the service run as
`otpservice serve` in development mode with a real Redis. A support user looks a number up and
reads, in words, an undelivered SMS followed by a delivered resend; no code is anywhere in the
HTML; a user of another tenant sees nothing of it; a form without its CSRF token is refused.

Screenshots go to a temporary directory, or, with OTP_UPDATE_SCREENSHOTS=1, the lookup's to
docs/console-lookup.png (the README shows it).
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.console.support import (
    ACME_KEY,
    PASSWORDS,
    console_toml,
    sandbox_report_ref,
)
from tests.support.binaries import redis_server_binary, require_binary
from tests.support.ports import free_port
from tests.support.processes import REPO, Processes, ServiceProcess, poll_until
from tests.support.redis_servers import RedisServer

INSTALL = "apt-get install -y chromium chromium-driver"
PEPPER = b"b" * 32
SECRET = "sandbox-hook-secret"
NUMBER = "+48601234567"
SCREENSHOT = REPO / "docs" / "console-lookup.png"


@pytest.fixture(scope="module")
def binaries() -> tuple[str, str]:
    chromium = require_binary("chromium", "OTP_TEST_CHROMIUM", INSTALL)
    driver = require_binary("chromedriver", "OTP_TEST_CHROMEDRIVER", INSTALL)
    return chromium, driver


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    workdir = tmp_path_factory.mktemp("console-browser")
    config = workdir / "console.toml"
    config.write_text(console_toml())
    with (
        Processes(workdir) as processes,
        RedisServer(
            redis_server_binary(), directory=workdir / "redis", processes=processes
        ) as redis,
    ):
        env = {
            **os.environ,
            "OTP_ENV": "development",
            "OTP_HOST": "127.0.0.1",
            "OTP_PORT": str(free_port()),
            "OTP_REDIS_URL": redis.url,
            "OTP_PEPPER": "base64:" + base64.b64encode(PEPPER).decode(),
            "OTP_CONFIG_FILE": str(config),
            "OTP_ARGON2_PROFILE": "test",
            # The sandbox prints each SMS (so the test knows every code) and posts no report
            # of its own: the test posts them, as the provider would.
            "OTP_SANDBOX_ECHO": "true",
            "OTP_SANDBOX_OUTCOMES": "none=1",
            "OTP_SANDBOX_WEBHOOK_SECRET": SECRET,
        }
        yield processes.service("otpservice", env)


class Browser:
    def __init__(self, driver: Any, base: str) -> None:
        self.driver = driver
        self.base = base

    def open(self, path: str) -> None:
        self.driver.get(self.base + path)

    def field(self, name: str) -> Any:
        from selenium.webdriver.common.by import By  # noqa: PLC0415

        return self.driver.find_element(By.NAME, name)

    def submit(self, form_action: str) -> None:
        from selenium.webdriver.common.by import By  # noqa: PLC0415

        form = self.driver.find_element(By.CSS_SELECTOR, f'form[action="{form_action}"]')
        form.find_element(By.CSS_SELECTOR, 'button[type="submit"]').click()

    def sign_in(self, name: str) -> None:
        self.driver.delete_all_cookies()
        self.open("/console/login")
        self.field("name").send_keys(name)
        self.field("password").send_keys(PASSWORDS[name])
        self.submit("/console/login")
        self.wait_for(lambda: self.driver.current_url != self.base + "/console/login")
        assert self.driver.current_url == self.base + "/console/", (
            self.driver.current_url,
            self.driver.get_cookies(),
            self.driver.page_source[-600:],
        )

    def wait_for(self, check: Any, timeout: float = 10) -> None:
        from selenium.webdriver.support.ui import WebDriverWait  # noqa: PLC0415

        WebDriverWait(self.driver, timeout).until(lambda _: check())

    def look_up(self, query: str) -> str:
        from selenium.webdriver.common.by import By  # noqa: PLC0415

        self.open("/console/")
        self.field("q").send_keys(query)
        self.submit("/console/lookup")
        self.wait_for(lambda: self.driver.current_url.endswith("/console/lookup"))
        self.wait_for(lambda: self.driver.find_elements(By.CSS_SELECTOR, ".results, .note.bad"))
        return str(self.driver.page_source)

    def screenshot(self, path: Path) -> None:
        """The whole page, beyond the window (Chrome DevTools' own capture)."""
        size = self.driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        shot = self.driver.execute_cdp_cmd(
            "Page.captureScreenshot",
            {"format": "png", "captureBeyondViewport": True, "clip": clip},
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))


@pytest.fixture(scope="module")
def browser(binaries: tuple[str, str], service: ServiceProcess) -> Iterator[Browser]:
    from selenium import webdriver  # noqa: PLC0415
    from selenium.webdriver.chrome.service import Service  # noqa: PLC0415

    chromium, chromedriver = binaries
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in (
        "--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
        "--window-size=1280,900", "--force-device-scale-factor=1", "--lang=en-GB",
        "--hide-scrollbars",
    ):  # fmt: skip
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=chromedriver))
    driver.set_page_load_timeout(30)
    try:
        yield Browser(driver, service.url)
    finally:
        driver.quit()


def sent_codes(service: ServiceProcess) -> list[str]:
    """Every code the sandbox printed (the service's log is the phone)."""
    return re.findall(r"\[sandbox SMS to \+\d+ from [^\]]+\] .*?(\d{6})", service.logs(200_000))


def submitted(api: httpx.Client, verification_id: str, sends: int) -> bool:
    shown = api.get(f"/otp/{verification_id}").json()
    events = shown["delivery"]["events"]
    return shown["sends"] == sends and any(e["status"] == "submitted" for e in events[-2:])


def report(
    api: httpx.Client, verification_id: str, send: int, status: str, error: str = ""
) -> None:
    body = {
        "externalId": sandbox_report_ref(PEPPER, "acme", NUMBER, verification_id, send),
        "status": status,
    }
    if error:
        body["errorCode"] = error
    answer = api.post("/webhooks/sandbox", json=body, headers={"Authorization": f"Bearer {SECRET}"})
    assert answer.status_code == 200, answer.text


@pytest.fixture(scope="module")
def verification(service: ServiceProcess) -> str:
    """A verification whose first SMS was undelivered (UNDELIV, 034) and whose resend was
    delivered a few seconds after it was asked for."""
    with httpx.Client(
        base_url=service.url, headers={"Authorization": f"Bearer {ACME_KEY}"}, timeout=5
    ) as api:
        started = api.post("/otp/start", json={"to": NUMBER})
        assert started.status_code == 201, started.text
        verification_id: str = started.json()["id"]
        poll_until("the first SMS submitted", lambda: submitted(api, verification_id, 1), 10)
        report(api, verification_id, 1, "UNDELIV", "034")
        assert api.post(f"/otp/{verification_id}/resend").status_code == 200
        poll_until("the resend submitted", lambda: submitted(api, verification_id, 2), 10)
        time.sleep(2)  # the operator takes a moment
        report(api, verification_id, 2, "DELIVRD")
    poll_until("both codes printed", lambda: len(sent_codes(service)) >= 2, 10)
    return verification_id


def screenshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.getbasetemp() / "console-screenshots"


def test_a_support_user_reads_why_the_first_sms_failed_and_the_resend_arrived(
    browser: Browser,
    service: ServiceProcess,
    verification: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    browser.sign_in("alice")
    html = browser.look_up("+48 601 234 567")
    assert verification in html
    assert "The operator could not deliver the SMS (UNDELIV, 034)" in html
    assert "the operator reports the phone unreachable" in html
    assert re.search(r"Delivered [0-9.]+ s after the request: the code reached the phone", html)
    assert "+•••••••••67" in html
    assert "601234567" not in html
    assert "601 234 567" not in html
    codes = sent_codes(service)
    assert len(codes) >= 2
    for code in codes:
        assert code not in html, "a code is in the lookup page's HTML"
    shots = screenshot_dir(tmp_path_factory)
    browser.screenshot(shots / "console-lookup.png")
    if os.environ.get("OTP_UPDATE_SCREENSHOTS") == "1":
        shutil.copyfile(shots / "console-lookup.png", SCREENSHOT)

    browser.open("/console/overview")
    overview = str(browser.driver.page_source)
    assert "<svg" in overview
    assert "UNDELIV 034" in overview
    browser.screenshot(shots / "console-overview.png")
    browser.open("/console/audit")
    audit = str(browser.driver.page_source)
    assert "alice" in audit
    assert "+•••••••••67" in audit
    browser.screenshot(shots / "console-audit.png")
    for page in (overview, audit):
        for code in codes:
            assert code not in page


def test_a_user_of_another_tenant_sees_nothing_of_it(
    browser: Browser, verification: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    browser.sign_in("bob")
    by_number = browser.look_up(NUMBER)
    assert "No verification of this number" in by_number
    assert verification not in by_number
    assert "UNDELIV" not in by_number
    by_id = browser.look_up(verification)
    assert "No verification with this id" in by_id
    assert "UNDELIV" not in by_id
    browser.open("/console/overview?tenant=acme")
    assert "Not found" in browser.driver.page_source
    browser.screenshot(screenshot_dir(tmp_path_factory) / "console-other-tenant.png")


def test_a_form_sent_without_its_csrf_token_is_refused(
    browser: Browser, verification: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    browser.sign_in("alice")
    browser.open("/console/")
    browser.driver.execute_script(
        "document.querySelectorAll('input[name=_csrf_token]').forEach(e => e.remove())"
    )
    browser.field("q").send_keys(NUMBER)
    browser.submit("/console/lookup")
    browser.wait_for(lambda: "The form could not be accepted" in browser.driver.page_source)
    html = str(browser.driver.page_source)
    assert "The form could not be accepted" in html
    assert verification not in html
    browser.screenshot(screenshot_dir(tmp_path_factory) / "console-csrf-refused.png")
