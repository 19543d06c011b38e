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

A third phase (unless --no-pressing) has one "pressing" subscriber among
the --subscribers: it reads just enough to keep its gateway buffer at
about three quarters of gateway/event_buffer_bytes (over half: the
gateway's "pressing" state), so that the gateway wakes it at once for
every event. Its bytes in the gateway are estimated as what a normal
stream of the same topics received, minus what it read, minus what the
kernel holds for it (its socket's receive queue and the gateway socket's
send queue, from /proc/net/tcp), give or take what MHD holds (at most
one 32 KiB block). That normal stream also counts the writes the
gateway made to it (the chunks of its chunked body): with batching kept,
several events a write; when one pressing stream woke every stream at
once, about one. With --before-bin DIR (the binaries of an older build)
a second node runs the same phases in the same run, alternating, so that
before and after are measured under the same load.

Prints a Markdown table (median and p99 of GET /status, transactions
accepted a second, events delivered a second over all streams, the
gateway's CPU, events per write on a normal stream, the share of the
time the pressing one was surely over half) and the ratios; no figure is
asserted.
"""

import argparse
import fcntl
import multiprocessing
import os
import re
import selectors
import socket
import statistics
import struct
import sys
import termios
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


class Chunks:
    """The body of a chunked answer as it arrives: counts its chunks (the
    gateway's writes) and its events (data lines)."""

    def __init__(self):
        self.pending = b""
        self.head = True
        self.left = 0                   #  Bytes of the current chunk to come
        self.chunks = 0
        self.events = 0
        self.tail = b""

    def feed(self, data):
        self.pending += data
        while True:
            if self.head:
                end = self.pending.find(b"\r\n\r\n")
                if end < 0:
                    return
                self.pending = self.pending[end + 4:]
                self.head = False
            if self.left == 0:
                end = self.pending.find(b"\r\n")
                if end < 0:
                    return
                self.left = int(self.pending[:end], 16) + 2
                self.pending = self.pending[end + 2:]
                self.chunks += 1
            take = self.pending[:self.left]
            if not take:
                return
            text = self.tail + take
            self.events += text.count(b"\ndata: ")
            self.tail = text[-8:]
            self.left -= len(take)
            self.pending = self.pending[len(take):]


def kernel_queue(server_port, client_port):
    """Bytes the kernel holds between the gateway and a subscriber's
    socket: the gateway socket's send queue (tx_queue in /proc/net/tcp)."""
    local = ":%04X" % server_port
    remote = ":%04X" % client_port
    with open("/proc/net/tcp") as f:
        for line in f:
            fields = line.split()
            if fields[1].endswith(local) and fields[2].endswith(remote):
                return int(fields[4].split(":")[0], 16)
    return 0


def press(port, query, target, ready, stop, stats):
    """A normal stream (read as fast as it comes; its chunks counted) and
    a pressing one, which reads only what takes its estimated gateway
    buffer back down to target bytes."""
    fast = socket.create_connection(("127.0.0.1", port))
    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.connect(("127.0.0.1", port))
    for s in (fast, slow):
        s.sendall(b"GET /events%s HTTP/1.1\r\nHost: bench\r\n\r\n" % query.encode())
        s.setblocking(False)
    chunks = Chunks()
    got_fast = got_slow = 0
    samples = over = 0
    base = None
    selector = selectors.DefaultSelector()
    selector.register(fast, selectors.EVENT_READ)
    client_port = slow.getsockname()[1]
    while not stop.is_set():
        for _ in selector.select(0.005):
            try:
                data = fast.recv(262144)
            except BlockingIOError:
                continue
            if not data:
                stats["closed"] = 1
                return
            got_fast += len(data)
            chunks.feed(data)
        queued = struct.unpack("i", fcntl.ioctl(slow, termios.FIONREAD, b"\0\0\0\0"))[0]
        backlog = got_fast - got_slow - queued - kernel_queue(port, client_port)
        if backlog > target:
            try:
                data = slow.recv(min(backlog - target, 65536))
                if not data:
                    stats["closed"] = 1
                    return
                got_slow += len(data)
            except BlockingIOError:
                pass
        if base is None and backlog >= target * 0.9:
            base = (chunks.chunks, chunks.events)
            ready.set()
        if base is not None:
            samples += 1
            #  Surely over half: even if MHD holds a whole 32 KiB block.
            over += backlog - 32768 > target * 2 / 3
            stats["chunks"] = chunks.chunks - base[0]
            stats["events"] = chunks.events - base[1]
            stats["over"] = over / samples
    fast.close()
    slow.close()


def cpu(pid):
    """CPU seconds pid used so far (its threads included)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def phase(node, args, subscribers, tag, pressing=False):
    stop = multiprocessing.Event()
    ready = multiprocessing.Event()
    pressed = multiprocessing.Event()
    accepted = multiprocessing.Value("l", 0)
    messages = multiprocessing.Value("l", 0)
    closed = multiprocessing.Value("l", 0)
    stats = multiprocessing.Manager().dict() if pressing else {}
    children = []
    if subscribers:
        sub = multiprocessing.Process(target=subscribe, args=(
            node.port, subscribers - (2 if pressing else 0), args.query, ready, stop, messages,
            closed))
        sub.start()
        children.append(sub)
        if not ready.wait(60):
            stop.set()
            raise RuntimeError("the %d streams did not all open" % subscribers)
    loader = multiprocessing.Process(target=load, args=(node.url, args.rate, stop, accepted, tag))
    loader.start()
    children.append(loader)
    if pressing:
        presser = multiprocessing.Process(target=press, args=(
            node.port, args.query, args.event_buffer * 3 // 4, pressed, stop, stats))
        presser.start()
        children.append(presser)
        if not pressed.wait(60):
            stop.set()
            raise RuntimeError("the pressing stream's buffer did not fill")
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
        "node": node.label,
        "pressing": pressing,
        "events_per_write": (stats.get("events", 0) / stats["chunks"]
                             if stats.get("chunks") else None),
        "over_half": stats.get("over"),
        "presser_closed": stats.get("closed", 0),
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
    parser.add_argument("--event-buffer", type=int, default=262144,
                        help="the nodes' gateway/event_buffer_bytes (default its default)")
    parser.add_argument("--no-pressing", action="store_true",
                        help="leave out the phase with one pressing subscriber")
    parser.add_argument("--before-bin", help="binaries of an older build: a second node, "
                        "the same phases, alternating")
    args = parser.parse_args()
    if args.bin:
        os.environ["CHAINBUS_BIN"] = os.path.abspath(args.bin)
    extra = ["--event-buffer", str(args.event_buffer)]
    nodes = [Node(miners=0, extra_args=extra)]
    nodes[0].label = "this build"
    if args.before_bin:
        nodes.append(Node(miners=0, extra_args=extra))
        nodes[1].label = "before"
    kinds = [(0, False), (args.subscribers, False)]
    if not args.no_pressing:
        kinds.append((args.subscribers, True))
    rows = []
    lost = {}
    try:
        saved = os.environ.get("CHAINBUS_BIN")
        for node in nodes:
            if node.label == "before":
                os.environ["CHAINBUS_BIN"] = os.path.abspath(args.before_bin)
            node.start()
            if saved is None:
                os.environ.pop("CHAINBUS_BIN", None)
            else:
                os.environ["CHAINBUS_BIN"] = saved
        for round_ in range(args.rounds):
            for subscribers, pressing in kinds:
                for node in nodes:
                    log("round %d, %s: %d subscribers%s" % (
                        round_ + 1, node.label, subscribers, ", one pressing" if pressing else ""))
                    rows.append(phase(node, args, subscribers, "r%d-%d-%d-%s" % (
                        round_, subscribers, pressing, node.label[0]), pressing))
        for node in nodes:
            lost[node.label] = overflowed(node)
    finally:
        for node in nodes:
            node.close()
    print("| build | subscribers | GET /status median ms | p99 ms | requests | tx accepted/s "
          "| events delivered/s | gateway CPU % | subscribers' CPU % | streams closed "
          "| gateway CPU % per 10,000 events/s "
          "| events per write (a normal stream) | pressing stream surely over half |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print("| %s | %s | %.2f | %.2f | %d | %.0f | %.0f | %.0f | %.0f | %d | %s | %s | %s |" % (
            r["node"], "%d%s" % (r["subscribers"], ", 1 pressing" if r["pressing"] else ""),
            r["median_ms"], r["p99_ms"], r["requests"], r["tx_s"], r["events_s"], r["cpu"],
            r["sub_cpu"], r["closed"] + r["presser_closed"],
            "%.2f" % (r["cpu"] * 10000 / r["events_s"]) if r["events_s"] else "",
            "%.1f" % r["events_per_write"] if r["events_per_write"] else "",
            "%.0f %%" % (100 * r["over_half"]) if r["over_half"] is not None else ""))
    print()
    for node in nodes:
        mine = [r for r in rows if r["node"] == node.label]
        base = [r for r in mine if r["subscribers"] == 0]
        for pressing in sorted({k[1] for k in kinds if k[0]}):
            many = [r for r in mine if r["subscribers"] and r["pressing"] == pressing]
            med = statistics.median(r["median_ms"] for r in many) / statistics.median(
                r["median_ms"] for r in base)
            p99 = statistics.median(r["p99_ms"] for r in many) / statistics.median(
                r["p99_ms"] for r in base)
            print("%s: ratio %d%s/0 subscribers: median %.2f, p99 %.2f, gateway CPU %.0f %% "
                  "(0 subscribers: %.0f %%), %.2f %% per 10,000 events/s" % (
                      node.label, args.subscribers, " (1 pressing)" if pressing else "", med, p99,
                      statistics.median(r["cpu"] for r in many),
                      statistics.median(r["cpu"] for r in base),
                      statistics.median(r["cpu"] * 10000 / r["events_s"] for r in many
                                        if r["events_s"])))
        print("%s: streams closed for overflow: %s" % (node.label, lost[node.label]))


if __name__ == "__main__":
    main()
