"""GET /events as a subscriber sees it (docs/api.md "GET /events"): a
server-sent event stream read as `curl -N` reads it, one JSON object per
message, fed from the bus.

- the answer's headers, the retry line and stream.open first;
- topic prefixes filter; a prefix matching no topic is a 400;
- a block event after GET /mine, a tx.added after a submit, its removal
  once mined, the same seq on two streams;
- node.heartbeat carries the mempool's metrics;
- a keepalive comment on an idle stream, which the connection guard does
  not close however long it waits; at most event_streams_max streams (503),
  a slot freed soon after its subscriber leaves;
- a subscriber that never reads is closed while another one and /status
  go on (metric and one log line);
- a subscriber that reads too slowly ("pressing": its buffer over half
  full) still gets every event, and the others still get theirs, batched
  (a burst of events reaches them in a few writes, not one per event);
- the gateway restarts: the stream ends, a new one has a new gateway_boot.
"""

import http.client
import json
import re
import socket
import time

import pytest

from chainbus_node import HEX64, tx_body, wait_for

OFFERED = ["chain.block.connected", "chain.block.disconnected", "chain.storage",
           "mempool.tx.added", "mempool.tx.removed", "peer.connected",
           "peer.disconnected", "node.heartbeat"]


class Stream:
    """One GET /events read line by line, as curl -N shows it."""

    def __init__(self, node, query="", timeout=20):
        self.conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=timeout)
        self.conn.request("GET", "/events" + query)
        self.resp = self.conn.getresponse()
        self.comments = []

    def message(self):
        """The next message as {field: value} (data parsed as JSON), or
        None at the end of the stream. Comment lines are kept apart."""
        fields = {}
        while True:
            line = self.resp.readline()
            if not line:
                return None
            line = line.decode().rstrip("\n")
            if line == "":
                if fields:
                    if "data" in fields:
                        fields["data"] = json.loads(fields["data"])
                    return fields
                continue
            if line.startswith(":"):
                self.comments.append(line)
                return {"comment": line}
            name, _, value = line.partition(": ")
            assert name in ("id", "data", "retry"), line
            assert name not in fields, "field %s twice in one message" % name
            fields[name] = value

    def event(self, match=lambda e: True, timeout=20):
        """The next event whose JSON matches."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = self.message()
            assert m is not None, "the stream ended"
            if "data" in m and match(m["data"]):
                assert m["id"] == str(m["data"]["seq"]), m
                return m["data"]
        raise AssertionError("no matching event within %ss" % timeout)

    def close(self):
        self.conn.close()


def test_stream_opens_with_retry_and_stream_open(node):
    s = Stream(node)
    try:
        assert s.resp.status == 200
        assert s.resp.getheader("Content-Type") == "text/event-stream"
        assert s.resp.getheader("Cache-Control") == "no-store"
        first = s.message()
        assert first["retry"] == "3000"
        opened = first["data"]
        assert opened["topic"] == "stream.open" and opened["source"] == "gateway"
        assert re.fullmatch(r"[0-9a-f]{16}", opened["gateway_boot"])
        assert opened["topics"] == OFFERED
        assert isinstance(opened["seq"], int)
        #  Unfiltered: heartbeats come every second, numbered after it.
        beat = s.event(lambda e: e["topic"] == "node.heartbeat", timeout=10)
        assert beat["seq"] > opened["seq"]
    finally:
        s.close()


def test_a_block_event_arrives_after_mine(node):
    s = Stream(node, "?topics=chain.")
    try:
        assert s.message()["data"]["topics"] == ["chain.block.connected",
                                                 "chain.block.disconnected", "chain.storage"]
        mined = node.mine()
        block = s.event(lambda e: e["topic"] == "chain.block.connected"
                        and e["hash"] == mined["hash"])
        assert block["source"] == "chainstore"
        assert block["index"] == mined["index"]
        assert block["previous_hash"] == mined["previous_hash"]
        assert block["merkle_root"] == mined["merkle_root"]
        assert block["timestamp"] == mined["timestamp"]
        assert block["transaction_count"] == len(mined["transactions"])
        assert "txids" not in block
    finally:
        s.close()


def test_tx_added_after_submit_then_removed_when_mined(node):
    every = Stream(node)
    txs = Stream(node, "?topics=mempool.tx")
    try:
        every.message()
        assert txs.message()["data"]["topics"] == ["mempool.tx.added", "mempool.tx.removed"]
        before = int(time.time() * 1000)
        txid, _ = node.submit(tx_body("events-1", users=["alice", "bob"]))
        after = int(time.time() * 1000)
        added = txs.event(lambda e: e.get("txid") == txid)
        assert added["topic"] == "mempool.tx.added" and added["source"] == "mempool"
        assert added["users"] == ["alice", "bob"] and added["size"] > 0
        #  When the node took it: the time GET /transactions/pending says.
        assert before <= added["received_ms"] <= after, (before, added, after)
        pending = node.get("/transactions/" + txid).json()
        assert pending["received_ms"] == added["received_ms"]
        #  The same event has the same seq on every stream.
        assert every.event(lambda e: e.get("txid") == txid)["seq"] == added["seq"]
        node.mine()
        removed = txs.event(lambda e: e["topic"] == "mempool.tx.removed"
                            and e["txid"] == txid)
        assert removed["reason"] == "mined"
        assert removed["seq"] > added["seq"]
    finally:
        every.close()
        txs.close()


def test_heartbeat_carries_the_mempools_metrics(node):
    s = Stream(node, "?topics=node.heartbeat")
    try:
        s.message()
        txid, _ = node.submit(tx_body("events-2"))
        beat = s.event(lambda e: e["source"] == "mempool"
                       and e["metrics"].get("chainbus_mempool_txs", 0) >= 1, timeout=10)
        assert beat["topic"] == "node.heartbeat" and beat["pid"] > 0
        assert beat["resident_bytes"] > 0
        assert beat["metrics"]["chainbus_mempool_txs_accepted_total"] >= 1
        assert all(isinstance(v, (int, float)) for v in beat["metrics"].values())
        miner = s.event(lambda e: e["source"].startswith("miner."), timeout=10)
        assert isinstance(miner["hash_rate"], int)
    finally:
        s.close()


@pytest.mark.parametrize("query, words", [
    ("?topics=blocks", "No topic starts with 'blocks'"),
    ("?topics=miner.", "No topic starts with 'miner.'"),
    ("?topics=chain.,peer.x", "No topic starts with 'peer.x'"),
    ("?topics=", "empty prefix"),
    ("?topics=chain.,", "empty prefix"),
])
def test_a_topic_matching_nothing_is_refused(node, query, words):
    r = node.get("/events" + query)
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "invalid"
    assert words in r.json()["message"]


def test_idle_stream_kept_and_capped(make_node):
    #  A guard that closes heads after 200 ms, keepalives every 30 s: an
    #  idle stream waits far longer than the guard's limits, sending
    #  nothing, and is not closed.
    n = make_node(extra_args=["--event-streams-max", "2", "--header-timeout", "200",
                              "--event-keepalive", "30000"])
    blocks = Stream(n, "?topics=chain.block")
    peers = Stream(n, "?topics=peer.")
    try:
        blocks.message()
        peers.message()
        r = n.get("/events")
        assert r.status_code == 503, r.text
        assert r.json()["code"] == "full"
        assert "at most 2" in r.json()["message"]
        time.sleep(2)
        mined = n.mine()
        assert blocks.event(lambda e: e.get("hash") == mined["hash"])["index"] == mined["index"]
        #  A subscriber gone frees its slot within a second or so, long
        #  before its next keepalive.
        peers.close()

        def reopened():
            r = n.get("/events?topics=chain.storage", stream=True)
            r.close()
            return r.status_code == 200
        #  Half the 30 s keepalive: a slot freed only at the keepalive
        #  fails this.
        wait_for(reopened, 15, "a stream slot to be free again (before the next keepalive)")
        assert peers.comments == []
    finally:
        blocks.close()
        peers.close()


def _metric(node, name):
    text = node.get("/metrics").text
    m = re.search(r"^%s\{service=\"gateway\"\} (\S+)$" % re.escape(name), text, re.M)
    return float(m.group(1)) if m else None


def test_a_subscriber_that_never_reads_is_closed(make_node):
    n = make_node(extra_args=["--event-buffer", "4096", "--send-buffer", "4096",
                              "--event-keepalive", "300"])
    stuck = socket.socket()
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    stuck.connect(("127.0.0.1", n.port))
    stuck.sendall(b"GET /events HTTP/1.1\r\nHost: node\r\n\r\n")
    reader = Stream(n, "?topics=mempool.tx.added")
    idle = Stream(n, "?topics=peer.")
    try:
        reader.message()
        idle.message()
        #  An idle stream gets keepalives (every 300 ms here).
        assert idle.message() == {"comment": ": keepalive"}
        idle.close()
        wait_for(lambda: _metric(n, "chainbus_event_streams") == 2, 10, "two streams open")
        assert _metric(n, "chainbus_event_streams_overflowed_total") == 0
        sent = 0
        while _metric(n, "chainbus_event_streams_overflowed_total") != 1:
            assert sent < 2000, "the stuck stream was never closed"
            txid, _ = n.submit(tx_body("stuck-%d" % sent))
            sent += 1
            #  The reader keeps up with every one of them.
            assert reader.event()["txid"] == txid
        #  The gateway goes on (a stall would time the request out).
        assert n.get("/status").status_code == 200
        txid, _ = n.submit(tx_body("after"))
        assert reader.event()["txid"] == txid
        assert _metric(n, "chainbus_event_streams") == 1
        #  The stuck one sees the end of its stream once it reads.
        stuck.settimeout(10)
        while stuck.recv(65536):
            pass
        wait_for(lambda: "event streams closed in the last 5 s: 1 whose subscriber did not "
                 "read them" in n.log_text(), 10, "the overflow's log line")
    finally:
        stuck.close()
        reader.close()
        idle.close()


def test_reconnect_after_the_gateway_restarts(node):
    s = Stream(node)
    first = s.message()["data"]
    node.kill_service("gateway")
    #  The old stream ends (its gateway is gone).
    try:
        while s.message() is not None:
            pass
    except (OSError, http.client.HTTPException):
        pass
    s.close()

    def reopen():
        try:
            return Stream(node)
        except OSError:
            return None
    again = wait_for(reopen, 30, "GET /events on the restarted gateway")
    try:
        opened = again.message()["data"]
        assert opened["topic"] == "stream.open"
        assert opened["gateway_boot"] != first["gateway_boot"]
        assert HEX64.match(node.mine()["hash"])
        again.event(lambda e: e["topic"] == "chain.block.connected")
    finally:
        again.close()


def test_streams_end_cleanly_when_the_node_stops(make_node):
    n = make_node()
    streams = [Stream(n), Stream(n, "?topics=chain.")]
    try:
        for s in streams:
            s.message()
        assert n.stop() == 0
        #  Each stream ends with the chunked body's last chunk (no
        #  IncompleteRead): the gateway ended it before it stopped.
        for s in streams:
            while s.message() is not None:
                pass
    finally:
        for s in streams:
            s.close()


class RawStream:
    """GET /events read from its socket, the chunks of its chunked body
    kept apart: each chunk is one write the gateway made to it."""

    def __init__(self, node, query, rcvbuf=None):
        self.sock = socket.socket()
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(20)
        self.sock.connect(("127.0.0.1", node.port))
        self.sock.sendall(b"GET /events%s HTTP/1.1\r\nHost: node\r\n\r\n" % query.encode())
        self.pending = b""
        self.head = None
        self.text = b""

    def _need(self, size):
        while len(self.pending) < size:
            data = self.sock.recv(65536)
            assert data, "the stream ended"
            self.pending += data

    def _line(self):
        while b"\r\n" not in self.pending:
            self._need(len(self.pending) + 1)
        line, self.pending = self.pending.split(b"\r\n", 1)
        return line

    def chunk(self):
        """The next chunk's bytes."""
        if self.head is None:
            self.head = []
            while True:
                line = self._line()
                if not line:
                    break
                self.head.append(line)
            assert self.head[0].startswith(b"HTTP/1.1 200"), self.head
        size = int(self._line(), 16)
        self._need(size + 2)
        data, self.pending = self.pending[:size], self.pending[size + 2:]
        return data

    def events(self, data):
        """The events whose text data completes (an event may span
        chunks), as JSON."""
        self.text += data
        done, _, self.text = self.text.rpartition(b"\n\n")
        return [json.loads(line[6:]) for line in done.split(b"\n") if line.startswith(b"data: ")]

    def close(self):
        self.sock.close()


