"""Mining modes (miner/mode, --mining): in continuous mode the miners always
work on the newest template, so a submitted transaction is confirmed with
nobody calling GET /mine, blocks without transactions are mined too (a
steady block rate for retargeting), and GET /mine answers with the next
block connected. Each miner reports its hash rate in GET /status, beside
the network's, estimated from the last blocks; two miners never search
the same headers (each puts its own id in them), so both find blocks.
The production configuration (deploy/chainbus.cfg) mines continuously,
its admin token guarding GET /mine only."""

import os
import secrets
import signal
import subprocess
import tempfile
import time

import pytest

from chainbus_node import REPO, bin_dir, tx_body, wait_for
from test_disk_full import fill, small_disk  # noqa: F401 (a fixture)

#  About 2^18 hashes a block: several blocks a second per miner on the
#  normal build, about one under a sanitizer.
BITS = "0x1e3fffff"
CONTINUOUS = ["--mining", "continuous"]


def grown(node, past, timeout=60):
    """Wait until the chain is higher than past; returns the height."""
    return wait_for(lambda: (lambda h: h if h is not None and h > past else None)(
        node.status()["height"]), timeout, "the chain to grow past %d" % past)


def test_on_demand_is_the_default_and_mines_nothing_by_itself(make_node):
    node = make_node(pow_bits=BITS)
    status = node.status()
    assert status["mining"]["mode"] == "on-demand", status
    time.sleep(2)
    assert node.height() == 0
    assert node.mine()["index"] == 1


def test_continuous_confirms_a_transaction_nobody_mines(make_node):
    node = make_node(pow_bits=BITS, extra_args=CONTINUOUS)
    assert node.status()["mining"]["mode"] == "continuous"
    #  Empty blocks come by themselves.
    grown(node, 2)
    chain = node.chain()
    assert all(block["transactions"] == [] for block in chain["chain"][1:]), chain
    #  A transaction submitted is confirmed without anybody asking.
    txid, _ = node.submit(tx_body("continuous"))
    confirmed = wait_for(lambda: (lambda j: j if j.get("status") == "confirmed" else None)(
        node.tx(txid).json()), 60, "the transaction to be confirmed")
    block = node.get("/blocks/%d" % confirmed["block_height"]).json()
    assert txid in [tx["txid"] for tx in block["transactions"]], block
    assert node.status()["mempool"]["size"] == 0
    node.assert_no_crash()


def test_continuous_mine_answers_with_the_next_block(make_node):
    node = make_node(pow_bits=BITS, extra_args=CONTINUOUS)
    before = grown(node, 0)
    mined = node.mine()
    assert mined["index"] > before, (before, mined)
    block = node.get("/blocks/%d" % mined["index"]).json()
    assert block["hash"] == mined["hash"]
    #  Mining goes on after it.
    grown(node, mined["index"])


def test_two_miners_both_find_blocks_and_report_their_rates(make_node):
    node = make_node(miners=2, pow_bits=BITS, extra_args=CONTINUOUS)

    def both():
        status = node.status()
        rates = status["mining"]["miners"]
        if len(rates) == 2 and all(rate > 0 for rate in rates.values()):
            return status
        return None

    status = wait_for(both, 60, "two miners reporting a hash rate")
    ids = {int(name.split(".")[1]) for name in status["mining"]["miners"]}
    assert len(ids) == 2
    assert set(status["mining"]["miners"]) == set(status["services"]["miners"])

    def found_by_both():
        miners = {block["miner"] for block in node.chain()["chain"][1:]}
        return miners if ids <= miners else None

    miners = wait_for(found_by_both, 120, "blocks from both miners", interval=0.5)
    assert miners == ids, (miners, ids)
    status = wait_for(lambda: (lambda s: s if s["mining"]["network_hash_rate"] else None)(
        node.status()), 30, "a network hash rate")
    mining = status["mining"]
    assert mining["hash_rate"] == sum(mining["miners"].values())
    assert 1 <= mining["network_blocks"] <= 60 and mining["network_span_ms"] > 0
    assert mining["network_hash_rate"] > 0
    node.assert_no_crash()


def test_continuous_mining_survives_service_restarts(make_node):
    node = make_node(pow_bits=BITS, extra_args=CONTINUOUS)
    height = grown(node, 0)
    #  A frozen chainstore: no block, and the log does not fill meanwhile.
    pid = node.signal_service("chainstore", signal.SIGSTOP)
    try:
        time.sleep(1)
        lines = len(node.log_text().splitlines())
        time.sleep(4)
        assert len(node.log_text().splitlines()) - lines < 30, node.log_tail()
    finally:
        os.kill(pid, signal.SIGCONT)
    height = grown(node, node.height())
    for role in ("mempool", "chainstore"):
        node.kill_service(role)
        height = grown(node, height)
    txid, _ = node.submit(tx_body("after-restarts"))
    wait_for(lambda: node.tx(txid).json().get("status") == "confirmed", 60,
             "the transaction to be confirmed after the restarts")


