"""POST /transactions/new and GET /transactions/<txid>: what is accepted,
what comes back, where it lands, and many clients at once."""

import json
import threading
from decimal import Decimal
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from chainbus_node import HEX64, TX_FIELDS, mempool_size, tx_body

#  A data value that a lossy codec would change: nested objects with keys
#  out of alphabetical order, unicode (BMP, astral, escapes), floats that
#  have no exact binary form, integers beyond 2^53, empty containers.
RICH_DATA_TEXT = r'''{
  "zeta": 1, "alpha": {"y": [1, 2.5, -0.1, 0.1, 1.0, 3.14159, 1e-7, 6.02e23],
                       "b": {"deep": {"deeper": [null, true, false, "", {}, []]}}},
  "unicode": "h\u00e9llo w\u00f6rld \u4e2d\u6587 \ud83d\ude80 \"quoted\" back\\slash \n tab\t",
  "raw": "héllo 中文 🚀",
  "big": 9007199254740993, "neg": -9223372036854775808, "imax": 9223372036854775807,
  "mid": 0, "list": [[[]]], "M": "upper before lower"
}'''


def literal(value_text):
    """Parse keeping each number's kind and exact decimal value: 0.1 must
    not come back as 0.10000000000000001, nor 1.0 as 1 (1e-7 may come
    back as 1e-07). Key order is kept by dict."""
    return json.loads(value_text,
                      parse_float=lambda s: ("real", Decimal(s)),
                      parse_int=lambda s: ("int", int(s)))


def get_tx(node, txid):
    r = node.tx(txid)
    assert r.status_code == 200, "%d %s" % (r.status_code, r.text)
    return r


def tx_object(response_json):
    """The transaction inside a GET /transactions/<txid> answer."""
    return response_json["transaction"]


def test_created_answer_names_the_next_block(node):
    tip = node.chain()["chain"][-1]["index"]
    txid, n = node.submit(tx_body("next-block"))
    assert HEX64.match(txid)
    assert n == tip + 1
    mined = node.mine()
    assert mined["index"] == n
    assert txid in [t["txid"] for t in mined["transactions"]]


def test_users_as_string_or_list(node):
    one, _ = node.submit(tx_body(users="alice"))
    many, _ = node.submit(tx_body(users=["alice", "bob", "carol"]))
    assert tx_object(get_tx(node, one).json())["users"] == "alice"
    assert tx_object(get_tx(node, many).json())["users"] == ["alice", "bob", "carol"]
    mined = node.mine()
    by_id = {t["txid"]: t for t in mined["transactions"]}
    assert by_id[one]["users"] == "alice"
    assert by_id[many]["users"] == ["alice", "bob", "carol"]


def test_data_comes_back_exactly_as_given(node):
    body_text = ('{"users": ["u1", "u2"], "data": %s, "dh_parameters": "p", '
                 '"server_public_key": "s", "receiver_public_key": "r", '
                 '"sender_public_key": "k"}' % RICH_DATA_TEXT)
    r = node.post("/transactions/new", data=body_text.encode(),
                  headers={"Content-Type": "application/json"})
    assert r.status_code == 201, r.text
    txid = r.json()["txid"]
    want = literal(RICH_DATA_TEXT)

    def data_in(text, path):
        value = literal(text)
        for key in path:
            value = value[key]
        return value

    #  Pending: the same value, same key order, numbers as written.
    pending = get_tx(node, txid)
    got = data_in(pending.text, ["transaction", "data"])
    assert got == want
    assert list(got) == list(want)
    assert list(got["alpha"]) == ["y", "b"]

    #  Confirmed: the same in /mine, /chain and /transactions/<txid>.
    mined = node.mine()
    index = [t["txid"] for t in mined["transactions"]].index(txid)
    chain_text = node.get("/chain").text
    chain = json.loads(chain_text)
    block_pos = [b["hash"] for b in chain["chain"]].index(mined["hash"])
    assert data_in(chain_text, ["chain", block_pos, "transactions", index, "data"]) == want
    confirmed = get_tx(node, txid)
    assert data_in(confirmed.text, ["transaction", "data"]) == want


