#!/usr/bin/env python3
"""A remote miner against a local one (issue 10, item 5): figures for
docs/performance.md "A remote miner".

The node runs in a network namespace. Local: `chainbus node --miners 1`,
every socket ipc. Remote: `--miners 0` with bus-in, bus-out and chainstore
on CurveZMQ tcp at 10.77.0.1 and one `chainbus-miner --config` in a
namespace of its own behind a veth pair. For each:
  1. hash rate: one GET /mine at a target no miner meets within the run
     (0x1d00ffff), the miner's own "hash rate=" lines over --rate-s s;
  2. block found -> connected: --blocks back-to-back GET /mine at an
     easy target; the miner's "block found" and "block submitted
     status=connected" lines, stamped to the ms as they are written
     (a pipe), paired by hash: the submission's round trip. Also GET
     /mine's own time (curl's time_total inside the namespace).
The local miner is the ceiling of the same run. Needs root (ip netns).
Prints a table and, with --out, JSON. Nothing is asserted.
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "functional"))

import chainbus_netns as netns          # noqa: E402
from chainbus_node import bin_dir       # noqa: E402

HARD = "0x1d00ffff"
EASY = "0x2000ffff"


class Stamped:
    """Lines of a process's output with the monotonic time each arrived."""

    def __init__(self, proc, log_path):
        self.lines = []
        self.log = open(log_path, "a")
        self.thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self.thread.start()

    def _read(self, proc):
        for raw in proc.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            self.lines.append((time.monotonic(), line))
            self.log.write(line + "\n")

    def rates(self):
        return [float(m.group(1)) for _, l in self.lines
                for m in [re.search(r"chainbus-miner.*hash rate=([0-9.]+)/s", l)] if m]

    def found_to_connected(self):
        found, out = {}, []
        for t, l in self.lines:
            m = re.search(r"block found .*hash=([0-9a-f]{64})", l)
            if m:
                found[m.group(1)] = t
            m = re.search(r"block submitted status=connected .*hash=([0-9a-f]{64})", l)
            if m and m.group(1) in found:
                out.append((t - found.pop(m.group(1))) * 1000.0)
        return out


def spawn(lab, ns, args, log):
    proc = subprocess.Popen(["ip", "netns", "exec", ns] + args, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    lab.procs.append(proc)
    return proc, Stamped(proc, log)


def wait_ready(lab, miners, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code, body = lab.http("/status", timeout=5)
        if code == 200:
            st = json.loads(body)
            if all(st["services"][r]["up"] for r in ("bus", "chainstore", "mempool", "gateway")) \
                    and len(st["services"]["miners"]) >= miners:
                return
        time.sleep(0.2)
    raise RuntimeError("node not ready")


def mine_times(lab, blocks):
    times = []
    for _ in range(blocks):
        r = netns.run("ip", "netns", "exec", lab.node_ns, "curl", "-s", "-o", "/dev/null",
                      "-m", "60", "-w", "%{http_code} %{time_total}",
                      "http://127.0.0.1:%d/mine" % netns.HTTP_PORT, check=False)
        code, total = r.stdout.split()
        if code == "200":
            times.append(float(total) * 1000.0)
    return times


def measure(lab, root, remote, bits, what, args):
    data = os.path.join(root, "d-%s-%s" % ("remote" if remote else "local", what))
    os.makedirs(data)
    extra = []
    if remote:
        node_cmd = netns.node_args(data, bits, miners=0)
    else:
        node_cmd = [os.path.join(bin_dir(), "chainbus"), "node", "--data-dir", data,
                    "--http-port", str(netns.HTTP_PORT), "--miners", "1", "--pow-bits", bits]
    key = lab.service_key("--data-dir", data)
    stamped = []
    if remote:
        home = os.path.join(root, "m-" + what)
        os.makedirs(home)
        cert = os.path.join(home, "miner.cert")
        with open(os.path.join(data, "allowlist"), "w") as f:
            f.write(lab.service_key("new", cert) + "\n")
        cfg = os.path.join(home, "remote-miner.cfg")
        netns.remote_config(cfg, home, cert, key, 7)
    node, node_lines = spawn(lab, lab.node_ns, node_cmd, os.path.join(root, "node.log"))
    stamped.append(node_lines)
    if remote:
        miner, miner_lines = spawn(lab, lab.links[1][0],
                                   [os.path.join(bin_dir(), "chainbus-miner"), "--config", cfg],
                                   os.path.join(root, "miner.log"))
        stamped.append(miner_lines)
    wait_ready(lab, 1)
    result = {}
    if what == "rate":
        #  One search that lasts the whole window.
        threading.Thread(target=lambda: lab.http("/mine", timeout=args.rate_s + 5),
                         daemon=True).start()
        time.sleep(args.rate_s)
        rates = [r for s in stamped for r in s.rates()]
        result["hash_rate"] = max(rates) if rates else None
    else:
        mine_times(lab, 3)                           # warm up
        for s in stamped:
            s.lines.clear()
        times = mine_times(lab, args.blocks)
        time.sleep(0.5)
        latencies = [x for s in stamped for x in s.found_to_connected()]
        result["found_to_connected_ms"] = latencies
        result["mine_ms"] = times
    for proc in lab.procs:
        if proc.poll() is None:
            os.killpg(proc.pid, 15)
    for proc in lab.procs:
        proc.wait(30)
    lab.procs.clear()
    return result


def q(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))] if values else float("nan")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--blocks", type=int, default=40)
    parser.add_argument("--rate-s", type=float, default=22.0)
    parser.add_argument("--out")
    args = parser.parse_args()
    why = netns.need_root()
    if why:
        print("skipped: " + why)
        return 0
    root = tempfile.mkdtemp(prefix="cbb", dir="/tmp")
    figures = {}
    try:
        with netns.Lab(1, root) as lab:
            for remote in (False, True):
                name = "remote" if remote else "local"
                figures[name] = measure(lab, root, remote, HARD, "rate", args)
                figures[name].update(measure(lab, root, remote, EASY, "latency", args))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print("%-8s %14s %22s %22s" % ("miner", "hash rate /s", "found->connected ms",
                                   "GET /mine ms"))
    print("%-8s %14s %22s %22s" % ("", "", "median / p90", "median / p90"))
    for name in ("local", "remote"):
        f = figures[name]
        lat, mine = f["found_to_connected_ms"], f["mine_ms"]
        print("%-8s %14s %10.2f / %9.2f %10.2f / %9.2f" % (
            name, "%.2f M" % (f["hash_rate"] / 1e6) if f["hash_rate"] else "-",
            statistics.median(lat) if lat else float("nan"), q(lat, 0.9),
            statistics.median(mine) if mine else float("nan"), q(mine, 0.9)))
    if figures["local"]["hash_rate"] and figures["remote"]["hash_rate"]:
        print("remote / local hash rate: %.0f %%"
              % (100.0 * figures["remote"]["hash_rate"] / figures["local"]["hash_rate"]))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(figures, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
