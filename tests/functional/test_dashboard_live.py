"""The dashboard's live updates, network view and charts (issue 12, items 3
and 5), in a real headless Chromium: gateway/www/js/live.js (the page's one
EventSource on GET /events), js/network.js (#/network) and js/charts.js.

They are driven where a user meets them: #/network in the page shell (the
peers, then the charts); the events the page's stream delivered are
recorded on window by a listener of live.js added by the test."""

import time

from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from chainbus_browser import UI_TIMEOUT
from chainbus_node import tx_body, wait_for

PAGE = "/#/network"

#  Generous: links form and break within seconds; a sanitizer build is slow.
PEER_TIMEOUT = 60


def live(driver):
    return driver.execute_script("return document.documentElement.dataset.live")


def open_page(driver, node):
    driver.get(node.url + PAGE)
    WebDriverWait(driver, UI_TIMEOUT).until(lambda d: live(d) == "live" and d.execute_script(
        "return document.body.dataset.view === 'network'"))
    #  Keep what live.js announces: every state, every stream.open and
    #  every event (one JSON line each).
    driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        window.__states = [];
        window.addEventListener('live-state', (e) => window.__states.push(e.detail));
        window.__opens = [];
        window.__events = [];
        import('./js/live.js').then((m) => {
          m.onOpen((e) => window.__opens.push(e));
          m.on('', (e) => window.__events.push(JSON.stringify(e)));
          done();
        });""")


def events(driver):
    """The events the page's stream delivered since open_page, one JSON
    text per line."""
    return "\n".join(driver.execute_script("return window.__events"))


def text_of(driver, element_id):
    """textContent (also of what a closed <details> hides)."""
    return driver.execute_script(
        "const e = document.getElementById(arguments[0]); return e ? e.textContent : null;",
        element_id)


def until(driver, predicate, what, timeout=UI_TIMEOUT):
    try:
        return WebDriverWait(driver, timeout).until(lambda d: predicate())
    except Exception:
        raise AssertionError("timed out waiting for " + what)


def fetched(driver):
    """The page's fetches so far (every resource it loaded)."""
    return driver.execute_script(
        "return performance.getEntriesByType('resource').map((e) => e.name)")


def at_height(driver, height):
    return "this node is at height %d" % height in (text_of(driver, "network-summary") or "")


def test_a_block_mined_elsewhere_arrives_without_reload_or_polling(node, browser):
    open_page(browser, node)
    height = node.height()
    until(browser, lambda: at_height(browser, height), "the network view")
    #  Settled: the charts seeded, Chart.js loaded, the view fetched.
    until(browser, lambda: "latest" in text_of(browser, "chart-mempool-latest"), "a heartbeat")
    time.sleep(1)
    before = fetched(browser)
    #  While nothing happens (heartbeats only), the page fetches nothing.
    time.sleep(6)
    assert fetched(browser) == before
    assert "latest" in text_of(browser, "chart-hash-rate-latest")

    #  Another client mines two blocks: both arrive in the same page (no
    #  reload: the marker set on window is still there), the network
    #  view shows the height, the chart the interval between them.
    browser.execute_script("window.__same_page = 1")
    node.mine()
    node.mine()
    until(browser, lambda: at_height(browser, height + 2), "height %d shown" % (height + 2))
    until(browser, lambda: "#%d" % (height + 2) in text_of(browser, "chart-block-interval-table"),
          "the block interval of height %d" % (height + 2))
    assert browser.execute_script("return window.__same_page") == 1
    delivered = events(browser)
    assert '"topic":"chain.block.connected"' in delivered
    assert '"index":%d' % (height + 2) in delivered
    #  What the blocks made the page fetch: the network view's refresh
    #  (GET /nodes and /status), no block, no /events again.
    more = fetched(browser)[len(before):]
    assert more, "the network view did not refresh on the block events"
    assert all(url.endswith(("/nodes", "/status")) for url in more), more
    assert live(browser) == "live"


def test_the_page_reconnects_after_the_gateway_and_the_node_restart(make_node, browser):
    node = make_node()
    open_page(browser, node)

    #  The gateway dies (kill -9) and the launcher restarts it: the page
    #  goes offline, then live again on a stream with a new gateway_boot,
    #  and refetches its state (onOpen).
    node.kill_service("gateway")
    until(browser, lambda: live(browser) == "live" and browser.execute_script(
        "return window.__opens.length") >= 1, "the stream to come back")
    states = [s["state"] for s in browser.execute_script("return window.__states")]
    assert states[0] == "offline" and states[-1] == "live", states
    opened = browser.execute_script("return window.__opens[0]")
    assert opened["topic"] == "stream.open" and opened["restarted"] is True, opened

    #  The whole node stops and starts again (same port, same chain).
    node.restart()
    until(browser, lambda: browser.execute_script("return window.__opens.length") >= 2,
          "the stream after the node's restart")
    #  The new state shows: a block mined now arrives live.
    block = node.mine()
    until(browser, lambda: at_height(browser, block["index"]),
          "height %d after the restart" % block["index"])
    until(browser, lambda: '"index":%d' % block["index"] in events(browser),
          "the block event after the restart")


