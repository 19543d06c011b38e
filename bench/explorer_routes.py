#!/usr/bin/env python3
"""Explorer routes on a 10,000-transaction block (docs/performance.md
"Explorer routes"): on one node (real processes, LevelDB in /tmp,
loopback, easy proof of work), 10,000 transactions are submitted (8
threads, keep-alive) and mined into one block; then, each --runs times
over one kept-alive connection:
  - GET /blocks/<h>/transactions?start=5000&limit=50 (a page), against
    GET /blocks/<h> (the whole block, the ceiling of the same run: what
    showing the block cost before);
  - GET /blocks?limit=10 (summaries), against ten GET /blocks/<h> of the
    latest heights (what the old page fetched on each height change):
    time and bytes.
Prints medians and ratios as JSON. Nothing is asserted.
"""

import json
import os
import statistics
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "functional"))

import requests  # noqa: E402

from chainbus_node import Node, tx_body  # noqa: E402


def submit_many(node, count, threads=8):
    def worker(part):
        with requests.Session() as session:
            for n in range(part, count, threads):
                r = session.post(node.url + "/transactions/new",
                                 json=tx_body(n=n, users=["bench", "u%d" % (n % 50)]), timeout=30)
                assert r.status_code == 201, r.text
    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


def timed(session, urls, runs):
    """Median seconds and bytes of fetching all of urls once."""
    times, size = [], 0
    for _ in range(runs):
        started = time.perf_counter()
        size = 0
        for url in urls:
            r = session.get(url, timeout=60)
            assert r.status_code == 200, r.text[:200]
            size += len(r.content)
        times.append(time.perf_counter() - started)
    return statistics.median(times), size


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    node = Node()
    node.start()
    try:
        started = time.monotonic()
        submit_many(node, 10000)
        submit_s = time.monotonic() - started
        mined = node.get("/mine", timeout=120).json()
        height = mined["index"]
        for n in range(9):                       # ten latest blocks, one of them big
            node.submit(tx_body(n=100000 + n))
            node.mine()
        base = node.url
        with requests.Session() as session:
            page_s, page_b = timed(session, [base + "/blocks/%d/transactions?start=5000&limit=50"
                                             % height], runs)
            whole_s, whole_b = timed(session, [base + "/blocks/%d" % height], max(3, runs // 4))
            tip = node.height()
            list_s, list_b = timed(session, [base + "/blocks?limit=10"], runs)
            ten_s, ten_b = timed(session, [base + "/blocks/%d" % h
                                           for h in range(tip, tip - 10, -1)], max(3, runs // 4))
        figures = {
            "submit_10000_s": round(submit_s, 2),
            "page_of_50_ms": round(page_s * 1000, 2), "page_bytes": page_b,
            "whole_block_ms": round(whole_s * 1000, 2), "whole_block_bytes": whole_b,
            "page_vs_whole_time": round(page_s / whole_s, 4),
            "blocks_limit10_ms": round(list_s * 1000, 2), "blocks_limit10_bytes": list_b,
            "ten_blocks_ms": round(ten_s * 1000, 2), "ten_blocks_bytes": ten_b,
            "list_vs_ten_bytes": round(list_b / ten_b, 5),
        }
        print(json.dumps(figures, indent=1))
    finally:
        node.close()


if __name__ == "__main__":
    main()
