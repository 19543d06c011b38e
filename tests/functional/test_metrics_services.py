"""What the chainstore, the mempool and peersync count, as `GET /metrics`
shows it: each figure moves when the thing it counts happens.

Each service keeps its own registry and sends its snapshot in its
node.heartbeat (once a second); the gateway serves the last one of each
with the label service="<role>". So a change shows within a couple of
seconds, and every check here waits for it (bounded) instead of reading
once. Speeds are measured in bench/, not here.
"""

import os
import re
import signal
import struct
import time

import msgpack
import zmq

from chainbus_node import tx_body, wait_for

#  A heartbeat a second, a scrape, a loaded machine (ASan): generous.
SEEN_TIMEOUT = 30

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def scrape(node):
    """Every sample of GET /metrics: {(name, ((label, value), ...)): value}."""
    r = node.get("/metrics")
    assert r.status_code == 200, r.text[:500]
    samples = {}
    for line in r.text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, "not a sample line: %r" % line
        labels = tuple(sorted((k, bytes(v, "utf-8").decode("unicode_escape"))
                              for k, v in LABEL.findall(m.group(2) or "")))
        samples[(m.group(1), labels)] = float(m.group(3))
    return samples


def value(samples, name, **labels):
    """The sample of name with exactly these labels, or None."""
    return samples.get((name, tuple(sorted(labels.items()))))


def series(samples, name, **labels):
    """{labels dict: value} of every sample of name whose labels include these."""
    found = {}
    for (n, ls), v in samples.items():
        d = dict(ls)
        if n == name and all(d.get(k) == w for k, w in labels.items()):
            found[ls] = v
    return found


def wait_metric(node, predicate, what, timeout=SEEN_TIMEOUT):
    """Scrape until predicate(samples) holds; returns those samples."""
    last = {}

    def check():
        last["s"] = scrape(node)
        return predicate(last["s"])

    try:
        wait_for(check, timeout, what, interval=0.25)
    except Exception:
        raise AssertionError("%s; last scrape: %s" % (what, sorted(
            (k, v) for k, v in last.get("s", {}).items() if "chainbus_" in k[0]
            and "http" not in k[0])))
    return last["s"]


def chain(name):
    return lambda s, **kw: value(s, name, service="chainstore", **kw)


def pool(name):
    return lambda s, **kw: value(s, name, service="mempool", **kw)


def sync(name):
    return lambda s, **kw: value(s, name, service="peersync", **kw)


height = chain("chainbus_chain_height")
tip_time = chain("chainbus_chain_tip_timestamp_seconds")
connected = chain("chainbus_chain_blocks_connected_total")
disconnected = chain("chainbus_chain_blocks_disconnected_total")
interval_count = chain("chainbus_chain_block_interval_seconds_count")
reorg_count = chain("chainbus_chain_reorg_depth_blocks_count")
reorg_sum = chain("chainbus_chain_reorg_depth_blocks_sum")
accepted = pool("chainbus_mempool_txs_accepted_total")
pending = pool("chainbus_mempool_txs")
pending_bytes = pool("chainbus_mempool_bytes")
batch_count = pool("chainbus_mempool_commit_batch_txs_count")
batch_sum = pool("chainbus_mempool_commit_batch_txs_sum")
write_count = pool("chainbus_mempool_commit_write_seconds_count")
write_sum = pool("chainbus_mempool_commit_write_seconds_sum")
blocks_left = sync("chainbus_sync_blocks_left")


def refused(s, code):
    return value(s, "chainbus_mempool_txs_refused_total", service="mempool", code=code)


def linked(s):
    return sync("chainbus_peers")(s, state="linked")


def lost(s, service):
    return value(s, "chainbus_bus_events_lost_total", service=service)


def forged_json(n):
    """A signed transaction (JSON) whose signature is made up: the mempool's
    verifier refuses it (bad_signature)."""
    body = tx_body(data=["forged", n], sender_public_key=os.urandom(32).hex())
    body["timestamp"] = 1795248100000000 + n
    body["signature"] = os.urandom(64).hex()
    return body


