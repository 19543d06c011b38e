#!/usr/bin/env python3
"""Slow and many HTTP clients against the gateway (issue 9 item 1).

Two uses:
  attack   python3 bench/http_attack.py attack --port P --kind headers
           --count 1000 [--addresses 40] [--seconds 20] [--no-reopen]
           Holds COUNT connections open from 127.0.0.2 .. 127.0.0.(1+ADDRESSES),
           round robin, for SECONDS, and prints what happened as one JSON
           line. Kinds: "headers" sends a request head one byte a second and
           never ends it; "bodies" sends a whole head announcing a body, then
           one body byte a second; "idle" connects and sends nothing;
           "pipeline" (a slow read) sets SO_RCVBUF to 2 KB, sends pipelined
           GET /status requests every second and never reads an answer. A
           connection the gateway closes is opened again (unless --no-reopen),
           so the pressure stays. The tests (tests/functional/test_http_slow.py)
           run it this way.
  bench    python3 bench/http_attack.py [--bin build/bin] [--seconds 8]
           Starts a node, and measures the requests per second a normal client
           (wrk from 127.0.0.1, keep-alive) is served, GET /status and
           POST /transactions/new, with no attack and during each attack
           (2,000 trickling heads, 2,000 trickling bodies, 5,000 idle, all
           three at once), then on a node capped at 300 connections with no
           attack and with 330 slow readers ("pipeline"), and prints each as a
           ratio of the unattacked rate (the first row).
           No figure is asserted.
"""

import argparse
import json
import os
import resource
import selectors
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

HEAD = b"GET /status HTTP/1.1\r\nHost: x\r\nX-Pad: "
PIPELINED = b"GET /status HTTP/1.1\r\nHost: x\r\n\r\n" * 200
BODY_HEAD = (b"POST /transactions/new HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
             b"Content-Length: 100000\r\n\r\n")


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Attack:
    """count connections of one kind, kept open from many loopback sources."""

    def __init__(self, port, kind, count, addresses=40, first=2, reopen=True, interval=1.0):
        self.port, self.kind, self.count = port, kind, count
        self.sources = ["127.0.0.%d" % (first + i) for i in range(addresses)]
        self.reopen, self.interval = reopen, interval
        self.sel = selectors.DefaultSelector()
        self.socks = {}             # socket -> connected?
        self.opened = self.closed_by_server = self.failed = 0
        self.next_source = 0

    def open_one(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        if self.kind == "pipeline":
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
        try:
            s.bind((self.sources[self.next_source % len(self.sources)], 0))
            self.next_source += 1
            s.connect_ex(("127.0.0.1", self.port))
        except OSError:
            s.close()
            self.failed += 1
            return
        self.socks[s] = False
        self.sel.register(s, selectors.EVENT_WRITE)
        self.opened += 1

    def drop(self, s, by_server):
        if s not in self.socks:
            return
        if self.socks[s] is not None:
            self.sel.unregister(s)
        del self.socks[s]
        s.close()
        if by_server:
            self.closed_by_server += 1

    def on_event(self, s, mask):
        if not self.socks[s]:
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                self.failed += 1
                self.drop(s, False)
                return
            self.socks[s] = True
            if self.kind == "pipeline":
                #  Never read: the answers pile up in the server's send
                #  buffer; a close shows as a failed send at a tick.
                self.sel.unregister(s)
                self.socks[s] = None
                self.send(s, PIPELINED)
                return
            self.sel.modify(s, selectors.EVENT_READ)
            first = {"headers": HEAD[:8], "bodies": BODY_HEAD, "idle": b""}[self.kind]
            if first:
                self.send(s, first)
            return
        try:
            data = s.recv(65536)
        except OSError:
            data = b""
        if not data:
            self.drop(s, True)

    def send(self, s, data):
        try:
            s.send(data)
        except BlockingIOError:
            pass                    # our send buffer is full: still open
        except OSError:
            self.drop(s, True)

    def tick(self):
        """One more byte on every trickling connection."""
        if self.kind == "idle":
            return
        byte = {"headers": b"a", "bodies": b"1", "pipeline": PIPELINED}[self.kind]
        for s, connected in list(self.socks.items()):
            if connected is not False and s in self.socks:
                self.send(s, byte)

    def open_now(self):
        return sum(1 for c in self.socks.values() if c is not False)

    def run(self, seconds, report=None):
        deadline = time.monotonic() + seconds
        stop = []
        signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
        next_tick = time.monotonic() + self.interval
        while time.monotonic() < deadline and not stop:
            #  Open what is missing, a few hundred at a time.
            if self.reopen or self.opened < self.count:
                for _ in range(min(500, self.count - len(self.socks))):
                    self.open_one()
            for key, mask in self.sel.select(timeout=0.1):
                if key.fileobj in self.socks:
                    self.on_event(key.fileobj, mask)
            if time.monotonic() >= next_tick:
                self.tick()
                next_tick += self.interval
                if report:
                    report(self)
        return self.result()

    def result(self):
        return {"kind": self.kind, "wanted": self.count, "open": self.open_now(),
                "opened": self.opened, "closed_by_server": self.closed_by_server,
                "failed": self.failed}

    def close(self):
        for s in list(self.socks):
            self.drop(s, False)
        self.sel.close()


def attack_main(args):
    raise_fd_limit()
    if args.nice:
        os.nice(args.nice)
    attack = Attack(args.port, args.kind, args.count, args.addresses, args.first,
                    not args.no_reopen)

    def report(a):
        if args.progress:
            print(json.dumps(a.result()), flush=True)

    result = attack.run(args.seconds, report)
    attack.close()
    print(json.dumps(result), flush=True)


# ------------------------------------------------------------------ bench

def log(*args):
    print("http_attack:", *args, file=sys.stderr, flush=True)


def start_attacks(port, plan, seconds):
    procs = []
    first = 2
    for kind, count in plan:
        addresses = max(1, count // 100)
        procs.append(subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "attack", "--port", str(port),
             "--kind", kind, "--count", str(count), "--addresses", str(addresses),
             "--first", str(first), "--seconds", str(seconds)],
            stdout=subprocess.PIPE, text=True))
        first += addresses
    return procs


