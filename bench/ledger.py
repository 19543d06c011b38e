#!/usr/bin/env python3
"""chainbus ledger benchmarks: signed transactions and history lookups.

  1. signed: a node with --require-signatures 1 takes pre-signed
     transactions (bench/cbus_bench_signed makes them) through
     POST /transactions/new with wrk (keep-alive, --connections); printed
     beside libsodium's own Ed25519 verifications per second on one core,
     measured in the same run. The mempool verifies every signature on
     one core, so the ratio is the share of that ceiling reached.
  2. history: GET /transactions?user=... page latency (median of
     --queries) on a small chain and on one of --txs transactions (about
     half of them naming the queried user), first page and a deep page:
     the time per page must not grow with the chain.

Real processes, LevelDB under /tmp, loopback; figures to stdout and JSON
(--out). No figure is asserted.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "functional"))

from chainbus_node import Node, bin_dir  # noqa: E402


def log(*args):
    print("bench:", *args, file=sys.stderr, flush=True)


def wrk(url, script, connections, seconds, env):
    done = subprocess.run(["wrk", "-t2", "-c%d" % connections, "-d%ds" % seconds,
                           "--timeout", "10s", "-s", script, url],
                          capture_output=True, text=True, env=env, timeout=seconds + 120)
    statuses = {}
    for line in done.stdout.splitlines():
        if line.startswith("statuses"):
            for part in line.split()[1:]:
                code, count = part.split("=")
                statuses[int(code)] = int(count)
    seconds_run = None
    for line in done.stdout.splitlines():
        if " requests in " in line:
            value = line.split(" requests in ")[1].split(",")[0]
            seconds_run = float(value[:-2]) / 1000 if value.endswith("ms") else float(value[:-1])
    return statuses, seconds_run, done.stdout


def bench_signed(count, connections, seconds):
    folder = tempfile.mkdtemp(prefix="cbsig", dir="/tmp")
    lines = os.path.join(folder, "signed.txt")
    made = subprocess.run([os.path.join(bin_dir(), "cbus_bench_signed"), str(count), lines],
                          capture_output=True, text=True, check=True)
    ceiling = dict(line.split("=") for line in made.stdout.split())
    node = Node(extra_args=["--require-signatures", "1", "--max-pending", str(count + 1000)])
    try:
        node.start()
        env = dict(os.environ, CHAINBUS_SIGNED=lines, CHAINBUS_THREADS="2")
        statuses, run_s, raw = wrk(node.url + "/transactions/new",
                                   os.path.join(HERE, "post_signed.lua"), connections, seconds, env)
        accepted = statuses.get(201, 0)
        rate = accepted / run_s if run_s else 0
        verify = float(ceiling["verify_per_s"])
        figures = {
            "connections": connections, "seconds": run_s,
            "accepted_201": accepted, "other_statuses": {k: v for k, v in statuses.items() if k != 201},
            "signed_per_s": round(rate),
            "ed25519_verify_per_s_one_core": round(verify),
            "share_of_ceiling": round(rate / verify, 3),
            "mempool_size_after": node.mempool_size(),
        }
        log("signed", figures)
        return figures
    finally:
        node.close()
        subprocess.run(["rm", "-rf", folder])


def page_latency(node, queries, **params):
    times = []
    for _ in range(queries):
        started = time.monotonic()
        r = node.get("/transactions", params=params)
        times.append(time.monotonic() - started)
        assert r.status_code == 200, r.text
    return round(statistics.median(times) * 1000, 2)


def history_figures(node, queries):
    first = node.get("/transactions", params={"user": "bench-1", "limit": 20}).json()
    # A deep page: the cursor of an entry about half-way down the chain.
    height = node.height()
    deep = "%d:0" % max(1, height // 2)
    return {
        "height": height,
        "first_page_ms": page_latency(node, queries, user="bench-1", limit=20),
        "deep_page_ms": page_latency(node, queries, user="bench-1", limit=20, before=deep),
        "entries_on_first_page": len(first["transactions"]),
    }


def fill_and_mine(node, count):
    """Post about count distinct transactions (wrk), mine them all;
    returns how many were mined."""
    before = node.mempool_size()
    while node.mempool_size() < before + count:
        subprocess.run(["wrk", "-t2", "-c64", "-d2s", "-s", os.path.join(HERE, "post_tx.lua"),
                        node.url + "/transactions/new"], capture_output=True, timeout=120)
    mined = node.mempool_size()
    while node.mempool_size() > 0:
        node.mine()
    return mined


def bench_history(total_txs, queries):
    node = Node(extra_args=["--block-max-txs", "100", "--max-pending", "300000"])
    try:
        node.start()
        results = {}
        mined = fill_and_mine(node, 1000)
        results["small"] = dict(history_figures(node, queries), txs=mined)
        log("history small", results["small"])
        while mined < total_txs:
            mined += fill_and_mine(node, min(200000, total_txs - mined))
            log("history: %d transactions, height %d" % (mined, node.height()))
        results["large"] = dict(history_figures(node, queries), txs=mined)
        log("history large", results["large"])
        return results
    finally:
        node.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["signed", "history"])
    parser.add_argument("--signed", type=int, default=400000, help="signed transactions prepared")
    parser.add_argument("--connections", type=int, default=256)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--txs", type=int, default=1000000, help="transactions in the big chain")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--out", default=os.path.join(REPO, "build", "bench-ledger-last.json"))
    args = parser.parse_args()
    results = {}
    if args.only in (None, "signed"):
        results["signed"] = bench_signed(args.signed, args.connections, args.seconds)
    if args.only in (None, "history"):
        results["history"] = bench_history(args.txs, args.queries)
    print(json.dumps(results, indent=2))
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
