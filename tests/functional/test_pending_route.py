"""GET /transactions/pending as a user sees it (docs/api.md "GET
/transactions/pending"): each entry says when this node first took the
transaction (`received_ms`, ms since the epoch), carried from the mempool
by TXS.GET (docs/bus.md), and kept across a mempool restart (the pool
stores it with the transaction).

GET /transactions/{txid} gives the same time for a pending one. The
paging, the parameters and the mempool-stopped answer are tested in
test_explorer_routes.py."""

import time

from chainbus_node import tx_body


def _now_ms():
    return int(time.time() * 1000)


def _pending(node):
    r = node.get("/transactions/pending?limit=100")
    assert r.status_code == 200, r.text
    return r.json()["transactions"]


def test_each_entry_says_when_it_arrived(node):
    node.mine()                       # an empty pool to start from
    windows = {}
    for n in range(3):
        before = _now_ms()
        txid, _ = node.submit(tx_body(n=700 + n))
        windows[txid] = (before, _now_ms())
        time.sleep(0.01)              # distinct arrival times
    entries = _pending(node)
    assert [e["transaction"]["txid"] for e in entries] == list(windows)
    for entry in entries:
        before, after = windows[entry["transaction"]["txid"]]
        received = entry["received_ms"]
        assert isinstance(received, int), entry
        assert before <= received <= after, (before, received, after)
    times = [e["received_ms"] for e in entries]
    assert times == sorted(times) and len(set(times)) == 3
    # A page further on says the same.
    after_first = node.get("/transactions/pending?limit=1").json()["next"]
    rest = node.get("/transactions/pending?after=" + after_first).json()["transactions"]
    assert [e["received_ms"] for e in rest] == times[1:]
    # The transaction's own route says the same while it is pending.
    for entry in entries:
        own = node.get("/transactions/" + entry["transaction"]["txid"]).json()
        assert own["status"] == "pending" and own["received_ms"] == entry["received_ms"], own


def test_arrival_time_kept_across_a_mempool_restart(node):
    node.mine()
    txid, _ = node.submit(tx_body(n=800))
    first = {e["transaction"]["txid"]: e["received_ms"] for e in _pending(node)}
    assert txid in first
    node.kill_service("mempool")
    again = {e["transaction"]["txid"]: e["received_ms"] for e in _pending(node)}
    assert again == first
    node.mine()
    assert _pending(node) == []
