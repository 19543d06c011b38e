"""The explorer's read routes (issue 12, item 4): GET /blocks (summaries,
newest first), GET /blocks/{id}/transactions (a block's summary and a page
of its transactions) and GET /transactions/pending (oldest first), their
paging, cursors and bad parameters, and a block of 10,000 transactions
read a page at a time."""

import os
import threading

import pytest
import requests

from chainbus_node import tx_body


def mine_with(node, tags):
    txids = [node.submit(tx_body(n=tag, users=["explorer", "u%d" % tag]))[0] for tag in tags]
    block = node.mine()
    return block, txids


def summary_of(block):
    """What GET /blocks/{id} shows, without the transactions."""
    return {k: v for k, v in block.items() if k not in ("transactions", "confirmations")}


def test_blocks_newest_first_paged(node):
    mined = [mine_with(node, range(100 + 3 * i, 103 + 3 * i))[0] for i in range(3)]
    tip = node.height()
    r = node.get("/blocks?limit=2")
    assert r.status_code == 200, r.text
    page = r.json()
    assert [b["index"] for b in page["blocks"]] == [tip, tip - 1]
    assert page["next"] == tip - 1
    for block in page["blocks"]:
        assert "transactions" not in block
        whole = node.get("/blocks/%d" % block["index"]).json()
        assert summary_of(whole) == {k: v for k, v in block.items()
                                     if k not in ("transaction_count", "size", "confirmations")}
        assert block["transaction_count"] == len(whole["transactions"])
        assert block["confirmations"] == whole["confirmations"]
        assert block["size"] > 100 * (1 + block["transaction_count"])
    assert page["blocks"][0]["hash"] == mined[-1]["hash"]
    assert page["blocks"][0]["transaction_count"] == 3
    # Follow the cursor down to the genesis: every height once, then null.
    seen = [b["index"] for b in page["blocks"]]
    while page["next"] is not None:
        page = node.get("/blocks?limit=2&before=%d" % page["next"]).json()
        seen += [b["index"] for b in page["blocks"]]
    assert seen == list(range(tip, -1, -1))
    # Default limit 10; before beyond the tip starts at the tip; before=0 is empty.
    assert len(node.get("/blocks").json()["blocks"]) == min(10, tip + 1)
    assert node.get("/blocks?before=999999").json()["blocks"][0]["index"] == tip
    assert node.get("/blocks?before=0").json() == {"blocks": [], "next": None}


def test_blocks_bad_parameters(node):
    for query in ("limit=0", "limit=101", "limit=abc", "limit=-1", "before=x",
                  "before=9223372036854775808", "before=99999999999999999999"):
        r = node.get("/blocks?" + query)
        assert r.status_code == 400, (query, r.text)
        assert r.json()["code"] == "invalid"
        assert "limit" in r.json()["message"] or "before" in r.json()["message"]
    assert node.post("/blocks", {}).status_code == 405


def test_block_transactions_paged(node):
    block, txids = mine_with(node, range(200, 207))
    height, block_hash = block["index"], block["hash"]
    order = [tx["txid"] for tx in node.get("/blocks/%d" % height).json()["transactions"]]
    assert sorted(order) == sorted(txids)
    for block_id in (str(height), block_hash, block_hash.upper()):
        got, start = [], 0
        while start is not None:
            r = node.get("/blocks/%s/transactions?start=%d&limit=3" % (block_id, start))
            assert r.status_code == 200, r.text
            page = r.json()
            assert page["start"] == start
            assert page["block"]["hash"] == block_hash
            assert page["block"]["transaction_count"] == 7
            assert "transactions" not in page["block"]
            assert len(page["transactions"]) <= 3
            got += [tx["txid"] for tx in page["transactions"]]
            start = page["next"]
        assert got == order
    # Default page, the whole transaction objects as GET /blocks/{id} has them.
    page = node.get("/blocks/%d/transactions" % height).json()
    assert page["transactions"] == node.get("/blocks/%d" % height).json()["transactions"]
    assert page["next"] is None
    # Past the end: an empty page; no such block: 404.
    page = node.get("/blocks/%d/transactions?start=50" % height).json()
    assert page["transactions"] == [] and page["next"] is None and page["start"] == 50
    empty = node.get("/blocks/0/transactions").json()
    assert empty["transactions"] == [] and empty["block"]["index"] == 0
    for block_id in ("999999", "ab" * 32):
        r = node.get("/blocks/%s/transactions" % block_id)
        assert r.status_code == 404, r.text
        assert r.json() == {"message": "Block not found", "code": "not_found"}


