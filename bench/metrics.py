#!/usr/bin/env python3
"""What collecting metrics costs (docs/performance.md, "Metrics: what
collecting them costs").

Measures, in one run:
  1. the registry alone (build/bin/cbus_bench_metrics): ns per change by
     kind, beside an uncontended mutex lock/unlock (the floor); a
     mempool-like snapshot's bytes, its encoding (once a heartbeat) and its
     decoding plus rendering (once a scrape);
  2. POST /transactions/new, durable 201s a second (wrk, as bench.py),
     on a build without metrics (--base-bin, the code before them) and on
     this one, alternating, --rounds times each; and on this one again
     while /metrics is scraped 10 times a second (a far busier Prometheus
     than the usual one scrape in 15 s);
  3. each process's heartbeat on the bus: bytes, and the part the metrics
     snapshot takes (read from bus-out with python3-zmq);
  4. GET /metrics: page bytes and latency (median, p99 of 200), beside
     GET /status and a 404 measured the same way.
Prints a Markdown table; no figure is asserted.
"""

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "functional"))
sys.path.insert(0, HERE)

import msgpack  # noqa: E402
import requests  # noqa: E402
import zmq  # noqa: E402

from bench import log, wrk  # noqa: E402
from chainbus_node import Node  # noqa: E402


def micro(bin_dir):
    out = subprocess.run([os.path.join(bin_dir, "cbus_bench_metrics")], check=True,
                         capture_output=True, text=True, timeout=300).stdout
    return {k: float(v) for k, v in (line.split("=") for line in out.split())}


def post_rate(bin_dir, args, scrape_hz=0):
    """Durable 201s a second on a fresh node of bin_dir."""
    os.environ["CHAINBUS_BIN"] = bin_dir
    node = Node(miners=0)
    stop = threading.Event()
    scrapes = []

    def scraper():
        session = requests.Session()
        while not stop.wait(1.0 / scrape_hz):
            started = time.monotonic()
            r = session.get(node.url + "/metrics", timeout=10)
            scrapes.append((r.status_code, time.monotonic() - started))
    try:
        node.start()
        thread = None
        if scrape_hz:
            thread = threading.Thread(target=scraper, daemon=True)
            thread.start()
        post = wrk(node.url + "/transactions/new", 2, 64, args.duration,
                   os.path.join(HERE, "post_tx.lua"))
        stop.set()
        if thread:
            thread.join()
        created = post.get("statuses", {}).get(201, 0)
        return created / post["seconds"], post.get("p99_ms"), scrapes
    finally:
        stop.set()
        node.close()


def heartbeats(node, seconds=3.0):
    """{src: (body bytes, metrics bytes)} of the heartbeats heard."""
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.connect("ipc://" + os.path.join(node.data_dir, "run", "bus-out.ipc"))
    sub.setsockopt(zmq.SUBSCRIBE, b"node.heartbeat")
    seen = {}
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            if sub.poll(200):
                _, body, _ = sub.recv_multipart()
                beat = msgpack.unpackb(body)
                seen[beat["src"]] = (len(body), len(beat.get("metrics", b"")))
    finally:
        sub.close(0)
        ctx.term()
    return seen


