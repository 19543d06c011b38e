"""Retargeting (issue 10, item 2): with --block-interval every block's
target follows from its parent's time by the network's rule
(docs/architecture.md "Retargeting"), and every node holds every block to
it.

- A node with a 1 s interval and an easy starting target converges to a
  mean interval within 25 % of 1 s over the last 60 of 120 blocks; a second
  miner shortens the interval and the target adapts back.
- A block with the wrong bits sent by a peer is refused and the peer
  scored down; `chainbus verify` and `chainbus import` refuse a chain with
  a block whose bits are wrong.
- The interval is part of the network's identity: another interval is
  another genesis, nodes of the two never link, and a store made under one
  is refused under another.

Mining is continuous (`--mining continuous`); with CONTINUOUS False the
test keeps the miners searching with back-to-back GET /mine instead (a
dev node mines on demand). CTest runs this file alone (RUN_SERIAL): the
second miner needs the core no other test takes.
Figures (mean and spread of the intervals, blocks to converge after a
hash-rate change) are measured in bench/bench_retarget.py, not asserted
here beyond the issue's bounds.
"""

import json
import math
import os
import re
import shutil
import struct
import subprocess
import time

import msgpack
import pytest
import zmq

from chainbus_node import EASY_BITS, bin_dir, wait_for
from test_p2p import _curve_dealer
from test_verify import append_block, mine_header, sha256d, verify

#  Continuous mining; False drives it with back-to-back GET /mine.
CONTINUOUS = True
MINING_ARGS = ["--mining", "continuous"] if CONTINUOUS else []

INTERVAL = 1
#  A short half-life (8 intervals): the test converges in ~30 blocks from a
#  start 30 times too easy; the production default is 16.
HALF_LIFE = 8
#  Blocks on each side of the second miner's change that are compared.
WINDOW = 40
#  About a million hashes a block: easy for one miner (several M hashes/s
#  with SHA-NI), so the rule has room to make it harder whatever the
#  machine, and a sanitizer build still converges within 60 blocks.
START_BITS = "0x1e0fffff"
RETARGET_ARGS = ["--block-interval", str(INTERVAL), "--half-life", str(HALF_LIFE)]


def retargeting_node(make_node, bits=START_BITS, miners=1):
    return make_node(miners=miners, pow_bits=bits, extra_args=RETARGET_ARGS + MINING_ARGS)


def advance(node, height, timeout):
    """Let the node mine up to height (back-to-back GET /mine, or waiting
    for continuous mining)."""
    deadline = time.monotonic() + timeout
    while node.height() < height:
        assert time.monotonic() < deadline, "height %d not reached" % height
        if CONTINUOUS:
            time.sleep(0.05)
        else:
            node.mine()


