"""The gateway speaks libcommon's messages (cbus_msgs.h): the requests it
sends are the documented bytes, the replies it reads are decoded by their
definition, and a reply that does not fit its definition is a 502 rather
than a guess. The gateway runs alone against fake services: a ROUTER per
service and a PUB in the bus's place, in Python, so that each test says
exactly what a service answers.
"""

import json
import os
import subprocess
import tempfile
import threading
import shutil
import time

import msgpack
import pytest
import requests
import zmq

from chainbus_node import SANITIZER_MARKS, bin_dir, free_port, tx_body, wait_for

SERVICES = ("chainstore", "mempool", "peersync")
HASH = bytes(range(32))
HEX = HASH.hex()


def pack(value):
    return msgpack.packb(value, use_bin_type=True)


def refusal(code, reason):
    return "INVALID", {"code": code, "reason": reason}


class FakeServices:
    """Three fake services and a fake bus under a fresh data folder, and a
    gateway on them. answers[(service, command)] is (status, body): a body
    that is bytes is sent as it is, anything else packed. Requests seen
    are kept as (service, command, body bytes)."""

    def __init__(self):
        self.root = tempfile.mkdtemp(prefix="cbg", dir="/tmp")
        run = os.path.join(self.root, "run")
        os.makedirs(run)
        self.ctx = zmq.Context()
        self.routers = {}
        for name in SERVICES:
            s = self.ctx.socket(zmq.ROUTER)
            s.linger = 0
            s.bind("ipc://%s/%s.ipc" % (run, name))
            self.routers[name] = s
        self.bus = self.ctx.socket(zmq.PUB)
        self.bus.linger = 0
        self.bus.bind("ipc://%s/bus-out.ipc" % run)
        self.answers = {}
        self.seen = []
        self.lock = threading.Lock()
        self.stopping = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()
        self.port = free_port()
        self.log_path = os.path.join(self.root, "gateway.log")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [os.path.join(bin_dir(), "chainbus-gateway"), "--data-dir", self.root,
                 "--http-port", str(self.port), "--request-timeout", "3000"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        self.url = "http://127.0.0.1:%d" % self.port
        wait_for(self._up, 60, "the gateway to reach the fake services", interval=0.1)
        self.requests_seen()

    def _up(self):
        """The gateway listens and its DEALERs are connected (it sends
        nothing to a service it is not connected to yet: ZMQ_IMMEDIATE)."""
        try:
            services = requests.get(self.url + "/status", timeout=5).json()["services"]
        except requests.ConnectionError:
            assert self.proc.poll() is None, self.log()
            return False
        return all(services[name]["up"] for name in SERVICES)

    def _serve(self):
        poller = zmq.Poller()
        for s in self.routers.values():
            poller.register(s, zmq.POLLIN)
        while not self.stopping:
            for s, _ in poller.poll(50):
                name = next(n for n, r in self.routers.items() if r is s)
                ident, command, request_id, body = s.recv_multipart()
                command = command.decode()
                with self.lock:
                    self.seen.append((name, command, body))
                    status, out = self.answers.get(
                        (name, command), refusal("invalid", "not in this test"))
                out = out if isinstance(out, bytes) else pack(out)
                s.send_multipart([ident, status.encode(), request_id, out])

    def answer(self, service, command, body, status="OK"):
        self.answers[(service, command)] = (status, body)

    def get(self, path, **kw):
        return requests.get(self.url + path, timeout=30, **kw)

    def post(self, path, body):
        return requests.post(self.url + path, data=json.dumps(body).encode(), timeout=30,
                             headers={"Content-Type": "application/json"})

    def requests_seen(self):
        with self.lock:
            seen, self.seen = self.seen, []
        return seen

    def log(self):
        with open(self.log_path, errors="replace") as log:
            return log.read()

    def close(self):
        self.proc.terminate()
        try:
            code = self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        self.stopping = True
        self.thread.join(5)
        for s in list(self.routers.values()) + [self.bus]:
            s.close()
        self.ctx.term()
        text = self.log()
        assert code == 0, text[-3000:]
        assert not any(mark in text for mark in SANITIZER_MARKS), text[-6000:]
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def fake():
    f = FakeServices()
    try:
        yield f
    finally:
        f.close()


TIP = {"height": 0, "hash": HASH, "work": HASH, "time_ms": 1700000000000,
       "network": "dev", "genesis": HASH, "bits": 0x2000ffff}
PEER = {"address": "http://127.0.0.1:5001", "state": "linked", "height": 7, "work": "00ff",
        "node_id": "11b62489ffdb72d8", "direction": "out", "redundant": False, "score": -20,
        "reason": "", "last_seen_ms": 1795246130274, "banned_for_ms": 0}


def test_requests_are_the_documented_bytes(fake):
    """Each route's request, byte for byte, as docs/bus.md has it (keys in
    the definition's order, optional keys left out, {} as 0x80)."""
    expected = [
        ("/blocks/5", [("chainstore", "BLOCK.GET", pack({"height": 5}))]),
        ("/blocks/" + HEX, [("chainstore", "BLOCK.GET", pack({"hash": HASH}))]),
        ("/transactions?user=u&limit=3&before=4:2",
         [("chainstore", "HISTORY", pack({"user": "u", "limit": 3, "before_height": 4,
                                          "before_index": 2}))]),
        ("/transactions?key=k", [("chainstore", "HISTORY", pack({"key": "k", "limit": 20}))]),
        ("/transactions/" + HEX, [("mempool", "TX.GET", pack({"txid": HASH})),
                                  ("chainstore", "TX.GET", pack({"txid": HASH}))]),
        ("/mine", [("mempool", "MINE", b"\x80")]),
        ("/nodes", [("peersync", "PEER.LIST", b"\x80")]),
        ("/node/info", [("peersync", "NODE.INFO", b"\x80")]),
        ("/nodes/resolve", [("peersync", "RESOLVE", b"\x80")]),
    ]
    fake.answer("mempool", "TX.GET", {"code": "not_found", "reason": "no"}, status="NOTFOUND")
    for path, sent in expected:
        r = fake.get(path)
        assert r.status_code == 400, (path, r.status_code, r.text)
        assert r.json() == {"message": "not in this test", "code": "invalid"}
        assert fake.requests_seen() == sent, path

    #  GET /chain pins the tip, then asks for pages from it.
    fake.answer("chainstore", "TIP", dict(TIP, height=3))
    with pytest.raises(requests.RequestException):
        fake.get("/chain").content
    assert fake.requests_seen() == [
        ("chainstore", "TIP", b"\x80"),
        ("chainstore", "CHAIN.PAGE", pack({"from": 0, "to": 3, "max_bytes": 256 * 1024}))]

    r = fake.post("/nodes/register", {"nodes": ["127.0.0.1:5001", "http://127.0.0.1:5002"]})
    assert r.status_code == 400, r.text
    assert fake.requests_seen() == [
        ("peersync", "PEER.ADD", pack({"addresses": ["127.0.0.1:5001", "http://127.0.0.1:5002"]}))]

    r = fake.post("/transactions/new", tx_body(1))
    assert r.status_code == 400, r.text
    (service, command, body), = fake.requests_seen()
    assert (service, command) == ("mempool", "TX.SUBMIT")
    assert list(msgpack.unpackb(body)) == ["tx"]


def test_peersync_reports_are_shown_field_by_field(fake):
    """GET /nodes, GET /node/info and GET /status write what peersync
    decoded, in the API's form; keys a definition does not have are not
    shown."""
    redundant = dict(PEER, address="127.0.0.1:5002", redundant=True, direction="in",
                     state="connecting", score=3, banned_for_ms=-5)
    sync = {"syncing": True, "peer": "http://127.0.0.1:5001", "target_height": 9,
            "blocks_left": 2, "blocks_done": 7}
    fake.answer("peersync", "PEER.LIST",
                {"peers": [dict(PEER, newer_field=1), redundant], "sync": sync})
    r = fake.get("/nodes")
    assert r.status_code == 200, r.text
    assert r.text == json.dumps({"nodes": [PEER, redundant]})

    info = {"node_id": "11b62489ffdb72d8", "public_key": "i:Qk-H!lFLTSxStrh[{^GlyU4)->&GXlkkOfZsl0",
            "p2p_endpoint": "tcp://127.0.0.1:6000", "network": "dev", "genesis": HASH}
    fake.answer("peersync", "NODE.INFO", info)
    r = fake.get("/node/info")
    assert r.status_code == 200, r.text
    assert r.text == json.dumps(dict(info, genesis=HEX))

    fake.answer("peersync", "PEER.ADD", {"peers": ["127.0.0.1:5001"]})
    r = fake.post("/nodes/register", {"nodes": ["127.0.0.1:5001"]})
    assert r.status_code == 201, r.text
    assert r.text == json.dumps({"message": "New nodes have been added",
                                 "total_nodes": ["127.0.0.1:5001"]})

    fake.answer("chainstore", "TIP", TIP)
    fake.answer("mempool", "MEMPOOL.INFO", {"size": 4, "bytes": 900, "next_height": 1})
    status = fake.get("/status").json()
    assert (status["height"], status["tip"], status["work"]) == (0, HEX, HEX)
    assert status["mempool"] == {"size": 4, "bytes": 900}
    #  The redundant link is not counted; the sync is as peersync said.
    assert (status["peers"], status["peers_linked"]) == (1, 1)
    assert status["sync"] == sync
    assert json.dumps(status["sync"]) in fake.get("/status").text
    fake.answer("peersync", "PEER.LIST", {"peers": [], "sync": {"syncing": False}})
    assert '"sync": {"syncing": false}' in fake.get("/status").text


def bad_utf8(body):
    """body packed, with each "BADUTF8" in a str made 7 bytes of invalid
    UTF-8."""
    return pack(body).replace(b"BADUTF8", b"\xff\xfe\xfd\xfc\xfb\xfa\xf9")


def chainstore(text):
    return "chainbus-chainstore sent " + text


def mempool(text):
    return "chainbus-mempool sent " + text


def peersync(text):
    return "chainbus-peersync sent " + text


NO_GENESIS = {"node_id": "a", "public_key": "b", "p2p_endpoint": "c", "network": "dev"}
BAD_REPLIES = [
    #  (method, path, {(service, command): OK body}, message of the 502)
    ("GET", "/blocks/1",
     {("chainstore", "BLOCK.GET"): {"block": "text", "height": 1, "hash": HASH, "confirmations": 0}},
     chainstore("a block that does not decode")),
    ("GET", "/blocks/1",
     {("chainstore", "BLOCK.GET"): {"block": b"\x00" * 10, "height": 1, "hash": HASH,
                                    "confirmations": 0}},
     chainstore("a block that does not decode")),
    ("GET", "/blocks/1", {("chainstore", "BLOCK.GET"): b"\x91\x01"},
     chainstore("a reply that does not decode")),
    ("GET", "/mine", {("mempool", "MINE"): {"height": 1}},
     mempool("a mining reply that does not decode")),
    ("GET", "/chain", {("chainstore", "TIP"): dict(TIP, hash=b"short")},
     chainstore("a tip that does not decode")),
    ("GET", "/node/info", {("peersync", "NODE.INFO"): NO_GENESIS},
     peersync("node info that does not decode")),
    ("GET", "/node/info", {("peersync", "NODE.INFO"): dict(NO_GENESIS, genesis=HASH, network=b"x")},
     peersync("node info that does not decode")),
    ("GET", "/nodes", {("peersync", "PEER.LIST"): {"peers": [PEER]}},
     peersync("a peer list that does not decode")),
    ("GET", "/nodes", {("peersync", "PEER.LIST"): {
        "peers": [{k: v for k, v in PEER.items() if k != "score"}], "sync": {"syncing": False}}},
     peersync("a peer list that does not decode")),
    ("GET", "/nodes", {("peersync", "PEER.LIST"): bad_utf8({
        "peers": [dict(PEER, address="BADUTF8")], "sync": {"syncing": False}})},
     peersync("a peer list that does not decode")),
    ("GET", "/nodes/resolve", {("peersync", "RESOLVE"): {"replaced": False, "peers": [{}]}},
     peersync("a peer list that does not decode")),
    ("GET", "/nodes/resolve", {("peersync", "RESOLVE"): {"peers": []}},
     peersync("a peer list that does not decode")),
    ("POST", "/nodes/register", {("peersync", "PEER.ADD"): {"peers": [1]}},
     peersync("a peer list that does not decode")),
    ("GET", "/transactions?user=u", {("chainstore", "HISTORY"): {"items": [{}], "next": None}},
     chainstore("an incomplete history entry")),
    ("GET", "/transactions?user=u", {("chainstore", "HISTORY"): {"items": [], "next": 3}},
     chainstore("a history page that does not decode")),
    ("GET", "/transactions/" + HEX, {("mempool", "TX.GET"): {"received_ms": 1}},
     mempool("a transaction that does not decode")),
    ("GET", "/transactions/" + HEX,
     {("mempool", "TX.GET"): ("NOTFOUND", {"code": "not_found", "reason": "no"}),
      ("chainstore", "TX.GET"): {"tx": b"x", "block_hash": HASH, "height": 1, "index": 0}},
     chainstore("an incomplete transaction record")),
    ("POST", "/transactions/new", {("mempool", "TX.SUBMIT"): {"height": 1, "duplicate": False,
                                                             "confirmed": False}},
     mempool("a submission reply that does not decode")),
]


@pytest.mark.parametrize("method, path, answers, message", BAD_REPLIES,
                         ids=["%s %s %d" % (m, p, i) for i, (m, p, _, _) in enumerate(BAD_REPLIES)])
def test_a_reply_that_does_not_decode_is_a_502(fake, method, path, answers, message):
    for (service, command), body in answers.items():
        status, body = body if isinstance(body, tuple) else ("OK", body)
        fake.answer(service, command, body, status=status)
    if method == "POST":
        body = tx_body(1) if path == "/transactions/new" else {"nodes": ["127.0.0.1:5001"]}
        r = fake.post(path, body)
    else:
        r = fake.get(path)
    assert r.status_code == 502, (r.status_code, r.text)
    assert r.json() == {"message": message, "code": "internal"}


def test_status_shows_a_reply_that_does_not_decode_as_unknown(fake):
    """A service that answers, but not in its message's shape, is up with
    its values null: GET /status still answers."""
    fake.answer("chainstore", "TIP", {k: v for k, v in TIP.items() if k != "work"})
    fake.answer("mempool", "MEMPOOL.INFO", {"size": 1})
    fake.answer("peersync", "PEER.LIST", {"peers": [{"address": "x"}], "sync": {"syncing": False}})
    r = fake.get("/status")
    assert r.status_code == 200, r.text
    status = r.json()
    assert status["ok"] is False
    assert (status["height"], status["tip"], status["mempool"], status["peers"], status["sync"]) \
        == (None, None, None, None, None)
    for name in SERVICES:
        assert status["services"][name]["up"] is True, status


def heartbeat(src, **fields):
    return [b"node.heartbeat", pack(dict({"src": src}, **fields)), (0).to_bytes(8, "little")]


def test_heartbeats_are_decoded_by_their_definition(fake):
    """A node.heartbeat counts when it has the event's source (src, boot)
    and the heartbeat's fields (pid, time_ms); one lacking any is ignored."""
    good = dict(boot=1, pid=10, time_ms=1700000000000)
    no_boot = dict(pid=10, time_ms=1700000000000)
    no_pid = dict(boot=1, time_ms=1700000000000)

    def heard():
        for message in (heartbeat("chainstore", **good), heartbeat("mempool", **no_boot),
                        heartbeat("peersync", **no_pid), heartbeat("miner.7", **good),
                        heartbeat("miner.8", boot="one", pid=1, time_ms=1)):
            fake.bus.send_multipart(message)
        services = fake.get("/status").json()["services"]
        return services if services["chainstore"]["last_seen_ms"] else None

    services = wait_for(heard, 20, "the gateway to hear a heartbeat", interval=0.2)
    time.sleep(0.5)
    services = fake.get("/status").json()["services"]
    assert services["bus"]["up"] is True
    assert services["mempool"]["last_seen_ms"] is None
    assert services["peersync"]["last_seen_ms"] is None
    assert services["miners"] == ["miner.7"]