def test_submissions_mining_and_a_refusal_move_the_figures(make_node):
    n = make_node()
    s = wait_metric(n, lambda s: height(s) == 0 and pending(s) == 0 and accepted(s) == 0
                    and lost(s, "mempool") == 0 and lost(s, "peersync") == 0
                    and connected(s) == 0 and batch_count(s) == 0 and write_count(s) == 0
                    and linked(s) == 0 and blocks_left(s) == 0,
                    "a fresh node's figures at 0")
    assert tip_time(s) is not None and disconnected(s) == 0 and reorg_count(s) == 0

    #  Each with its timestamp: the same body again is the same transaction.
    bodies = [tx_body(data=["metrics", i], timestamp=1795248100000000 + i) for i in range(3)]
    for body in bodies:
        n.submit(body)
    s = wait_metric(n, lambda s: accepted(s) == 3 and pending(s) == 3,
                    "3 accepted and pending")
    assert pending_bytes(s) > 0
    # Every write was timed, and the batches hold exactly what was written.
    # The write is named for what is timed (the synced LevelDB write, not
    # an fdatasync alone: docs/operations.md "Metrics").
    assert batch_count(s) >= 1 and batch_sum(s) == 3, s
    assert write_count(s) == batch_count(s) and write_sum(s) > 0
    assert not series(s, "chainbus_mempool_fdatasync_seconds_count"), s

    # A duplicate is acknowledged but not accepted again; nothing written.
    r = n.post("/transactions/new", bodies[0])
    assert r.status_code == 200 and r.json()["duplicate"] is True, r.text
    r = n.post("/transactions/new", forged_json(1))
    assert r.status_code == 400 and "signature" in r.text.lower(), r.text
    s = wait_metric(n, lambda s: refused(s, "bad_signature") == 1, "one bad_signature refusal")
    assert accepted(s) == 3 and batch_sum(s) == 3

    block = n.mine()
    s = wait_metric(n, lambda s: height(s) == 1 and pending(s) == 0, "height 1, pool empty")
    # Block 1 has no interval: genesis's timestamp is the network's constant.
    assert connected(s) == 1 and interval_count(s) == 0 and disconnected(s) == 0
    assert pending_bytes(s) == 0
    assert abs(tip_time(s) - block["timestamp"]) < 0.002, (tip_time(s), block)
    age = value(s, "chainbus_chain_tip_age_seconds", service="chainstore")
    if age is not None:                 # the gateway's, once it serves it
        assert 0 <= age < 600

    n.mine()
    s = wait_metric(n, lambda s: height(s) == 2, "height 2")
    assert connected(s) == 2 and interval_count(s) == 1 and reorg_count(s) == 0
    assert 0 <= chain("chainbus_chain_block_interval_seconds_sum")(s) < 600
    assert lost(s, "mempool") == 0 and lost(s, "peersync") == 0
    n.assert_no_crash()


def _register(node, peer):
    address = "http://127.0.0.1:%d" % peer.port
    r = node.post("/nodes/register", {"nodes": [address]})
    assert r.status_code == 201, r.text
    return address


def test_a_reorganisation_a_sync_and_a_peer_link_move_the_figures(make_node):
    a, b = make_node(), make_node()
    # Two branches: a's one block, b's three (more work).
    a.mine()
    for _ in range(3):
        b.mine()
    s = wait_metric(a, lambda s: height(s) == 1 and connected(s) == 1, "a at height 1")
    assert linked(s) == 0 and blocks_left(s) == 0

    # a's chainstore stopped: the sync from b cannot go on, and what is
    # left of it shows (peersync keeps beating).
    pid = a.signal_service("chainstore", signal.SIGSTOP)
    try:
        address = _register(a, b)
        s = wait_metric(a, lambda s: linked(s) == 1 and (blocks_left(s) or 0) >= 2,
                        "a linked to b, 2 blocks left")
        sent = value(s, "chainbus_peer_sent_bytes_total", service="peersync", peer=address)
        got = value(s, "chainbus_peer_received_bytes_total", service="peersync", peer=address)
        assert sent > 0 and got > 0, s
    finally:
        os.kill(pid, signal.SIGCONT)

    # The sync ends in a reorganisation of depth 1.
    s = wait_metric(a, lambda s: height(s) == 3 and blocks_left(s) == 0,
                    "a synced to height 3")
    assert disconnected(s) == 1 and reorg_count(s) == 1 and reorg_sum(s) == 1, s
    # Joined: b's blocks 1 (no interval: its parent is genesis), 2 and 3.
    assert connected(s) == 4 and interval_count(s) == 2
    # Bytes keep flowing both ways (STATUS every 2 s).
    wait_metric(a, lambda s: (value(s, "chainbus_peer_sent_bytes_total", service="peersync",
                                    peer=address) or 0) > sent
                and (value(s, "chainbus_peer_received_bytes_total", service="peersync",
                           peer=address) or 0) > got, "more bytes to and from b")
    # b counts the same link, inbound, under a name of a's.
    s = wait_metric(b, lambda s: linked(s) == 1 and any(
        v > 0 for v in series(s, "chainbus_peer_received_bytes_total",
                              service="peersync").values()), "b linked, bytes from a")
    assert height(s) == 3 and disconnected(s) == 0

    # b goes: a's peer is no longer linked.
    b.stop()
    wait_metric(a, lambda s: linked(s) == 0 and sum(
        series(s, "chainbus_peers", service="peersync").values()) == 1, "a's peer unlinked")
    a.assert_no_crash()


