"""The web dashboard, in a real headless Chromium driven by Selenium
(Debian's chromium, chromium-driver and python3-selenium): what a user
sees and does. The page talks to the same node over its JSON API.

The page's shell and the explorer views (home: status, mine, latest
blocks; the search box; a user's history); the wallet's form submits
(its own tests are test_dashboard_wallet.py), the explorer's in
test_dashboard_explorer.py."""

from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from chainbus_browser import UI_TIMEOUT, fill, shown


def home(browser, node):
    browser.get(node.url + "/#/")
    WebDriverWait(browser, UI_TIMEOUT).until(
        lambda d: d.execute_script("return document.body.dataset.view") == "home")
    shown(browser, "ok", lambda t: t == "all services up")


def wallet_form(browser, node):
    """The wallet view's submit form (js/wallet.js), plain-text data off."""
    browser.get(node.url + "/#/wallet")
    return WebDriverWait(browser, UI_TIMEOUT).until(
        lambda d: d.find_elements(By.ID, "tx") and d.find_element(By.ID, "tx"))


def submit(form):
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()


def search(browser, term):
    box = browser.find_element(By.CSS_SELECTOR, "#search input[name=q]")
    box.clear()
    box.send_keys(term, Keys.ENTER)


def test_status_submit_mine_and_history(node, browser):
    home(browser, node)
    assert browser.find_element(By.ID, "network").text == "network dev"
    height = int(shown(browser, "height", str.isdigit))
    assert shown(browser, "tip", lambda t: len(t) == 64) == node.status()["tip"]

    #  Submit a transaction with the wallet's form: the answer names its
    #  txid, and the node has it pending.
    form = wallet_form(browser, node)
    fill(form, "users", "dash-alice, dash-bob")
    fill(form, "data", '{"from": "the dashboard"}')
    submit(form)
    result = shown(browser, "tx-result", lambda t: "txid" in t)
    assert "Transaction will be added to Block %d" % (height + 1) in result
    txid = result.split("txid ")[1].split(")")[0].strip()
    pending = node.tx(txid).json()
    assert pending["status"] == "pending"
    assert pending["transaction"]["users"] == ["dash-alice", "dash-bob"]
    assert pending["transaction"]["data"] == {"from": "the dashboard"}

    #  Mine it from the home view; the new block shows among the latest,
    #  with its count (not its users).
    home(browser, node)
    browser.find_element(By.ID, "mine").click()
    shown(browser, "mine-result", lambda t: "block %d" % (height + 1) in t)
    row = "#blocks tr[data-height='%d']" % (height + 1)
    WebDriverWait(browser, UI_TIMEOUT).until(lambda d: d.find_elements(By.CSS_SELECTOR, row))
    cells = browser.find_element(By.CSS_SELECTOR, row).find_elements(By.TAG_NAME, "td")
    assert cells[3].text == "1"
    assert "dash-alice" not in browser.find_element(By.ID, "blocks").text
    assert node.tx(txid).json()["status"] == "confirmed"

    #  Its history, by user, from the search box.
    search(browser, "dash-bob")
    shown(browser, "history-result", lambda t: t == "1 confirmed transaction(s) of dash-bob")
    assert txid[:10] in browser.find_element(By.ID, "history-rows").text
    #  And the transaction itself, from its link.
    browser.find_element(By.CSS_SELECTOR, "#history-rows a[href='#/tx/%s']" % txid).click()
    shown(browser, "tx-status", lambda t: t.startswith("confirmed"))


def test_bad_input_is_shown_not_sent(node, browser):
    home(browser, node)
    before = node.mempool_size()
    form = wallet_form(browser, node)
    #  Caught in the page: data that is not JSON (when JSON is asked for).
    fill(form, "data", "{not json")
    submit(form)
    message = browser.find_element(By.ID, "tx-result")
    shown(browser, "tx-result", lambda t: "not valid JSON" in t)
    assert "error" in message.get_attribute("class")
    #  Refused by the node: a user name too long; its reason is shown.
    fill(form, "data", "1")
    fill(form, "users", "x" * 300)
    submit(form)
    shown(browser, "tx-result", lambda t: "users: each user must be 1 to 256 bytes" in t)
    assert "error" in message.get_attribute("class")
    assert node.mempool_size() == before


def test_mine_asks_for_the_admin_token_when_the_node_has_one(make_node, browser, tmp_path):
    token = "0123456789abcdef" * 4
    path = tmp_path / "admin.token"
    path.write_text(token + "\n")
    path.chmod(0o600)
    node = make_node(extra_args=["--admin-token-file", str(path)])
    home(browser, node)
    browser.find_element(By.ID, "mine").click()
    shown(browser, "mine-result", lambda t: "needs this node's admin token" in t)
    assert "error" in browser.find_element(By.ID, "mine-result").get_attribute("class")
    assert node.height() == 0
    browser.find_element(By.ID, "admin-token").send_keys(token)
    browser.find_element(By.ID, "mine").click()
    shown(browser, "mine-result", lambda t: "block 1" in t)
    assert node.height() == 1