def test_data_may_be_any_json_value(node):
    for data in ["text", 42, -7.5, True, None, {"k": "v"}, [1, "two", {"3": [4]}], {}]:
        txid, _ = node.submit(tx_body(data=data))
        got = tx_object(get_tx(node, txid).json())["data"]
        assert got == data and type(got) is type(data), (data, got)


def test_fields_come_back_as_given(node):
    body = {"users": ["ü-user", "𝔲ser"], "data": {"b": 1, "a": 2},
            "dh_parameters": "g=2 p=0xffff…", "server_public_key": "srv 🔑",
            "receiver_public_key": "rcv", "sender_public_key": "snd"}
    txid, _ = node.submit(body)
    tx = tx_object(get_tx(node, txid).json())
    for field in TX_FIELDS:
        assert tx[field] == body[field], field
    assert tx["txid"] == txid


def test_pending_then_confirmed(node):
    txid, n = node.submit(tx_body("pending-then-confirmed"))
    pending = get_tx(node, txid).json()
    assert pending["status"] == "pending", pending
    assert pending["transaction"]["txid"] == txid
    assert "block_hash" not in pending

    mined = node.mine()
    assert mined["index"] == n
    confirmed = get_tx(node, txid).json()
    assert confirmed["status"] == "confirmed", confirmed
    assert confirmed["transaction"]["txid"] == txid
    assert confirmed["block_hash"] == mined["hash"]
    assert confirmed["block_height"] == mined["index"]
    assert confirmed["confirmations"] == 1
    #  Mined transactions leave the mempool.
    assert txid not in [t["txid"] for t in node.mine()["transactions"]]


def test_mine_takes_every_pending_transaction(node):
    txids = [node.submit(tx_body("batch-%d" % i))[0] for i in range(20)]
    assert mempool_size(node.status()) >= 20
    mined = node.mine()
    assert set(txids) <= {t["txid"] for t in mined["transactions"]}
    assert mempool_size(node.status()) == 0
    for txid in txids:
        assert get_tx(node, txid).json()["status"] == "confirmed"


def test_same_transaction_twice_is_stored_once(node):
    body = tx_body("idempotent", timestamp=1732170000000000)
    before = node.mempool_size()
    first = node.post("/transactions/new", body)
    assert first.status_code == 201, first.text
    again = node.post("/transactions/new", body)
    assert again.status_code == 200, again.text
    assert again.json()["txid"] == first.json()["txid"]
    assert again.json()["duplicate"] is True
    assert again.json()["message"] == first.json()["message"]
    assert node.mempool_size() == before + 1
    mined = node.mine()
    assert [t["txid"] for t in mined["transactions"]].count(first.json()["txid"]) == 1
    #  Once confirmed, posting it again adds nothing either.
    late = node.post("/transactions/new", body)
    assert late.status_code == 200, late.text
    assert late.json()["confirmed"] is True
    assert node.mempool_size() == 0


def test_unknown_txid_is_404(node):
    r = node.tx("00" * 32)
    assert r.status_code == 404, r.text
    assert "message" in r.json()
    assert r.json()["code"] == "not_found", r.text


#  With batch_max 3 the mempool keeps stopping its intake (three taken in
#  and not yet written) and starting it again: nothing may be lost or stuck.
@pytest.mark.parametrize("extra", [[], ["--batch-max", "3"]], ids=["defaults", "batch-max-3"])
def test_many_concurrent_posts_all_durable(make_node, extra):
    node = make_node(extra_args=extra)
    before = node.mempool_size()
    count, workers = 400, 32
    lock = threading.Lock()
    results = []

    def post(i):
        with requests.Session() as s:  # one per thread: not thread-safe
            r = s.post(node.url + "/transactions/new",
                       json=tx_body("concurrent-%d" % i), timeout=60)
        with lock:
            results.append((r.status_code, r.text))

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(post, range(count)))

    codes = [c for c, _ in results]
    assert codes.count(201) == count, [r for r in results if r[0] != 201][:5]
    txids = [json.loads(t)["txid"] for _, t in results]
    assert len(set(txids)) == count
    assert node.mempool_size() == before + count
    for txid in txids:
        assert get_tx(node, txid).json()["status"] == "pending"

    #  They survive a restart, and one /mine takes them all.
    node.restart()
    assert node.mempool_size() == before + count
    mined = node.mine()
    assert set(txids) <= {t["txid"] for t in mined["transactions"]}
    node.assert_no_crash()
