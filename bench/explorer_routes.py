#!/usr/bin/env python3
"""Explorer routes (docs/performance.md "Explorer routes").

Part "block": on one node (real processes, LevelDB in /tmp, loopback, easy
proof of work), 10,000 transactions are submitted (8 threads, keep-alive)
and mined into one block; then, each `runs` times over one kept-alive
connection:
  - GET /blocks/<h>/transactions?start=5000&limit=50 (a page), against
    GET /blocks/<h> (the whole block, the ceiling of the same run: what
    showing the block cost before);
  - GET /blocks?limit=10 (summaries), against ten GET /blocks/<h> of the
    latest heights (what the old page fetched on each height change):
    time and bytes;
  - GET /transactions?user=u7&limit=50 (a page of one user's history,
    its 50 items all in the 10,000-transaction block), against the whole
    block.
Part "summaries" (summary records): on another node with 100 blocks of
about 1 MB (10 transactions of 100 KB each), GET /blocks?limit=100 right
after a restart (the chainstore's summary table empty), --restarts times:
  - with the summary records (what a store written by this version has);
  - with them deleted before the start (plyvel: a store from before them;
    the chainstore reads each block whole, as before the records, then
    writes its record);
  - warm (the same request again, from the in-memory table): the ceiling.
The operating system's page cache is not dropped (the machine is shared):
"cold" is the chainstore's table and LevelDB's block cache, not the disk.
Prints medians and ratios as JSON. Nothing is asserted.

Usage: bench/explorer_routes.py [runs] [--only block|summaries] [--restarts N]
"""

import argparse
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


def block_figures(runs):
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
            #  u7 is named by every 50th transaction: 200 in the big block.
            hist_s, hist_b = timed(session, [base + "/transactions?user=u7&limit=50"],
                                   max(3, runs // 4))
        return {
            "submit_10000_s": round(submit_s, 2),
            "page_of_50_ms": round(page_s * 1000, 2), "page_bytes": page_b,
            "whole_block_ms": round(whole_s * 1000, 2), "whole_block_bytes": whole_b,
            "page_vs_whole_time": round(page_s / whole_s, 4),
            "blocks_limit10_ms": round(list_s * 1000, 2), "blocks_limit10_bytes": list_b,
            "ten_blocks_ms": round(ten_s * 1000, 2), "ten_blocks_bytes": ten_b,
            "list_vs_ten_bytes": round(list_b / ten_b, 5),
            "history_page_of_50_same_block_ms": round(hist_s * 1000, 2),
            "history_page_bytes": hist_b,
            "history_page_vs_whole_block_time": round(hist_s / whole_s, 3),
        }
    finally:
        node.close()


def delete_summary_records(node):
    """Make the stopped node's store one from before summary records."""
    import plyvel
    db = plyvel.DB(os.path.join(node.data_dir, "chain"))
    try:
        keys = [key for key in db.iterator(prefix=b"C", include_value=False)]
        with db.write_batch() as batch:
            for key in keys:
                batch.delete(key)
    finally:
        db.close()
    return len(keys)


def first_list_after_start(node, query):
    """Start the stopped node; the time of its first GET query, and the answer."""
    node.start()
    with requests.Session() as session:
        started = time.perf_counter()
        r = session.get(node.url + query, timeout=120)
        took = time.perf_counter() - started
        assert r.status_code == 200 and len(r.json()["blocks"]) == 100, r.text[:200]
    return took, r.json()


def summary_figures(restarts):
    node = Node()
    node.start()
    query = "/blocks?limit=100"
    try:
        data = "x" * 100000
        started = time.monotonic()
        with requests.Session() as session:
            for b in range(100):
                for t in range(10):
                    r = session.post(node.url + "/transactions/new",
                                     json=tx_body(n=b * 10 + t, data=data), timeout=30)
                    assert r.status_code == 201, r.text
                node.mine()
        build_s = time.monotonic() - started
        sizes = [blk["size"] for blk in node.get(query).json()["blocks"]]
        with_records, without, answers, deleted = [], [], [], 0
        for _ in range(restarts):
            node.stop()
            took, answer = first_list_after_start(node, query)
            with_records.append(took)
            answers.append(answer)
            node.stop()
            deleted = delete_summary_records(node)
            took, answer = first_list_after_start(node, query)
            without.append(took)
            answers.append(answer)
        with requests.Session() as session:
            warm_s, _ = timed(session, [node.url + query], 20)
        assert all(a == answers[0] for a in answers), "the answers differ"
        cold_s, old_s = statistics.median(with_records), statistics.median(without)
        return {
            "chain_build_s": round(build_s, 1),
            "block_size_median_bytes": int(statistics.median(sizes)),
            "records_deleted_per_round": deleted,
            "blocks_limit100_after_restart_with_records_ms": round(cold_s * 1000, 2),
            "blocks_limit100_after_restart_records_deleted_ms": round(old_s * 1000, 2),
            "blocks_limit100_warm_ms": round(warm_s * 1000, 2),
            "deleted_vs_records": round(old_s / cold_s, 2),
            "records_vs_warm": round(cold_s / warm_s, 2),
            "after_restart_ms_each": {"with_records": [round(t * 1000, 1) for t in with_records],
                                      "records_deleted": [round(t * 1000, 1) for t in without]},
        }
    finally:
        node.close()


def main():
    parser = argparse.ArgumentParser(description="Explorer routes: figures (see the module's doc)")
    parser.add_argument("runs", nargs="?", type=int, default=20)
    parser.add_argument("--only", choices=("block", "summaries"))
    parser.add_argument("--restarts", type=int, default=5)
    args = parser.parse_args()
    figures = {}
    if args.only != "summaries":
        figures.update(block_figures(args.runs))
    if args.only != "block":
        figures.update(summary_figures(args.restarts))
    print(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
