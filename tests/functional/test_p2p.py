"""The peer-to-peer network: several real nodes on loopback.

Each node listens for peers on its HTTP port + 1000 (CurveZMQ) and answers
key lookups on + 2000 (chainbus_node picks ports with those free). Waits are
bounded but generous (a sanitizer build on two loaded cores is slow);
propagation times are measured in bench/, not asserted here.
"""

import os
import signal
import time

import msgpack
import pytest
import zmq

from chainbus_node import free_port, tx_body, wait_for

#  Generous bound for anything that should take well under a second.
GOSSIP_TIMEOUT = 30


@pytest.fixture
def make_peer(make_node):
    """make_peer(**kw): a node (its free port leaves + 1000 and + 2000
    free too, for the peer protocol and the directory)."""
    return make_node


def register(node, *peers, form="http"):
    addresses = [("http://127.0.0.1:%d" % p.port) if form == "http"
                 else ("tcp://127.0.0.1:%d" % (p.port + 1000)) for p in peers]
    r = node.post("/nodes/register", {"nodes": addresses})
    assert r.status_code == 201, r.text
    return addresses


def peer_entry(node, address):
    nodes = node.get("/nodes").json()["nodes"]
    return next((n for n in nodes if n["address"] == address), None)


def wait_linked(node, address):
    return wait_for(lambda: (peer_entry(node, address) or {}).get("state") == "linked",
                    GOSSIP_TIMEOUT, "%s to link to %s" % (node.url, address))


def pending(node, txid):
    r = node.tx(txid)
    return r.status_code == 200 and r.json()["status"] == "pending"


def tip(node):
    s = node.status()
    return s["height"], s["tip"]


def stale_block(a, b, **tx_fields):
    """a and b linked both ways; a mines block 1 (one transaction of
    tx_fields) while b, not hearing it, mines 1 and 2: a follows b, and its
    block 1 is left on a side branch. That block (as GET /mine gave it)."""
    wait_linked(a, register(a, b)[0])
    wait_linked(b, register(b, a)[0])
    pid = b.signal_service("peersync", signal.SIGSTOP)
    try:
        a.submit(tx_body(**tx_fields))
        side = a.mine()
        b.mine()
        b.mine()
    finally:
        os.kill(pid, signal.SIGCONT)
    wait_for(lambda: tip(a) == tip(b) and tip(a)[0] == 2, 30, "a to follow b")
    return side


def test_node_info_and_key_file(make_peer):
    a = make_peer()
    info = a.get("/node/info").json()
    assert info["network"] == "dev"
    assert len(info["node_id"]) == 16 and len(info["public_key"]) == 40
    assert info["p2p_endpoint"] == "tcp://127.0.0.1:%d" % (a.port + 1000)
    assert info["genesis"] == a.get("/blocks/0").json()["hash"]
    key = os.path.join(a.data_dir, "node.key")
    assert os.stat(key).st_mode & 0o777 == 0o600
    # The id survives a restart: same key file.
    a.restart()
    assert a.get("/node/info").json()["node_id"] == info["node_id"]


def test_gossip_reaches_every_node_without_resolve(make_peer):
    # A line: c -> b -> a. What c accepts must cross b to reach a.
    a, b, c = make_peer(), make_peer(), make_peer()
    wait_linked(b, register(b, a)[0])
    wait_linked(c, register(c, b, form="tcp")[0])

    txid, _ = c.submit(tx_body(data={"from": "c"}))
    for node in (b, a):
        wait_for(lambda: pending(node, txid), GOSSIP_TIMEOUT, "the tx at " + node.url)

    block = a.mine()
    assert txid in [t["txid"] for t in block["transactions"]]
    for node in (b, c):
        wait_for(lambda: tip(node) == (block["index"], block["hash"]),
                 GOSSIP_TIMEOUT, "the block at " + node.url)
        r = node.tx(txid).json()
        assert r["status"] == "confirmed" and r["block_hash"] == block["hash"]
    # Nothing loops: each node's mempool is empty again and stays so.
    time.sleep(1)
    for node in (a, b, c):
        assert node.mempool_size() == 0
        node.assert_no_crash()


