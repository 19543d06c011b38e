#!/usr/bin/env python3
"""chainbus inbound peer slots under throw-away keys: figures for
docs/performance.md ("Inbound peer slots").

  1. links/s: fresh CurveZMQ keys that each link (handshake, HELLO, HELLO
     back), --keys of them in waves of 40 from five loopback addresses;
     ceiling: the same clients against a bare python3-zmq CurveZMQ ROUTER
     that answers each HELLO at once, measured in the same run;
  2. bans/s: the same keys then send unknown commands until banned (REJECT
     banned back), and close;
  3. an honest node, while 64 links hold every slot: from POST
     /nodes/register to linked at the full node, and to the same tip.

Real processes, loopback. Prints the figures; no figure is asserted.
"""

import argparse
import os
import statistics
import sys
import threading
import time

import msgpack
import zmq

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "functional"))

from chainbus_node import Node, free_port, wait_for  # noqa: E402
from test_peer_slots import Crowd, _helloed, _inbound, _rejects  # noqa: E402


def log(*args):
    print("bench:", *args, file=sys.stderr, flush=True)


def waves(crowd, keys, ban):
    """Link keys in waves of 40; with ban, get each banned and close it.
    Returns the seconds taken."""
    started = time.monotonic()
    done = 0
    while done < keys:
        links = [crowd.open("127.0.0.%d" % (100 + n // 8), "bench%011d" % (done + n))
                 for n in range(min(40, keys - done))]
        if ban:
            for link in links:
                for _ in range(10):
                    link["socket"].send_multipart([b"NO-SUCH-COMMAND", msgpack.packb({})])
            crowd.until(lambda: all(_rejects(l, "banned") for l in links), 60, "bans")
        else:
            crowd.until(lambda: all(_helloed(l) for l in links), 60, "links")
        for link in links:
            crowd.close(link)
        crowd.links = [l for l in crowd.links if l["alive"]]
        done += len(links)
    return time.monotonic() - started


def bare_router(info_out, stop):
    """A CurveZMQ ROUTER answering every HELLO with HELLO: the ceiling."""
    ctx = zmq.Context.instance()
    public, secret = zmq.curve_keypair()
    r = ctx.socket(zmq.ROUTER)
    r.curve_server = True
    r.curve_publickey, r.curve_secretkey = public, secret
    port = free_port()
    r.bind("tcp://127.0.0.1:%d" % port)
    info_out.update({"public_key": public.decode(), "p2p_endpoint": "tcp://127.0.0.1:%d" % port,
                     "network": "dev", "genesis": "00" * 32})
    while not stop.is_set():
        if r.poll(50):
            frames = r.recv_multipart()
            if frames[1] == b"HELLO":
                r.send_multipart([frames[0], b"HELLO", b"\x80"])
    r.close()


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--keys", type=int, default=400)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()

    a = Node(port=free_port(), extra_args=["--limit-loopback", "1"])
    honest = None
    ctx = zmq.Context()
    rows = []
    try:
        a.start()
        for _ in range(20):
            a.mine()
        info = a.get("/node/info").json()
        for round_ in range(args.rounds):
            bare_info, stop = {}, threading.Event()
            t = threading.Thread(target=bare_router, args=(bare_info, stop), daemon=True)
            t.start()
            wait_for(lambda: bare_info, 5, "the bare router")
            try:
                ceiling = args.keys / waves(Crowd(ctx, bare_info), args.keys, False)
            finally:
                stop.set()
                t.join()
            linked = args.keys / waves(Crowd(ctx, info), args.keys, False)
            banned = args.keys / waves(Crowd(ctx, info), args.keys, True)
            rows.append((ceiling, linked, banned))
            log("round %d: ceiling %.0f links/s, node %.0f links/s, %.0f bans/s"
                % (round_, ceiling, linked, banned))

        holders = Crowd(ctx, info)
        links = [holders.open("127.0.0.%d" % (50 + n // 8), "holder%010d" % n) for n in range(64)]
        holders.until(lambda: len(_inbound(a, "linked")) == 64, 60, "64 slots", beating=links)
        honest = Node(port=free_port(), miners=0)
        honest.start()
        honest_id = honest.get("/node/info").json()["node_id"]
        started = time.monotonic()
        honest.post("/nodes/register", {"nodes": ["http://127.0.0.1:%d" % a.port]})
        holders.until(lambda: any(n["node_id"] == honest_id and n["state"] == "linked"
                                  for n in _inbound(a)), 60, "the honest node", beating=links)
        link_s = time.monotonic() - started
        holders.until(lambda: honest.status()["tip"] == a.status()["tip"], 60, "its sync",
                      beating=links)
        sync_s = time.monotonic() - started
        holders.close_all()

        print("| what | figure |")
        print("|---|---:|")
        print("| ceiling: bare CurveZMQ ROUTER, %d keys linking in waves of 40, median of %d "
              "| %.0f links/s |" % (args.keys, args.rounds, statistics.median(r[0] for r in rows)))
        print("| node: the same keys linking (HELLO answered) | %.0f links/s (%.0f %% of ceiling) |"
              % (statistics.median(r[1] for r in rows),
                 100 * statistics.median(r[1] / r[0] for r in rows)))
        print("| node: keys linking, misbehaving until banned, closing | %.0f bans/s |"
              % statistics.median(r[2] for r in rows))
        print("| honest node with 64 slots held: register -> linked (evicting one) | %.2f s |"
              % link_s)
        print("| ... -> synced 20 blocks | %.2f s |" % sync_s)
    finally:
        if honest:
            honest.close()
        a.close()
        ctx.term()


if __name__ == "__main__":
    main()
