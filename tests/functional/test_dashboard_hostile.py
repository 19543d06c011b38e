"""The dashboard against hostile content (issue 12), in a headless
Chromium: user names, keys, data (text and JSON), search terms and page
addresses made of HTML and script are shown as text in every view, never
run or turned into elements; characters that reorder text are shown as
their codes (a name cannot pass for another); and no view logs an error of the page to the
console, also while the gateway is down and after it comes back.

The marks are set by the payloads themselves: `window.__xss` is assigned
if any payload's script ever runs, and an injected element would be an
<img>, <svg>, <iframe> or <script> the page does not have of its own."""

import urllib.parse

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from chainbus_browser import UI_TIMEOUT
from chainbus_node import tx_body

EVIL_USER = '<img src=x onerror="window.__xss=1">'
EVIL_USER_2 = '"><svg onload="window.__xss=2">'
EVIL_KEY = "'><iframe src=javascript:window.top.__xss=3>"
EVIL_TEXT = "</code><script>window.__xss=4</script><img src=y onerror=window.__xss=5>"
EVIL_JSON = {"<b onclick=window.__xss=6>key</b>": "<svg onload=window.__xss=7>",
             "link": "javascript:window.__xss=8"}
EVIL_ROUTE = '<img src=z onerror="window.__xss=9">'
#  Shown as "alice" by a right-to-left override, were it not made visible.
SPOOF_USER = "\u202eecila\u202c"
SPOOF_SHOWN = "\u27e8U+202E\u27e9ecila\u27e8U+202C\u27e9"


@pytest.fixture(scope="module")
def hostile(node):
    """A block with the hostile transactions, and one of them pending."""
    confirmed = [
        node.submit(tx_body(users=[EVIL_USER, EVIL_USER_2], data=EVIL_TEXT,
                            sender_public_key=EVIL_KEY, receiver_public_key=EVIL_USER_2,
                            dh_parameters=EVIL_USER))[0],
        node.submit(tx_body(users=[EVIL_USER, SPOOF_USER], data=EVIL_JSON,
                            sender_public_key=EVIL_KEY))[0],
    ]
    block = node.mine()
    pending = node.submit(tx_body(users=[EVIL_USER], data=EVIL_TEXT + " pending",
                                  sender_public_key=EVIL_KEY))[0]
    return {"block": block, "confirmed": confirmed, "pending": pending}


def injected(driver):
    """What the payloads would have made: the mark, and elements the page
    has none of (its one <script> is app.js's module tag)."""
    return driver.execute_script("""
        return {mark: window.__xss === undefined ? null : window.__xss,
                elements: [...document.querySelectorAll('img, svg, iframe, object, embed')]
                  .map((e) => e.outerHTML.slice(0, 80)),
                scripts: [...document.querySelectorAll('script')]
                  .filter((s) => !(s.type === 'module' && s.src.endsWith('/app.js'))
                                 && !s.src.includes('/vendor/'))
                  .map((s) => s.outerHTML.slice(0, 80)),
                javascript_links: [...document.querySelectorAll('a[href]')]
                  .filter((a) => a.href.trim().toLowerCase().startsWith('javascript:'))
                  .map((a) => a.outerHTML.slice(0, 80))};""")


def page_errors(driver):
    """Console entries that are the page's faults: errors other than the
    browser's own line for an HTTP error answer (a search or a view asking
    for what does not exist gets a 404 by design), and the dashboard's
    warnings ("dashboard: ...", a view or a part that failed)."""
    faults = []
    for entry in driver.get_log("browser"):
        message = entry.get("message", "")
        if entry.get("source") == "network" and "Failed to load resource" in message:
            continue
        if entry["level"] == "SEVERE" or "dashboard:" in message:
            faults.append(message)
    return faults


def shown(driver, name=None):
    """Wait until the view `name` (or any view, or the no-such-page words)
    is shown, then let late answers land."""
    def ready(d):
        view = d.execute_script("return document.body.dataset.view")
        if name:
            return view == name
        return view or "No such page" in d.find_element(By.ID, "view").text
    WebDriverWait(driver, UI_TIMEOUT).until(ready)


