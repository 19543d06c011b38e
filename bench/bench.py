#!/usr/bin/env python3
"""chainbus benchmarks: first figures for docs/performance.md.

Measures, each on a fresh node of its own (real processes, LevelDB in
/tmp, loopback):
  1. reference ceilings in the same run: wrk against the gateway alone
     (GET of an unknown route: 404 without touching the bus) and GET /status
     (a round trip to every service);
  2. POST /transactions/new sustained rate: wrk, keep-alive, 64 connections,
     each request a distinct seed transaction, 201 = durable acknowledgement;
     the mempool size afterwards must grow by exactly the number of 201s;
  3. GET /mine latency: median over the blocks of the 10,000-block chain
     (easy proof of work, one or two transactions each), and over a few
     blocks at the default difficulty;
  4. GET /chain on a 10,000-block chain with transactions: MB/s, blocks/s,
     and the gateway's peak RSS (VmHWM) before and after.
Prints a table; writes the figures as JSON (--out); --compare FILE prints
them beside an earlier run's. No figure is asserted: a benchmark reports.
"""

import argparse
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "functional"))

import chainbus_node  # noqa: E402
from chainbus_node import Node, proc_status_kb, tx_body  # noqa: E402


def log(*args):
    print("bench:", *args, file=sys.stderr, flush=True)


def wrk(url, threads, connections, duration, script=None):
    """Run wrk; return its figures as a dict (raises if wrk failed)."""
    args = ["wrk", "-t%d" % threads, "-c%d" % connections, "-d%ds" % duration,
            "--latency", "--timeout", "10s"]
    if script:
        args += ["-s", script]
    done = subprocess.run(args + [url], capture_output=True, text=True,
                          timeout=duration + 120)
    out = done.stdout
    if done.returncode != 0 or "Requests/sec" not in out:
        raise RuntimeError("wrk failed: %s %s" % (out, done.stderr))
    figures = {"raw": out}
    figures["req_per_s"] = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    m = re.search(r"(\d+) requests in ([\d.]+)(m?s)", out)
    figures["requests"] = int(m.group(1))
    figures["seconds"] = float(m.group(2)) * (0.001 if m.group(3) == "ms" else 1)
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    figures["non_2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    figures["socket_errors"] = sum(map(int, m.groups())) if m else 0
    m = re.search(r"^\s+50%\s+([\d.]+)(us|ms|s)", out, re.M)
    if m:
        scale = {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]
        figures["p50_ms"] = float(m.group(1)) * scale
    m = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)", out, re.M)
    if m:
        scale = {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]
        figures["p99_ms"] = float(m.group(1)) * scale
    m = re.search(r"^statuses (.*)$", out, re.M)
    if m:
        figures["statuses"] = {int(k): int(v) for k, v in
                               (p.split("=") for p in m.group(1).split())}
    return figures