def register(node, peer):
    address = "http://127.0.0.1:%d" % peer.port
    r = node.post("/nodes/register", {"nodes": [address]})
    assert r.status_code == 201, r.text


def both_links_up(node):
    links = [n for n in node.get("/nodes").json()["nodes"] if n["state"] == "linked"]
    return len(links) == 2


def peer_rows(driver):
    """The peers table's rows, each a list of its cells' texts, read in the
    page at once (the view redraws its rows on every refresh)."""
    return driver.execute_script("""
        return [...document.querySelectorAll('#network-peers tr')]
          .map((tr) => [...tr.querySelectorAll('td')].map((td) => td.innerText));""")


def first_row(driver):
    """The first row's cells; empty texts while the table has no row."""
    rows = peer_rows(driver)
    return rows[0] if rows and len(rows[0]) >= 6 else [""] * 6


def test_two_nodes_linked_both_ways_show_one_peer_with_one_state(make_node, browser):
    a, b = make_node(), make_node()
    register(a, b)
    register(b, a)
    wait_for(lambda: both_links_up(a) and both_links_up(b), PEER_TIMEOUT, "both links up")
    listed = a.get("/nodes").json()["nodes"]
    assert len(listed) == 2 and len({n["node_id"] for n in listed}) == 1, listed
    b_id = listed[0]["node_id"]

    open_page(browser, a)
    until(browser, lambda: len(peer_rows(browser)) == 1
          and "linked" in " ".join(peer_rows(browser)[0]), "one linked row")
    cells = peer_rows(browser)[0]
    assert cells[0] == b_id
    assert cells[1] == "linked"
    assert cells[2] == str(b.height())
    assert cells[3] == "0"
    #  Its two links are named in the one row.
    assert "out " in cells[4] and "in " in cells[4], cells[4]
    assert text_of(browser, "network-summary").startswith("1 peer, 1 linked")
    assert "in step" in text_of(browser, "network-sync")

    #  b mines: a hears the block, the row's height follows, live.
    block = b.mine()
    until(browser, lambda: first_row(browser)[2]
          == str(block["index"]), "b's new height in the row")
    assert len(peer_rows(browser)) == 1

    #  b stops: still one row, one state, no longer linked (peer.* events).
    b.stop()
    until(browser, lambda: len(peer_rows(browser)) == 1
          and not first_row(browser)[1]
          .startswith("linked"), "b shown not linked", timeout=PEER_TIMEOUT)
    state = peer_rows(browser)[0][1]
    assert state.split(" ")[0] in ("connecting", "fetching", "refused", "banned"), state


def test_peers_are_grouped_by_node_with_the_best_state(node, browser):
    """groupPeers on the contradictory entries a peer gives while it is
    down: one row, the most advanced state, the highest height, the worst
    score; an entry without node_id yet is its own row by address."""
    browser.get(node.url + PAGE)
    peers = browser.execute_script("""
        return import('./js/network.js').then((m) => m.groupPeers([
          {address: "http://127.0.0.1:5001", node_id: "aa", state: "refused", height: 3,
           score: -20, direction: "out", redundant: false, reason: "no answer"},
          {address: "tcp://127.0.0.1:40000", node_id: "aa", state: "connecting", height: 5,
           score: 0, direction: "in", redundant: true, reason: "no HELLO yet"},
          {address: "http://127.0.0.1:5002", node_id: "", state: "fetching", height: 0,
           score: 0, direction: "out", redundant: false, reason: "asking"}]));""")
    assert [(p["node_id"], p["state"], p["height"], p["score"]) for p in peers] == [
        ("aa", "connecting", 5, -20), (None, "fetching", 0, 0)]
    assert peers[0]["reason"] == "no HELLO yet"
    assert len(peers[0]["links"]) == 2


