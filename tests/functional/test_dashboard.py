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


RECEIVER = "be" * 32


def wallet_form(browser, node):
    """The wallet view (js/wallet.js) with a key made in the page; its
    sign form (#tx-sign: the page signs, then "Send to the node")."""
    browser.get(node.url + "/#/wallet")
    WebDriverWait(browser, UI_TIMEOUT).until(lambda d: d.find_elements(By.ID, "key-new"))
    if not browser.find_elements(By.CSS_SELECTOR, "#tx-sign select[name=sender] option"):
        fill(browser.find_element(By.ID, "key-new"), "label", "dashboard")
        browser.find_element(By.CSS_SELECTOR, "#key-new button[type=submit]").click()
        WebDriverWait(browser, UI_TIMEOUT).until(lambda d: d.find_elements(
            By.CSS_SELECTOR, "#tx-sign select[name=sender] option"))
    return browser.find_element(By.ID, "tx-sign")


def sign(browser, users, data, kind="json"):
    form = browser.find_element(By.ID, "tx-sign")
    fill(form, "receiver_pasted", RECEIVER)
    fill(form, "users", users)
    form.find_element(By.ID, "data-kind-" + kind).click()
    fill(form, "data", data)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()


def send(browser):
    """Send what the page signed; the node's answer as the page shows it."""
    shown(browser, "signed-txid", lambda t: len(t) == 64)
    browser.find_element(By.ID, "tx-send").click()
    return shown(browser, "tx-result", lambda t: t and t != "Sending…"
                 and not t.startswith("Signed in this page"))


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
    wallet_form(browser, node)
    sign(browser, "dash-alice, dash-bob", '{"from": "the dashboard"}')
    result = send(browser)
    assert "Transaction will be added to Block %d" % (height + 1) in result
    txid = result.split("txid ")[1].split(".")[0].strip()
    assert txid == browser.find_element(By.ID, "signed-txid").text
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
    wallet_form(browser, node)
    #  Caught in the page: data that is not JSON (when JSON is asked for).
    sign(browser, "dash-alice", "{not json")
    error = shown(browser, "tx-error", lambda t: t != "")
    assert "line 1, column 2" in error  # where, in words
    assert "error" in browser.find_element(By.ID, "tx-error").get_attribute("class")
    #  A user name too long: the node's rule, in its words (the wallet
    #  checks it before signing; else the node refuses it and says so).
    sign(browser, "x" * 300, "1")
    WebDriverWait(browser, UI_TIMEOUT).until(
        lambda d: d.find_element(By.ID, "tx-error").text
        or d.find_element(By.ID, "tx-send").is_displayed())
    where = "tx-error"
    if not browser.find_element(By.ID, "tx-error").text:
        send(browser)
        where = "tx-result"
    words = browser.find_element(By.ID, where).text
    assert "users: each user must be 1 to 256 bytes" in words.lower(), words
    assert "error" in browser.find_element(By.ID, where).get_attribute("class")
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
