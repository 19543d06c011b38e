#!/usr/bin/env python3
"""chainbus peer-to-peer benchmarks: figures for docs/performance.md.

  1. sync: a fresh node syncs a chain of --blocks blocks of --txs
     transactions each from one peer on the same machine: blocks/s and
     transactions/s, from registration to the same tip;
  2. propagation: four nodes linked to each other; a transaction accepted
     at one is pending at the other three, and a block mined at one is
     connected at the other three, after how long (median and max over
     --rounds rounds, each node polled on its own thread).

Real processes, LevelDB under /tmp, loopback. Prints a table and writes
the figures as JSON (--out); --compare FILE prints an earlier run beside.
No figure is asserted: a benchmark reports.
"""

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "functional"))

from chainbus_node import Node, free_port, tx_body, wait_for  # noqa: E402


def log(*args):
    print("bench:", *args, file=sys.stderr, flush=True)


def fill_mempool(node, count):
    """Post count distinct transactions with wrk (bench/post_tx.lua)."""
    script = os.path.join(HERE, "post_tx.lua")
    before = node.mempool_size()
    while node.mempool_size() < before + count:
        subprocess.run(["wrk", "-t2", "-c64", "-d2s", "-s", script,
                        node.url + "/transactions/new"], capture_output=True, timeout=120)
    return node.mempool_size() - before


def bench_sync(blocks, txs):
    source = Node(port=free_port(), extra_args=["--block-max-txs", str(txs),
                                                  "--max-pending", str(blocks * txs + 100000)])
    fresh = None
    try:
        source.start()
        log("building %d blocks of %d transactions" % (blocks, txs))
        started = time.monotonic()
        total_txs = 0
        while source.height() < blocks:
            want = min(blocks - source.height(), 1000)
            fill_mempool(source, want * txs)
            for _ in range(want):
                total_txs += len(source.mine()["transactions"])
            log("  height %d" % source.height())
        build_s = time.monotonic() - started
        tip = source.status()["tip"]
        fresh = Node(port=free_port())
        fresh.start()
        started = time.monotonic()
        r = fresh.post("/nodes/register", {"nodes": [source.url]})
        assert r.status_code == 201, r.text
        wait_for(lambda: fresh.status()["tip"] == tip, 3600, "the sync", interval=0.05)
        seconds = time.monotonic() - started
        figures = {
            "blocks": blocks, "txs_per_block": txs, "txs": total_txs,
            "build_s": round(build_s, 1),
            "sync_s": round(seconds, 2),
            "sync_blocks_per_s": round(blocks / seconds, 1),
            "sync_txs_per_s": round(total_txs / seconds),
        }
        log("sync", figures)
        return figures
    finally:
        for node in (fresh, source):
            if node:
                node.close()


def bench_propagation(rounds):
    nodes = [Node(port=free_port()) for _ in range(4)]
    try:
        for node in nodes:
            node.start(wait=False)
        for node in nodes:
            node.wait_ready()
        for node in nodes:
            others = [n.url for n in nodes if n is not node]
            assert node.post("/nodes/register", {"nodes": others}).status_code == 201
        for node in nodes:
            wait_for(lambda: node.status()["peers_linked"] >= 3, 60, "links")
        delays, tx_delays = [], []
        for round_ in range(rounds):
            miner = nodes[round_ % 4]
            others = [n for n in nodes if n is not miner]
            seen = {}

            # A transaction accepted at one node: pending at the other three.
            def watch_tx(node, txid):
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    if node.tx(txid).status_code == 200:
                        seen[node.port] = time.monotonic()
                        return
                    time.sleep(0.001)

            txid, _ = miner.submit(tx_body(data={"round": round_}))
            accepted_at = time.monotonic()
            threads = [threading.Thread(target=watch_tx, args=(n, txid)) for n in others]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            if len(seen) == 3:
                tx_delays.append(max(seen.values()) - accepted_at)
            seen = {}

            def watch(node, target_height):
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    if node.status()["height"] >= target_height:
                        seen[node.port] = time.monotonic()
                        return
                    time.sleep(0.001)

            target = miner.height() + 1
            threads = [threading.Thread(target=watch, args=(n, target)) for n in others]
            for t in threads:
                t.start()
            block = miner.mine()
            mined_at = time.monotonic()
            for t in threads:
                t.join()
            if len(seen) == 3:
                # From the miner's answer (block connected there) to the
                # last of the three.
                delays.append(max(seen.values()) - mined_at)
            for n in nodes:
                wait_for(lambda: n.status()["tip"] == block["hash"], 30, "agreement")
        figures = {
            "rounds": rounds, "complete": len(delays),
            "block_median_ms": round(statistics.median(delays) * 1000, 1) if delays else None,
            "block_max_ms": round(max(delays) * 1000, 1) if delays else None,
            "tx_median_ms": round(statistics.median(tx_delays) * 1000, 1) if tx_delays else None,
            "tx_max_ms": round(max(tx_delays) * 1000, 1) if tx_delays else None,
        }
        log("propagation", figures)
        return figures
    finally:
        for node in nodes:
            node.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--blocks", type=int, default=10000)
    parser.add_argument("--txs", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--only", choices=["sync", "propagation"])
    parser.add_argument("--out", default=os.path.join(REPO, "build", "bench-p2p-last.json"))
    parser.add_argument("--compare")
    args = parser.parse_args()
    results = {"when": datetime.datetime.now().isoformat(timespec="seconds")}
    if args.only in (None, "propagation"):
        results["propagation"] = bench_propagation(args.rounds)
    if args.only in (None, "sync"):
        results["sync"] = bench_sync(args.blocks, args.txs)
    old = json.load(open(args.compare)) if args.compare else {}
    print("| figure | this run | earlier |")
    print("|---|---:|---:|")
    for section in ("sync", "propagation"):
        for key, value in results.get(section, {}).items():
            print("| %s %s | %s | %s |" % (section, key, value,
                                           old.get(section, {}).get(key, "")))
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
