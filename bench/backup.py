#!/usr/bin/env python3
"""Hot backup: how long `chainbus backup` takes, and what it costs the
submissions that go on meanwhile (docs/performance.md "Hot backup").

On one node (real processes, LevelDB in /tmp, loopback, easy proof of
work, no miner: blocks come from GET /mine between the phases):
  1. fill: wrk POSTs for --fill seconds; then blocks are mined until
     the mempool holds --pending transactions at most, so both stores
     have something to copy;
  2. ceiling, in the same run: `cp -r` of the node's chain/ and mempool/
     folders (what the disk copies in the same time; not a consistent
     copy), and the same POST load (wrk, --seconds) with no backup;
  3. the same POST load while backups run back to back (each into a new
     folder), each one timed;
  4. the last backup restored and checked (exit 0).
Prints a table and the figures as JSON (--out FILE too). Compares
ratios: the POST rate and its p99 during backups against without, the
backup time against cp -r. Nothing is asserted.
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "functional"))
sys.path.insert(0, HERE)

from bench import build_info, log, wrk  # noqa: E402
from chainbus_node import EASY_BITS, Node, bin_dir  # noqa: E402

POST_SCRIPT = os.path.join(HERE, "post_tx.lua")


def chainbus(*args):
    return subprocess.run([os.path.join(bin_dir(), "chainbus")] + list(args),
                          capture_output=True, text=True, timeout=3600)


def folder_bytes(path):
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            total += os.path.getsize(os.path.join(root, name))
    return total


def post(node, args, seconds):
    figures = wrk(node.url + "/transactions/new", args.threads, args.connections, seconds,
                  POST_SCRIPT)
    statuses = figures.get("statuses", {})
    m = re.search(r"^\s+Latency\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)", figures["raw"], re.M)
    top = float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)] if m else None
    return {"max_ms": top, "req_s": figures["req_per_s"], "created_per_s": statuses.get(201, 0) / figures["seconds"],
            "non_201": sum(n for s, n in statuses.items() if s != 201),
            "p50_ms": figures.get("p50_ms"), "p99_ms": figures.get("p99_ms")}


def fill(node, args):
    log("fill: wrk POST for %d s" % args.fill)
    post(node, args, args.fill)
    while node.mempool_size() > args.pending:
        node.mine()
    s = node.status()
    log("filled: height %d, %d pending" % (s["height"], node.mempool_size()))
    return s["height"], node.mempool_size()


def backups_during_load(node, args, root):
    """Backups back to back while wrk POSTs; their times and the load's figures."""
    times, results = [], {}
    done = threading.Event()

    def load():
        results.update(post(node, args, args.seconds))
        done.set()

    thread = threading.Thread(target=load)
    thread.start()
    time.sleep(1.0)          # wrk at full speed first
    count = 0
    while not done.is_set():
        out = os.path.join(root, "backup-%d" % count)
        started = time.monotonic()
        r = chainbus("backup", "--data-dir", node.data_dir, "--out", out, "--pow-bits", EASY_BITS)
        if r.returncode != 0:
            raise RuntimeError("backup failed: " + r.stderr)
        if not done.is_set():
            times.append(time.monotonic() - started)
        count += 1
        last = out
        if not done.is_set():
            time.sleep(0.2)
        if count > 1 and not done.is_set():
            shutil.rmtree(os.path.join(root, "backup-%d" % (count - 2)), ignore_errors=True)
    thread.join()
    return times, results, last


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fill", type=int, default=15, help="seconds of POSTs to fill the node")
    parser.add_argument("--pending", type=int, default=20000,
                        help="mine until at most this many are pending")
    parser.add_argument("--seconds", type=int, default=10, help="each POST load, seconds")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--out", help="write the figures as JSON here too")
    args = parser.parse_args()

    node = Node(miners=1, extra_args=["--block-max-txs", "10000"])
    results = {"build": build_info(bin_dir()), "args": vars(args)}
    try:
        node.start()
        height, pending = fill(node, args)
        results.update({"height": height, "pending": pending,
                        "chain_bytes": folder_bytes(os.path.join(node.data_dir, "chain")),
                        "mempool_bytes": folder_bytes(os.path.join(node.data_dir, "mempool"))})

        log("ceiling: cp -r chain/ mempool/")
        copy = os.path.join(node.root, "cp")
        os.mkdir(copy)
        started = time.monotonic()
        subprocess.run(["cp", "-r", os.path.join(node.data_dir, "chain"),
                        os.path.join(node.data_dir, "mempool"), copy], check=True)
        subprocess.run(["sync"], check=True)
        results["cp_s"] = time.monotonic() - started
        shutil.rmtree(copy)

        log("alone: one backup with no load")
        started = time.monotonic()
        r = chainbus("backup", "--data-dir", node.data_dir, "--out",
                     os.path.join(node.root, "quiet"), "--pow-bits", EASY_BITS)
        results["backup_quiet_s"] = time.monotonic() - started
        if r.returncode != 0:
            raise RuntimeError(r.stderr)
        results["backup_line"] = r.stderr.strip()
        with open(os.path.join(node.root, "quiet", "chainbus-backup.json")) as f:
            manifest = json.load(f)
        results["backup_records"] = manifest["chain"]["entries"] + manifest["mempool"]["entries"]
        results["backup_bytes"] = manifest["chain"]["bytes"] + manifest["mempool"]["bytes"]
        results["backup_quiet_chain_ms"] = manifest["chain"]["ms"]
        results["backup_quiet_mempool_ms"] = manifest["mempool"]["ms"]
        shutil.rmtree(os.path.join(node.root, "quiet"))

        log("without backup: wrk POST %d s" % args.seconds)
        results["post_without"] = post(node, args, args.seconds)
        log("with backups back to back: wrk POST %d s" % args.seconds)
        times, during, last = backups_during_load(node, args, node.root)
        results["post_during"] = during
        results["backups_during"] = len(times)
        results["backup_during_s"] = statistics.median(times) if times else None

        restored = os.path.join(node.root, "restored")
        r = chainbus("restore", "--from", last, "--data-dir", restored, "--pow-bits", EASY_BITS)
        results["restore_ok"] = r.returncode == 0
        results["restore_line"] = r.stderr.strip()
    finally:
        node.close()

    w, d = results["post_without"], results["post_during"]
    print("height %d, pending %d; chain/ %.1f MB, mempool/ %.1f MB on disk; %d records, %.1f MB "
          "copied" % (results["height"], results["pending"], results["chain_bytes"] / 1e6,
                      results["mempool_bytes"] / 1e6, results["backup_records"],
                      results["backup_bytes"] / 1e6))
    print("cp -r of both folders (+ sync)         %.2f s" % results["cp_s"])
    print("backup, no load                        %.2f s (chain copy %d ms, mempool copy %d ms)"
          % (results["backup_quiet_s"], results["backup_quiet_chain_ms"],
             results["backup_quiet_mempool_ms"]))
    if results["backup_during_s"] is not None:
        print("backup, under POST load (median of %d)  %.2f s" % (results["backups_during"],
                                                               results["backup_during_s"]))
    print("POST /transactions/new without backup  %.0f/s 201, p50 %.2f ms, p99 %.2f ms, max %.0f ms"
          % (w["created_per_s"], w["p50_ms"], w["p99_ms"], w["max_ms"]))
    print("POST /transactions/new during backups  %.0f/s 201, p50 %.2f ms, p99 %.2f ms, max %.0f ms "
          "(%.0f %% of the rate without)" % (d["created_per_s"], d["p50_ms"], d["p99_ms"],
                                              d["max_ms"],
                                              100.0 * d["created_per_s"] / w["created_per_s"]))
    print("restore of the last one: %s" % ("ok" if results["restore_ok"] else "FAILED"))
    text = json.dumps(results, indent=2, sort_keys=True)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
