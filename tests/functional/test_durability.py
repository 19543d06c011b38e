"""Durability: every transaction that got a 201 and every connected block
is still there after kill -9 of any one service (the launcher restarts
it), after a full stop and start, and after kill -9 of the whole node."""

import threading
import time

import msgpack
import pytest
import requests
import zmq

from chainbus_node import tx_body, wait_for


class Poster:
    """A client that keeps posting transactions in a thread and remembers
    the txid of every 201. Other answers (503 while a service restarts,
    a refused connection while the gateway does) are counted, not kept."""

    def __init__(self, node, tag):
        self.node, self.tag = node, tag
        self.acked, self.other = [], 0
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        n = 0
        with requests.Session() as s:
            while not self.stop_flag.is_set():
                n += 1
                try:
                    r = s.post(self.node.url + "/transactions/new",
                               json=tx_body("%s-%d" % (self.tag, n)), timeout=30)
                except requests.RequestException:
                    self.other += 1
                    self.stop_flag.wait(0.05)
                    continue
                if r.status_code == 201:
                    self.acked.append(r.json()["txid"])
                else:
                    self.other += 1
                #  A steady load, not a flood: every acknowledged txid is
                #  looked up afterwards, one request each while pending.
                self.stop_flag.wait(0.003)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop_flag.set()
        self.thread.join(60)
        assert not self.thread.is_alive()


class Miner(Poster):
    """A client that keeps asking for blocks (GET /mine) and remembers the
    (height, hash) of every block answered with 200."""

    def run(self):
        with requests.Session() as s:
            while not self.stop_flag.is_set():
                try:
                    r = s.get(self.node.url + "/mine", timeout=60)
                except requests.RequestException:
                    self.other += 1
                    self.stop_flag.wait(0.05)
                    continue
                if r.status_code == 200:
                    self.acked.append((r.json()["index"], r.json()["hash"]))
                else:
                    self.other += 1
                self.stop_flag.wait(0.02)


def wait_acks(client, count, timeout=10):
    """Wait until the client has count acknowledgements; True if it has."""
    for _ in range(int(timeout / 0.05)):
        if len(client.acked) >= count:
            return True
        client.stop_flag.wait(0.05)
    return len(client.acked) >= count


#  A GET /mine sent to a mempool just before it was killed is lost with it;
#  the gateway answers 503 after this timeout and the client mines again.
NODE_ARGS = ["--mine-timeout", "5000"]


def mine_all(node):
    """Mine until nothing is pending (a block holds at most block_max_txs)."""
    for _ in range(10):
        node.mine()
        if node.mempool_size() == 0:
            return
    raise AssertionError("mempool not empty after 10 blocks: %s" % node.status())


def snapshot(node):
    """(hash of each block by height) of the active chain."""
    return [b["hash"] for b in node.chain()["chain"]]


def confirmed_txids(node):
    return {t["txid"] for b in node.chain()["chain"] for t in b["transactions"]}


def assert_all_there(node, txids, blocks):
    """Every txid pending or confirmed; every block still at its height."""
    chain = snapshot(node)
    assert chain[:len(blocks)] == blocks, "blocks lost or changed"
    #  One GET /chain for the confirmed ones, one request each for the rest.
    confirmed = confirmed_txids(node)
    missing = []
    for txid in txids:
        if txid in confirmed:
            continue
        r = node.tx(txid)
        if r.status_code != 200 or r.json()["status"] not in ("pending", "confirmed"):
            missing.append((txid, r.status_code, r.text[:200]))
    assert not missing, "%d of %d acknowledged transactions lost, e.g. %s" % (
        len(missing), len(txids), missing[:3])


@pytest.mark.parametrize("role", ["mempool", "chainstore", "gateway", "miner", "bus",
                                  "peersync"])
def test_kill_9_one_service(make_node, role):
    node = make_node(extra_args=NODE_ARGS)
    txids = [node.submit(tx_body("before-%s-%d" % (role, i)))[0] for i in range(30)]
    node.mine()
    txids += [node.submit(tx_body("pending-%s-%d" % (role, i)))[0] for i in range(10)]
    blocks = snapshot(node)

    #  Kill under load: one client posting, one mining.
    with Poster(node, role) as poster, Miner(node, role) as miner:
        wait_acks(poster, 20)
        wait_acks(miner, 3)
        new_pid = node.kill_service(role)
        #  The restarted service works under load: more of both.
        posted, mined = len(poster.acked), len(miner.acked)
        assert wait_acks(poster, posted + 20, timeout=30), "no 201 after the restart"
        assert wait_acks(miner, mined + 3, timeout=30), "no block after the restart"
    assert new_pid
    assert poster.acked and miner.acked
    txids += poster.acked
    assert_all_there(node, txids, blocks)
    chain = snapshot(node)
    for height, block_hash in miner.acked:
        assert chain[height] == block_hash, "mined block %d lost" % height

    #  The restarted service works: a block can still be mined and holds
    #  what was pending.
    height = node.height()
    mined = node.mine()
    assert mined["index"] == height + 1
    assert snapshot(node)[mined["index"]] == mined["hash"]
    mine_all(node)
    assert_all_there(node, txids, blocks)
    assert set(txids) <= confirmed_txids(node)