def scrape_figures(bin_dir):
    os.environ["CHAINBUS_BIN"] = bin_dir
    node = Node(miners=1)
    try:
        node.start()
        for n in range(20):
            node.post("/transactions/new", {"users": "m", "data": [n], "dh_parameters": "p",
                                            "server_public_key": "s",
                                            "receiver_public_key": "r",
                                            "sender_public_key": "k"})
        node.mine()
        time.sleep(1.5)
        beats = heartbeats(node)
        session = requests.Session()
        figures = {}
        for path in ("/metrics", "/status", "/nope"):
            times, size = [], 0
            for _ in range(200):
                started = time.monotonic()
                r = session.get(node.url + path, timeout=10)
                times.append(time.monotonic() - started)
                size = len(r.content)
            times.sort()
            figures[path] = (size, statistics.median(times), times[int(len(times) * 0.99) - 1])
        return beats, figures
    finally:
        node.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bin", default=os.path.join(REPO, "build", "bin"))
    parser.add_argument("--base-bin", default=None,
                        help="a build without metrics (the code before them), for the POST "
                             "rate beside it; left out when not given")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=8)
    args = parser.parse_args()
    rows = []
    log("registry micro-costs")
    m = micro(args.bin)
    rows += [("uncontended mutex lock + unlock (floor)", "%.1f ns" % m["floor_mutex_ns"]),
             ("counter +1, no labels", "%.1f ns" % m["inc_ns"]),
             ("counter + n by refusal code (8 held)", "%.1f ns" % m["add_label_ns"]),
             ("counter by route and code (40 held)", "%.1f ns" % m["add_two_labels_ns"]),
             ("histogram observation (15 buckets)", "%.1f ns" % m["observe_ns"]),
             ("gauge set", "%.1f ns" % m["set_ns"]),
             ("mempool-like snapshot: bytes / encode (each heartbeat)",
              "%d B / %.1f us" % (m["snapshot_bytes"], m["encode_ns"] / 1000)),
             ("its decode + render (each scrape): page bytes / time",
              "%d B / %.1f us" % (m["page_bytes"], m["decode_render_ns"] / 1000))]
    rates = {"base": [], "metrics": [], "scraped": []}
    for round_ in range(args.rounds):
        for kind in (["base"] if args.base_bin else []) + ["metrics"]:
            log("round %d: POST rate, %s" % (round_ + 1, kind))
            rate, p99, _ = post_rate(args.base_bin if kind == "base" else args.bin, args)
            rates[kind].append((rate, p99))
    log("POST rate while /metrics is scraped 10 times a second")
    rate, p99, scrapes = post_rate(args.bin, args, scrape_hz=10)
    rates["scraped"].append((rate, p99))
    bad = sum(1 for status, _ in scrapes if status != 200)

    def fmt(kind):
        values = rates[kind]
        if not values:
            return "-"
        tx = sorted(v[0] for v in values)
        return "%s tx/s (%s), p99 %s ms" % (
            "{:,.0f}".format(statistics.median(tx)),
            ", ".join("{:,.0f}".format(v) for v in tx),
            "/".join("%.1f" % (v[1] or 0) for v in values))
    rows += [("POST /transactions/new, before metrics (median of runs)", fmt("base")),
             ("POST /transactions/new, with metrics", fmt("metrics")),
             ("the same while GET /metrics is scraped 10/s (%d scrapes, %d not 200, "
              "median %.2f ms)" % (len(scrapes), bad,
                                   statistics.median(t for _, t in scrapes) * 1000
                                   if scrapes else 0), fmt("scraped"))]
    if rates["base"]:
        ratio = statistics.median(v[0] for v in rates["metrics"]) / \
            statistics.median(v[0] for v in rates["base"])
        rows.append(("with / before", "%.3f" % ratio))
    log("heartbeats and GET /metrics on a live node")
    beats, figures = scrape_figures(args.bin)
    for src in sorted(beats):
        total, part = beats[src]
        rows.append(("heartbeat of %s: bytes (of which metrics)" % src,
                     "%d (%d)" % (total, part)))
    rows.append(("GET /metrics: page bytes", "%d" % figures["/metrics"][0]))
    for path, what in (("/metrics", "GET /metrics"),
                       ("/status", "ceiling: GET /status (a round trip to 3 services)"),
                       ("/nope", "ceiling: GET of no route (404, the gateway alone)")):
        rows.append(("%s latency, median / p99 of 200, one client" % what,
                     "%.2f ms / %.2f ms" % (figures[path][1] * 1000, figures[path][2] * 1000)))
    print("| what | figure |\n|---|---:|")
    for what, figure in rows:
        print("| %s | %s |" % (what, figure))


if __name__ == "__main__":
    main()