def test_transactions_published_while_no_peer_is_linked_are_no_loss(make_node):
    # peersync hears mempool.tx.added only while a peer is linked: what
    # the mempool publishes meanwhile was not for it.
    a, b = make_node(), make_node()
    _register(a, b)
    wait_metric(a, lambda s: linked(s) == 1, "a linked to b")

    def relayed(body):
        txid, _ = a.submit(body)
        wait_for(lambda: b.tx(txid).status_code == 200, SEEN_TIMEOUT, "the tx at b")

    relayed(tx_body(data=["heard", 0]))
    b.stop()
    wait_metric(a, lambda s: linked(s) == 0, "a's peer unlinked")
    for i in range(3):
        a.submit(tx_body(data=["unheard", i]))
    b.start()
    wait_metric(a, lambda s: linked(s) == 1, "a linked to b again")
    relayed(tx_body(data=["heard", 1]))
    time.sleep(2.5)                     # two heartbeats after peersync heard it
    s = scrape(a)
    assert lost(s, "peersync") == 0 and lost(s, "mempool") == 0, s
    a.assert_no_crash()


def _subscribed(xpub, prefix, timeout):
    """Wait until the bus has told our publisher about a subscription to
    prefix (XPUB gets the subscribe messages)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if xpub.poll(200):
            if xpub.recv() == b"\x01" + prefix:
                return True
    return False


def test_a_gap_in_a_publishers_sequence_counts_as_lost(make_node):
    n = make_node()
    wait_metric(n, lambda s: lost(s, "mempool") == 0 and lost(s, "peersync") == 0,
                "no events lost at start")
    ctx = zmq.Context.instance()
    xpub = ctx.socket(zmq.XPUB)
    xpub.setsockopt(zmq.LINGER, 1000)
    try:
        xpub.connect("ipc://%s/run/bus-in.ipc" % n.data_dir)
        # Both subscribe to chain.block.connected, which takes this topic
        # too; neither acts on it (another chain.block.* topic).
        assert _subscribed(xpub, b"chain.block.connected", 10)
        topic = b"chain.block.connected.test"

        def send(boot, topic_seq):
            body = msgpack.packb({"src": "test.gap", "boot": boot, "topic_seq": topic_seq},
                                 use_bin_type=True)
            xpub.send_multipart([topic, body, struct.pack("<Q", topic_seq)])
            time.sleep(0.05)

        for topic_seq in (0, 1, 5):      # 2, 3 and 4 never sent
            send(7, topic_seq)
        s = wait_metric(n, lambda s: lost(s, "mempool") == 3 and lost(s, "peersync") == 3,
                        "3 events lost at the mempool and at peersync")
        # The publisher restarted (a new boot) and we heard its first
        # event: no gap. Then one more gap, of 2.
        send(8, 0)
        send(8, 3)
        s = wait_metric(n, lambda s: lost(s, "mempool") == 5 and lost(s, "peersync") == 5,
                        "5 events lost at each")
    finally:
        xpub.close()
    n.assert_no_crash()