def view_text(driver):
    return driver.execute_script("return document.getElementById('view').innerText")


def go(driver, node, route):
    driver.execute_script("location.hash = arguments[0]", route)


def test_hostile_content_is_text_in_every_view(node, browser, hostile):
    browser.get(node.url + "/")
    shown(browser, "home")
    browser.get_log("browser")
    tx_a, tx_b = hostile["confirmed"]
    quoted = lambda value: urllib.parse.quote(value, safe="")
    #  (address, view, what must show as text there)
    views = [
        ("#/", "home", []),
        ("#/block/%d" % hostile["block"]["index"], "block", [EVIL_USER]),
        ("#/tx/" + tx_a, "tx", [EVIL_USER, EVIL_USER_2, EVIL_KEY, EVIL_TEXT]),
        ("#/tx/" + tx_b, "tx", [SPOOF_SHOWN, "<b onclick=window.__xss=6>key</b>",
                                "<svg onload=window.__xss=7>", "javascript:window.__xss=8"]),
        ("#/tx/" + hostile["pending"], "tx", [EVIL_TEXT + " pending"]),
        ("#/pending", "pending", [EVIL_USER]),
        ("#/user/" + quoted(EVIL_USER), "user", [EVIL_USER]),
        ("#/key/" + quoted(EVIL_KEY), "key", [EVIL_KEY]),
        ("#/user/" + quoted(SPOOF_USER), "user", [SPOOF_SHOWN]),
        ("#/wallet", "wallet", []),
        ("#/network", "network", []),
        ("#/block/" + quoted(EVIL_ROUTE), "block", []),
        ("#/tx/" + quoted(EVIL_ROUTE), "tx", []),
        ("#/" + quoted(EVIL_ROUTE), None, ["No such page"]),
    ]
    for route, name, texts in views:
        go(browser, node, route)
        shown(browser, name)
        for text in texts:
            WebDriverWait(browser, UI_TIMEOUT).until(
                lambda d: text in view_text(d), "%r as text in %s" % (text, route))
        assert injected(browser) == {"mark": None, "elements": [], "scripts": [],
                                     "javascript_links": []}, route
        assert page_errors(browser) == [], route

    #  The search box with each payload: the words say what it is, as text.
    for term in (EVIL_USER, EVIL_KEY, EVIL_ROUTE):
        box = browser.find_element(By.CSS_SELECTOR, "#search input[name=q]")
        box.clear()
        box.send_keys(term, Keys.ENTER)
        WebDriverWait(browser, UI_TIMEOUT).until(
            lambda d: term in d.find_element(By.ID, "search-result").text
            or d.execute_script("return decodeURIComponent(location.hash)").endswith(term),
            "the search for %r" % term)
        shown(browser)
        assert injected(browser) == {"mark": None, "elements": [], "scripts": [],
                                     "javascript_links": []}, term
    assert page_errors(browser) == []


def test_no_page_errors_while_the_gateway_is_down_and_after(make_node, browser):
    node = make_node()
    browser.get(node.url + "/#/network")
    shown(browser, "network")
    WebDriverWait(browser, UI_TIMEOUT).until(
        lambda d: d.execute_script("return document.documentElement.dataset.live") == "live")
    browser.execute_async_script("""
        const done = arguments[arguments.length - 1];
        window.__opens = [];
        import('./js/live.js').then((m) => { m.onOpen((e) => window.__opens.push(e)); done(); });""")
    browser.get_log("browser")
    #  The gateway is killed; the launcher brings it back. Meanwhile the
    #  page says so in words and, once back, is live again.
    node.kill_service("gateway")
    WebDriverWait(browser, UI_TIMEOUT).until(
        lambda d: d.execute_script("return document.documentElement.dataset.live") == "live"
        and d.execute_script("return window.__opens.length") >= 1,
        "the stream back after the gateway's restart")
    for route in ("#/", "#/pending", "#/wallet", "#/network", "#/block/0"):
        go(browser, node, route)
        shown(browser)
    assert page_errors(browser) == []