def run_plans(node, plans, args, rows, wrk, proc_status_kb):
    try:
        node.start()
        for name, plan in plans:
            procs = start_attacks(node.port, plan, args.ramp + 2 * args.seconds + 5)
            time.sleep(args.ramp if plan else 0)
            st = wrk(node.url + "/status", 1, args.connections, args.seconds)
            post = wrk(node.url + "/transactions/new", 1, args.connections, args.seconds,
                       os.path.join(HERE, "post_tx.lua"))
            held = []
            for p in procs:
                p.terminate()
                out = p.communicate(timeout=60)[0].strip().splitlines()
                held.append(out[-1] if out else "{}")
            gateway = node.service_pids("gateway")
            st["gateway_rss_mb"] = (proc_status_kb(gateway[0], "VmRSS") / 1024.0
                                    if gateway else None)
            rows.append((name, st, post, held))
            log("%s: status %.0f req/s (p99 %s ms), post %.0f 201/s (p99 %s ms) %s" % (
                name, st["req_per_s"], st.get("p99_ms"),
                post.get("statuses", {}).get(201, 0) / post["seconds"], post.get("p99_ms"),
                " ".join(held)))
            time.sleep(args.ramp)       # let the gateway close what was left
    finally:
        node.close()


def bench_main(args):
    sys.path.insert(0, os.path.join(REPO, "tests", "functional"))
    sys.path.insert(0, HERE)
    if args.bin:
        os.environ["CHAINBUS_BIN"] = os.path.abspath(args.bin)
    elif "CHAINBUS_BIN" not in os.environ:
        os.environ["CHAINBUS_BIN"] = os.path.join(REPO, "build", "bin")
    raise_fd_limit()
    from chainbus_node import Node, proc_status_kb
    from bench import wrk

    plans = [("none", []), ("trickling heads x2000", [("headers", 2000)]),
             ("trickling bodies x2000", [("bodies", 2000)]), ("idle x5000", [("idle", 5000)]),
             ("all at once (1000 heads, 1000 bodies, 5000 idle)",
              [("headers", 1000), ("bodies", 1000), ("idle", 5000)])]
    #  The slow read, against a small cap so that the attackers can hold
    #  all of it: pipelined GET /status, answers never read.
    slow_plans = [("cap 300: none", []),
                  ("cap 300: 330 slow readers (pipelined, never read)", [("pipeline", 330)])]
    rows = []
    if not args.only_slow_read:
        run_plans(Node(miners=0), plans, args, rows, wrk, proc_status_kb)
    run_plans(Node(miners=0, extra_args=["--max-connections", "300"]), slow_plans, args, rows,
              wrk, proc_status_kb)
    base_st = rows[0][1]["req_per_s"]
    base_post = rows[0][2].get("statuses", {}).get(201, 0) / rows[0][2]["seconds"]
    print("| attack | GET /status req/s | ratio | p99 ms | POST 201/s | ratio | p99 ms "
          "| gateway RSS MB |")
    print("|---|---|---|---|---|---|---|---|")
    for name, st, post, _ in rows:
        created = post.get("statuses", {}).get(201, 0) / post["seconds"]
        print("| %s | %.0f | %.2f | %s | %.0f | %.2f | %s | %.0f |" % (
            name, st["req_per_s"], st["req_per_s"] / base_st, st.get("p99_ms"),
            created, created / base_post if base_post else 0, post.get("p99_ms"),
            st["gateway_rss_mb"] or 0))


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command")
    a = sub.add_parser("attack")
    a.add_argument("--port", type=int, required=True)
    a.add_argument("--kind", choices=["headers", "bodies", "idle", "pipeline"], required=True)
    a.add_argument("--nice", type=int, default=0, help="os.nice() increment for the attacker")
    a.add_argument("--count", type=int, required=True)
    a.add_argument("--addresses", type=int, default=40)
    a.add_argument("--first", type=int, default=2, help="first source is 127.0.0.FIRST")
    a.add_argument("--seconds", type=float, default=20)
    a.add_argument("--no-reopen", action="store_true")
    a.add_argument("--progress", action="store_true", help="a JSON line every second")
    p.add_argument("--bin", help="binaries (default: build/bin)")
    p.add_argument("--seconds", type=int, default=8, help="each wrk run")
    p.add_argument("--ramp", type=int, default=6, help="seconds to let an attack build up")
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--only-slow-read", action="store_true",
                   help="only the slow-read rows (a node capped at 300 connections)")
    args = p.parse_args()
    if args.command == "attack":
        attack_main(args)
    else:
        bench_main(args)


if __name__ == "__main__":
    main()
