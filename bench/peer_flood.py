#!/usr/bin/env python3
"""The mempool's rate of honest HTTP submissions, unloaded and under a
flood of relayed transactions whose signatures do not verify (issue 9,
item 5; docs/p2p.md "Peer budgets").

Each phase is a fresh node and `wrk -t2 -c64 -d<seconds>s -s
bench/post_tx.lua` on POST /transactions/new (durable 201s a second):

  unloaded   nothing else;
  one key    a CurveZMQ peer (one throw-away key) sends TX messages of
             1024 bad-signature transactions as fast as it can, for the
             whole phase, banned or not;
  churn      the same, but each time it is banned it comes back at once
             with a new key (the worst case for a budget per peer).

The flooder is a separate process on the same two cores: what it costs
the machine counts against the node too. Prints each phase's rate, the
ratio to the unloaded one (the target is at least 0.5) and what the
flooder did. No figure is asserted: a benchmark reports.
"""

import argparse
import multiprocessing
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "functional"))

from chainbus_node import Node, forged_txs, free_port  # noqa: E402

import msgpack  # noqa: E402
import zmq  # noqa: E402


def log(*args):
    print("bench:", *args, file=sys.stderr, flush=True)


def flooder(info, churn, stop, counts):
    """Flood until stop is set; counts: [txs sent, keys used, bans seen]."""
    ctx = zmq.Context()
    messages = [msgpack.packb({"txs": forged_txs(1024, k)}) for k in range(16)]
    k = 0
    while not stop.is_set():
        s = ctx.socket(zmq.DEALER)
        public, secret = zmq.curve_keypair()
        s.curve_serverkey = info["public_key"].encode()
        s.curve_publickey, s.curve_secretkey = public, secret
        s.linger = 0
        s.connect(info["p2p_endpoint"])
        hello = {"reply": True, "version": 1, "network": info["network"],
                 "genesis": bytes.fromhex(info["genesis"]),
                 "node_id": os.urandom(8).hex(), "public_key": public.decode(),
                 "endpoint": "tcp://127.0.0.1:9", "height": 0, "work": bytes(32),
                 "tip": bytes(32)}
        s.send_multipart([b"HELLO", msgpack.packb(hello)])
        counts[1] += 1
        banned = False
        while not stop.is_set() and not (banned and churn):
            try:
                s.send_multipart([b"TX", messages[k % len(messages)]], flags=zmq.NOBLOCK)
                counts[0] += 1024
                k += 1
            except zmq.Again:
                time.sleep(0.001)
            while s.poll(0):
                frames = s.recv_multipart()
                if frames[0] == b"REJECT" and not banned:
                    banned = True
                    counts[2] += 1
        s.close()
    ctx.destroy(linger=0)


def cpu_s(pid):
    """CPU seconds (user + system) of pid so far, or 0 if it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return 0.0


SERVICES = ("mempool", "peersync", "gateway")


def wrk_rate(node, seconds):
    script = os.path.join(HERE, "post_tx.lua")
    out = subprocess.run(["wrk", "-t2", "-c64", "-d%ds" % seconds, "-s", script,
                          node.url + "/transactions/new"],
                         capture_output=True, text=True, timeout=seconds + 60).stdout
    m = re.search(r"statuses(.*)", out)
    statuses = dict(re.findall(r"(\d+)=(\d+)", m.group(1))) if m else {}
    return int(statuses.get("201", 0)) / seconds, statuses


def phase(mode, seconds):
    node = Node(port=free_port(), miners=0)
    stop = multiprocessing.Event()
    counts = multiprocessing.Array("q", 3)
    proc = None
    try:
        node.start()
        if mode != "unloaded":
            info = node.get("/node/info").json()
            proc = multiprocessing.Process(target=flooder,
                                           args=(info, mode == "churn", stop, counts))
            proc.start()
            time.sleep(1)
        pids = {role: node.service_pids(role)[0] for role in SERVICES}
        before = {role: cpu_s(pid) for role, pid in pids.items()}
        flood_before = cpu_s(proc.pid) if proc else 0.0
        rate, statuses = wrk_rate(node, seconds)
        cpu = {role: round(cpu_s(pid) - before[role], 1) for role, pid in pids.items()}
        flood_cpu = round(cpu_s(proc.pid) - flood_before, 1) if proc else 0.0
        stop.set()
        if proc:
            proc.join(30)
        stored = node.mempool_size()
        return {"mode": mode, "rate": rate, "statuses": statuses, "sent": counts[0],
                "keys": counts[1], "bans": counts[2], "mempool": stored, "cpu": cpu,
                "flooder_cpu": flood_cpu}
    finally:
        stop.set()
        if proc and proc.is_alive():
            proc.terminate()
        node.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    rows = []
    for run in range(args.runs):
        for mode in ("unloaded", "one key", "churn"):
            row = phase(mode, args.seconds)
            row["run"] = run + 1
            log(row)
            rows.append(row)
    print("| run | phase | durable 201s/s | / unloaded | flood txs sent | keys | bans "
          "| CPU s: mempool / peersync / gateway / flooder |")
    print("|---|---|---:|---:|---:|---:|---:|---|")
    for run in range(1, args.runs + 1):
        base = next(r["rate"] for r in rows if r["run"] == run and r["mode"] == "unloaded")
        for r in (r for r in rows if r["run"] == run):
            print("| %d | %s | %.0f | %.2f | %d | %d | %d | %s / %s / %s / %s |"
                  % (run, r["mode"], r["rate"], r["rate"] / base if base else 0,
                     r["sent"], r["keys"], r["bans"], r["cpu"]["mempool"],
                     r["cpu"]["peersync"], r["cpu"]["gateway"], r["flooder_cpu"]))
    for mode in ("one key", "churn"):
        ratios = sorted(r["rate"] / next(u["rate"] for u in rows if u["run"] == r["run"]
                                         and u["mode"] == "unloaded")
                        for r in rows if r["mode"] == mode)
        print("%s: flooded / unloaded, median of %d runs: %.2f (target >= 0.5)"
              % (mode, len(ratios), ratios[len(ratios) // 2]))


if __name__ == "__main__":
    main()
