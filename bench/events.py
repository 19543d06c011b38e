#!/usr/bin/env python3
"""Live events: do 200 subscribers slow the gateway's other routes?
(docs/performance.md, "Live events: 200 subscribers").

One node (no miner), transactions flowing at a steady --rate (POST
/transactions/new from a child process, keep-alive connections), and GET
/status timed from this process (sequential, keep-alive, one every 10 ms)
for --seconds, with 0 and then with --subscribers GET /events streams
open (another child process reading all of them with one selector, as
fast as the bytes come; every topic, the heaviest case: each transaction
is an event on every stream, and every process's heartbeat each second).
The two phases alternate --rounds times. The ceiling is the 0-subscriber
figure of the same run: the ratio is what the issue asks about.

Prints a Markdown table (median and p99 of GET /status, transactions
accepted a second, events delivered a second over all streams, the
gateway's CPU) and the ratios; no figure is asserted.
"""

import argparse
import multiprocessing
import os
import re
import selectors
import socket
import statistics
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "functional"))

import requests  # noqa: E402

from chainbus_node import Node, tx_body  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def load(url, rate, stop, accepted, tag):
    """POST transactions at about rate a second (4 threads) until stop."""
    def worker(index):
        session = requests.Session()
        period = 4.0 / rate
        due = time.monotonic()
        n = 0
        while not stop.is_set():
            r = session.post(url + "/transactions/new",
                             json=tx_body("%s-%d-%d" % (tag, index, n)), timeout=30)
            n += 1
            if r.status_code == 201:
                with accepted.get_lock():
                    accepted.value += 1
            due += period
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            else:
                due = time.monotonic()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def subscribe(port, count, query, ready, stop, messages, closed):
    """Open count streams and read them all until stop; count the
    messages (data lines) and the streams that ended."""
    selector = selectors.DefaultSelector()
    socks = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"GET /events%s HTTP/1.1\r\nHost: bench\r\n\r\n" % query.encode())
        s.setblocking(False)
        selector.register(s, selectors.EVENT_READ, [b"", False])
        socks.append(s)
    opened = 0
    while not stop.is_set():
        for key, _ in selector.select(0.2):
            state = key.data
            try:
                data = key.fileobj.recv(262144)
            except BlockingIOError:
                continue
            if not data:
                selector.unregister(key.fileobj)
                with closed.get_lock():
                    closed.value += 1
                continue
            text = state[0] + data
            found = text.count(b"\ndata: ")
            if not state[1] and b"stream.open" in text:
                state[1] = True
                opened += 1
                found -= 1
                if opened == count:
                    ready.set()
            state[0] = text[-8:]
            with messages.get_lock():
                messages.value += found
    for s in socks:
        s.close()


def cpu(pid):
    """CPU seconds pid used so far (its threads included)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def phase(node, args, subscribers, tag):
    stop = multiprocessing.Event()
    ready = multiprocessing.Event()
    accepted = multiprocessing.Value("l", 0)
    messages = multiprocessing.Value("l", 0)
    closed = multiprocessing.Value("l", 0)
    children = []
    if subscribers:
        sub = multiprocessing.Process(target=subscribe, args=(
            node.port, subscribers, args.query, ready, stop, messages, closed))
        sub.start()
        children.append(sub)
        if not ready.wait(60):
            stop.set()
            raise RuntimeError("the %d streams did not all open" % subscribers)
    loader = multiprocessing.Process(target=load, args=(node.url, args.rate, stop, accepted, tag))
    loader.start()
    children.append(loader)
    time.sleep(1.0)                     #  The flow settles
    session = requests.Session()
    latencies = []
    gateway = node.service_pids("gateway")[0]
    accepted0, messages0 = accepted.value, messages.value
    cpu0 = [cpu(pid) for pid in (gateway, children[0].pid)]
    started = time.monotonic()
    while time.monotonic() - started < args.seconds:
        t = time.monotonic()
        r = session.get(node.url + "/status", timeout=30)
        latencies.append((time.monotonic() - t) * 1000)
        assert r.status_code == 200, r.text
        time.sleep(0.01)
    elapsed = time.monotonic() - started
    row = {
        "subscribers": subscribers,
        "median_ms": statistics.median(latencies),
        "p99_ms": statistics.quantiles(latencies, n=100)[98],
        "requests": len(latencies),
        "tx_s": (accepted.value - accepted0) / elapsed,
        "events_s": (messages.value - messages0) / elapsed,
        "cpu": (cpu(gateway) - cpu0[0]) / elapsed * 100,
        "sub_cpu": (cpu(children[0].pid) - cpu0[1]) / elapsed * 100 if subscribers else 0,
        "closed": closed.value,
    }
    stop.set()
    for child in children:
        child.join(30)
    return row


def overflowed(node):
    text = node.get("/metrics").text
    m = re.search(r'^chainbus_event_streams_overflowed_total\{service="gateway"\} (\S+)$',
                  text, re.M)
    return float(m.group(1)) if m else None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin", help="binaries (default build/bin)")
    parser.add_argument("--subscribers", type=int, default=200)
    parser.add_argument("--query", default="", help="e.g. ?topics=chain. (default: every topic)")
    parser.add_argument("--rate", type=float, default=200, help="transactions a second")
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if args.bin:
        os.environ["CHAINBUS_BIN"] = os.path.abspath(args.bin)
    node = Node(miners=0)
    rows = []
    try:
        node.start()
        for round_ in range(args.rounds):
            for subscribers in (0, args.subscribers):
                log("round %d: %d subscribers" % (round_ + 1, subscribers))
                rows.append(phase(node, args, subscribers, "r%d-%d" % (round_, subscribers)))
        lost = overflowed(node)
    finally:
        node.close()
    print("| subscribers | GET /status median ms | p99 ms | requests | tx accepted/s "
          "| events delivered/s | gateway CPU % | subscribers' CPU % | streams closed |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print("| %d | %.2f | %.2f | %d | %.0f | %.0f | %.0f | %.0f | %d |" % (
            r["subscribers"], r["median_ms"], r["p99_ms"], r["requests"], r["tx_s"],
            r["events_s"], r["cpu"], r["sub_cpu"], r["closed"]))
    base = [r for r in rows if r["subscribers"] == 0]
    many = [r for r in rows if r["subscribers"] == args.subscribers]
    med = statistics.median(r["median_ms"] for r in many) / statistics.median(
        r["median_ms"] for r in base)
    p99 = statistics.median(r["p99_ms"] for r in many) / statistics.median(
        r["p99_ms"] for r in base)
    print()
    print("ratio %d/0 subscribers: median %.2f, p99 %.2f (streams closed for overflow: %s)"
          % (args.subscribers, med, p99, lost))


if __name__ == "__main__":
    main()