def mine_for(node, seconds):
    """Let the node mine for that long."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if CONTINUOUS:
            time.sleep(0.05)
        else:
            node.mine()


def target(bits_hex):
    bits = int(bits_hex, 16)
    return (bits & 0x7FFFFF) << (8 * ((bits >> 24) - 3))


def intervals(blocks):
    return [b["timestamp"] - a["timestamp"] for a, b in zip(blocks, blocks[1:])]


def mean(values):
    return sum(values) / len(values)


def log2_target(blocks):
    """Mean log2 of the blocks' targets (the geometric mean's log)."""
    return mean([math.log2(target(b["bits"])) for b in blocks])


def hash_rates(text):
    return [float(r) for r in re.findall(r"hash rate=(\d+)/s", text)]


def test_the_interval_converges_and_adapts_to_a_second_miner(make_node):
    node = retargeting_node(make_node)
    advance(node, 120, timeout=400)
    chain = node.chain()["chain"]
    blocks = chain[:121]
    #  Blocks 1 and 2 carry the start; after them the rule hardens it (by
    #  how much depends on the machine's hash rate: x4 at 1 M hashes/s).
    assert blocks[1]["bits"] == blocks[2]["bits"] == START_BITS[2:]
    assert target(blocks[120]["bits"]) < target(START_BITS), blocks[120]["bits"]
    last = intervals(blocks[60:121])
    assert len(last) == 60
    assert abs(mean(last) - INTERVAL) <= 0.25 * INTERVAL, \
        "mean interval %.3f s over blocks 61-120" % mean(last)

    #  A second miner: on a machine with a core to spare the hash rate
    #  about doubles, the intervals shorten until the target has hardened
    #  by about half (the chain one half-life ahead of its schedule), then
    #  they are back near 1 s. Block intervals are exponential (their
    #  spread is their mean), so a handful of them says little: the
    #  shortening is measured as the lead the chain gains on its schedule
    #  (docs/architecture.md "Retargeting": the rule's target is a function
    #  of that lead), over 40 blocks on each side.
    before = node.height()
    before_log = node.log_text()
    log_path = os.path.join(node.root, "miner2.log")
    with open(log_path, "ab") as log:
        miner = subprocess.Popen(
            [os.path.join(bin_dir(), "chainbus-miner"), "--data-dir", node.data_dir,
             "--pow-bits", START_BITS] + RETARGET_ARGS + MINING_ARGS,
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    try:
        #  Mining goes on meanwhile: a pause would put the chain behind
        #  its schedule (and ease the target) just as the miner comes.
        deadline = time.monotonic() + 30
        while len(node.status().get("services", {}).get("miners") or []) < 2:
            assert time.monotonic() < deadline, "the second miner is not up"
            mine_for(node, 0.2)
        start = node.height()
        mine_for(node, 3 * HALF_LIFE * INTERVAL)
        middle = node.height()
        advance(node, middle + WINDOW, timeout=180)
        with open(log_path, encoding="utf-8", errors="replace") as log:
            second_rates = hash_rates(log.read())
    finally:
        miner.terminate()
        miner.wait(timeout=30)
    chain = node.chain()["chain"]
    one_miner = chain[before - WINDOW:before + 1]
    back = chain[middle:middle + WINDOW + 1]
    #  The hash rates the miners logged (every 10 s): what the rule answers.
    first_before = hash_rates(before_log)[-3:]
    first_after = hash_rates(node.log_text()[len(before_log):])[-3:]
    assert first_before and first_after and second_rates, "no hash rate lines"
    ratio = (mean(first_after) + mean(second_rates[-3:])) / mean(first_before)
    rates = "hash rate x%.2f (first miner %s then %s, second %s)" % (
        ratio, first_before, first_after, second_rates[-3:])
    #  Whatever the machine: the interval is back near the target.
    assert abs(mean(intervals(back)) - INTERVAL) <= 0.4 * INTERVAL, \
        "mean interval %.3f s after adapting; %s" % (mean(intervals(back)), rates)
    if ratio < 1.8:
        pytest.skip("the machine gave the second miner no spare core: %s" % rates)
    #  Shorter intervals: blocks came faster than one a second, so the
    #  chain's lead on its schedule grew. The rule answers a rate x r with
    #  a lead of HALF_LIFE * log2(r) intervals (8 s at x2); at least 30 %
    #  of it, which the windows' spread (about 2 s) leaves well clear.
    expected = math.log2(ratio)
    t1 = chain[1]["timestamp"]
    lead = [(b["index"] - 1) * INTERVAL - (b["timestamp"] - t1) for b in chain]
    gained = mean(lead[middle:middle + WINDOW + 1]) - mean(lead[before - WINDOW:before + 1])
    assert gained >= 0.3 * HALF_LIFE * INTERVAL * expected, \
        "the chain gained %.1f s on its schedule only; %s" % (gained, rates)
    #  And so the target hardened: log2 lower by 30 % of log2(r) at least.
    hardened = log2_target(one_miner) - log2_target(back)
    assert hardened >= 0.3 * expected, "target log2 lower by %.2f only; %s" % (hardened, rates)
    node.assert_no_crash()


# --------------------------------------------------------- wrong bits

def fast_chain(make_node, blocks=25):
    """A node whose target has hardened: blocks mined much faster than the
    interval (an easy start), so the start's bits are wrong now."""
    node = make_node(pow_bits=EASY_BITS, extra_args=RETARGET_ARGS)
    for _ in range(blocks):
        node.mine()
    chain = node.chain()["chain"]
    assert target(chain[-1]["bits"]) < target(EASY_BITS) // 4, chain[-1]["bits"]
    return node, chain


def wrong_header(chain):
    """A header on the tip with the starting (fixed) bits, its proof of
    work right for them, its time fine."""
    tip = chain[-1]
    time_ms = (int(tip["timestamp"]) + 2) * 1000
    return mine_header(tip["index"] + 1, bytes.fromhex(tip["hash"]), time_ms,
                       int(EASY_BITS, 16)), time_ms


def header_nonce(header):
    """The nonce of a header test_verify.mine_header made: its place in the
    header layout (docs/architecture.md; change both with the layout)."""
    return struct.unpack_from("<Q", header, 4 + 8 + 32 + 32 + 8 + 4 + 4)[0]


def fake_peer(node):
    """A peer-protocol DEALER linked to node (HELLO exchanged)."""
    info = node.get("/node/info").json()
    ctx = zmq.Context()
    s, public = _curve_dealer(ctx, info)
    status = node.status()
    hello = {"reply": True, "version": 1, "network": info["network"],
             "genesis": bytes.fromhex(info["genesis"]), "node_id": "wrongbits0000000",
             "public_key": public, "endpoint": "tcp://127.0.0.1:9",
             "height": 0, "work": bytes(32), "tip": bytes(32)}
    s.send_multipart([b"HELLO", msgpack.packb(hello)])
    assert s.poll(10000), "no HELLO back"
    assert s.recv_multipart()[0] == b"HELLO"
    return ctx, s, status