def test_late_node_syncs_1000_blocks(make_peer):
    a = make_peer()
    for n in range(0, 1000):
        if n % 100 == 0:
            a.submit(tx_body(n))
        a.mine()
    assert a.height() == 1000
    b = make_peer()
    register(b, a)
    # Progress is visible while it runs, and it ends at a's tip.
    seen_syncing = []

    def caught_up():
        s = b.status()
        if s["sync"] and s["sync"].get("syncing"):
            seen_syncing.append(s["sync"])
        return s["height"] == 1000 and s["tip"] == a.status()["tip"]

    wait_for(caught_up, 120, "b to sync 1000 blocks", interval=0.02)
    assert b.chain() == a.chain()
    assert "sync started" in b.log_text() and "sync stopped" in b.log_text()
    if seen_syncing:
        assert {"peer", "target_height", "blocks_left"} <= set(seen_syncing[0])


def test_split_network_converges_on_most_work(make_peer):
    a, b = make_peer(), make_peer()
    wait_linked(b, register(b, a)[0])
    wait_linked(a, register(a, b)[0])
    base = a.mine()
    wait_for(lambda: tip(b)[1] == base["hash"], GOSSIP_TIMEOUT, "b to see the base block")

    # Cut the link: freeze both peersyncs' counterpart by stopping b's.
    pid = b.signal_service("peersync", signal.SIGSTOP)
    try:
        accepted = []
        for n in range(3):
            accepted.append(a.submit(tx_body(data=["a", n]))[0])
        for _ in range(2):
            a.mine()
        for n in range(4):
            accepted.append(b.submit(tx_body(data=["b", n]))[0])
            b.mine()
        # A transaction that is in a's branch only, to be taken back.
        assert a.height() == base["index"] + 2
        assert b.height() == base["index"] + 4
    finally:
        os.kill(pid, signal.SIGCONT)

    # b's branch has more work: a reorganises onto it.
    wait_for(lambda: tip(a) == tip(b) and tip(a)[0] == base["index"] + 4,
             GOSSIP_TIMEOUT, "a and b to agree")
    assert a.chain() == b.chain()
    # Every transaction that got a 201 is pending or mined, on both.
    for node in (a, b):
        for txid in accepted:
            wait_for(lambda: node.tx(txid).status_code == 200, GOSSIP_TIMEOUT,
                     "%s at %s" % (txid, node.url))
    assert "reorganised" in a.log_text()
    # What a mined alone is pending again, and mines into the next block.
    block = a.mine()
    mined = {t["txid"] for t in block["transactions"]}
    for txid in accepted[:3]:
        assert txid in mined or b.tx(txid).json()["status"] == "confirmed"
    for node in (a, b):
        node.assert_no_crash()


def test_resolve_with_a_dead_peer_is_bounded(make_peer):
    a, b = make_peer(), make_peer()
    dead = "http://127.0.0.1:%d" % free_port()
    r = a.post("/nodes/register", {"nodes": ["http://127.0.0.1:%d" % b.port, dead]})
    assert r.status_code == 201
    wait_linked(a, "http://127.0.0.1:%d" % b.port)
    b.stop()
    started = time.monotonic()
    r = a.get("/nodes/resolve", timeout=120)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["message"] == "Our chain is authoritative"
    assert len(body["chain"]) == a.height() + 1
    statuses = {p["address"]: p["status"] for p in body["peers"]}
    assert set(statuses) == {"http://127.0.0.1:%d" % b.port, dead}
    assert statuses[dead] != "linked"
    assert time.monotonic() - started < 60
    a.assert_no_crash()


def test_resolve_syncs_from_the_peer_with_most_work(make_peer):
    a, b = make_peer(), make_peer()
    for _ in range(5):
        b.mine()
    register(a, b)
    r = a.get("/nodes/resolve", timeout=120)
    assert r.status_code == 200, r.text
    body = r.json()
    # Linking alone may already have synced a; either way a now has b's chain.
    assert body["message"] in ("Our chain was replaced", "Our chain is authoritative")
    chain = body["new_chain"] if body["message"] == "Our chain was replaced" else body["chain"]
    assert [blk["hash"] for blk in chain] == [blk["hash"] for blk in b.chain()["chain"]]


