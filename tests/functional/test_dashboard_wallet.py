"""The dashboard's wallet (gateway/www/js/wallet.js) in a real Chromium,
against a real node with signatures required and the real `chainbus` CLI.

A key made in the page is exported as a file that `chainbus key show`
reads; a `chainbus key new` file imports; a transaction signed in the page
is accepted by a --require-signatures node under the txid the page computed,
and its signature verifies here over msgpack bytes packed by Python; data
sealed in the page opens with `chainbus tx open`, and data sealed by
`chainbus tx send --seal` opens in the page (and not with another key); a
send answered 503 (mempool stopped) is sent again with the same bytes and
makes one transaction; the view fits 360 px and works with the keyboard.

The wallet is driven where a user meets it: #/wallet in the page shell.
"""

import hashlib
import json
import os
import signal
import stat
import subprocess

import msgpack
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from chainbus_browser import UI_TIMEOUT, fill, shown
from chainbus_node import Node, NodeError, bin_dir, wait_for

FIELDS = ["users", "data", "dh_parameters", "server_public_key",
          "receiver_public_key", "sender_public_key", "timestamp"]


def chainbus(*args):
    r = subprocess.run([os.path.join(bin_dir(), "chainbus")] + [str(a) for a in args],
                       capture_output=True, timeout=60)
    assert r.returncode == 0, "%s: exit %d\n%s" % (args, r.returncode, r.stderr.decode())
    return r


def new_key(path):
    return chainbus("key", "new", path).stdout.decode().strip()


@pytest.fixture(scope="module")
def strict():
    """A node that takes signed transactions only; its gateway gives up on
    a service after 4 s (the 503 of the retry test comes soon; a busy
    machine still answers every other send within it)."""
    n = Node(extra_args=["--require-signatures", "1", "--request-timeout", "4000"])
    try:
        n.start()
        yield n
    finally:
        n.close()


def open_wallet(driver, node, clear=True):
    #  A load of its own each time (a get of the same address would only
    #  move to its fragment).
    driver.get(node.url + "/#/wallet")
    if clear:
        driver.execute_script("localStorage.clear()")
    driver.refresh()
    #  The shell marks a view shown once its render is done.
    WebDriverWait(driver, UI_TIMEOUT).until(
        lambda d: d.execute_script("return document.body.dataset.view === 'wallet'"))


def import_key(driver, path):
    driver.find_element(By.ID, "key-file").send_keys(str(path))
    driver.find_element(By.CSS_SELECTOR, "#key-import button[type=submit]").click()
    #  Its own message (an earlier import's may still show meanwhile).
    label = os.path.basename(str(path))[:-len(".key")]
    shown(driver, "key-result", lambda t: t.startswith('Imported "%s"' % label))


def sign(driver, receiver, data, kind="json", users="", seal=False):
    form = driver.find_element(By.ID, "tx-sign")
    fill(form, "receiver_pasted", receiver)
    fill(form, "users", users)
    form.find_element(By.ID, "data-kind-" + kind).click()
    fill(form, "data", data)
    box = form.find_element(By.ID, "tx-seal")
    if box.is_selected() != seal:
        box.click()
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    return shown(driver, "signed-txid", lambda t: len(t) == 64)


def send(driver, expect):
    driver.find_element(By.ID, "tx-send").click()
    return shown(driver, "tx-result", lambda t: any(word in t for word in expect))


def canonical(tx):
    return msgpack.packb({k: tx[k] for k in FIELDS}, use_bin_type=True)