def test_block_transactions_bad_parameters(node):
    for path in ("/blocks/xyz/transactions", "/blocks/1/transactions?limit=0",
                 "/blocks/1/transactions?limit=501", "/blocks/1/transactions?start=-1",
                 "/blocks/1/transactions?start=9223372036854775808",
                 "/blocks/99999999999999999999999/transactions"):
        r = node.get(path)
        assert r.status_code == 400, (path, r.text)
        assert r.json()["code"] == "invalid"
    # Not a route: one item between /blocks/ and /transactions only.
    assert node.get("/blocks/1/2/transactions").status_code == 404
    assert node.get("/blocks//transactions").status_code == 404
    assert node.get("/blocks/1/transactionsx").status_code == 404


def test_pending_oldest_first_paged(node):
    node.mine()                       # an empty pool to start from
    assert node.get("/transactions/pending").json() == {"transactions": [], "next": None}
    txids = [node.submit(tx_body(n=300 + n))[0] for n in range(5)]
    got, after = [], None
    while True:
        path = "/transactions/pending?limit=2" + ("&after=" + after if after else "")
        r = node.get(path)
        assert r.status_code == 200, r.text
        page = r.json()
        for entry in page["transactions"]:
            assert entry["status"] == "pending"
            got.append(entry["transaction"]["txid"])
        assert len(page["transactions"]) <= 2
        if page["next"] is None:
            break
        assert isinstance(page["next"], str)
        after = page["next"]
    assert got == txids
    # Each entry is GET /transactions/{txid}'s transaction.
    first = node.get("/transactions/pending?limit=1").json()["transactions"][0]
    assert first["transaction"] == node.tx(txids[0]).json()["transaction"]
    node.mine()
    assert node.get("/transactions/pending").json()["transactions"] == []


def test_pending_bad_parameters(node):
    for query in ("limit=0", "limit=101", "limit=x", "after=-1", "after=abc",
                  "after=9223372036854775808"):
        r = node.get("/transactions/pending?" + query)
        assert r.status_code == 400, (query, r.text)
        assert r.json()["code"] == "invalid"
    assert node.post("/transactions/pending", {}).status_code == 405


def test_pending_mempool_stopped_is_503(make_node):
    import signal
    n = make_node(extra_args=["--request-timeout", "500"])
    n.signal_service("mempool", signal.SIGSTOP)
    try:
        r = n.get("/transactions/pending")
        assert r.status_code == 503, r.text
        assert r.json()["code"] == "unavailable"
        assert "mempool" in r.json()["message"]
    finally:
        n.signal_service("mempool", signal.SIGCONT)


def submit_many(node, count, tag, threads=8):
    """Submit count distinct transactions over keep-alive connections."""
    errors = []

    def worker(part):
        with requests.Session() as session:
            for n in range(part, count, threads):
                body = tx_body(n=n, users=[tag, "u%d" % (n % 50)])
                r = session.post(node.url + "/transactions/new", json=body, timeout=30)
                if r.status_code != 201:
                    errors.append(r.text)
    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert not errors, errors[:3]


def test_block_of_10000_transactions(make_node):
    n = make_node()
    submit_many(n, 10000, "big")
    assert n.mempool_size() == 10000
    block = n.get("/mine", timeout=120)
    assert block.status_code == 200, block.text[:300]
    height = block.json()["index"]
    assert len(block.json()["transactions"]) == 10000
    summary = n.get("/blocks?limit=1").json()["blocks"][0]
    assert summary["index"] == height and summary["transaction_count"] == 10000
    # A page anywhere in the block, by height and by hash.
    #  (Its time is bench/explorer_routes.py's figure, not asserted here.)
    page = n.get("/blocks/%d/transactions?start=9950&limit=50" % height)
    assert page.status_code == 200
    page = page.json()
    assert len(page["transactions"]) == 50 and page["next"] is None
    assert page["block"]["transaction_count"] == 10000
    whole = block.json()["transactions"]
    assert [t["txid"] for t in page["transactions"]] == [t["txid"] for t in whole[9950:]]
    mid = n.get("/blocks/%s/transactions?start=5000&limit=500" % summary["hash"]).json()
    assert [t["txid"] for t in mid["transactions"]] == [t["txid"] for t in whole[5000:5500]]
    assert mid["next"] == 5500