def test_a_pressing_subscriber_gets_every_event_and_the_others_stay_batched(make_node):
    #  A small kernel send buffer (and a small receive buffer on the slow
    #  socket): what the slow subscriber does not read stays in its
    #  gateway buffer (event_buffer_bytes, 262,144 by default) once about
    #  45 KB are in the kernels and MHD.
    n = make_node(extra_args=["--send-buffer", "4096"])
    slow = RawStream(n, "?topics=mempool.tx", rcvbuf=2048)
    fast = RawStream(n, "?topics=mempool.tx")
    try:
        fast_events = fast.events(fast.chunk())
        assert fast_events[0]["topic"] == "stream.open"
        wait_for(lambda: _metric(n, "chainbus_event_streams") == 2, 10, "both streams open")
        #  Big transactions (30 users of 250 bytes: about 8 KB an event)
        #  until the fast one was sent 190 KB: the slow one's buffer then
        #  holds over half of its 262,144 bytes, and far from all.
        users = ["%03d" % u + "u" * 247 for u in range(30)]
        sent, txids = 0, []
        while sent < 190000:
            txid, _ = n.submit(tx_body(n=900 + len(txids), users=users))
            txids.append(txid)
            while not any(e.get("txid") == txid for e in fast_events):
                data = fast.chunk()
                sent += len(data)
                fast_events += fast.events(data)
        assert len(txids) < 40
        #  A block takes them all: a burst of one mempool.tx.removed per
        #  transaction, published at once.
        n.mine()
        removed, writes = set(), 0
        while len(removed) < len(txids):
            got = [e for e in fast.events(fast.chunk()) if e["topic"] == "mempool.tx.removed"]
            fast_events += got
            removed |= {e["txid"] for e in got}
            writes += 1 if got else 0
        assert removed == set(txids)
        #  Batched: the burst came in a few writes. When the pressing
        #  stream woke every stream at once, each event was a write of
        #  its own (one per transaction here).
        assert writes <= max(2, len(txids) // 4), (writes, len(txids))
        #  The slow subscriber was not cut off, and gets every event in
        #  order once it reads.
        assert _metric(n, "chainbus_event_streams_overflowed_total") == 0
        assert _metric(n, "chainbus_event_streams") == 2
        slow_events = []
        while len(slow_events) < len(fast_events):
            slow_events += slow.events(slow.chunk())
        assert [e["seq"] for e in slow_events] == [e["seq"] for e in fast_events]
        assert [e.get("txid") for e in slow_events][1:] == txids + [
            e["txid"] for e in fast_events if e["topic"] == "mempool.tx.removed"]
    finally:
        slow.close()
        fast.close()