def test_created_key_exports_a_file_chainbus_reads(strict, browser, tmp_path):
    open_wallet(browser, strict)
    browser.execute_cdp_cmd("Browser.setDownloadBehavior",
                            {"behavior": "allow", "downloadPath": str(tmp_path)})
    fill(browser.find_element(By.ID, "key-new"), "label", "alice")
    browser.find_element(By.CSS_SELECTOR, "#key-new button[type=submit]").click()
    created = shown(browser, "key-result", lambda t: t.startswith("Created"))
    public = browser.find_element(By.CSS_SELECTOR, "#key-list code").text
    assert len(public) == 64 and public in created
    assert browser.execute_script("return localStorage.length") == 0, "kept without being asked"

    browser.find_element(By.CSS_SELECTOR, "#key-list .key-export").click()
    path = tmp_path / "alice.key"
    wait_for(lambda: path.exists() and path.stat().st_size > 0, 20, "the exported key file")
    assert "chmod 600 alice.key" in shown(browser, "key-result", lambda t: "Saved" in t)
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
    assert chainbus("key", "show", path).stdout.decode().strip() == public

    #  Kept only once ticked, with the warning next to it.
    assert "unencrypted" in browser.find_element(By.ID, "keep-warning").text
    browser.find_element(By.ID, "key-keep-0").click()
    open_wallet(browser, strict, clear=False)
    assert public in browser.find_element(By.ID, "key-list").text
    browser.find_element(By.ID, "key-keep-0").click()
    open_wallet(browser, strict, clear=False)
    assert public not in browser.find_element(By.ID, "key-list").text


def test_cli_key_file_imports(strict, browser, tmp_path):
    public = new_key(tmp_path / "bob.key")
    open_wallet(browser, strict)
    import_key(browser, tmp_path / "bob.key")
    assert public in browser.find_element(By.ID, "key-list").text
    assert browser.execute_script(
        "return (await import('./js/wallet.js')).walletKeys()") == [{"label": "bob", "public_key": public}]
    #  A damaged file is refused in words.
    damaged = json.loads((tmp_path / "bob.key").read_text())
    damaged["public_key"] = "00" * 32
    fill(browser.find_element(By.ID, "key-import"), "text", json.dumps(damaged))
    browser.find_element(By.CSS_SELECTOR, "#key-import button[type=submit]").click()
    assert shown(browser, "key-result", lambda t: "damaged" in t) == \
        "This key file is damaged: its public_key is not its seed's."

    #  What the user typed in the send form stays when a key is added.
    form = browser.find_element(By.ID, "tx-sign")
    fill(form, "data", "half written")
    fill(form, "users", "carol")
    fill(browser.find_element(By.ID, "key-new"), "label", "second")
    browser.find_element(By.CSS_SELECTOR, "#key-new button[type=submit]").click()
    shown(browser, "key-result", lambda t: t.startswith('Created "second"'))
    assert browser.find_element(By.ID, "tx-data").get_attribute("value") == "half written"
    assert browser.find_element(By.ID, "tx-users").get_attribute("value") == "carol"


def test_signed_submit_on_a_require_signatures_node(strict, browser, tmp_path):
    sender = new_key(tmp_path / "alice.key")
    receiver = new_key(tmp_path / "bob.key")
    open_wallet(browser, strict)
    import_key(browser, tmp_path / "alice.key")
    #  Key order, 1 vs 1.0, a large integer, short and long strings,
    #  integers of every msgpack width: the node's bytes must be these.
    data = ('{"z": 1, "a": 1.0, "10": [2.5, -3, 200, 300, -200, -40000, 70000, 5000000000, 1e300, 0.00001],'
            ' "big": 9007199254740993, "t": "%s", "e": "\u00e9t\u00e9"}' % ("x" * 40))
    txid = sign(browser, receiver, data, users="alice, bob")
    assert "accepts signed transactions only" in \
        strict.post("/transactions/new", {k: "x" for k in FIELDS[:6]}).text
    assert "Accepted" in send(browser, ["Accepted", "refused"])

    got = strict.tx(txid).json()
    assert got["status"] == "pending"
    tx = got["transaction"]
    assert tx["txid"] == txid
    assert tx["users"] == ["alice", "bob"] and tx["sender_public_key"] == sender
    assert tx["receiver_public_key"] == receiver and tx["dh_parameters"] == ""
    assert list(tx["data"]) == ["z", "a", "10", "big", "t", "e"]
    assert isinstance(tx["data"]["z"], int) and isinstance(tx["data"]["a"], float)
    assert tx["data"]["big"] == 9007199254740993
    signed = canonical(tx)
    assert hashlib.sha256(hashlib.sha256(signed).digest()).hexdigest() == txid
    Ed25519PublicKey.from_public_bytes(bytes.fromhex(sender)).verify(
        bytes.fromhex(tx["signature"]), signed)
    assert browser.find_element(By.ID, "signed-signature").text == tx["signature"]

    #  Plain text is sent as a JSON string; users default to the sender's key.
    txid = sign(browser, receiver, "hello world", kind="text")
    assert "Accepted" in send(browser, ["Accepted", "refused"])
    tx = strict.tx(txid).json()["transaction"]
    assert tx["data"] == "hello world" and tx["users"] == sender

    #  JSON that is not JSON: words, nothing signed.
    form = browser.find_element(By.ID, "tx-sign")
    form.find_element(By.ID, "data-kind-json").click()
    fill(form, "data", "hello world")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    assert "plain text" in shown(browser, "tx-error", lambda t: t != "")


