"""Inbound peer slots: throw-away keys cannot lock honest nodes out.

The attack this guards against (issue 9): CurveZMQ keys cost nothing, so
an attacker opens links with fresh keys, misbehaves until banned, and used
to leave each ban holding an inbound slot for its ten minutes. Here 200
such keys come and go, then 64 links (a few silent) hold every slot, and a
real chainbus node still links and syncs. Attack clients speak the peer
protocol with python3-zmq from several loopback source addresses
(127.0.0.x: the node limits links per address, and groups loopback
addresses by the whole address), so that the per-address limit alone does
not explain what is seen. docs/p2p.md "Peer slots and eviction".
"""

import re
import time

import msgpack
import zmq

from chainbus_node import wait_for

TIMEOUT = 30            # generous: a sanitizer build on two loaded cores
PER_ADDRESS = 8         # --max-inbound-per-address, with --limit-loopback
MAX_BANS = 150          # --max-bans: fewer than the 200 bans, to see the bound
BAN_ROWS = 32           # bans GET /nodes lists at most (the latest)


def _info(node):
    return node.get("/node/info").json()


def _dealer(ctx, info, source, keys=None, reconnect=True):
    """A CurveZMQ DEALER to the node's peer port from source (127.0.0.x)."""
    s = ctx.socket(zmq.DEALER)
    if not reconnect:
        s.reconnect_ivl = -1
    public, secret = keys or zmq.curve_keypair()
    s.curve_serverkey = info["public_key"].encode()
    s.curve_publickey, s.curve_secretkey = public, secret
    s.linger = 0
    s.connect("tcp://%s:0;%s" % (source, info["p2p_endpoint"][len("tcp://"):]))
    return s, (public, secret)


def _hello(info, public, node_id):
    return msgpack.packb({
        "reply": True, "version": 1, "network": info["network"],
        "genesis": bytes.fromhex(info["genesis"]), "node_id": node_id,
        "public_key": public.decode(), "endpoint": "tcp://127.0.0.1:9",
        "height": 0, "work": bytes(32), "tip": bytes(32)})


STATUS = msgpack.packb({"height": 0, "work": bytes(32), "tip": bytes(32), "reply": False})


class Crowd:
    """Attack links: each a socket, what it was last told (HELLO, REJECT)."""

    def __init__(self, ctx, info):
        self.ctx, self.info = ctx, info
        self.links = []           # dicts: socket, keys, node_id, source, got
        self.next_beat = 0

    def open(self, source, node_id, hello=True, keys=None, reconnect=True):
        s, keys = _dealer(self.ctx, self.info, source, keys, reconnect)
        link = {"socket": s, "keys": keys, "node_id": node_id, "source": source,
                "got": [], "alive": True}
        if hello:
            s.send_multipart([b"HELLO", _hello(self.info, keys[0], node_id)])
        self.links.append(link)
        return link

    def drain(self):
        for link in self.links:
            if not link["alive"]:
                continue
            s = link["socket"]
            while s.poll(0):
                frames = s.recv_multipart()
                if frames[0] == b"REJECT":
                    link["got"].append(("REJECT", msgpack.unpackb(frames[1])))
                elif frames[0] == b"HELLO":
                    link["got"].append(("HELLO", None))

    def beat(self, links):
        """STATUS on each live link once a second: they are not silent."""
        if time.monotonic() < self.next_beat:
            return
        self.next_beat = time.monotonic() + 1.0
        for link in links:
            if link["alive"]:
                link["socket"].send_multipart([b"STATUS", STATUS], zmq.DONTWAIT)

    def until(self, predicate, timeout, what, beating=()):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.drain()
            self.beat(beating)
            if predicate():
                return
            time.sleep(0.05)
        raise AssertionError("timed out waiting for " + what)

    def close(self, link):
        link["socket"].close()
        link["alive"] = False

    def close_all(self):
        for link in self.links:
            if link["alive"]:
                self.close(link)


def _rejects(link, code):
    return [body for kind, body in link["got"] if kind == "REJECT" and body["code"] == code]


def _helloed(link):
    return any(kind == "HELLO" for kind, _ in link["got"])


def _inbound(node, state=None):
    return [n for n in node.get("/nodes").json()["nodes"]
            if n["direction"] == "in" and (state is None or n["state"] == state)]