def test_a_peers_block_with_wrong_bits_is_refused_and_the_peer_scored_down(make_node):
    node, chain = fast_chain(make_node)
    header, _ = wrong_header(chain)
    ctx, s, status = fake_peer(node)
    try:
        block = msgpack.packb({"header": header, "txs": []}, use_bin_type=True)
        s.send_multipart([b"BLOCK", msgpack.packb({"block": block})])
        entry = wait_for(lambda: next((n for n in node.get("/nodes").json()["nodes"]
                                       if n["node_id"] == "wrongbits0000000"
                                       and n["score"] < 0), None),
                         30, "the peer to be scored down")
        assert entry["score"] <= -50, entry
        assert node.status()["tip"] == status["tip"]
        log = node.log_text()
        assert re.search(r"block refused hash=%s code=bad_bits reason=\"Block target bits "
                         r"2000ffff are not the [0-9a-f]{8} the network's rule gives\""
                         % sha256d(header).hex(), log), node.log_tail()
        assert "peer misbehaved" in log
    finally:
        s.close()
        ctx.term()
    node.assert_no_crash()


def test_verify_and_import_refuse_a_block_with_wrong_bits(make_node, tmp_path):
    node, chain = fast_chain(make_node)
    rule_flags = ["--pow-bits", EASY_BITS] + RETARGET_ARGS
    #  The export of the sound chain, for import below.
    exported = str(tmp_path / "chain.json")
    r = subprocess.run([os.path.join(bin_dir(), "chainbus"), "export", "--data-dir",
                        node.data_dir] + rule_flags + ["--json", exported],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    node.stop()
    #  A copy to write a block into behind the node's back (opening a
    #  store folds its log into a table: the writer needs the log).
    damaged = str(tmp_path / "damaged")
    shutil.copytree(os.path.join(node.data_dir, "chain"), os.path.join(damaged, "chain"))
    code, out, err = verify(node.data_dir, *rule_flags)
    assert code == 0 and out[0].startswith("chain sound: 26 blocks"), (out, err)
    #  The store is another network's for another interval (or none).
    code, out, err = verify(node.data_dir, "--pow-bits", EASY_BITS)
    assert code == 2 and "another network" in err and "block_interval=1" in err, err
    code, out, err = verify(node.data_dir, "--pow-bits", EASY_BITS, "--block-interval", "2",
                            "--half-life", str(HALF_LIFE))
    assert code == 2 and "another network" in err, err

    #  A block with the starting bits written behind the node's back.
    tip_ms = int(round(chain[-1]["timestamp"] * 1000))
    block = append_block(damaged, {"chain": chain}, tip_ms + 1)
    code, out, err = verify(damaged, *rule_flags)
    assert code == 1, (out, err)
    assert re.fullmatch(r"block 26 \(%s\): target bits 2000ffff are not the [0-9a-f]{8} "
                        r"the network's rule gives" % block, out[0]), out

    #  Import: the same chain with its last block replaced by one with the
    #  starting bits (its proof right for them) is refused, naming it.
    with open(exported) as f:
        doc = json.load(f)
    header, time_ms = wrong_header(chain[:-1])
    last = doc["chain"][-1]
    last.update({"timestamp": time_ms / 1000, "transactions": [], "bits": EASY_BITS[2:],
                 "merkle_root": "00" * 32, "miner": 0, "version": 2,
                 "proof": header_nonce(header),
                 "hash": sha256d(header).hex()})
    last.pop("target", None)
    bad = str(tmp_path / "bad.json")
    with open(bad, "w") as f:
        json.dump(doc, f)
    fresh = str(tmp_path / "fresh")
    r = subprocess.run([os.path.join(bin_dir(), "chainbus"), "import", "--data-dir", fresh]
                       + rule_flags + ["--json", bad], capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert re.search(r"block 25: Block target bits 2000ffff are not the [0-9a-f]{8} the "
                     r"network's rule gives", r.stderr), r.stderr
    #  The sound export imports (the rule is the same on both sides).
    r = subprocess.run([os.path.join(bin_dir(), "chainbus"), "import", "--data-dir", fresh]
                       + rule_flags + ["--json", exported], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


# ------------------------------------------------------------ identity

def test_another_block_interval_is_another_network(make_node):
    fixed = make_node()
    retargeting = make_node(pow_bits=EASY_BITS, extra_args=RETARGET_ARGS)
    a, b = fixed.get("/node/info").json(), retargeting.get("/node/info").json()
    assert a["network"] == b["network"] == "dev"
    assert a["genesis"] != b["genesis"]
    address = "http://127.0.0.1:%d" % retargeting.port
    r = fixed.post("/nodes/register", {"nodes": [address]})
    assert r.status_code == 201, r.text
    entry = wait_for(lambda: next((n for n in fixed.get("/nodes").json()["nodes"]
                                   if n["address"] == address
                                   and n["state"] == "refused"), None),
                     30, "the refusal")
    assert "genesis" in entry["reason"] or "network" in entry["reason"], entry
