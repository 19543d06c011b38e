"""History lookups (GET /transactions?user=|key=) and the signature policy.

History is answered from the chainstore's per-user and per-key indexes:
confirmed transactions only, newest first, a page at a time with the
"next" cursor.
"""

import pytest

from chainbus_node import tx_body


def history(node, **query):
    r = node.get("/transactions", params=query)
    assert r.status_code == 200, r.text
    return r.json()


def walk(node, page_size, **query):
    """Every page of a history; returns the (height, index) of each entry."""
    seen, cursor = [], None
    while True:
        args = dict(query, limit=page_size)
        if cursor:
            args["before"] = cursor
        page = history(node, **args)
        assert len(page["transactions"]) <= page_size
        seen += [(t["block_height"], t["block_index"]) for t in page["transactions"]]
        cursor = page["next"]
        if not cursor:
            return seen


def test_history_by_user_and_key_newest_first(node):
    base = node.height()
    sent = []
    for n in range(7):
        users = ["hist-alice", "hist-bob"] if n % 2 else "hist-alice"
        body = tx_body(data={"n": n}, users=users, sender_public_key="hist-key-%d" % (n % 3),
                       receiver_public_key="hist-receiver")
        sent.append(node.submit(body)[0])
        if n % 3 == 2:
            node.mine()
    # Pending ones are not history yet.
    pending = sent[6]
    assert pending not in [t["transaction"]["txid"] for t in
                           history(node, user="hist-alice", limit=100)["transactions"]]
    node.mine()

    page = history(node, user="hist-alice", limit=100)
    txids = [t["transaction"]["txid"] for t in page["transactions"]]
    assert sorted(txids) == sorted(sent) and page["next"] is None
    order = [(t["block_height"], t["block_index"]) for t in page["transactions"]]
    assert order == sorted(order, reverse=True)
    assert all(t["block_height"] > base for t in page["transactions"])
    # Each entry carries where the transaction is, as GET /transactions/<txid>.
    first = page["transactions"][0]
    one = node.tx(first["transaction"]["txid"]).json()
    assert one["block_hash"] == first["block_hash"]
    assert one["block_height"] == first["block_height"]

    bob = {t["transaction"]["txid"] for t in history(node, user="hist-bob", limit=100)["transactions"]}
    assert bob == {sent[n] for n in (1, 3, 5)}
    by_key = {t["transaction"]["txid"] for t in history(node, key="hist-key-1", limit=100)["transactions"]}
    assert by_key == {sent[n] for n in (1, 4)}
    receiver = history(node, key="hist-receiver", limit=100)["transactions"]
    assert len(receiver) == 7
    assert history(node, user="hist-nobody")["transactions"] == []


def test_history_pages_cover_everything_once(node):
    for n in range(12):
        node.submit(tx_body(data=["page", n], users="hist-pager"))
        if n % 4 == 3:
            node.mine()
    every = walk(node, 100, user="hist-pager")
    assert len(every) == 12
    for size in (1, 5, 7):
        assert walk(node, size, user="hist-pager") == every


@pytest.mark.parametrize("query, reason", [
    ({}, "user=NAME or key"),
    ({"user": "a", "key": "b"}, "user=NAME or key"),
    ({"user": ""}, "user=NAME or key"),
    ({"user": "a", "limit": "0"}, "limit"),
    ({"user": "a", "limit": "101"}, "limit"),
    ({"user": "a", "limit": "x"}, "limit"),
    ({"user": "a", "before": "12"}, "before"),
    ({"user": "a", "before": "1:2:3"}, "before"),
])
def test_history_bad_queries(node, query, reason):
    r = node.get("/transactions", params=query)
    assert r.status_code == 400, r.text
    assert reason in r.json()["message"]
    assert r.json()["code"] == "invalid", r.text


def test_history_follows_a_reorganisation(make_node):
    # Covered in depth by the chain store's self-test; here through HTTP:
    # a transaction mined on a branch that loses leaves the history, and
    # is back in it once mined again on the winning branch.
    import os
    import signal
    from test_p2p import register, wait_linked, tip
    from chainbus_node import wait_for
    a, b = make_node(), make_node()
    wait_linked(a, register(a, b)[0])
    wait_linked(b, register(b, a)[0])
    pid = b.signal_service("peersync", signal.SIGSTOP)
    try:
        txid, _ = a.submit(tx_body(data="loser", users="hist-reorg"))
        a.mine()
        assert [t["transaction"]["txid"] for t in history(a, user="hist-reorg")["transactions"]] == [txid]
        b.mine()
        b.mine()
    finally:
        os.kill(pid, signal.SIGCONT)
    wait_for(lambda: tip(a) == tip(b) and tip(a)[0] == 2, 30, "a to follow b")
    # Taken back: pending, so not in the history.
    assert history(a, user="hist-reorg")["transactions"] == []
    assert a.tx(txid).json()["status"] == "pending"
    a.mine()
    assert [t["transaction"]["txid"] for t in history(a, user="hist-reorg")["transactions"]] == [txid]


def test_require_signatures_policy(make_node):
    strict = make_node(extra_args=["--require-signatures", "1"])
    r = strict.post("/transactions/new", tx_body(data="unsigned"))
    assert r.status_code == 400
    assert "signed transactions only" in r.json()["message"]
    assert strict.mempool_size() == 0