def test_a_deploy_like_node_mines_continuously(make_node):
    token = secrets.token_hex(32)
    fd, path = tempfile.mkstemp(prefix="cbtoken", dir="/tmp")
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    try:
        #  The production file, with this test's folder, port and token.
        node = make_node(pow_bits=BITS, extra_args=[
            "--config", os.path.join(REPO, "deploy", "chainbus.cfg"),
            "--admin-token-file", path, "--www-dir", ""])
        status = node.status()
        assert status["mining"]["mode"] == "continuous" and status["network"] == "main"
        grown(node, 1)
        r = node.get("/mine")
        assert r.status_code == 401, r.text
        before = node.height()
        r = node.get("/mine", headers={"Authorization": "Bearer " + token})
        assert r.status_code == 200 and r.json()["index"] > before, r.text
    finally:
        os.unlink(path)


def test_continuous_mining_holds_while_the_chain_store_takes_no_blocks(make_node):
    """A reserve above the free space of /tmp: the chain store takes no
    blocks from its first write on. Nothing more is mined, GET
    /mine answers 507 at once, and the log does not grow with the waiting
    (the full-disk test with a loop mount shows the resume)."""
    reserve_mb = 1 << 20
    fs = os.statvfs("/tmp")
    if fs.f_bavail * fs.f_frsize >= reserve_mb << 20:
        pytest.skip("/tmp has a TiB free or more: the reserve cannot exceed it")
    node = make_node(pow_bits=BITS, extra_args=CONTINUOUS + ["--disk-reserve", str(reserve_mb)])
    wait_for(lambda: "disk full" in node.status()["services"]["chainstore"].get("storage", ""),
             10, "/status to name the chain store full")
    r = node.get("/mine")
    assert r.status_code == 507 and r.json()["code"] == "no_space", r.text
    #  The chain store learns that its disk is full at its first write
    #  (the first block), and the mempool a moment later: from then on
    #  no template, no block, and a quiet log.
    before = node.log_text()
    time.sleep(5)
    after = node.log_text()
    grown_by = len(after.splitlines()) - len(before.splitlines())
    assert node.height() == 0
    for what in ("work published", "block found"):
        assert after.count(what) == before.count(what), node.log_tail()
    assert grown_by < 20, node.log_tail()


def test_continuous_mining_pauses_on_a_full_disk_and_resumes(small_disk, make_node):
    """The data folder on a small loop-mounted ext4 (root; skipped
    otherwise): filled while mining continuously, the chain stops growing
    and the log stays quiet; once the filler is gone mining resumes by
    itself, and a transaction submitted then is confirmed."""
    node = make_node(start=False, pow_bits=BITS, extra_args=CONTINUOUS)
    node.data_dir = os.path.join(small_disk, "d")
    node.start()
    grown(node, 1)
    filler = os.path.join(small_disk, "filler")
    fill(filler)
    wait_for(lambda: "disk full" in node.status()["services"]["chainstore"].get("storage", ""),
             30, "/status to name the chain store full")
    height = node.height()
    lines = len(node.log_text().splitlines())
    time.sleep(4)
    assert node.height() == height
    assert len(node.log_text().splitlines()) - lines < 30, node.log_tail()
    os.unlink(filler)
    grown(node, height, timeout=30)
    #  Each store finds the room by itself, within about a second.
    r = wait_for(lambda: (lambda r: r if r.status_code == 201 else None)(
        node.post("/transactions/new", tx_body("after-the-full-disk"))), 30,
        "the mempool to take transactions again")
    txid = r.json()["txid"]
    wait_for(lambda: node.tx(txid).json().get("status") == "confirmed", 60,
             "the transaction to be confirmed once there is room")
    node.assert_no_crash()


def test_two_miners_given_one_id_are_told(make_node):
    """The nonce space is split by miner id: two miners with the same id
    hash the same headers. Each hears the other's heartbeat under its own
    name and says so in the log. The launcher gives its own miners
    distinct ids (--miner-id 5: miner.5, miner.6 ...), so the twin is a
    chainbus-miner started by hand with the launcher's miner's id."""
    node = make_node(miners=1, pow_bits=BITS, extra_args=CONTINUOUS + ["--miner-id", "5"])
    with open(node.log_path, "ab") as log:
        twin = subprocess.Popen(
            [os.path.join(bin_dir(), "chainbus-miner"), "--data-dir", node.data_dir,
             "--miner-id", "5"], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: "another miner has id=5" in node.log_text(), 30,
                 "a miner to log that another has its id")
        #  Once a minute each, not once a heartbeat.
        time.sleep(3)
        assert node.log_text().count("another miner has id=5") <= 2
    finally:
        twin.terminate()
        twin.wait(20)
