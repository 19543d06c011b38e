#!/usr/bin/env python3
"""chainbus benchmark: a returning node gets its peer's pending
transactions (docs/p2p.md "Pending transactions when nodes link").

For each N of --counts: nodes A and B, B registered with A and linked;
B is stopped; A takes N transactions (wrk, bench/post_tx.lua: unsigned,
the seed's fields); B is started again, and the clock runs from B's
launch until B's mempool holds all N (polled every 20 ms), nothing mined.
Also printed: the same from the moment B's services were up (its own
start-up left out), and the ceiling the exchange is held to in the same
run: the relayer's transaction budget, peersync/peer_tx_rate a second
after a first second's worth (the token bucket starts full), so
max(0, N - rate) / rate seconds at the least.

Real processes, LevelDB under /tmp, loopback, both nodes on the same two
cores. No figure is asserted: a benchmark reports.
"""

import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "functional"))
sys.path.insert(0, HERE)

from chainbus_node import Node, free_port, proc_status_kb, wait_for  # noqa: E402
from p2p import fill_mempool, log  # noqa: E402

PEER_TX_RATE = 5000     # peersync/peer_tx_rate, the default
PENDING_MAX = 20000     # peersync/pending_max, the default: B takes at most that many


def linked(node):
    return any(n["state"] == "linked" for n in node.get("/nodes").json()["nodes"])


def peersync_hwm_kb(node):
    pids = node.service_pids("peersync")
    return proc_status_kb(pids[0], "VmHWM") if pids else None


def bench_return(count):
    a = Node(port=free_port(), miners=0)
    b = Node(port=free_port(), miners=0)
    try:
        a.start()
        b.start()
        r = b.post("/nodes/register", {"nodes": ["http://127.0.0.1:%d" % a.port]})
        assert r.status_code == 201, r.text
        wait_for(lambda: linked(b) and linked(a), 60, "the link")
        b.stop()
        got = min(fill_mempool(a, count), PENDING_MAX)
        log("A holds %d pending; starting B again" % a.mempool_size())
        started = time.monotonic()
        b.start(wait=False)
        ready = None
        while True:
            try:
                status = b.status()
            except Exception:
                time.sleep(0.02)
                continue
            if ready is None and b.is_ready(status):
                ready = time.monotonic()
            size = (status.get("mempool") or {}).get("size")
            if ready is not None and size is not None and size >= got:
                break
            if time.monotonic() - started > 300:
                raise RuntimeError("B did not get them: %s" % size)
            time.sleep(0.02)
        done = time.monotonic()
        assert a.height() == 0 and b.height() == 0, "something was mined"
        return {
            "count": got,
            "from_launch_s": done - started,
            "from_ready_s": done - ready,
            "ceiling_s": max(0, got - PEER_TX_RATE) / PEER_TX_RATE,
            "peersync_vmhwm_kb": peersync_hwm_kb(b),
        }
    finally:
        for node in (a, b):
            try:
                node.close()
            except Exception as e:
                log("close:", e)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--counts", default="1000,10000,20000")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    rows = [bench_return(int(n)) for n in args.counts.split(",")]
    print("| pending at A (N) | B launched -> B has N | B up -> B has N | budget floor "
          "(N - rate) / rate | B's peersync VmHWM |")
    print("|---:|---:|---:|---:|---:|")
    for row in rows:
        print("| %d | %.2f s | %.2f s | %.2f s | %s MB |" % (
            row["count"], row["from_launch_s"], row["from_ready_s"], row["ceiling_s"],
            "%.1f" % (row["peersync_vmhwm_kb"] / 1024) if row["peersync_vmhwm_kb"] else "?"))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