def test_json_errors_in_words(node):
    """POST /transactions/new's bad JSON answers say what is wrong in
    words, with the line and column, not jansson's internals."""
    cases = [
        ("hello world", "this is not JSON"),
        ('{"users": "a", "data": 18446744073709551616}', "a number is too large"),
        ('{"users": "a\\u0000b"}', "NUL character"),
        ('{"users": "a"', "ends before the JSON value does"),
        ('{"users": "a"} x', "more text after the end"),
        ('{"a": 1, "a": 2}', "a key is given twice"),
        (b'{"users": "\xff"}', "not valid UTF-8"),
    ]
    for body, words in cases:
        r = node.post("/transactions/new", data=body,
                      headers={"Content-Type": "application/json"})
        assert r.status_code == 400, (body, r.text)
        message = r.json()["message"]
        assert r.json()["code"] == "bad_json"
        assert words in message, (body, message)
        assert "line 1, column" in message, message
        for internal in ("JSON_ALLOW_NUL", "too big integer", "near '", "expected near"):
            assert internal not in message, (body, message)


# ------------------------------------------------------------------------
# Summary records (issue 12, second session): a block's summary is stored
# beside it ('C' + hash: header, transaction count, size; docs/architecture.md)
# so that GET /blocks after a restart, or past the 1,024-slot table, reads
# no whole block. A store made before these records answers the same.

SUMMARY_PREFIX = b"C"


def chain_db(n):
    """The stopped node's chain store, opened with plyvel (Debian's
    python3-plyvel, a test package)."""
    plyvel = pytest.importorskip(
        "plyvel", reason="python3-plyvel is needed to read the chain store's records "
                         "(scripts/install-deps.sh test)")
    return plyvel.DB(os.path.join(n.data_dir, "chain"))


def summary_records(n):
    db = chain_db(n)
    try:
        return {key[1:].hex(): value for key, value in db.iterator(prefix=SUMMARY_PREFIX)}
    finally:
        db.close()


def grow(n, blocks):
    """Mine blocks, some empty, some with 1 to 4 transactions."""
    for i in range(blocks):
        for tag in range(i % 5):
            n.submit(tx_body(n=1000 * i + tag, users=["sum", "s%d" % tag]))
        n.mine()


def every_summary(n):
    page = n.get("/blocks?limit=100")
    assert page.status_code == 200, page.text
    got = page.json()["blocks"]
    while len(got) < n.height() + 1:
        more = n.get("/blocks?limit=100&before=%d" % got[-1]["index"]).json()
        got += more["blocks"]
    return got


def test_summaries_same_after_a_restart(make_node):
    n = make_node()
    grow(n, 110)
    before = every_summary(n)
    assert len(before) == 111 and before[0]["index"] == 110
    assert {b["transaction_count"] for b in before[:5]} == {0, 1, 2, 3, 4}
    n.stop()
    records = summary_records(n)
    # Written with each block, the genesis too: one per block, none else.
    assert set(records) == {b["hash"] for b in before}
    assert all(len(v) == 112 for v in records.values())
    n.start()
    # Right after the restart (an empty table): the first page as before.
    r = n.get("/blocks?limit=100")
    assert r.status_code == 200, r.text
    assert r.json()["blocks"] == before[:100]
    assert every_summary(n) == before
    n.stop()
    # The record is what the cold read used, not the block: a record
    # made to say 7 transactions (still a valid record) is what shows.
    db = chain_db(n)
    try:
        key = SUMMARY_PREFIX + bytes.fromhex(before[1]["hash"])
        value = bytearray(db.get(key))
        assert int.from_bytes(value[100:104], "big") == before[1]["transaction_count"]
        value[100:104] = (7).to_bytes(4, "big")
        db.put(key, bytes(value))
    finally:
        db.close()
    n.start()
    assert n.get("/blocks?limit=2").json()["blocks"][1]["transaction_count"] == 7


