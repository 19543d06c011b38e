"""GET /mine, /chain, /blocks/<height-or-hash> and /status."""

import json

from chainbus_node import HEX64, mempool_size, miners_up, tx_body

BLOCK_KEYS = {"index", "timestamp", "transactions", "proof", "previous_hash",
              "hash", "merkle_root", "target", "miner"}


def block_of(response_json):
    """The block in a GET /blocks/<id> answer."""
    return response_json


def test_mine_answers_with_the_connected_block(node):
    txids = [node.submit(tx_body("mine-shape-%d" % i))[0] for i in range(3)]
    height = node.height()
    mined = node.mine()
    assert mined["message"] == "New Block Forged"
    assert BLOCK_KEYS <= set(mined), mined
    assert mined["index"] == height + 1
    assert HEX64.match(mined["hash"]) and HEX64.match(mined["previous_hash"])
    assert HEX64.match(mined["merkle_root"])
    assert isinstance(mined["proof"], int)
    assert [t["txid"] for t in mined["transactions"]] == txids
    #  Connected before the answer: the chain already ends with it.
    status = node.status()
    assert status["height"] == mined["index"]
    assert status["tip"] == mined["hash"]
    assert mempool_size(status) == 0
    assert node.chain()["chain"][-1]["hash"] == mined["hash"]


def test_mine_with_empty_mempool_forges_an_empty_block(node):
    node.mine()
    mined = node.mine()
    assert mined["message"] == "New Block Forged"
    assert mined["transactions"] == []


def test_chain_links_and_shape(node):
    for i in range(4):
        node.submit(tx_body("link-%d" % i))
        node.mine()
    chain = node.chain()
    blocks = chain["chain"]
    assert chain["length"] == len(blocks) >= 5
    first = blocks[0]["index"]
    for i, block in enumerate(blocks):
        assert BLOCK_KEYS <= set(block), block
        assert block["index"] == first + i
        assert HEX64.match(block["hash"])
        assert isinstance(block["transactions"], list)
        assert isinstance(block["timestamp"], (int, float))
        if i + 1 < len(blocks):
            assert blocks[i + 1]["previous_hash"] == block["hash"]
    assert len({b["hash"] for b in blocks}) == len(blocks)
    assert node.status()["height"] == blocks[-1]["index"]


def test_chain_is_streamed(node):
    r = node.get("/chain", stream=True)
    assert r.status_code == 200
    assert r.headers.get("Transfer-Encoding") == "chunked", r.headers
    assert r.headers["Content-Type"].startswith("application/json")
    body = b"".join(r.iter_content(65536))
    assert json.loads(body)["length"] == node.height() + 1


def test_block_by_height_and_by_hash(node):
    node.submit(tx_body("by-id"))
    node.mine()
    blocks = node.chain()["chain"]
    for block in (blocks[0], blocks[len(blocks) // 2], blocks[-1]):
        for key in (str(block["index"]), block["hash"]):
            r = node.get("/blocks/" + key)
            assert r.status_code == 200, (key, r.status_code, r.text)
            got = block_of(r.json())
            for field in BLOCK_KEYS:
                assert got[field] == block[field], (key, field)
            assert got["confirmations"] == blocks[-1]["index"] - block["index"] + 1
    upper = node.get("/blocks/" + blocks[-1]["hash"].upper())
    assert upper.status_code == 200 and upper.json()["hash"] == blocks[-1]["hash"]


def test_block_not_found(node):
    tip = node.height()
    for key in (str(tip + 1), str(10 ** 9), "ab" * 32):
        r = node.get("/blocks/" + key)
        assert r.status_code == 404, (key, r.status_code, r.text)
        assert isinstance(r.json()["message"], str)
        assert r.json()["code"] == "not_found", r.text
    for key in ("-1", "xyz", "12abc", "ab" * 31, "zz" * 32, "1" * 40):
        r = node.get("/blocks/" + key)
        assert r.status_code in (400, 404), (key, r.status_code, r.text)
        assert isinstance(r.json()["message"], str)
        assert r.json()["code"] == ("invalid" if r.status_code == 400 else "not_found"), r.text
    node.assert_no_crash()


def test_status(node):
    node.submit(tx_body("status"))
    status = node.status()
    for key in ("height", "tip", "services"):
        assert key in status, status
    assert mempool_size(status) >= 1
    assert HEX64.match(status["tip"])
    for role in ("bus", "chainstore", "mempool", "gateway", "peersync"):
        assert status["services"][role]["up"] is True, (role, status)
    assert len(miners_up(status)) == 1, status
    blocks = node.chain()["chain"]
    assert status["tip"] == blocks[-1]["hash"]
    assert status["height"] == blocks[-1]["index"]