def test_another_network_is_refused(make_peer):
    a = make_peer()
    other = make_peer(extra_args=["--network", "other"])
    address = register(a, other)[0]
    entry = wait_for(lambda: (peer_entry(a, address) or {}).get("state") == "refused"
                     and peer_entry(a, address), GOSSIP_TIMEOUT, "the refusal")
    assert "network" in entry["reason"]


def test_garbage_and_invalid_blocks_get_a_peer_banned(make_peer):
    a = make_peer()
    info = a.get("/node/info").json()
    ctx = zmq.Context()
    s, public = _curve_dealer(ctx, info)
    try:
        s.send_multipart([b"HELLO", b"\xc1 not msgpack"])
        s.send_multipart([b"one frame only"])
        hello = {"reply": True, "version": 1, "network": info["network"],
                 "genesis": bytes.fromhex(info["genesis"]), "node_id": "badbadbadbadbad0",
                 "public_key": public, "endpoint": "tcp://127.0.0.1:9",
                 "height": 0, "work": bytes(32), "tip": bytes(32)}
        s.send_multipart([b"HELLO", msgpack.packb(hello)])
        assert s.poll(10000), "no HELLO back"
        assert s.recv_multipart()[0] == b"HELLO"
        #  124 bytes: the size of no header (version 2's are 100), malformed.
        bad_block = msgpack.packb({"header": b"\x01" * 124, "txs": []})
        for _ in range(3):
            s.send_multipart([b"BLOCK", msgpack.packb({"block": bad_block})])
            s.send_multipart([b"NO-SUCH-COMMAND", msgpack.packb({})])
        rejected = None
        deadline = time.monotonic() + GOSSIP_TIMEOUT
        while time.monotonic() < deadline and not rejected:
            if s.poll(200):
                frames = s.recv_multipart()
                if frames[0] == b"REJECT":
                    rejected = msgpack.unpackb(frames[1])["reason"]
        assert rejected and "banned" in rejected
        entry = next(n for n in a.get("/nodes").json()["nodes"]
                     if n["node_id"] == "badbadbadbadbad0")
        assert entry["state"] == "banned" and entry["score"] <= -100
        assert entry["banned_for_ms"] > 0
        # Ignored while banned; the node carries on.
        s.send_multipart([b"BLOCK", msgpack.packb({"block": bad_block})])
        assert a.height() == 0
        a.mine()
        assert a.height() == 1
        a.assert_no_crash()
    finally:
        s.close()
        ctx.term()


def test_link_comes_back_after_the_peer_restarts(make_peer):
    a, b = make_peer(), make_peer()
    address = register(a, b)[0]
    wait_linked(a, address)
    b.restart()
    # a notices the silence, greets again, and the link carries gossip.
    wait_linked(a, address)
    txid, _ = a.submit(tx_body(data="after restart"))
    wait_for(lambda: pending(b, txid), GOSSIP_TIMEOUT, "the tx at the restarted peer")
    block = b.mine()
    wait_for(lambda: tip(a)[1] == block["hash"], GOSSIP_TIMEOUT, "the block back at a")


def test_nodes_registered_both_ways_gossip_over_one_link(make_peer):
    """Two nodes that registered each other have two links. Both ends
    agree that one of them is redundant: it carries no gossip and /status
    counts the peer once; gossip still flows both ways over the other."""
    a, b = make_peer(), make_peer()
    wait_linked(a, register(a, b)[0])
    wait_linked(b, register(b, a)[0])

    def links(node):
        return {n["direction"]: n["redundant"] for n in node.get("/nodes").json()["nodes"]
                if n["state"] == "linked"}

    for node in (a, b):
        wait_for(lambda: sorted(links(node).values()) == [False, True], GOSSIP_TIMEOUT,
                 "both links at " + node.url)
        assert (node.status()["peers"], node.status()["peers_linked"]) == (1, 1)
    #  The link a opened is b's inbound one: redundant at both ends or neither.
    assert links(a)["out"] == links(b)["in"] and links(a)["in"] == links(b)["out"]

    for source, target in ((a, b), (b, a)):
        txid, _ = source.submit(tx_body(data={"from": source.url}))
        wait_for(lambda: pending(target, txid), GOSSIP_TIMEOUT, "the tx at " + target.url)
    block = b.mine()
    wait_for(lambda: tip(a) == (block["index"], block["hash"]), GOSSIP_TIMEOUT, "the block at a")
    for node in (a, b):
        node.assert_no_crash()


