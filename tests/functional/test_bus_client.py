"""A third-party bus client, written from docs/bus.md alone.

Python with pyzmq and msgpack: a request to the chainstore and to the
mempool ([command][request id][body] -> [status][request id][body]) and a
subscription to events ([topic][body][sequence]), as the page describes.
"""

import time

import msgpack
import zmq

from chainbus_node import tx_body


def ask(ctx, node, service, command, body, request_id=b"\x07" * 8):
    s = ctx.socket(zmq.DEALER)
    s.linger = 0
    s.connect("ipc://%s/run/%s.ipc" % (node.data_dir, service))
    try:
        s.send_multipart([command, request_id, msgpack.packb(body)])
        assert s.poll(10000), "%s did not answer %s" % (service, command)
        status, echoed, reply = s.recv_multipart()
        assert echoed == request_id
        return status.decode(), msgpack.unpackb(reply)
    finally:
        s.close()


def test_requests_and_events_as_documented(node):
    ctx = zmq.Context()
    events = ctx.socket(zmq.SUB)
    events.linger = 0
    events.connect("ipc://%s/run/bus-out.ipc" % node.data_dir)
    events.setsockopt(zmq.SUBSCRIBE, b"chain.block.")
    events.setsockopt(zmq.SUBSCRIBE, b"mempool.tx.")
    try:
        status, tip = ask(ctx, node, "chainstore", b"TIP", {})
        assert status == "OK"
        assert tip["network"] == node.status()["network"]
        assert tip["hash"].hex() == node.status()["tip"]
        # Unknown commands and bodies that are not maps get a reason.
        status, reply = ask(ctx, node, "chainstore", b"NO.SUCH", {})
        assert status == "INVALID" and reply["reason"]
        # Let the subscription reach the bus before anything happens.
        time.sleep(0.5)
        txid, _ = node.submit(tx_body(data={"bus": "client"}, users=["bus-a", "bus-b"]))
        block = node.mine()
        seen = {}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and "chain.block.connected" not in seen:
            if events.poll(500):
                topic, body, sequence = events.recv_multipart()
                assert len(sequence) == 8
                event = msgpack.unpackb(body)
                assert {"src", "boot"} <= set(event)
                seen.setdefault(topic.decode(), []).append(event)
        added = [e for e in seen.get("mempool.tx.added", []) if e["txid"].hex() == txid]
        assert added and added[0]["users"] == ["bus-a", "bus-b"] and added[0]["tx"]
        connected = seen["chain.block.connected"][-1]
        assert connected["hash"].hex() == block["hash"]
        assert connected["height"] == block["index"]
        assert bytes.fromhex(txid) in connected["txids"]
        # The mempool answers what the page says it answers.
        status, info = ask(ctx, node, "mempool", b"MEMPOOL.INFO", {})
        assert status == "OK" and info["next_height"] == block["index"] + 1
    finally:
        events.close()
        ctx.term()


def canonical_tx(users, data, timestamp):
    """A transaction's canonical bytes, as docs/transactions.md lays them out."""
    return msgpack.packb({
        "users": users, "data": data, "dh_parameters": "param",
        "server_public_key": "server_key", "receiver_public_key": "receiver_key",
        "sender_public_key": "sender_key", "timestamp": timestamp,
    })


def test_a_burst_with_a_repeat_still_refuses_a_replay(node):
    """Submissions that arrive together are checked together: one new
    transaction twice, then the bytes of one already mined. The first is
    stored once, the second answered as its duplicate, and the mined one as
    confirmed, never stored again."""
    mined_txid, _ = node.submit(tx_body(data={"burst": "mined"}))
    node.mine()
    ctx = zmq.Context()
    s = ctx.socket(zmq.DEALER)
    s.linger = 0
    try:
        status, found = ask(ctx, node, "chainstore", b"TX.GET", {"txid": bytes.fromhex(mined_txid)})
        assert status == "OK"
        fresh = canonical_tx(["burst"], {"burst": "new"}, int(time.time() * 1e6))
        s.connect("ipc://%s/run/mempool.ipc" % node.data_dir)
        burst = [fresh, fresh, found["tx"]]
        for index, tx in enumerate(burst):
            s.send_multipart([b"TX.SUBMIT", bytes([index]) * 8, msgpack.packb({"tx": tx})])
        answers = {}
        while len(answers) < len(burst):
            assert s.poll(10000), "the mempool did not answer all of %s" % sorted(answers)
            status, request_id, reply = s.recv_multipart()
            answers[request_id[0]] = (status.decode(), msgpack.unpackb(reply))
        assert [status for status, _ in answers.values()] == ["OK"] * 3, answers
        first, second, replay = answers[0][1], answers[1][1], answers[2][1]
        assert not first["duplicate"] and not first["confirmed"]
        assert second["duplicate"] and not second["confirmed"] and second["txid"] == first["txid"]
        assert replay["duplicate"] and replay["confirmed"]
        assert replay["txid"].hex() == mined_txid
        # Pending now: the new one, once; the mined one is not back.
        assert node.mempool_size() == 1
        assert node.tx(first["txid"].hex()).json()["status"] == "pending"
        assert node.tx(mined_txid).json()["status"] == "confirmed"
    finally:
        s.close()
        ctx.term()