def test_sealed_in_the_page_opens_with_chainbus(strict, browser, tmp_path):
    new_key(tmp_path / "alice.key")
    receiver = new_key(tmp_path / "bob.key")
    open_wallet(browser, strict)
    import_key(browser, tmp_path / "alice.key")
    txid = sign(browser, receiver, '{"amount": 5, "memo": "for the flowers", "x": [1.5, 1.0]}',
                seal=True)
    assert "Accepted" in send(browser, ["Accepted", "refused"])
    tx = strict.tx(txid).json()["transaction"]
    assert tx["dh_parameters"].startswith("x25519-box:v1:") and "amount" not in json.dumps(tx)
    opened = chainbus("tx", "open", txid, "--key", tmp_path / "bob.key", "--node", strict.url)
    assert opened.stdout.decode() == '{"amount": 5, "memo": "for the flowers", "x": [1.5, 1.0]}\n'


def test_sealed_by_chainbus_opens_in_the_page(strict, browser, tmp_path):
    new_key(tmp_path / "alice.key")
    new_key(tmp_path / "bob.key")
    receiver = chainbus("key", "show", tmp_path / "bob.key").stdout.decode().strip()
    txid = chainbus("tx", "send", "--key", tmp_path / "alice.key", "--to", receiver, "--seal",
                    "--data", '{"amount": 7, "memo": "caf\u00e9"}', "--node", strict.url
                    ).stdout.decode().strip()
    open_wallet(browser, strict)
    import_key(browser, tmp_path / "alice.key")
    fill(browser.find_element(By.ID, "tx-open"), "txid", txid)
    browser.find_element(By.CSS_SELECTOR, "#tx-open button[type=submit]").click()
    assert "not addressed to your keys" in shown(browser, "open-result", lambda t: "…" not in t)

    import_key(browser, tmp_path / "bob.key")
    fill(browser.find_element(By.ID, "tx-open"), "txid", txid)
    browser.find_element(By.CSS_SELECTOR, "#tx-open button[type=submit]").click()
    shown(browser, "open-result", lambda t: t.startswith("Opened"))
    assert browser.find_element(By.ID, "open-text").text == '{"amount": 7, "memo": "caf\u00e9"}'
    #  What the transaction view calls (js/wallet.js's contract).
    sealed, opened = browser.execute_script("""
        const wallet = await import('./js/wallet.js');
        const tx = (await (await fetch('/transactions/' + arguments[0])).json()).transaction;
        return [wallet.isSealed(tx), await wallet.openSealed(tx)];""", txid)
    assert sealed is True
    assert opened == {"ok": True, "text": '{"amount": 7, "memo": "caf\u00e9"}', "label": "bob",
                      "json": {"amount": 7, "memo": "caf\u00e9"}}