def test_banned_and_silent_links_release_slots_and_an_honest_node_gets_in(make_node):
    a = make_node(extra_args=["--max-inbound-per-address", str(PER_ADDRESS),
                              "--limit-loopback", "1", "--max-bans", str(MAX_BANS)])
    honest = make_node(miners=0)
    for _ in range(3):
        a.mine()
    info = _info(a)
    ctx = zmq.Context()
    crowd = Crowd(ctx, info)
    try:
        # 1. 200 throw-away keys in five waves of 40 (five addresses, eight
        #    each): HELLO, then unknown commands until banned. Each wave
        #    needs the slots that the previous waves' bans no longer hold
        #    (40 + 40 > 64 slots, 8 + 8 > 8 per address), while their
        #    sockets are still open; then all 200 go.
        waves = []
        for wave in range(5):
            links = [crowd.open("127.0.0.%d" % (100 + n // PER_ADDRESS),
                                "throwaway%03d%04d" % (wave, n)) for n in range(40)]
            for link in links:
                for _ in range(10):
                    link["socket"].send_multipart([b"NO-SUCH-COMMAND", msgpack.packb({})])
            crowd.until(lambda: all(_rejects(link, "banned") for link in links), TIMEOUT,
                        "wave %d banned" % wave)
            assert all(_helloed(link) for link in links), "a wave's link found no slot"
            waves.append(links)
        for links in waves:
            for link in links:
                crowd.close(link)
        # No ban holds a slot. The bans themselves are remembered, at most
        # --max-bans of them (the report line counts them); GET /nodes shows
        # the latest 32, each a row of its own.
        banned = _inbound(a, "banned")
        assert len(banned) == BAN_ROWS, len(banned)
        assert all(n["banned_for_ms"] > 0 and n["score"] <= -100 for n in banned)
        assert {n["node_id"] for n in banned} <= {l["node_id"] for l in waves[-1]}
        assert not [n for n in _inbound(a) if n["state"] != "banned"]
        # A banned key is refused at the handshake, even on a new link.
        again = crowd.open("127.0.0.110", "banagain00000000", keys=waves[-1][0]["keys"])
        time.sleep(2)
        crowd.drain()
        assert not again["got"], again["got"]
        crowd.close(again)

        # 2. One address gets its share and no more.
        share = [crowd.open("127.0.0.50", "share%011d" % n) for n in range(PER_ADDRESS + 2)]
        crowd.until(lambda: all(_helloed(l) or _rejects(l, "full") for l in share), TIMEOUT,
                    "the answers to one address's links")
        assert sum(_helloed(l) for l in share) == PER_ADDRESS
        refused = [l for l in share if _rejects(l, "full")]
        assert len(refused) == 2 and all("address" in _rejects(l, "full")[0]["reason"]
                                         for l in refused), [l["got"] for l in refused]
        for link in refused:
            crowd.close(link)
        holders = [l for l in share if _helloed(l)]

        # 3. Every slot taken: 56 more links from seven more addresses keep
        #    talking, and 4 of another say HELLO and then nothing (each
        #    evicts a talker: their address group is the smallest).
        for n in range(56):
            holders.append(crowd.open("127.0.0.%d" % (51 + n // PER_ADDRESS),
                                      "holder%010d" % n))
        crowd.until(lambda: all(_helloed(l) for l in holders), TIMEOUT, "64 links",
                    beating=holders)
        crowd.until(lambda: len(_inbound(a, "linked")) == 64, TIMEOUT, "64 slots taken",
                    beating=holders)
        silent = [crowd.open("127.0.0.60", "silent%010d" % n) for n in range(4)]
        crowd.until(lambda: all(_helloed(l) for l in silent), TIMEOUT, "the silent links",
                    beating=holders)
        assert len(_inbound(a, "linked")) == 64

        # 4. The honest node: links (evicting one more talker) and syncs.
        r = honest.post("/nodes/register", {"nodes": ["http://127.0.0.1:%d" % a.port]})
        assert r.status_code == 201, r.text
        honest_id = _info(honest)["node_id"]
        crowd.until(lambda: any(n["node_id"] == honest_id and n["state"] == "linked"
                                for n in _inbound(a)), TIMEOUT, "the honest node in a's slots",
                    beating=holders)
        crowd.until(lambda: honest.status()["tip"] == a.status()["tip"], TIMEOUT,
                    "the honest node to sync", beating=holders)
        assert honest.height() == a.height() == 3
        # Talkers were evicted to make room, one per newcomer; the REJECT
        # says so. The lone honest peer and the silent ones were not.
        evicted = [l for l in holders if any("evicted" in b["reason"]
                                             for b in _rejects(l, "full"))]
        assert 4 <= len(evicted) <= 5, len(evicted)
        # 5. The silent links give their slots back once silent (7 s).
        silent_ids = {l["node_id"] for l in silent}
        crowd.until(lambda: not [n for n in _inbound(a) if n["node_id"] in silent_ids],
                    TIMEOUT, "the silent links' slots", beating=holders)
        assert any(n["node_id"] == honest_id and n["state"] == "linked" for n in _inbound(a))
        # The node logged the refusals as counts, not a line per link.
        wait_for(lambda: "inbound slots taken=" in a.log_text(), TIMEOUT, "the slots report")
        wait_for(lambda: sum(int(n) for n in re.findall(r"refused_address=(\d+)", a.log_text()))
                 == 2, TIMEOUT, "the two per-address refusals counted")
        assert "bans=%d " % MAX_BANS in a.log_text()
        a.assert_no_crash()
    finally:
        crowd.close_all()
        ctx.term()


def test_a_closed_link_gives_its_slot_back_at_once(make_node):
    """A link that closes frees its slot when the socket closes, not after
    the 7 s a silent link is kept: with one slot, a second peer gets in
    a moment after the first one's socket closed."""
    a = make_node(miners=0, extra_args=["--max-inbound", "1"])
    info = _info(a)
    ctx = zmq.Context()
    crowd = Crowd(ctx, info)
    try:
        first = crowd.open("127.0.0.2", "firstpeer0000000")
        crowd.until(lambda: _helloed(first), TIMEOUT, "the first link")
        # The slot is taken: a peer of the same group is refused.
        other = crowd.open("127.0.0.2", "otherpeer0000000")
        crowd.until(lambda: _rejects(other, "full"), TIMEOUT, "the refusal")
        crowd.close(first)
        crowd.close(other)
        wait_for(lambda: not _inbound(a), 5, "the closed link's slot to be released")
        second = crowd.open("127.0.0.2", "secondpeer000000")
        crowd.until(lambda: _helloed(second), TIMEOUT, "the second link")
        a.assert_no_crash()
    finally:
        crowd.close_all()
        ctx.term()


def _str(data):
    """A msgpack str of any bytes (python's packer takes only valid text)."""
    assert len(data) < 256
    return bytes([0xd9, len(data)]) + data


def test_a_peers_words_cannot_break_the_peer_list(make_node):
    """What a peer says of itself reaches logs and GET /nodes: a HELLO
    whose id or endpoint holds control bytes is refused as malformed, and
    a REJECT's reason of any bytes (not UTF-8, controls) is shown made
    printable, never as a 502 from a peer list that is no longer JSON."""
    a = make_node(miners=0)
    info = _info(a)
    ctx = zmq.Context()
    crowd = Crowd(ctx, info)
    try:
        for node_id, endpoint in ((b"bad\x01id\nxxxxxxxxx", b"tcp://127.0.0.1:9"),
                                  (b"goodid0000000000", b"tcp://127.0.0.1:9\x1b[2J")):
            link = crowd.open("127.0.0.3", "unused", hello=False)
            fields = msgpack.unpackb(_hello(info, link["keys"][0], "x" * 16))
            body = b"\x8a"      # a map of the ten HELLO fields, by hand
            for key, value in fields.items():
                if key == "node_id":
                    value = node_id
                elif key == "endpoint":
                    value = endpoint
                packed = _str(value) if isinstance(value, bytes) and key in (
                    "node_id", "endpoint") else msgpack.packb(value)
                body += msgpack.packb(key) + packed
            link["socket"].send_multipart([b"HELLO", body])
        # A malformed HELLO costs its sender and is not answered: no link.
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            crowd.drain()
            time.sleep(0.05)
        assert not any(_helloed(link) for link in crowd.links)
        r = a.get("/nodes")
        assert r.status_code == 200 and not _inbound(a, "linked"), r.text[:300]

        talker = crowd.open("127.0.0.4", "talkerpeer000000")
        crowd.until(lambda: _helloed(talker), TIMEOUT, "the talker's link")
        reason = b"no \xff\xfe UTF-8, \x00 NUL, \x1b[31m escapes \xc3"
        reject = b"\x82" + msgpack.packb("code") + msgpack.packb("full") \
            + msgpack.packb("reason") + _str(reason)
        talker["socket"].send_multipart([b"REJECT", reject])

        def refused_row():
            r = a.get("/nodes")
            assert r.status_code == 200, r.text[:300]
            rows = [n for n in r.json()["nodes"] if "refused us" in (n.get("reason") or "")]
            return rows[0] if rows else None
        wait_for(refused_row, TIMEOUT, "the refusing peer in GET /nodes")
        shown = refused_row()["reason"]
        assert "no ?? UTF-8, " in shown and "\x1b" not in shown, shown
        assert a.get("/status").status_code == 200
        a.assert_no_crash()
    finally:
        crowd.close_all()
        ctx.term()


def _connections_from(source, port):
    """Established TCP connections from source (dotted IPv4) to our port."""
    want = "".join("%02X" % int(b) for b in reversed(source.split(".")))
    count = 0
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            local, remote, state = line.split()[1:4]
            if (int(local.split(":")[1], 16) == port and remote.split(":")[0] == want
                    and state == "01"):
                count += 1
    return count


def test_refused_newcomers_do_not_keep_their_connections(make_node):
    """A refused newcomer is told why, then its connection is shut: 40
    links from one address with a share of 4 leave 4 connections open, not
    40 (each one a descriptor: enough of them would leave none for honest
    peers), and an honest node from another address still links."""
    a = make_node(miners=0, extra_args=["--limit-loopback", "1",
                                        "--max-inbound-per-address", "4"])
    info = _info(a)
    port = int(info["p2p_endpoint"].rsplit(":", 1)[1])
    ctx = zmq.Context()
    crowd = Crowd(ctx, info)
    try:
        links = []
        for i in range(40):
            links.append(crowd.open("127.0.0.60", "crowd%011d" % i, reconnect=False))
        crowd.until(lambda: sum(bool(_rejects(l, "full")) for l in links) >= 36, TIMEOUT,
                    "36 refusals", beating=links)
        wait_for(lambda: _connections_from("127.0.0.60", port) <= 4, 10,
                 "the refused connections to be shut")
        assert sum(_helloed(l) for l in links) == 4
        b = make_node(miners=0)
        r = b.post("/nodes/register", {"nodes": ["http://127.0.0.1:%d" % a.port]})
        assert r.status_code in (200, 201), r.text
        wait_for(lambda: any(n["state"] == "linked" for n in b.get("/nodes").json()["nodes"]),
                 TIMEOUT, "the honest node to link")
        a.assert_no_crash()
    finally:
        crowd.close_all()
        ctx.term()


def test_connections_that_say_nothing_are_shut(make_node):
    """A CurveZMQ handshake and then silence (ZeroMQ's heartbeats would
    keep such a connection for good, a descriptor each): shut 5 s after
    the handshake, while a peer that spoke keeps its link."""
    a = make_node(miners=0)
    info = _info(a)
    port = int(info["p2p_endpoint"].rsplit(":", 1)[1])
    ctx = zmq.Context()
    crowd = Crowd(ctx, info)
    try:
        talker = crowd.open("127.0.0.71", "talkerpeer000000")
        mutes = [crowd.open("127.0.0.70", "unused", hello=False, reconnect=False)
                 for _ in range(30)]
        crowd.until(lambda: _helloed(talker), TIMEOUT, "the talker's link", beating=[talker])
        wait_for(lambda: _connections_from("127.0.0.70", port) == 30, TIMEOUT,
                 "the mute connections' handshakes")
        deadline = time.monotonic() + 25
        while time.monotonic() < deadline and _connections_from("127.0.0.70", port):
            crowd.until(lambda: True, 1, "", beating=[talker])
            time.sleep(0.2)
        assert _connections_from("127.0.0.70", port) == 0, "mute connections still open"
        assert _connections_from("127.0.0.71", port) == 1, _inbound(a)
        assert [n["state"] for n in _inbound(a)] == ["linked"], _inbound(a)
        wait_for(lambda: re.search(r"quiet_closed=(\d+)", a.log_text()), 15,
                 "the count in the slots report")
        assert sum(int(n) for n in re.findall(r"quiet_closed=(\d+)", a.log_text())) >= 30
        a.assert_no_crash()
    finally:
        crowd.close_all()
        ctx.term()