def test_summaries_of_an_old_store(make_node):
    """A store from before summary records (records deleted), or with bad
    ones, answers the same summaries, and gets its records written."""
    n = make_node()
    grow(n, 30)
    before = every_summary(n)
    n.stop()
    db = chain_db(n)
    try:
        keys = [key for key, _ in db.iterator(prefix=SUMMARY_PREFIX)]
        assert len(keys) == 31
        for key in keys[:-3]:
            db.delete(key)
        # Bad records: too short, another block's, more transactions than bytes.
        short, other, lying = keys[-3:]
        db.put(short, db.get(short)[:100])
        db.put(other, db.get(lying))
        value = bytearray(db.get(lying))
        value[100:104] = (1 << 31).to_bytes(4, "big")
        db.put(lying, bytes(value))
    finally:
        db.close()
    n.start()
    assert every_summary(n) == before
    n.stop()
    records = summary_records(n)
    assert set(records) == {b["hash"] for b in before}
    assert all(len(v) == 112 for v in records.values())
    assert "bad summary record" in n.log_text()
    n.start()
    assert every_summary(n) == before


# ------------------------------------------------------------------------
# A side branch's block (issue 12, second session): served by its hash, as
# Bitcoin Core's getblock serves a stale block, marked "in_active_chain":
# false with 0 confirmations, alike on both block routes.

def test_side_block_is_served_as_stale(make_node):
    from test_p2p import stale_block
    a, b = make_node(), make_node()
    side = stale_block(a, b, data="stale", users="side")
    # The side block by hash: 200, stale.
    r = a.get("/blocks/" + side["hash"])
    assert r.status_code == 200, r.text
    stale = r.json()
    assert stale["hash"] == side["hash"] and stale["index"] == 1
    assert stale["in_active_chain"] is False and stale["confirmations"] == 0
    assert [t["txid"] for t in stale["transactions"]] == [t["txid"] for t in side["transactions"]]
    r = a.get("/blocks/%s/transactions" % side["hash"])
    assert r.status_code == 200, r.text
    page = r.json()
    assert page["block"]["in_active_chain"] is False and page["block"]["confirmations"] == 0
    assert page["block"]["hash"] == side["hash"]
    assert [t["txid"] for t in page["transactions"]] == [t["txid"] for t in side["transactions"]]
    # Height 1 is the active block there, on every route.
    active = a.get("/blocks/1").json()
    assert active["hash"] != side["hash"]
    assert active["in_active_chain"] is True and active["confirmations"] == 2
    assert a.get("/blocks/%s" % active["hash"]).json()["in_active_chain"] is True
    listed = a.get("/blocks").json()["blocks"]
    assert [blk["hash"] for blk in listed][1] == active["hash"]
    assert all(blk["in_active_chain"] is True for blk in listed)
    assert a.get("/blocks/1/transactions").json()["block"]["in_active_chain"] is True


def test_history_pages_within_and_across_blocks(make_node):
    """A history page whose items share a block (read once for the page)
    and span blocks: every item is its own transaction, newest first."""
    n = make_node()
    mined = []
    for b, count in enumerate((3, 60, 2)):
        txids = [n.submit(tx_body(n=100 * b + i, users=["pager", "o%d" % i]))[0]
                 for i in range(count)]
        block = n.mine()
        order = [t["txid"] for t in block["transactions"]]
        assert sorted(order) == sorted(txids)
        mined += [(block["index"], pos, txid) for pos, txid in enumerate(order)]
    want = [txid for _, _, txid in sorted(mined, reverse=True)]
    got, query = [], "/transactions?user=pager&limit=50"
    while True:
        r = n.get(query)
        assert r.status_code == 200, r.text
        page = r.json()
        where = {txid: (height, pos) for height, pos, txid in mined}
        for item in page["transactions"]:
            assert (item["block_height"], item["block_index"]) == where[item["transaction"]["txid"]]
        got += [item["transaction"]["txid"] for item in page["transactions"]]
        if page["next"] is None:
            break
        query = "/transactions?user=pager&limit=50&before=" + page["next"]
    assert got == want
