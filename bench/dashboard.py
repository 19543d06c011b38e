#!/usr/bin/env python3
"""The dashboard on a 10,000-transaction block, in Chromium
(docs/performance.md, "Explorer routes on a 10,000-transaction block",
the page part).

Measures, in one run, on one node with one block of 10,000 transactions:
  1. opening the block's view (#/block/<h>) from the home view: from the
     address change until its first page of transactions is shown (the
     page's own performance mark), median and worst of --rounds, against
     the issue's ceiling of 1 s; and the next page (a click on "Next 50");
  2. beside it, in the same browser: the one request that view makes
     (GET /blocks/<h>/transactions?limit=50, fetched and parsed), and what
     the old page would have had to fetch to show that block
     (GET /blocks/<h>, fetched and parsed);
  3. a height change seen by the home view: the requests and bytes the page
     makes for one new block (resource timing: transferSize, headers
     included) against the old page's ten GET /blocks/<h> (measured here
     with the 10,000-transaction block among the ten latest).
Prints a Markdown table; no figure is asserted.
"""

import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "functional"))

import requests  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from chainbus_browser import _chromium  # noqa: E402
from chainbus_node import Node, tx_body  # noqa: E402
from test_dashboard_explorer import submit_many  # noqa: E402

CEILING_MS = 1000


def wait_view(driver, name, timeout=60):
    WebDriverWait(driver, timeout).until(
        lambda d: d.execute_script("return document.body.dataset.view") == name)


def open_view(driver, route, name):
    """ms from setting the address to the view's mark chainbus:shown:<name>."""
    driver.execute_script("""
        performance.clearMarks("chainbus:shown:" + arguments[1]);
        window.benchStart = performance.now();
        location.hash = arguments[0];""", route, name)
    wait_view(driver, name)
    return driver.execute_script("""
        const mark = performance.getEntriesByName("chainbus:shown:" + arguments[0]).pop();
        return mark.startTime - window.benchStart;""", name)


def fetch_ms(driver, path):
    """ms to fetch and parse path in the page, and the body's bytes."""
    return driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const start = performance.now();
        fetch(arguments[0], {cache: "no-store"}).then((r) => r.text()).then((text) => {
          JSON.parse(text);
          done([performance.now() - start, text.length]);
        });""", path)


def resources(driver):
    return driver.execute_script("""
        return performance.getEntriesByType("resource")
          .filter((e) => !e.name.endsWith("/events") && !e.name.includes("/events?"))
          .map((e) => [e.name, e.transferSize]);""")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--txs", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    node = Node()
    node.start()
    driver = None
    try:
        started = time.monotonic()
        submit_many(node, [tx_body(n, users=["bench-%d" % n, "bench-all"])
                           for n in range(args.txs)])
        block = node.mine()
        print("# %d transactions submitted and mined in %.1f s"
              % (len(block["transactions"]), time.monotonic() - started), file=sys.stderr)
        height = block["index"]
        route = "#/block/%d" % height

        driver = _chromium(1280, 1024)
        driver.set_script_timeout(60)
        driver.get(node.url + "/")
        wait_view(driver, "home")

        opens, nexts = [], []
        for _ in range(args.rounds):
            opens.append(open_view(driver, route, "block"))
            nexts.append(open_view(driver, route + "?start=50", "block"))
            open_view(driver, "#/", "home")
        page = [fetch_ms(driver, "/blocks/%d/transactions?start=0&limit=50" % height)
                for _ in range(args.rounds)]
        whole = [fetch_ms(driver, "/blocks/%d" % height) for _ in range(args.rounds)]

        #  Height changes seen by the home view (it is shown now), when the
        #  page is live (js/live.js and GET /events).
        live = driver.execute_script("return document.documentElement.dataset.live") == "live"
        for _ in range(3 if live else 0):
            node.mine()
        time.sleep(1)
        before = len(resources(driver))
        changes = 5 if live else 0
        for _ in range(changes):
            tip = node.mine()["index"]
            WebDriverWait(driver, 60).until(lambda d: d.execute_script(
                "return !!document.querySelector('#blocks tr[data-height=\"%d\"]')" % tip))
        time.sleep(1)
        added = resources(driver)[before:]
        page_bytes = sum(size for _, size in added) / max(changes, 1)
        page_requests = len(added) / max(changes, 1)
        tip = node.height()
        old_bytes = 0
        with requests.Session() as s:
            #  The old page after a height change: the ten latest, whole
            #  (with the big block among them: it was mined 8 blocks ago).
            for h in range(tip, tip - 10, -1):
                old_bytes += len(s.get(node.url + "/blocks/%d" % h, timeout=60).content)

        med = statistics.median
        print("| what | figure |")
        print("|---|---|")
        print("| open #/block/<h> (10,000 txs) until its first 50 are shown, median / worst "
              "of %d | %.0f / %.0f ms (ceiling %d ms: %.2f of it) |"
              % (args.rounds, med(opens), max(opens), CEILING_MS, med(opens) / CEILING_MS))
        print("| next page (#/block/<h>?start=50), median / worst | %.0f / %.0f ms |"
              % (med(nexts), max(nexts)))
        print("| its one request, GET /blocks/<h>/transactions?limit=50, fetched + parsed "
              "in the page | %.1f ms, %d bytes |" % (med(p[0] for p in page), page[0][1]))
        print("| the old page's GET /blocks/<h>, whole, fetched + parsed in the page | "
              "%.1f ms, %d bytes |" % (med(w[0] for w in whole), whole[0][1]))
        print("| home view, one height change: requests / bytes (resource timing, "
              "event stream not counted) | %s |" % ("%.1f / %.0f bytes" % (
                  page_requests, page_bytes) if live else "n/a: the page is not live"))
        print("| the old page, one height change: ten GET /blocks/<h> | 10 / %d bytes "
              "(%s) |" % (old_bytes, "%.0f times more" % (old_bytes / max(page_bytes, 1))
                                  if live and page_bytes else "no ratio"))
        print("# requests per height change: %s" % sorted(set(
            name.split("/", 3)[-1] for name, _ in added)), file=sys.stderr)
    finally:
        if driver is not None:
            driver.quit()
        node.close()


if __name__ == "__main__":
    main()