def test_full_stop_and_start(make_node):
    node = make_node(extra_args=NODE_ARGS)
    txids = []
    for round_ in range(3):
        txids += [node.submit(tx_body("r%d-%d" % (round_, i)))[0] for i in range(20)]
        node.mine()
    txids += [node.submit(tx_body("pending-%d" % i))[0] for i in range(15)]
    node.post("/nodes/register", {"nodes": ["127.0.0.1:5301"]})
    blocks = snapshot(node)
    status = node.status()

    node.restart()
    assert_all_there(node, txids, blocks)
    again = node.status()
    assert again["height"] == status["height"]
    assert again["tip"] == status["tip"]
    r = node.post("/nodes/register", {"nodes": ["127.0.0.1:5301"]})
    peers = r.json()["total_nodes"]
    assert len(peers) == 1 and "5301" in peers[0], peers

    #  And a second time, under load up to the stop.
    with Poster(node, "stop") as poster:
        for _ in range(100):
            if len(poster.acked) >= 30:
                break
            poster.stop_flag.wait(0.05)
        node.stop()
    txids += poster.acked
    node.start()
    assert_all_there(node, txids, blocks)


def test_kill_9_whole_node(make_node):
    node = make_node(extra_args=NODE_ARGS)
    txids = [node.submit(tx_body("a-%d" % i))[0] for i in range(20)]
    node.mine()
    with Poster(node, "power-cut") as poster:
        for _ in range(100):
            if len(poster.acked) >= 30:
                break
            poster.stop_flag.wait(0.05)
        blocks = snapshot(node)
        node.kill_all()
    txids += poster.acked
    node.start()
    assert_all_there(node, txids, blocks)
    mine_all(node)
    assert set(txids) <= confirmed_txids(node)


def test_mine_waiting_on_a_mempool_that_dies_is_answered_soon(make_node):
    """GET /mine waits up to a minute for a block. If the mempool that
    holds the request dies meanwhile, nobody will answer it: the gateway
    sees the new mempool's heartbeat and answers 503 at once. (A miner
    runs, on a target it will not meet in time: 2^-40 a hash, a block in
    about 19 hours at 16 M hashes/s; 0x1d00ffff, 2^-32, met one in a CI
    run. With no miner at all the gateway answers 503 at once, issue 11.)"""
    node = make_node(miners=1, pow_bits="0x1c00ffff")
    answer = {}

    def mine():
        started = time.monotonic()
        answer["response"] = node.get("/mine")
        answer["seconds"] = time.monotonic() - started

    waiting = threading.Thread(target=mine)
    waiting.start()
    #  Long enough for the MINE to reach the mempool and for one of its
    #  heartbeats (every second) to come after it.
    time.sleep(2.5)
    assert waiting.is_alive(), answer
    node.kill_service("mempool")
    waiting.join(30)
    assert not waiting.is_alive(), "GET /mine still waits after the mempool restarted"
    r = answer["response"]
    assert r.status_code == 503, r.text
    assert "chainbus-mempool restarted" in r.json()["message"]
    assert answer["seconds"] < 30
    #  The new mempool works: a submission is accepted.
    node.submit(tx_body("after-the-restart"))


def bus_ask(node, service, command, body):
    """One request to a service's own socket (docs/bus.md), bypassing the bus."""
    ctx = zmq.Context.instance()
    s = ctx.socket(zmq.DEALER)
    s.linger = 0
    s.connect("ipc://%s/run/%s.ipc" % (node.data_dir, service))
    try:
        s.send_multipart([command, b"\x01" * 8, msgpack.packb(body)])
        assert s.poll(20000), "%s did not answer %s" % (service, command)
        status, _, reply = s.recv_multipart()
        return status.decode(), msgpack.unpackb(reply)
    finally:
        s.close()


@pytest.mark.parametrize("role", ["bus", "mempool"])
def test_reorganisation_unseen_still_takes_transactions_back(make_node, role):
    """A block that leaves the active chain gives its transactions back to
    the mempool, even when the switch happens while the bus or the mempool
    is down. With the bus down, the chainstore's PUB keeps the events for
    the reconnection. With the mempool down they are lost: the new mempool
    compares the tip it stored with the chain's, walks back from its old
    tip and takes them back all the same. An acknowledged transaction is
    never left only in a side block."""
    a, b = make_node(), make_node()
    txid, _ = a.submit(tx_body("reorg-%s" % role))
    mined = a.mine()
    assert txid in [t["txid"] for t in mined["transactions"]] and mined["index"] == 1
    #  A branch with more work, made elsewhere, without the transaction.
    b.mine()
    b.mine()
    branch = [bus_ask(b, "chainstore", b"BLOCK.GET", {"height": h})[1]["block"] for h in (1, 2)]

    #  Down goes the bus or the mempool; while it is, the branch arrives
    #  straight at the chainstore, and the events of the switch are lost.
    a.kill_service(role, wait=False)
    for block in branch:
        status, reply = bus_ask(a, "chainstore", b"BLOCK.SUBMIT", {"block": block})
        assert status == "OK", reply
    assert reply["status"] == "connected" and reply["height"] == 2
    a.wait_ready()

    wait_for(lambda: a.tx(txid).json().get("status") == "pending", 30,
             "the transaction back in the mempool")
    again = a.mine()
    assert again["index"] == 3 and txid in [t["txid"] for t in again["transactions"]]
    a.assert_no_crash()
