"""The miner's hasher (issue 10, item 4): blocks mined with the CPU's SHA
instructions and with the portable code (CHAINBUS_SHA256=portable) are
the same valid blocks, and each block's hash is the double SHA-256 of the
100-byte version-2 header that docs/architecture.md lays out."""

import hashlib
import struct

import pytest

from chainbus_node import Node

#  About 65,000 nonces a block: enough that a search runs several slices.
BITS = "0x1f00ffff"
BLOCKS = 3


def header_bytes(block):
    """The header as docs/architecture.md "The header and the hasher" lays
    it out, from a block's JSON: version u32, height u64, previous hash,
    merkle root, time in ms u64, bits u32, miner u32, nonce u64, all
    little-endian, nothing after the nonce."""
    time_ms = int(round(block["timestamp"] * 1000))
    return (struct.pack("<IQ", block["version"], block["index"])
            + bytes.fromhex(block["previous_hash"]) + bytes.fromhex(block["merkle_root"])
            + struct.pack("<QIIQ", time_ms, int(block["bits"], 16), block["miner"],
                          block["proof"]))


def cpu_has_sha():
    with open("/proc/cpuinfo") as f:
        return any(line.startswith("flags") and " sha_ni" in line for line in f)


def mine_and_check(node):
    for height in range(1, BLOCKS + 1):
        r = node.get("/mine")
        assert r.status_code == 200, r.text
        assert r.json()["index"] == height
    chain = node.get("/chain").json()["chain"]
    assert len(chain) == BLOCKS + 1
    for parent, block in zip(chain, chain[1:]):
        header = header_bytes(block)
        assert len(header) == 100
        assert block["version"] == 2
        digest = hashlib.sha256(hashlib.sha256(header).digest()).digest()
        assert digest.hex() == block["hash"]
        assert int(block["hash"], 16) <= int(block["target"], 16)
        assert block["previous_hash"] == parent["hash"]
    #  The genesis block's header follows the same layout.
    assert hashlib.sha256(hashlib.sha256(header_bytes(chain[0])).digest()).hexdigest() \
        == chain[0]["hash"]


@pytest.mark.parametrize("forced", [None, "portable"])
def test_blocks_mined_by_either_hasher_are_valid_version_2_blocks(forced, monkeypatch):
    if forced:
        monkeypatch.setenv("CHAINBUS_SHA256", forced)
    else:
        monkeypatch.delenv("CHAINBUS_SHA256", raising=False)
    node = Node(pow_bits=BITS)
    try:
        node.start()
        mine_and_check(node)
        lines = [line for line in node.log_text().splitlines()
                 if "(chainbus-miner)" in line and "sha256 hasher=" in line]
        assert lines, node.log_tail()
        if forced:
            assert all("hasher=portable (CHAINBUS_SHA256=portable)" in line for line in lines)
        elif cpu_has_sha():
            assert all("hasher=sha-ni" in line for line in lines), lines
        else:
            assert all("hasher=portable" in line for line in lines), lines
        node.assert_no_crash()
    finally:
        node.close()
