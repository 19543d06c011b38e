"""A real headless Chromium for the dashboard tests (Debian's chromium,
chromium-driver and python3-selenium), shared by every test_dashboard*.py.

    from chainbus_browser import shown, fill

conftest.py makes its fixtures every test's: `browser` is one Chromium per test module at 1280x1024; `phone` one at
360x740 (a phone held upright). When a test fails, each browser it used
saves a screenshot, the page's HTML and its console into
CHAINBUS_SCREENSHOTS (CTest sets <build>/screenshots; default
/tmp/chainbus-screenshots), named after the test, and the path is printed
with the failure, so that what the user would have seen can be looked at.
"""

import os
import re

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

#  Generous: a sanitizer build is slow, and the machine is shared.
UI_TIMEOUT = 60

SCREENSHOTS = os.environ.get("CHAINBUS_SCREENSHOTS", "/tmp/chainbus-screenshots")


def _chromium(width, height):
    options = Options()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=%d,%d" % (width, height)):
        options.add_argument(arg)
    #  The console (errors of the page's scripts) is kept for the report.
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.set_page_load_timeout(UI_TIMEOUT)
    if width < 500:
        #  Headless Chromium keeps a window at least 500 px wide: a phone's
        #  width is emulated (innerWidth is then the width asked for).
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": height, "deviceScaleFactor": 1, "mobile": True})
    return driver


def _save(driver, request, tag):
    """Screenshot, HTML and console of a browser after a failed test."""
    os.makedirs(SCREENSHOTS, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid) + "." + tag
    base = os.path.join(SCREENSHOTS, name)
    try:
        driver.save_screenshot(base + ".png")
        with open(base + ".html", "w") as out:
            out.write(driver.page_source)
        with open(base + ".console.txt", "w") as out:
            for entry in driver.get_log("browser"):
                out.write("%s %s\n" % (entry.get("level"), entry.get("message")))
        print("dashboard screenshot: %s.png (page: %s.html)" % (base, base))
    except Exception as e:  # the browser itself may be what failed
        print("no screenshot of %s: %s" % (tag, e))


def _failed(request):
    report = getattr(request.node, "chainbus_call_report", None)
    return report is not None and report.failed


class _Browsers:
    """One Chromium per module, with screenshots for each failed test."""

    def __init__(self, width, height, tag):
        self.size = (width, height)
        self.tag = tag
        self.driver = None

    def get(self):
        if self.driver is None:
            self.driver = _chromium(*self.size)
        return self.driver

    def close(self):
        if self.driver is not None:
            self.driver.quit()


@pytest.fixture(scope="module")
def _desktop_browser():
    b = _Browsers(1280, 1024, "desktop")
    try:
        yield b
    finally:
        b.close()


@pytest.fixture(scope="module")
def _phone_browser():
    b = _Browsers(360, 740, "phone")
    try:
        yield b
    finally:
        b.close()


@pytest.fixture
def browser(_desktop_browser, request):
    driver = _desktop_browser.get()
    yield driver
    if _failed(request):
        _save(driver, request, "desktop")


@pytest.fixture
def phone(_phone_browser, request):
    driver = _phone_browser.get()
    yield driver
    if _failed(request):
        _save(driver, request, "phone")


def shown(driver, element_id, predicate, timeout=UI_TIMEOUT):
    """The text of an element once predicate holds for it (an element the
    page replaces meanwhile is looked up again)."""
    def check(d):
        elements = d.find_elements(By.ID, element_id)
        if not elements:
            return False
        value = elements[0].text
        return value if predicate(value) else False
    return WebDriverWait(driver, timeout,
                         ignored_exceptions=[StaleElementReferenceException]).until(check)


def fill(form, name, value):
    field = form.find_element(By.NAME, name)
    field.clear()
    field.send_keys(value)
