"""The mempool while the chainstore does not answer (SIGSTOP).

The mempool never waits for the chainstore inside its loop: while a
submission's TX.KNOWN is out to a stopped chainstore, the mempool still
answers PING and MEMPOOL.INFO at once, the submission is refused with a
clear 503 within its timeout (not stored: its confirmed-status is unknown),
and after SIGCONT the same submission is accepted and nothing acknowledged
before was lost.
"""

import signal
import threading
import time

import msgpack
import zmq

from chainbus_node import tx_body


def bus_request(ctx, node, command, body=None, timeout_ms=5000):
    """One request to the mempool over the bus: (status, reply, seconds)."""
    s = ctx.socket(zmq.DEALER)
    s.linger = 0
    s.connect("ipc://%s/run/mempool.ipc" % node.data_dir)
    try:
        started = time.monotonic()
        s.send_multipart([command, b"\x01" * 8, msgpack.packb(body or {})])
        assert s.poll(timeout_ms), "the mempool did not answer %s" % command
        status, _, reply = s.recv_multipart()
        return status.decode(), msgpack.unpackb(reply), time.monotonic() - started
    finally:
        s.close()


def test_mempool_answers_while_chainstore_stopped(make_node):
    node = make_node(miners=0)
    before, _ = node.submit(tx_body("before-stop"))
    ctx = zmq.Context()
    node.signal_service("chainstore", signal.SIGSTOP)
    try:
        answer = {}

        def post():
            started = time.monotonic()
            answer["r"] = node.post("/transactions/new", tx_body("while-stopped"), timeout=30)
            answer["took"] = time.monotonic() - started

        poster = threading.Thread(target=post)
        poster.start()
        time.sleep(0.3)             # its TX.KNOWN is out to the stopped chainstore
        for command in (b"PING", b"MEMPOOL.INFO", b"PING"):
            status, reply, took = bus_request(ctx, node, command)
            assert status == "OK", (command, status, reply)
            assert took < 1.0, (command, took)
        status, reply, took = bus_request(ctx, node, b"TX.GET", {"txid": bytes.fromhex(before)})
        assert status == "OK" and reply["tx"] and took < 1.0, (status, reply, took)
        poster.join(30)
        r = answer["r"]
        assert r.status_code == 503, (r.status_code, r.text)
        j = r.json()
        #  The mempool's own refusal (about 2 s), not the gateway's timeout
        #  (5 s): it names the chainstore.
        assert "chainstore" in j["message"], j
        assert j.get("code", "unavailable") == "unavailable", j
        assert answer["took"] < 4.0, answer["took"]
        #  The mempool's heartbeat goes on: /status says it is up.
        status = node.get("/status", timeout=30).json()
        assert status["services"]["mempool"]["up"] is True, status
    finally:
        node.signal_service("chainstore", signal.SIGCONT)
        ctx.destroy(linger=0)
    node.wait_ready()
    #  Not stored while unchecked, so a new transaction now; the earlier
    #  acknowledgement still holds.
    txid, _ = node.submit(tx_body("while-stopped"))
    assert node.tx(before).json()["status"] == "pending"
    assert node.tx(txid).json()["status"] == "pending"
    node.assert_no_crash()