def _curve_dealer(ctx, info):
    s = ctx.socket(zmq.DEALER)
    public, secret = zmq.curve_keypair()
    s.curve_serverkey = info["public_key"].encode()
    s.curve_publickey, s.curve_secretkey = public, secret
    s.linger = 0
    s.connect(info["p2p_endpoint"])
    return s, public.decode()


def _hello(info, public, node_id, **changes):
    hello = {"reply": True, "version": 1, "network": info["network"],
             "genesis": bytes.fromhex(info["genesis"]), "node_id": node_id,
             "public_key": public, "endpoint": "tcp://127.0.0.1:9",
             "height": 0, "work": bytes(32), "tip": bytes(32)}
    hello.update(changes)
    return msgpack.packb(hello)


def _first(s, command, timeout=GOSSIP_TIMEOUT):
    """The body of the first message `command` on s, decoded, or None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if s.poll(200):
            frames = s.recv_multipart()
            if frames[0] == command:
                return msgpack.unpackb(frames[1])
    return None


def test_reject_says_why_with_a_code(make_peer):
    """REJECT carries a code beside its reason: wrong_network, protocol,
    banned, full (docs/p2p.md)."""
    a = make_peer()
    info = a.get("/node/info").json()
    ctx = zmq.Context()
    sockets = []
    try:
        cases = [({"network": "other"}, "wrong_network", "network"),
                 ({"version": 2}, "protocol", "version")]
        for n, (changes, code, word) in enumerate(cases):
            s, public = _curve_dealer(ctx, info)
            sockets.append(s)
            s.send_multipart([b"HELLO", _hello(info, public, "rejected%08d" % n, **changes)])
            reject = _first(s, b"REJECT")
            assert reject and reject["code"] == code and word in reject["reason"], reject
        # Malformed messages until banned.
        s, public = _curve_dealer(ctx, info)
        sockets.append(s)
        s.send_multipart([b"HELLO", _hello(info, public, "tobebanned000000")])
        assert _first(s, b"HELLO")
        for _ in range(10):
            s.send_multipart([b"STATUS", b"\xc1"])
        reject = _first(s, b"REJECT")
        assert reject and reject["code"] == "banned" and "banned" in reject["reason"], reject
        a.assert_no_crash()
    finally:
        for s in sockets:
            s.close()
        ctx.term()


def test_a_full_node_rejects_one_more_inbound_peer(make_peer):
    """64 inbound peers at most: the 65th HELLO gets REJECT code full. All
    are sent at once, well within the 7 s a silent inbound peer is kept."""
    a = make_peer()
    info = a.get("/node/info").json()
    ctx = zmq.Context()
    sockets = []
    try:
        for n in range(64):
            s, public = _curve_dealer(ctx, info)
            sockets.append(s)
            s.send_multipart([b"HELLO", _hello(info, public, "inbound%09d" % n)])
        for n, s in enumerate(sockets):
            assert _first(s, b"HELLO"), "no HELLO back for inbound peer %d" % n
        s, public = _curve_dealer(ctx, info)
        sockets.append(s)
        s.send_multipart([b"HELLO", _hello(info, public, "onetoomany000000")])
        reject = _first(s, b"REJECT")
        assert reject and reject["code"] == "full", reject
        a.assert_no_crash()
    finally:
        for s in sockets:
            s.close()
        ctx.term()


def _ask_peersync(ctx, node, command, body=None):
    """[command][request id][body] to the node's peersync on the bus:
    (status, the reply's raw msgpack bytes)."""
    s = ctx.socket(zmq.DEALER)
    s.linger = 0
    s.connect("ipc://%s/run/peersync.ipc" % node.data_dir)
    try:
        s.send_multipart([command, b"\x05" * 8, msgpack.packb(body or {})])
        assert s.poll(GOSSIP_TIMEOUT * 1000), "peersync did not answer %s" % command
        status, request_id, raw = s.recv_multipart()
        assert request_id == b"\x05" * 8
        return status.decode(), raw
    finally:
        s.close()


def _names(body, prefix=""):
    """A decoded body's keys in wire order, nested ones as parent.key (the
    items of a list of maps must all have the same keys)."""
    names = []
    for key, value in body.items():
        names.append(prefix + key)
        if isinstance(value, dict):
            names += _names(value, prefix + key + ".")
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            shapes = {tuple(_names(item, prefix + key + ".")) for item in value}
            assert len(shapes) == 1, shapes
            names += list(shapes.pop())
    return names


def _as_documented(raw, kind, wire, skip=()):
    """The body decodes, its keys are docs/bus.md's in its order (every
    field there but those marked `?`), and it is msgpack's canonical
    encoding of itself: the bytes a client writing from the page expects."""
    from test_bus_docs import documented
    fields = documented()[(kind, wire, "peersync")]
    body = msgpack.unpackb(raw)
    names = [n for n in _names(body) if n not in skip]
    assert names == [n for n, _ in fields if n in names], (wire, names, fields)
    required = {n for n, k in fields if not k.endswith("?")}
    assert required <= set(names) | set(skip), (wire, required - set(names))
    assert msgpack.packb(body) == raw, wire
    return body


def test_peersync_bus_messages_are_as_documented(make_peer):
    """PEER.LIST, PEER.ADD, NODE.INFO, RESOLVE and peer.connected as they
    go on the bus: the fields docs/bus.md lists, in its order, and a body
    that is not the definition's is refused with the field it lacks."""
    a, b = make_peer(), make_peer()
    ctx = zmq.Context()
    events = ctx.socket(zmq.SUB)
    events.linger = 0
    events.connect("ipc://%s/run/bus-out.ipc" % b.data_dir)
    events.setsockopt(zmq.SUBSCRIBE, b"peer.")
    try:
        time.sleep(0.5)             # the subscription reaches the bus
        address = register(b, a)[0]
        wait_linked(b, address)
        topic, raw, _ = events.recv_multipart()
        assert topic == b"peer.connected"
        event = msgpack.unpackb(raw)
        #  Every event body starts src, boot, topic_seq (docs/bus.md, Events).
        assert list(event) == ["src", "boot", "topic_seq", "address", "node_id", "state"], event
        assert event["topic_seq"] == 0      #  b's first peer.connected
        assert event["address"] == address and event["state"] == "linked"

        status, raw = _ask_peersync(ctx, b, b"PEER.LIST")
        body = _as_documented(raw, "REPLY", "PEER.LIST")
        peer = body["peers"][0]
        assert len(peer) == 11 and peer["address"] == address and peer["direction"] == "out"
        assert peer["node_id"] == a.get("/node/info").json()["node_id"]
        status, raw = _ask_peersync(ctx, b, b"NODE.INFO")
        assert status == "OK"
        info = _as_documented(raw, "REPLY", "NODE.INFO")
        assert info["genesis"].hex() == b.get("/node/info").json()["genesis"]
        status, raw = _ask_peersync(ctx, b, b"PEER.ADD", {"addresses": [address]})
        assert status == "OK"
        assert _as_documented(raw, "REPLY", "PEER.ADD") == {"peers": [address]}
        status, raw = _ask_peersync(ctx, b, b"RESOLVE")
        assert status == "OK"
        resolved = _as_documented(raw, "REPLY", "RESOLVE")
        assert len(resolved["peers"][0]) == 5 and resolved["peers"][0]["status"] == "linked"
        assert resolved["height"] == b.status()["height"] and resolved["replaced"] is False

        # What the definition refuses names the field; nothing is added.
        status, raw = _ask_peersync(ctx, b, b"PEER.ADD", {"addresses": ["127.0.0.1:1", 7]})
        refusal = msgpack.unpackb(raw)
        assert status == "INVALID" and refusal["code"] == "invalid", refusal
        assert "addresses item 1" in refusal["reason"], refusal
        status, raw = _ask_peersync(ctx, b, b"PEER.ADD", {"nodes": [address]})
        assert status == "INVALID" and "addresses" in msgpack.unpackb(raw)["reason"]
        status, raw = _ask_peersync(ctx, b, b"PEER.LIST")
        assert [p["address"] for p in msgpack.unpackb(raw)["peers"]] == [address]
        for node in (a, b):
            node.assert_no_crash()
    finally:
        events.close()
        ctx.term()
