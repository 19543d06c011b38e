"""The seed's curl commands, run exactly as written (only the port differs),
in the seed's order, against a fresh node; the responses keep the original
tutorial's shapes."""

import json
import os
import re
import subprocess

from chainbus_node import HEX64

#  Copied verbatim from the seed's README (seeds/000_*.txt).
SEED_MINE = "curl http://localhost:5000/mine"
SEED_NEW_TX = """curl -X POST -H "Content-Type: application/json" -d '{
    "users": "user1",
    "data": [],
    "dh_parameters": "param",
    "server_public_key": "server_key",
    "receiver_public_key": "receiver_key",
    "sender_public_key": "sender_key"
  }' http://localhost:5000/transactions/new"""
SEED_CHAIN = "curl http://localhost:5000/chain"
SEED_REGISTER = """curl -X POST -H "Content-Type: application/json" -d '{
    "nodes": ["http://localhost:5001"]
  }' http://localhost:5000/nodes/register"""
SEED_RESOLVE = "curl http://localhost:5000/nodes/resolve"

BLOCK_KEYS = {"index", "timestamp", "transactions", "proof", "previous_hash",
              "hash", "merkle_root", "target", "miner"}


def run_curl(node, command, tmp_path):
    """Run a seed command with bash, pointed at this node's port. curl's
    options for the test (status code after the body) come from a .curlrc,
    so the command line itself stays as the seed wrote it."""
    command = command.replace("http://localhost:5000/",
                              "http://localhost:%d/" % node.port)
    rc = tmp_path / ".curlrc"
    rc.write_text('silent\nshow-error\nmax-time = 60\nwrite-out = "\\n%{http_code}"\n')
    env = dict(os.environ, CURL_HOME=str(tmp_path), HOME=str(tmp_path))
    done = subprocess.run(["bash", "-c", command], capture_output=True,
                          env=env, timeout=90)
    assert done.returncode == 0, done.stderr.decode()
    body, _, code = done.stdout.decode().rpartition("\n")
    return int(code), json.loads(body)


def test_seed_commands_in_order(make_node, tmp_path):
    node = make_node()

    #  curl http://localhost:5000/mine on a fresh node: a block with no
    #  transactions after genesis.
    code, mined = run_curl(node, SEED_MINE, tmp_path)
    assert code == 200, mined
    assert mined["message"] == "New Block Forged"
    for key in ("index", "transactions", "proof", "previous_hash", "hash"):
        assert key in mined, (key, mined)
    assert mined["transactions"] == []
    assert HEX64.match(mined["hash"])
    assert HEX64.match(mined["previous_hash"])

    #  POST /transactions/new with the seed's body.
    code, created = run_curl(node, SEED_NEW_TX, tmp_path)
    assert code == 201, created
    assert set(created) == {"message", "txid"}
    assert created["message"] == "Transaction will be added to Block %d" % (mined["index"] + 1)
    assert HEX64.match(created["txid"])

    #  The tutorial's flow: mine it, then read the chain.
    code, mined2 = run_curl(node, SEED_MINE, tmp_path)
    assert code == 200, mined2
    assert mined2["index"] == mined["index"] + 1
    assert mined2["previous_hash"] == mined["hash"]
    assert len(mined2["transactions"]) == 1
    tx = mined2["transactions"][0]
    for field, value in [("users", "user1"), ("data", []), ("dh_parameters", "param"),
                         ("server_public_key", "server_key"),
                         ("receiver_public_key", "receiver_key"),
                         ("sender_public_key", "sender_key")]:
        assert tx[field] == value, (field, tx)

    code, chain = run_curl(node, SEED_CHAIN, tmp_path)
    assert code == 200, chain
    assert set(chain) == {"chain", "length"}
    assert chain["length"] == len(chain["chain"]) == mined2["index"] - chain["chain"][0]["index"] + 1
    for block in chain["chain"]:
        assert BLOCK_KEYS <= set(block), block
    assert chain["chain"][-1]["hash"] == mined2["hash"]
    assert chain["chain"][-1]["transactions"] == mined2["transactions"]

    code, registered = run_curl(node, SEED_REGISTER, tmp_path)
    assert code == 201, registered
    assert registered["message"] == "New nodes have been added"
    assert isinstance(registered["total_nodes"], list)
    assert len(registered["total_nodes"]) == 1
    assert re.search(r"localhost:5001", registered["total_nodes"][0]), registered

    #  The registered peer does not exist: resolving must still answer,
    #  and keep our chain.
    code, resolved = run_curl(node, SEED_RESOLVE, tmp_path)
    assert code == 200, resolved
    assert resolved["message"] == "Our chain is authoritative"
    assert [b["hash"] for b in resolved["chain"]] == [b["hash"] for b in chain["chain"]]

    node.assert_no_crash()


def test_seed_resolve_without_peers(node, tmp_path):
    code, resolved = run_curl(node, SEED_RESOLVE, tmp_path)
    assert code == 200, resolved
    assert resolved["message"] == "Our chain is authoritative"
    assert isinstance(resolved["chain"], list) and resolved["chain"]
    assert BLOCK_KEYS <= set(resolved["chain"][0])
