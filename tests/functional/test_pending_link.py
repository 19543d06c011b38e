"""Pending transactions when nodes link (docs/p2p.md "Pending transactions
when nodes link"): a node that was down gets its peers' pending
transactions as the link comes up again, without anything being mined,
in both directions; and a peer's inventory is taken up to
peersync/pending_max (oldest first), the rest left to blocks.

Waits are bounded and generous (a sanitizer build on two loaded cores is
slow); the time it takes is measured in bench/p2p_pending.py.
"""

from chainbus_node import tx_body, wait_for

LINK_TIMEOUT = 30


def register(node, peer):
    address = "http://127.0.0.1:%d" % peer.port
    r = node.post("/nodes/register", {"nodes": [address]})
    assert r.status_code == 201, r.text
    return address


def linked(node, address=None):
    nodes = node.get("/nodes").json()["nodes"]
    return any(n["state"] == "linked" and (address is None or n["address"] == address)
               for n in nodes)


def pending(node, txid):
    r = node.tx(txid)
    return r.status_code == 200 and r.json()["status"] == "pending"


def submit_many(node, count, tag):
    return [node.submit(tx_body(data={"tag": tag, "n": n}))[0] for n in range(count)]


def all_pending(node, txids):
    return all(pending(node, txid) for txid in txids)


def test_returning_node_gets_pending_both_ways(make_node):
    a = make_node()
    b = make_node()
    wait_for(lambda: linked(b, register(b, a)), LINK_TIMEOUT, "b to link to a")
    wait_for(lambda: linked(a), LINK_TIMEOUT, "a to see b")
    heights = (a.height(), b.height())

    # b is down while a takes transactions: gossip cannot reach it.
    b.stop()
    while_down = submit_many(a, 20, "b-down")
    b.start()
    wait_for(lambda: all_pending(b, while_down), LINK_TIMEOUT,
             "a's pending transactions at b once it is back")
    assert "pending exchange ended" in b.log_text()

    # And the other way: a is down while b takes some.
    a.stop()
    while_a_down = submit_many(b, 20, "a-down")
    a.start()
    wait_for(lambda: all_pending(a, while_a_down), LINK_TIMEOUT,
             "b's pending transactions at a once it is back")
    # Nothing was mined for it: every one of them is pending at both.
    assert (a.height(), b.height()) == heights
    assert all_pending(a, while_down) and all_pending(b, while_a_down)
    assert a.mempool_size() == b.mempool_size() == 40


def test_inventory_taken_up_to_the_bound(make_node):
    a = make_node()
    oldest_first = submit_many(a, 50, "bound")
    b = make_node(extra_args=["--pending-max", "30"])
    wait_for(lambda: linked(b, register(b, a)), LINK_TIMEOUT, "b to link to a")
    # The 30 oldest, and none of the 20 after them: those wait for a block.
    wait_for(lambda: all_pending(b, oldest_first[:30]), LINK_TIMEOUT,
             "a's 30 oldest pending transactions at b")
    wait_for(lambda: "peersync/pending_max reached" in b.log_text(), LINK_TIMEOUT,
             "b to log that it stopped at its bound")
    assert not any(pending(b, txid) for txid in oldest_first[30:])
    assert b.mempool_size() == 30
    # A block carries the rest to b.
    a.mine()
    wait_for(lambda: b.height() == a.height(), LINK_TIMEOUT, "the block at b")
    for txid in oldest_first:
        assert b.tx(txid).json()["status"] == "confirmed"


def test_large_transactions_past_one_answer(make_node):
    # 30 transactions of about 100 KB: one TXS answer (peersync/
    # peer_serve_bytes, 1 MiB) cannot hold all those one GETTXS asks for;
    # the returning node asks again for the rest and gets every one.
    a = make_node()
    b = make_node()
    wait_for(lambda: linked(b, register(b, a)), LINK_TIMEOUT, "b to link to a")
    b.stop()
    blob = "x" * 100000
    large = [a.submit(tx_body(data={"tag": "large", "n": n, "blob": blob}))[0]
             for n in range(30)]
    b.start()
    wait_for(lambda: all_pending(b, large), LINK_TIMEOUT,
             "a's 30 large pending transactions at b once it is back")
    assert b.mempool_size() == 30


def test_exchange_paused_while_catching_up_then_resumed(make_node):
    # b lacks a's block and cannot store it (its chainstore is stopped): it
    # is catching up for as long as that lasts. Its exchange with a must
    # not wait for ever (it would hold the node's one exchange): it is
    # paused, and resumes once b has caught up.
    import signal
    a = make_node()
    a.mine()
    waiting = submit_many(a, 10, "catching-up")
    b = make_node()
    b.signal_service("chainstore", signal.SIGSTOP)
    try:
        wait_for(lambda: linked(b, register(b, a)), LINK_TIMEOUT, "b to link to a")
        wait_for(lambda: 'pending exchange paused' in b.log_text()
                 and 'why="catching up"' in b.log_text(), LINK_TIMEOUT,
                 "b to pause its exchange while it cannot catch up")
    finally:
        b.signal_service("chainstore", signal.SIGCONT)
    wait_for(lambda: b.height() == a.height(), 60, "b to catch up")
    wait_for(lambda: all_pending(b, waiting), 60,
             "a's pending transactions at b once it has caught up")
