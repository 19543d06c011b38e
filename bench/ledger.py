#!/usr/bin/env python3
"""chainbus ledger benchmarks: signed transactions and history lookups.

  1. signed: a node with --require-signatures 1 takes pre-signed
     transactions (bench/cbus_bench_signed makes them) through
     POST /transactions/new with wrk (keep-alive, --connections), --runs
     times on a fresh node; the median rate is printed beside libsodium's
     own Ed25519 verifications per second on one core, measured before
     each run and after the last (median). The mempool verifies every
     signature on one thread ("mempool-verify"), so one core is used for
     verification and the ratio is the share of that ceiling reached; how
     busy that thread was is printed with each run, and how long one
     GET /mine of the oldest 10,000 of them took afterwards.
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
    """Run wrk; returns (completed requests, non-2xx answers, seconds, raw output)."""
    done = subprocess.run(["wrk", "-t2", "-c%d" % connections, "-d%ds" % seconds,
                           "--timeout", "10s", "-s", script, url],
                          capture_output=True, text=True, env=env, timeout=seconds + 120)
    completed, failed, seconds_run = 0, 0, None
    for line in done.stdout.splitlines():
        if " requests in " in line:
            completed = int(line.split()[0])
            value = line.split(" requests in ")[1].split(",")[0]
            seconds_run = float(value[:-2]) / 1000 if value.endswith("ms") else float(value[:-1])
        if line.strip().startswith("Non-2xx or 3xx responses:"):
            failed = int(line.split(":")[1])
    return completed, failed, seconds_run, done.stdout


def thread_cpu_s(pid, name):
    """CPU seconds (user + system) used so far by pid's thread called name."""
    hz = os.sysconf("SC_CLK_TCK")
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                if f.read().strip() != name:
                    continue
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / hz
        except OSError:
            continue
    raise RuntimeError("no thread %s in process %d" % (name, pid))


def ceiling():
    """libsodium's Ed25519 verifications per second on one core, now."""
    done = subprocess.run([os.path.join(bin_dir(), "cbus_bench_signed"), "--ceiling"],
                          capture_output=True, text=True, check=True)
    return float(done.stdout.split("=")[1])


def signed_run(lines, count, connections, seconds):
    """One HTTP run on a fresh node; the figures of that run."""
    node = Node(extra_args=["--require-signatures", "1", "--max-pending", str(count + 1000)])
    try:
        node.start()
        mempool = node.service_pids("mempool")[0]
        before = node.mempool_size()
        cpu_before = thread_cpu_s(mempool, "mempool-verify")
        env = dict(os.environ, CHAINBUS_SIGNED=lines, CHAINBUS_THREADS="2")
        completed, failed, run_s, raw = wrk(node.url + "/transactions/new",
                                            os.path.join(HERE, "post_signed.lua"),
                                            connections, seconds, env)
        verifier_s = thread_cpu_s(mempool, "mempool-verify") - cpu_before
        if not run_s:
            raise RuntimeError("wrk printed no summary:\n" + raw)
        # Accepted: new in the mempool, and answered 2xx within the run.
        added = node.mempool_size() - before
        accepted = min(added, completed - failed)
        # Then one block of the oldest of them: GET /mine builds it, and the
        # chainstore verifies every signature (on every CPU) before it
        # connects it.
        started = time.monotonic()
        block = node.mine()
        mine_s = time.monotonic() - started
        return {
            "seconds": run_s, "answered": completed, "non_2xx": failed,
            "added_to_mempool": added,
            "signed_per_s": round(accepted / run_s),
            "verifier_thread_busy": round(verifier_s / run_s, 2),
            "mine_signed_block_s": round(mine_s, 3),
            "mine_signed_block_txs": len(block["transactions"]),
        }
    finally:
        node.close()


def bench_signed(count, connections, seconds, runs):
    folder = tempfile.mkdtemp(prefix="cbsig", dir="/tmp")
    lines = os.path.join(folder, "signed.txt")
    subprocess.run([os.path.join(bin_dir(), "cbus_bench_signed"), str(count), lines],
                   capture_output=True, text=True, check=True)
    try:
        # Each run is a fresh node, so the same transactions are new to it;
        # the ceiling is measured before each run and after the last.
        ceilings, results = [ceiling()], []
        for run in range(runs):
            results.append(signed_run(lines, count, connections, seconds))
            ceilings.append(ceiling())
            log("signed run %d" % (run + 1), results[-1], "ceiling", round(ceilings[-1]))
        rate = statistics.median(r["signed_per_s"] for r in results)
        verify = statistics.median(ceilings)
        figures = {
            "connections": connections, "runs": results,
            "signed_per_s_median": round(rate),
            "ed25519_verify_per_s_one_core_median": round(verify),
            "ed25519_verify_per_s_one_core_all": [round(c) for c in ceilings],
            # One thread verifies, so one core is used for verification.
            "share_of_ceiling": round(rate / verify, 3),
        }
        log("signed", figures)
        return figures
    finally:
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
    parser.add_argument("--runs", type=int, default=3, help="signed runs; the median is kept")
    parser.add_argument("--txs", type=int, default=1000000, help="transactions in the big chain")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--out", default=os.path.join(REPO, "build", "bench-ledger-last.json"))
    args = parser.parse_args()
    results = {}
    if args.only in (None, "signed"):
        results["signed"] = bench_signed(args.signed, args.connections, args.seconds,
                                         args.runs)
    if args.only in (None, "history"):
        results["history"] = bench_history(args.txs, args.queries)
    print(json.dumps(results, indent=2))
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