def build_info(bin_dir):
    info = {}
    cache = os.path.join(bin_dir, "..", "CMakeCache.txt")
    try:
        with open(cache) as f:
            for line in f:
                for key in ("CMAKE_BUILD_TYPE", "CHAINBUS_SANITIZE"):
                    if line.startswith(key + ":"):
                        info[key] = line.split("=", 1)[1].strip()
    except OSError:
        pass
    try:
        info["commit"] = subprocess.run(
            ["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        if dirty:
            info["commit"] += "+dirty"
    except OSError:
        pass
    return info


# ---------------------------------------------------------------- measures

def measure_http(args, results):
    node = Node(miners=0)
    try:
        node.start()
        log("ceiling: wrk GET /nope (gateway alone)")
        bare = wrk(node.url + "/nope", args.threads, args.connections, args.short)
        results["ceiling_404_req_s"] = bare["req_per_s"]
        log("ceiling: wrk GET /status (every service)")
        st = wrk(node.url + "/status", args.threads, args.connections, args.short)
        results["ceiling_status_req_s"] = st["req_per_s"]

        before = node.mempool_size()
        log("POST /transactions/new: wrk -t%d -c%d -d%ds" % (
            args.threads, args.connections, args.duration))
        post = wrk(node.url + "/transactions/new", args.threads, args.connections,
                   args.duration, os.path.join(HERE, "post_tx.lua"))
        statuses = post.get("statuses", {})
        created = statuses.get(201, 0)
        after = node.mempool_size()
        results.update({
            "post_req_s": post["req_per_s"],
            "post_201_per_s": created / post["seconds"],
            "post_201": created,
            "post_non_201": sum(n for s, n in statuses.items() if s != 201),
            "post_socket_errors": post["socket_errors"],
            "post_p50_ms": post.get("p50_ms"),
            "post_p99_ms": post.get("p99_ms"),
            "post_statuses": {str(k): v for k, v in statuses.items()},
            "post_mempool_growth": after - before,
        })
        #  wrk stops with up to one request in flight per connection: those
        #  may be stored without their 201 being counted. Fewer stored than
        #  acknowledged would be a lost acknowledged transaction.
        if not created <= after - before <= created + args.connections:
            log("WARNING: %d answers were 201 but the mempool grew by %d"
                % (created, after - before))
        if results["post_non_201"] or post["socket_errors"]:
            log("WARNING: non-201 answers %s, socket errors %d"
                % (statuses, post["socket_errors"]))
        node.assert_no_crash()
    finally:
        node.close()


def mine_latencies(node, blocks, txs_per_block, progress=False):
    """Mine `blocks` blocks, each after posting txs_per_block transactions;
    return the GET /mine latencies in ms."""
    times = []
    session = node.http
    started = time.monotonic()
    for b in range(blocks):
        for t in range(txs_per_block):
            r = session.post(node.url + "/transactions/new",
                             json=tx_body(data={"block": b, "tx": t}), timeout=60)
            assert r.status_code == 201, r.text
        t0 = time.perf_counter()
        r = session.get(node.url + "/mine", timeout=600)
        times.append((time.perf_counter() - t0) * 1000)
        assert r.status_code == 200, r.text
        if progress and (b + 1) % 1000 == 0:
            log("  %d blocks, %.0f s" % (b + 1, time.monotonic() - started))
    return times


def measure_chain(args, results):
    node = Node(miners=1)
    try:
        node.start()
        log("building a %d-block chain (2 transactions a block), timing each GET /mine"
            % args.blocks)
        t0 = time.monotonic()
        times = mine_latencies(node, args.blocks, 2, progress=True)
        results["chain_build_s"] = time.monotonic() - t0
        results["mine_easy_median_ms"] = statistics.median(times)
        results["mine_easy_p90_ms"] = sorted(times)[int(len(times) * 0.9)]
        results["mine_easy_samples"] = len(times)

        gateway = node.service_pids("gateway")[0]
        hwm_before = proc_status_kb(gateway, "VmHWM")
        height = node.height()
        log("GET /chain at height %d" % height)
        runs = []
        for _ in range(args.chain_gets):
            done = subprocess.run(
                ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{time_total}",
                 node.url + "/chain"], capture_output=True, text=True, timeout=600)
            code, size, secs = done.stdout.split()
            assert code == "200", done.stdout
            runs.append((int(size), float(secs)))
        size = runs[0][0]
        secs = statistics.median(s for _, s in runs)
        #  Four at once: memory must not grow with the number of readers
        #  times the chain size if the answer is streamed.
        threads = [threading.Thread(target=subprocess.run, args=(
            ["curl", "-s", "-o", "/dev/null", node.url + "/chain"],), kwargs={"timeout": 600})
            for _ in range(4)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        concurrent_s = time.monotonic() - t0
        hwm_after = proc_status_kb(gateway, "VmHWM")
        results.update({
            "chain_blocks": height + 1,
            "chain_bytes": size,
            "chain_get_s": secs,
            "chain_mb_s": size / secs / 1e6,
            "chain_blocks_s": (height + 1) / secs,
            "chain_4_concurrent_s": concurrent_s,
            "gateway_hwm_before_kb": hwm_before,
            "gateway_hwm_kb": hwm_after,
        })
        node.assert_no_crash()
    finally:
        node.close()


def measure_mine_default(args, results):
    node = Node(miners=1, pow_bits=None)
    try:
        node.start()
        log("GET /mine at the default difficulty, %d blocks" % args.mine_samples)
        times = mine_latencies(node, args.mine_samples, 1)
        results["mine_default_median_ms"] = statistics.median(times)
        results["mine_default_samples"] = len(times)
        node.assert_no_crash()
    finally:
        node.close()


# ----------------------------------------------------------------- report

ROWS = [
    ("ceiling: GET unknown route (gateway alone)", "ceiling_404_req_s", "req/s"),
    ("ceiling: GET /status (all services)", "ceiling_status_req_s", "req/s"),
    ("POST /transactions/new, all answers", "post_req_s", "req/s"),
    ("POST /transactions/new, durable 201s", "post_201_per_s", "tx/s"),
    ("POST answers other than 201", "post_non_201", "count"),
    ("POST socket errors", "post_socket_errors", "count"),
    ("POST latency p50", "post_p50_ms", "ms"),
    ("POST latency p99", "post_p99_ms", "ms"),
    ("mempool growth / 201s", "post_growth_ratio", "ratio"),
    ("GET /mine median, easy PoW (chain build)", "mine_easy_median_ms", "ms"),
    ("GET /mine p90, easy PoW", "mine_easy_p90_ms", "ms"),
    ("GET /mine median, default PoW 0x1f00ffff", "mine_default_median_ms", "ms"),
    ("GET /chain size", "chain_bytes", "bytes"),
    ("GET /chain throughput", "chain_mb_s", "MB/s"),
    ("GET /chain throughput", "chain_blocks_s", "blocks/s"),
    ("GET /chain x4 concurrent, wall", "chain_4_concurrent_s", "s"),
    ("gateway VmHWM before GET /chain", "gateway_hwm_before_kb", "kB"),
    ("gateway VmHWM after GET /chain", "gateway_hwm_kb", "kB"),
    ("10,000-block chain build", "chain_build_s", "s"),
]


def fmt(value):
    if value is None:
        return "-"
    if isinstance(value, float):
        return "%.3f" % value if abs(value) < 10 else "{:,.0f}".format(value)
    return "{:,}".format(value)


def report(results, previous=None):
    head = "| what | figure | unit |" + (" previous | ratio |" if previous else "")
    print(head)
    print("|---|---:|---|" + ("---:|---:|" if previous else ""))
    for label, key, unit in ROWS:
        if key not in results:
            continue
        line = "| %s | %s | %s |" % (label, fmt(results[key]), unit)
        if previous:
            old = previous.get(key)
            ratio = results[key] / old if old else None
            line += " %s | %s |" % (fmt(old), "%.2f" % ratio if ratio else "-")
        print(line)


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bin", help="binaries (default: build/bin)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--duration", type=int, default=10, help="POST run, seconds")
    p.add_argument("--short", type=int, default=5, help="ceiling runs, seconds")
    p.add_argument("--blocks", type=int, default=10000)
    p.add_argument("--chain-gets", type=int, default=3)
    p.add_argument("--mine-samples", type=int, default=11)
    p.add_argument("--only", choices=["http", "chain", "mine"], action="append",
                   help="run only these parts (repeatable)")
    p.add_argument("--out", help="write the figures as JSON here "
                   "(default: <build>/bench-last.json)")
    p.add_argument("--compare", help="a JSON file from an earlier run")
    args = p.parse_args()

    if args.bin:
        os.environ["CHAINBUS_BIN"] = os.path.abspath(args.bin)
    bin_dir = chainbus_node.bin_dir()
    info = build_info(bin_dir)
    if info.get("CHAINBUS_SANITIZE", "OFF").upper() in ("ON", "1", "TRUE"):
        log("WARNING: these are sanitizer binaries; figures are not representative")
    results = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "host": platform.node(), "cpus": os.cpu_count(), "bin": bin_dir, **info,
    }
    parts = args.only or ["http", "mine", "chain"]
    if "http" in parts:
        measure_http(args, results)
        if results.get("post_201"):
            results["post_growth_ratio"] = results["post_mempool_growth"] / results["post_201"]
    if "mine" in parts:
        measure_mine_default(args, results)
    if "chain" in parts:
        measure_chain(args, results)

    out = args.out or os.path.join(bin_dir, "..", "bench-last.json")
    with open(out, "w") as f:
        json.dump(results, f, indent=2)
    log("figures written to", os.path.abspath(out))
    previous = None
    if args.compare:
        with open(args.compare) as f:
            previous = json.load(f)
    print()
    print("chainbus bench, %s, commit %s, %s build, %s CPUs" % (
        results["date"], results.get("commit", "?"),
        results.get("CMAKE_BUILD_TYPE", "?"), results["cpus"]))
    report(results, previous)


if __name__ == "__main__":
    main()
