"""The dashboard as an explorer (issue 12, item 4), in a headless Chromium:
views per block, transaction, user and key, the pending list, the one
search box (each kind of term) with back and forward, a 10,000-transaction
block paged, every view at 360 px, the keyboard and every control's name."""

import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from chainbus_browser import UI_TIMEOUT
from chainbus_node import tx_body

ALICE_KEY = "a1" * 32
BOB_KEY = "b0" * 32


def submit_many(node, bodies, connections=4, window=100):
    """POST every body: a few keep-alive connections, each sending `window`
    requests pipelined before reading their answers (Python's HTTP clients
    take ~2 ms a request; this takes the node's time). Their txids, in order."""
    port = int(node.url.rsplit(":", 1)[1])

    def post(chunk):
        txids = []
        with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
            reader = s.makefile("rb")
            for at in range(0, len(chunk), window):
                part = chunk[at:at + window]
                s.sendall(b"".join(
                    b"POST /transactions/new HTTP/1.1\r\nHost: x\r\n"
                    b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                    % (len(body), body) for body in part))
                for _ in part:
                    status = reader.readline()
                    length = 0
                    while True:
                        line = reader.readline()
                        if line in (b"\r\n", b""):
                            break
                        name, _, value = line.partition(b":")
                        if name.strip().lower() == b"content-length":
                            length = int(value)
                    answer = reader.read(length)
                    assert b" 201 " in status, (status, answer)
                    txids.append(json.loads(answer)["txid"])
        return txids

    encoded = [json.dumps(body).encode() for body in bodies]
    chunks = [encoded[i::connections] for i in range(connections)]
    with ThreadPoolExecutor(connections) as pool:
        results = list(pool.map(post, chunks))
    return [results[i % connections][i // connections] for i in range(len(bodies))]


@pytest.fixture(scope="module")
def chain(node):
    """Block A: three transactions of exp-alice/exp-bob (alice's key signs
    nothing: unsigned, but her key names the sender); block B: one; one
    transaction left pending."""
    a = [node.submit(tx_body(n, users=["exp-alice", "exp-bob"], sender_public_key=ALICE_KEY,
                             receiver_public_key=BOB_KEY))[0] for n in range(3)]
    block_a = node.mine()
    b = node.submit(tx_body(10, users="exp-alice"))[0]
    block_b = node.mine()
    pending = node.submit(tx_body(20, users="exp-carol"))[0]
    return {"a": block_a, "b": block_b, "a_txids": a, "b_txid": b, "pending": pending}


def seen(driver, element_id, predicate=lambda t: True):
    """The text of an element once predicate holds for it, read in the
    page (a view that is replaced meanwhile leaves no stale reference)."""
    def check(d):
        value = d.execute_script(
            "const e = document.getElementById(arguments[0]); return e ? e.innerText : null;",
            element_id)
        return value if value is not None and predicate(value) else False
    return WebDriverWait(driver, UI_TIMEOUT).until(check)


def view(driver, name, element_id=None, predicate=lambda t: True):
    """Wait until the view `name` is shown (and element_id's text passes)."""
    WebDriverWait(driver, UI_TIMEOUT).until(
        lambda d: d.execute_script("return document.body.dataset.view") == name)
    return seen(driver, element_id, predicate) if element_id else None


def go(driver, node, route):
    if driver.current_url.startswith(node.url + "/"):
        driver.execute_script("location.hash = arguments[0]", route)
    else:
        driver.get(node.url + "/" + route)


def search(driver, term):
    box = driver.find_element(By.CSS_SELECTOR, "#search input[name=q]")
    box.clear()
    box.send_keys(term, Keys.ENTER)


def location_hash(driver):
    return driver.execute_script("return decodeURIComponent(location.hash)")


def test_search_each_kind_links_and_back_forward(node, browser, chain):
    browser.get(node.url + "/")
    view(browser, "home")
    #  Latest blocks: counts, not users.
    latest = seen(browser, "blocks", lambda t: chain["b"]["hash"][:10] in t)
    assert "exp-alice" not in latest
    row = browser.find_element(By.CSS_SELECTOR, "#blocks tr[data-height='%d']"
                               % chain["a"]["index"])
    assert row.find_elements(By.TAG_NAME, "td")[3].text == "3"

    steps = []
    #  A height.
    search(browser, str(chain["a"]["index"]))
    view(browser, "block", "block-height", lambda t: t == str(chain["a"]["index"]))
    assert "is a height" in browser.find_element(By.ID, "search-result").text
    assert browser.find_element(By.ID, "block-tx-count").text == "3"
    steps.append(("block", "block-height", str(chain["a"]["index"])))
    #  A block hash.
    search(browser, chain["b"]["hash"])
    view(browser, "block", "block-height", lambda t: t == str(chain["b"]["index"]))
    assert location_hash(browser) == "#/block/" + chain["b"]["hash"]
    assert browser.find_element(By.ID, "search-result").text == "That is a block hash."
    steps.append(("block", "block-height", str(chain["b"]["index"])))
    #  A confirmed txid, then a pending one.
    search(browser, chain["b_txid"])
    view(browser, "tx", "tx-status", lambda t: t.startswith("confirmed"))
    assert "That is a transaction (confirmed)." == browser.find_element(
        By.ID, "search-result").text
    assert browser.find_element(By.ID, "tx-txid").text == chain["b_txid"]
    steps.append(("tx", "tx-txid", chain["b_txid"]))
    search(browser, chain["pending"])
    view(browser, "tx", "tx-status", lambda t: t.startswith("pending"))
    assert "(pending)" in browser.find_element(By.ID, "search-result").text
    steps.append(("tx", "tx-txid", chain["pending"]))
    #  A user: their history, newest first.
    search(browser, "exp-alice")
    view(browser, "user", "history-result",
         lambda t: t == "4 confirmed transaction(s) of exp-alice")
    assert location_hash(browser) == "#/user/exp-alice"
    rows = browser.find_element(By.ID, "history-rows").text
    assert rows.index(chain["b_txid"][:10]) < rows.index(chain["a_txids"][0][:10])
    steps.append(("user", "history-result", "4 confirmed transaction(s) of exp-alice"))
    #  A key (64 hex digits that are neither a block nor a txid).
    search(browser, BOB_KEY)
    view(browser, "key", "history-result", lambda t: t.startswith("3 confirmed"))
    assert "That is a key" in browser.find_element(By.ID, "search-result").text
    steps.append(("key", "history-result", "3 confirmed transaction(s) of " + BOB_KEY))
    #  Something that is nothing: said so.
    search(browser, "exp-nobody")
    seen(browser, "search-result", lambda t: t.startswith("Nothing found"))

    #  Back through every view, then forward again: each shows its content.
    browser.back()
    for name, element_id, text in reversed(steps[:-1]):
        browser.back()
        view(browser, name, element_id, lambda t, text=text: t == text)
    for name, element_id, text in steps[1:]:
        browser.forward()
        view(browser, name, element_id, lambda t, text=text: t == text)

    #  Links: the transaction's block, the block's transactions, its users.
    go(browser, node, "#/tx/" + chain["a_txids"][1])
    view(browser, "tx", "tx-status", lambda t: t.startswith("confirmed"))
    browser.find_element(By.CSS_SELECTOR, "#tx-block a").click()
    view(browser, "block", "block-height", lambda t: t == str(chain["a"]["index"]))
    browser.find_element(By.CSS_SELECTOR,
                         "#block-txs a[href='#/tx/%s']" % chain["a_txids"][2]).click()
    view(browser, "tx", "tx-txid", lambda t: t == chain["a_txids"][2])
    browser.find_element(By.CSS_SELECTOR, "#tx-sender a").click()
    view(browser, "key", "history-result", lambda t: t.startswith("3 confirmed"))
    assert location_hash(browser) == "#/key/" + ALICE_KEY
    #  A shared link opens the same view in a fresh page.
    browser.get(node.url + "/#/block/" + chain["a"]["hash"])
    view(browser, "block", "block-height", lambda t: t == str(chain["a"]["index"]))


def test_pending_list_oldest_first(node, browser, chain):
    first = node.submit(tx_body(30, users="exp-dave"))[0]
    go(browser, node, "#/pending")
    text = view(browser, "pending", "pending-rows", lambda t: first[:10] in t)
    assert text.index(chain["pending"][:10]) < text.index(first[:10])
    assert "pending transaction(s) shown, oldest first" in \
        browser.find_element(By.ID, "pending-result").text
    #  Its Received column: the node's time of arrival, as the browser
    #  writes that time today.
    received = node.get("/transactions/pending?limit=100").json()["transactions"]
    ms = next(e["received_ms"] for e in received if e["transaction"]["txid"] == first)
    expected = browser.execute_script("return new Date(arguments[0]).toLocaleTimeString()", ms)
    row = browser.find_element(By.CSS_SELECTOR, "#pending-rows tr[data-txid='%s']" % first)
    assert row.find_elements(By.TAG_NAME, "td")[2].text == expected
    browser.find_element(By.CSS_SELECTOR,
                         "#pending-rows a[href='#/tx/%s']" % first).click()
    view(browser, "tx", "tx-status", lambda t: t.startswith("pending"))
    #  When the node received it, date and time.
    assert seen(browser, "tx-received") == browser.execute_script(
        "return new Date(arguments[0]).toLocaleString()", ms)


def test_a_10000_transaction_block(make_node, browser):
    node = make_node()
    submit_many(node, [tx_body(n, users=["big-%d" % n, "big-all"]) for n in range(10000)])
    block = node.mine()
    assert len(block["transactions"]) == 10000, "a block of 10,000 transactions"
    browser.get(node.url + "/#/block/%d" % block["index"])
    view(browser, "block", "block-txs-result", lambda t: t == "Transactions 1 to 50 of 10000")
    assert browser.find_element(By.ID, "block-tx-count").text == "10000"
    assert len(browser.find_elements(By.CSS_SELECTOR, "#block-txs tr")) == 50
    #  The page stays a page: its height does not grow with the block.
    height = browser.execute_script("return document.documentElement.scrollHeight")
    assert height < 4000, height
    #  Next, next, previous: each a page of 50 (and in the address bar).
    browser.find_element(By.ID, "block-txs-next").click()
    seen(browser, "block-txs-result", lambda t: t == "Transactions 51 to 100 of 10000")
    assert "start=50" in location_hash(browser)
    browser.find_element(By.ID, "block-txs-next").click()
    seen(browser, "block-txs-result", lambda t: t == "Transactions 101 to 150 of 10000")
    browser.find_element(By.ID, "block-txs-previous").click()
    seen(browser, "block-txs-result", lambda t: t == "Transactions 51 to 100 of 10000")
    first = browser.find_element(By.CSS_SELECTOR, "#block-txs tr td").text
    assert first == "50"
    #  The last page, one click away; and back to the first.
    browser.find_element(By.ID, "block-txs-last").click()
    seen(browser, "block-txs-result", lambda t: t == "Transactions 9951 to 10000 of 10000")
    assert "start=9950" in location_hash(browser)
    assert not browser.find_elements(By.ID, "block-txs-next")
    assert not browser.find_elements(By.ID, "block-txs-last")
    browser.find_element(By.ID, "block-txs-first").click()
    seen(browser, "block-txs-result", lambda t: t == "Transactions 1 to 50 of 10000")
    #  Home: the block is one row with its count.
    go(browser, node, "#/")
    latest = seen(browser, "blocks", lambda t: "10000" in t)
    assert "big-all" not in latest


PHONE_VIEWS = ["#/", "#/block/1", "#/tx/{txid}", "#/pending", "#/user/exp-alice",
               "#/key/" + ALICE_KEY, "#/wallet", "#/network", "#/no-such-view"]


def test_every_view_fits_a_phone(node, phone, chain):
    phone.set_window_size(360, 740)
    phone.get(node.url + "/")
    assert phone.execute_script("return innerWidth") == 360
    for route in PHONE_VIEWS:
        go(phone, node, route.format(txid=chain["a_txids"][0]))
        WebDriverWait(phone, UI_TIMEOUT).until(
            lambda d: d.execute_script("return document.body.dataset.view")
            or "No such page" in d.find_element(By.ID, "view").text)
        width = phone.execute_script("return document.documentElement.scrollWidth")
        assert width <= 360, "%s is %d px wide at 360" % (route, width)
    #  With a search's words shown too.
    search(phone, chain["b"]["hash"])
    view(phone, "block", "search-result", lambda t: t == "That is a block hash.")
    assert phone.execute_script("return document.documentElement.scrollWidth") <= 360


def controls(driver):
    return driver.find_elements(By.CSS_SELECTOR, "input, select, textarea, button")


def test_keyboard_reaches_the_controls_and_each_has_a_name(node, browser, chain):
    for route in ["#/", "#/block/%d" % chain["a"]["index"], "#/tx/" + chain["a_txids"][0],
                  "#/pending", "#/user/exp-alice", "#/wallet", "#/network"]:
        go(browser, node, route)
        view(browser, route.split("/")[1] or "home")
        for element in controls(browser):
            if not element.is_displayed():
                continue
            name = element.accessible_name
            assert name and name.strip(), "%s: a %s without a name: %s" % (
                route, element.tag_name, element.get_attribute("outerHTML")[:200])

    #  Tab alone reaches the search box, the views' links and home's controls.
    browser.get(node.url + "/#/")
    view(browser, "home")
    reached = set()
    body = browser.find_element(By.TAG_NAME, "body")
    body.click()
    for _ in range(60):
        browser.switch_to.active_element.send_keys(Keys.TAB)
        active = browser.switch_to.active_element
        reached.add(active.get_attribute("id") or active.get_attribute("name")
                    or active.get_attribute("href") or active.text)
    for wanted in ("q", "admin-token", "mine"):
        assert wanted in reached, (wanted, sorted(map(str, reached)))
    assert any(str(r).endswith("#/pending") for r in reached)
    #  The keyboard alone: a nav link by Enter, then a search by Enter.
    link = browser.find_element(By.CSS_SELECTOR, "nav a[href='#/pending']")
    link.send_keys(Keys.ENTER)
    view(browser, "pending")
    search(browser, "exp-bob")
    view(browser, "user", "history-result", lambda t: t.startswith("3 confirmed"))
    #  The view's heading has the focus after a navigation.
    assert browser.switch_to.active_element.tag_name == "h2"


def test_sealed_data_is_marked_with_an_open_button_and_errors_are_words(node, browser, chain):
    sealed = tx_body(users="exp-sealed", data={"sealed": "AAAA" * 8},
                     dh_parameters="x25519-box:v1:" + "ab" * 32 + ":" + "cd" * 24,
                     receiver_public_key=BOB_KEY)
    txid = node.submit(sealed)[0]
    go(browser, node, "#/tx/" + txid)
    view(browser, "tx", "tx-sealed", lambda t: t.startswith("Sealed:"))
    button = browser.find_element(By.ID, "tx-open-sealed")
    if button.is_enabled():
        #  Not addressed to this browser's keys (it has none): said in words.
        button.click()
        opened = seen(browser, "tx-opened", lambda t: t and t != "opening…")
        assert "error" in browser.find_element(By.ID, "tx-opened").get_attribute("class")
        assert "Error" not in opened and "undefined" not in opened, opened
    #  A block or transaction that does not exist: the node's words.
    go(browser, node, "#/block/999999")
    view(browser, "block", "view-error", lambda t: t == "Block not found")
    go(browser, node, "#/tx/" + "0" * 64)
    view(browser, "tx", "view-error", lambda t: t == "Transaction not found")
    #  Ids that cannot be one: said by the page, without asking the node.
    go(browser, node, "#/tx/nothex")
    view(browser, "tx", "view-error", lambda t: "64 hexadecimal digits" in t)
    go(browser, node, "#/block/zzz")
    view(browser, "block", "view-error", lambda t: t.startswith("That names no block"))
    asked = browser.execute_script(
        "return performance.getEntriesByType('resource').map((e) => e.name)")
    assert not any("/nothex" in url or "/zzz" in url for url in asked), asked


def test_home_is_live_without_polling(node, browser, chain):
    """A block mined by another client and a new pending transaction show
    on the home view without a reload, and nothing is fetched while
    nothing happens (js/live.js: one event stream, no timers)."""
    browser.get(node.url + "/#/")
    view(browser, "home")
    WebDriverWait(browser, UI_TIMEOUT).until(
        lambda d: d.execute_script("return document.documentElement.dataset.live") == "live")
    seen(browser, "live-state", lambda t: t == "live")
    browser.execute_script("window.__same_page = 1")
    fetched = "return performance.getEntriesByType('resource').length"
    time.sleep(2)
    before = browser.execute_script(fetched)
    time.sleep(6)
    assert browser.execute_script(fetched) == before, "the page fetched while nothing happened"
    txid = node.submit(tx_body(40, users="exp-live"))[0]
    seen(browser, "home-pending", lambda t: txid[:10] in t or "more on the next page" in t)
    block = node.mine()
    row = "#blocks tr[data-hash='%s']" % block["hash"]
    WebDriverWait(browser, UI_TIMEOUT).until(lambda d: d.find_elements(By.CSS_SELECTOR, row))
    seen(browser, "height", lambda t: t == str(block["index"]))
    assert browser.execute_script("return window.__same_page") == 1


def test_a_stale_block_says_so_and_its_links_keep_to_it(make_node, browser):
    """A block of a side branch, opened by its hash: "stale" in words, no
    confirmations (none added by new blocks), its previous block by hash,
    no link to a next block."""
    from test_p2p import stale_block, tip
    from chainbus_node import wait_for
    a, b = make_node(), make_node()
    side = stale_block(a, b, data="stale", users="side")

    browser.get(a.url + "/#/block/" + side["hash"])
    view(browser, "block", "block-stale", lambda t: t.startswith("This block is stale"))
    assert browser.find_element(By.CSS_SELECTOR, "#view h2").text == "Stale block 1"
    assert seen(browser, "block-confirmations") == "none: not in the active chain"
    assert not browser.find_elements(By.ID, "block-next")
    previous = browser.find_element(By.ID, "block-previous").get_attribute("href")
    assert previous.endswith("#/block/" + side["previous_hash"]), previous
    #  A new block on the active chain adds no confirmation to it.
    new = a.mine()
    wait_for(lambda: tip(a)[0] == new["index"], 30, "a's new block")
    time.sleep(1)
    assert seen(browser, "block-confirmations") == "none: not in the active chain"
    #  The active block at that height says nothing of the kind.
    go(browser, a, "#/block/1")
    view(browser, "block", "block-confirmations", lambda t: t == "3")
    assert not browser.find_elements(By.ID, "block-stale")


def test_search_of_numbers_that_are_no_height(node, browser, chain):
    """64 decimal digits are a hash (not a height); a number too long to be
    a height is looked up as a name: both answered in words, not as an
    error of the node's block route."""
    browser.get(node.url + "/")
    view(browser, "home")
    search(browser, "0" * 64)
    words = seen(browser, "search-result", lambda t: t and "…" not in t)
    assert words.startswith("No block or transaction has that hash"), words
    assert "#/key/" + "0" * 64 in location_hash(browser)
    search(browser, "12345678901234567890123")
    words = seen(browser, "search-result", lambda t: "12345678901234567890123" in t)
    assert words.startswith("Nothing found"), words
    assert "error" not in browser.find_element(By.ID, "search-result").get_attribute("class")
