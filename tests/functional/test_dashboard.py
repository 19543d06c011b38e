"""The web dashboard, in a real headless Chromium driven by Selenium
(Debian's chromium, chromium-driver and python3-selenium): what a user
sees and does. The page talks to the same node over its JSON API."""

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

#  Generous: the page refreshes every 2 s, and a sanitizer build is slow.
UI_TIMEOUT = 60


@pytest.fixture(scope="module")
def browser():
    options = Options()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,1024"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.set_page_load_timeout(UI_TIMEOUT)
    try:
        yield driver
    finally:
        driver.quit()


def shown(browser, element_id, predicate):
    """The text of an element once predicate holds for it."""
    def check(driver):
        value = driver.find_element(By.ID, element_id).text
        return value if predicate(value) else False
    return WebDriverWait(browser, UI_TIMEOUT).until(check)


def fill(form, name, value):
    field = form.find_element(By.NAME, name)
    field.clear()
    field.send_keys(value)


def test_status_submit_mine_and_history(node, browser):
    browser.get(node.url + "/")
    shown(browser, "ok", lambda t: t == "all services up")
    assert browser.find_element(By.ID, "network").text == "network dev"
    height = int(shown(browser, "height", str.isdigit))
    assert shown(browser, "tip", lambda t: len(t) == 64) == node.status()["tip"]

    #  Submit a transaction with the form: the answer names its txid,
    #  and the node has it pending.
    form = browser.find_element(By.ID, "tx")
    fill(form, "users", "dash-alice, dash-bob")
    fill(form, "data", '{"from": "the dashboard"}')
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    result = shown(browser, "tx-result", lambda t: "txid" in t)
    assert "Transaction will be added to Block %d" % (height + 1) in result
    txid = result.split("txid ")[1].rstrip(")")
    pending = node.tx(txid).json()
    assert pending["status"] == "pending"
    assert pending["transaction"]["users"] == ["dash-alice", "dash-bob"]
    assert pending["transaction"]["data"] == {"from": "the dashboard"}

    #  Mine it from the page; the new block shows among the latest.
    browser.find_element(By.ID, "mine").click()
    shown(browser, "mine-result", lambda t: "block %d" % (height + 1) in t)
    shown(browser, "blocks", lambda t: "dash-alice+dash-bob" in t)
    assert node.tx(txid).json()["status"] == "confirmed"

    #  Its history, by user.
    lookup = browser.find_element(By.ID, "history")
    Select(lookup.find_element(By.NAME, "kind")).select_by_value("user")
    fill(lookup, "who", "dash-bob")
    lookup.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    shown(browser, "history-result", lambda t: t == "1 confirmed transaction(s) of dash-bob")
    assert txid in browser.find_element(By.ID, "history-rows").text


def test_bad_input_is_shown_not_sent(node, browser):
    browser.get(node.url + "/")
    shown(browser, "ok", lambda t: t == "all services up")
    before = node.mempool_size()
    form = browser.find_element(By.ID, "tx")
    #  Caught in the page: data that is not JSON.
    fill(form, "data", "{not json")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    message = browser.find_element(By.ID, "tx-result")
    shown(browser, "tx-result", lambda t: t.startswith("Data is not valid JSON"))
    assert "error" in message.get_attribute("class")
    #  Refused by the node: a user name too long; its reason is shown.
    fill(form, "data", "1")
    fill(form, "users", "x" * 300)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    shown(browser, "tx-result", lambda t: "users: each user must be 1 to 256 bytes" in t)
    assert "error" in message.get_attribute("class")
    assert node.mempool_size() == before


def test_mine_asks_for_the_admin_token_when_the_node_has_one(make_node, browser, tmp_path):
    token = "0123456789abcdef" * 4
    path = tmp_path / "admin.token"
    path.write_text(token + "\n")
    path.chmod(0o600)
    node = make_node(extra_args=["--admin-token-file", str(path)])
    browser.get(node.url + "/")
    shown(browser, "ok", lambda t: t == "all services up")
    browser.find_element(By.ID, "mine").click()
    shown(browser, "mine-result", lambda t: "needs this node's admin token" in t)
    assert "error" in browser.find_element(By.ID, "mine-result").get_attribute("class")
    assert node.height() == 0
    browser.find_element(By.ID, "admin-token").send_keys(token)
    browser.find_element(By.ID, "mine").click()
    shown(browser, "mine-result", lambda t: "block 1" in t)
    assert node.height() == 1