def test_retry_after_503_makes_one_transaction(strict, browser, tmp_path):
    new_key(tmp_path / "alice.key")
    open_wallet(browser, strict)
    import_key(browser, tmp_path / "alice.key")
    txid = sign(browser, "ab" * 32, '{"retry": true}')
    before = strict.mempool_size()
    strict.signal_service("mempool", signal.SIGSTOP)
    try:
        result = send(browser, ["again", "Accepted", "refused"])
    finally:
        strict.signal_service("mempool", signal.SIGCONT)
    assert "send it again" in result, result
    assert browser.find_element(By.ID, "tx-send").text == "Send the same transaction again"
    #  The stopped mempool may still take the first send once it runs
    #  (the request waited in its socket): then the same bytes again are a
    #  duplicate, and the page says it counts once.
    try:
        wait_for(lambda: strict.tx(txid).status_code == 200, 3, "the first send to land")
        landed = True
    except NodeError:
        landed = False
    result = send(browser, ["already had", "Accepted"])
    if landed:
        assert "already had" in result and "counts once" in result, result
    assert strict.tx(txid).json()["status"] == "pending"
    assert strict.mempool_size() == before + 1
    strict.mine()
    chain = strict.chain()["chain"]
    assert sum(t.get("txid") == txid for b in chain for t in b["transactions"]) == 1


def test_phone_width_keyboard_and_labels(strict, phone, tmp_path):
    #  Headless Chromium keeps a window at least 500 px wide, whatever
    #  --window-size says: emulate the phone's 360 px screen.
    phone.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                          {"width": 360, "height": 740, "deviceScaleFactor": 1, "mobile": True})
    open_wallet(phone, strict)
    assert phone.execute_script("return window.innerWidth") == 360
    def press(*keys):
        ActionChains(phone).send_keys(*keys).perform()

    def focused():
        e = phone.switch_to.active_element
        return e.get_attribute("id") or e.text

    #  Keyboard only: Tab to the name field, type, Enter creates the key.
    for _ in range(40):
        press(Keys.TAB)
        if focused() == "key-label":
            break
    assert focused() == "key-label"
    press("pocket", Keys.ENTER)
    shown(phone, "key-result", lambda t: t.startswith("Created"))
    #  Tab on to the data field and the Sign button; Enter signs.
    reached = []
    for _ in range(60):
        press(Keys.TAB)
        reached.append(focused())
        if reached[-1] == "tx-data":
            break
    assert "tx-receiver-pasted" in reached and "tx-data" in reached, reached
    press("typed on a phone")
    for _ in range(10):
        press(Keys.TAB)
        if focused() == "Sign":
            break
    press(Keys.ENTER)
    shown(phone, "signed-txid", lambda t: len(t) == 64)
    press(Keys.TAB)
    while focused() != "tx-send":
        press(Keys.TAB)
    press(Keys.ENTER)
    shown(phone, "tx-result", lambda t: "Accepted" in t)

    #  With long keys, the signed view and the bytes open: no page scroll.
    for summary in phone.find_elements(By.CSS_SELECTOR, "#tx-signed summary"):
        summary.click()
    wide = phone.execute_script("""
        return [...document.querySelectorAll('body *')]
          .filter(e => e.getBoundingClientRect().right > 361 && !e.closest('.wallet-scroll')
                       && ![...e.children].some(c => c.getBoundingClientRect().right > 361))
          .map(e => { let out = []; for (let a = e; a; a = a.parentElement)
                        out.push(a.tagName + '#' + a.id + '.' + a.className + ':'
                                 + Math.round(a.getBoundingClientRect().width));
                      return out.join(' < '); }).slice(0, 3);""")
    assert phone.execute_script("return document.documentElement.scrollWidth") <= 360, wide
    unnamed = phone.execute_script("""
        return [...document.querySelectorAll('input, select, textarea, button')]
          .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
                       && !(e.tagName === 'BUTTON' && e.textContent.trim()))
          .map(e => e.outerHTML.slice(0, 80));""")
    assert unnamed == []