def test_charts_have_data_after_transactions_and_blocks(node, browser):
    open_page(browser, node)
    #  A rate needs two of the mempool's heartbeats (the first point of
    #  the mempool size may be GET /metrics's, at load).
    until(browser, lambda: "latest" in text_of(browser, "chart-tx-rate-latest"),
          "two heartbeats")
    for n in range(30):
        node.submit(tx_body(data={"chart": n}))
    #  The mempool's next heartbeats carry the count and the accepted total.
    until(browser, lambda: "highest 0 " not in text_of(browser, "chart-tx-rate-latest")
          and "latest" in text_of(browser, "chart-tx-rate-latest"), "a rate above 0")
    until(browser, lambda: "highest 0 " not in text_of(browser, "chart-mempool-latest"),
          "a mempool size above 0")
    first = node.mine()
    node.submit(tx_body(data="one more"))
    second = node.mine()
    until(browser, lambda: "#%d" % second["index"] in text_of(browser, "chart-block-interval-table"),
          "the interval before block %d" % second["index"])
    assert "no data" not in text_of(browser, "chart-block-interval-latest")
    #  The miner's heartbeats: a hash rate series (0 while it has no work).
    assert browser.find_elements(By.CSS_SELECTOR, "#chart-hash-rate-table tbody tr")
    #  The text alternatives: a caption per chart, a table per chart, and
    #  each canvas named with its latest values.
    tables = browser.find_elements(By.CSS_SELECTOR, "table.chart-table")
    assert len(tables) == 4
    for canvas in browser.find_elements(By.CSS_SELECTOR, ".chart canvas"):
        assert canvas.get_attribute("role") == "img"
        assert "latest" in canvas.get_attribute("aria-label")
    rate_rows = text_of(browser, "chart-tx-rate-table")
    assert any(ch.isdigit() and ch != "0" for ch in rate_rows), rate_rows
    #  Chart.js drew (the vendored copy loaded): no fallback sentence.
    assert not any(p.is_displayed() for p in
                   browser.find_elements(By.CSS_SELECTOR, ".chart-fallback"))
    assert first["index"] + 1 == second["index"]


def test_phone_width_and_keyboard(make_node, phone):
    node = make_node()
    #  A phone held upright, whatever the window's minimum width.
    phone.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                          {"width": 360, "height": 740, "deviceScaleFactor": 1, "mobile": True})
    open_page(phone, node)
    until(phone, lambda: text_of(phone, "network-summary").startswith("No peers"),
          "the network view")
    until(phone, lambda: "latest" in text_of(phone, "chart-mempool-latest"), "a heartbeat")
    assert phone.execute_script("return innerWidth") == 360
    assert phone.execute_script("return document.documentElement.scrollWidth") <= 360
    #  The keyboard reaches each chart's values and the peers table's box.
    reached = []
    #  Past the shell's header (title, four views, the search box).
    for _ in range(20):
        ActionChains(phone).send_keys(Keys.TAB).perform()
        active = phone.switch_to.active_element
        reached.append(active.tag_name + ":" + (active.get_attribute("aria-label") or active.text))
    summaries = [r for r in reached if r.startswith("summary:")]
    assert len(set(summaries)) == 4, reached
    assert "div:Peers table" in reached, reached
    #  Enter opens a chart's values.
    first = phone.find_element(By.CSS_SELECTOR, ".chart summary")
    first.send_keys(Keys.ENTER)
    assert phone.find_element(By.CSS_SELECTOR, ".chart details").get_attribute("open") is not None
    assert phone.execute_script("return document.documentElement.scrollWidth") <= 360


def event_streams(node):
    """The gateway's open event streams (GET /metrics)."""
    for line in node.get("/metrics").text.splitlines():
        if line.startswith(("chainbus_event_streams ", "chainbus_event_streams{")):
            return int(float(line.split()[1]))
    raise AssertionError("no chainbus_event_streams in /metrics")


def test_many_tabs_share_one_stream(make_node, browser):
    """A browser opens at most 6 connections to a host: eight tabs of the
    dashboard each show their view and are live, on ONE stream (the
    shared worker's); a tab that leaves and comes back changes nothing."""
    node = make_node()
    first = browser.current_window_handle
    tabs = []
    try:
        for n in range(8):
            if n:
                browser.switch_to.new_window("tab")
            tabs.append(browser.current_window_handle)
            browser.get(node.url + ("/#/network" if n % 2 else "/#/"))
            until(browser, lambda: live(browser) == "live"
                  and browser.execute_script("return document.body.dataset.view"),
                  "tab %d shown and live" % (n + 1))
        wait_for(lambda: event_streams(node) == 1, 10, "one stream for eight tabs")
        #  A block reaches every tab.
        block = node.mine()
        for handle in tabs:
            browser.switch_to.window(handle)
            browser.get(node.url + "/#/network")
            until(browser, lambda: at_height(browser, block["index"]), "the block in a tab")
        #  A tab that goes elsewhere and comes back.
        browser.get("about:blank")
        browser.back()
        until(browser, lambda: live(browser) == "live", "the tab live again")
        assert event_streams(node) == 1
    finally:
        for handle in tabs:
            if handle != first:
                browser.switch_to.window(handle)
                browser.close()
        browser.switch_to.window(first)
