"""chainbus verify: the audit of a stopped node's chain store.

A real node makes a chain of five blocks (lists of users, a signed
transaction, equal and empty key fields, a large one, an empty block) and
is stopped; each test audits its own copy of that data folder. A sound copy
gives one summary line and exit 0. Copies changed behind the node's back
give exit 1 and lines naming the block and the transaction:

- one byte of a transaction's data changed in LevelDB's log with the
  record's checksum recomputed (a change LevelDB cannot see): an unsigned
  transaction shows as "merkle root does not match", a signed one as
  "signature does not verify", and both with the txid the indexes still
  hold for that place;
- a user name changed in a history key: the entry the block implies is
  missing and the one there names a user the transaction does not;
- one byte changed without fixing the checksum: in the log the store does
  not open ("Corruption"), in a table file the block is "unreadable".

Refusals (exit 2): a running node's folder, a missing folder, another
network.

LevelDB cannot be opened from Debian's Python (no plyvel), so the tests
patch the store's files in place: the log's record format and CRC-32C are
small enough to write here (leveldb/doc/log_format.md).
"""

import hashlib
import os
import re
import shutil
import struct
import subprocess
import tempfile
import time

import msgpack
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from chainbus_node import EASY_BITS, SANITIZER_MARKS, Node, bin_dir, tx_body

CLI_TIMEOUT = 60
HEX64 = "[0-9a-f]{64}"

#  Data strings stored once each in the chain store, to patch. No two
#  share four bytes, and nothing else in the store does (uppercase: never
#  in hex), so that LevelDB's compression (snappy) keeps each in one piece
#  in a table file.
UNSIGNED_MARK = b"QZXW-UNSIGNED-7315"
SIGNED_MARK = b"JVKY-WITHKEY-2846"
LARGE_MARK = b"HMPR-LARGEBLK-5093"


def verify(data_dir, *more):
    """Run chainbus verify on a folder; returns (exit code, stdout lines,
    stderr text)."""
    r = subprocess.run([os.path.join(bin_dir(), "chainbus"), "verify", "--data-dir", data_dir]
                       + list(more), capture_output=True, timeout=CLI_TIMEOUT)
    err = r.stderr.decode(errors="replace")
    #  A sanitizer build exits 1 on a finding, like a chain with problems.
    assert r.returncode not in (-6, -11) and not any(m in err for m in SANITIZER_MARKS), err
    return r.returncode, r.stdout.decode().splitlines(), err


# ------------------------------------------------------ LevelDB files by hand

def _crc_table():
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


CRC_TABLE = _crc_table()


def crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc = CRC_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc(data):
    """LevelDB stores CRCs rotated and offset (util/crc32c.h)."""
    crc = crc32c(data)
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


LOG_BLOCK = 32768


def log_records(raw):
    """(offset, length, type) of each record of a LevelDB log: 32 KiB
    blocks of records, each a 7-byte header (masked CRC-32C of type and
    payload, length, type) and the payload."""
    pos = 0
    while pos + 7 <= len(raw):
        left = LOG_BLOCK - pos % LOG_BLOCK
        if left < 7:                    # the block's trailer: zeroes
            pos += left
            continue
        _, length, kind = struct.unpack_from("<IHB", raw, pos)
        if kind == 0 and length == 0:   # preallocated, unused
            pos += left
            continue
        yield pos, length, kind
        pos += 7 + length


def store_files(data_dir, suffix):
    chain = os.path.join(data_dir, "chain")
    return [os.path.join(chain, f) for f in sorted(os.listdir(chain)) if f.endswith(suffix)]


def patch(data_dir, suffix, old, new, fix_checksum):
    """Replace the one occurrence of old by new (same length) in the store
    file with that suffix that holds it; with fix_checksum, recompute the
    checksum of the log record that holds it, so that LevelDB reads the
    change as if it had written it."""
    assert len(old) == len(new)
    for path in store_files(data_dir, suffix):
        with open(path, "rb") as f:
            raw = bytearray(f.read())
        at = raw.find(old)
        if at < 0:
            continue
        assert raw.find(old, at + 1) < 0, "%r twice in %s" % (old, path)
        raw[at:at + len(old)] = new
        if fix_checksum:
            assert suffix == ".log"
            record = [(pos, length, kind) for pos, length, kind in log_records(raw)
                      if pos + 7 <= at and at + len(old) <= pos + 7 + length]
            assert record, "no single log record holds %r" % old
            pos, length, kind = record[0]
            struct.pack_into("<I", raw, pos, masked_crc(bytes([kind]) + bytes(raw[pos + 7:pos + 7 + length])))
        with open(path, "wb") as f:
            f.write(raw)
        return path
    raise AssertionError("%r is in no %s file of %s" % (old, suffix, data_dir))


# -------------------------------------------------------------------- chain

def signed_tx(memo):
    """A transaction signed with a fresh Ed25519 key (docs/architecture.md:
    the signature covers the canonical msgpack map of the seven fields)."""
    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes(serialization.Encoding.Raw,
                                           serialization.PublicFormat.Raw)
    body = {"users": ["signer", "témoin"], "data": {"memo": memo.decode()},
            "dh_parameters": "p", "server_public_key": "s", "receiver_public_key": "r",
            "sender_public_key": public.hex(), "timestamp": int(time.time() * 1e6)}
    body["signature"] = key.sign(msgpack.packb(body, use_bin_type=True)).hex()
    return body


@pytest.fixture(scope="module")
def made():
    """A stopped node's data folder with five blocks, and what the node
    said about them while it ran."""
    node = Node()
    root = tempfile.mkdtemp(prefix="cbv", dir="/tmp")
    try:
        node.start()
        txids = {}
        txids["unsigned"], _ = node.submit(tx_body(users=["alice", "bob", "çarol"],
                                                   data=UNSIGNED_MARK.decode()))
        node.submit(tx_body(1))
        node.mine()
        txids["signed"], _ = node.submit(signed_tx(SIGNED_MARK))
        node.submit(tx_body(2, sender_public_key="same", receiver_public_key="same"))
        node.submit(tx_body(3, sender_public_key="", receiver_public_key=""))
        node.mine()
        #  Large enough to end a LevelDB table block of its own (4 KiB).
        txids["large"], _ = node.submit(tx_body(data={"note": LARGE_MARK.decode(),
                                                      "pad": "p" * 6000}))
        node.mine()
        node.mine()                     # an empty block
        chain = node.chain()["chain"]
        assert len(chain) == 5
        where = {}
        for block in chain:
            for position, tx in enumerate(block["transactions"]):
                where[tx["txid"]] = (block["index"], block["hash"], position)
        #  While the node runs its store is refused, and nothing is read.
        code, out, err = verify(node.data_dir, "--pow-bits", EASY_BITS)
        running = (code, out, err)
        node.stop()
        #  The chain store is all verify reads (run/ holds dead sockets).
        pristine = os.path.join(root, "pristine")
        shutil.copytree(os.path.join(node.data_dir, "chain"), os.path.join(pristine, "chain"))
        #  And one that nothing opens: its log holds every record written.
        unopened = os.path.join(root, "unopened")
        shutil.copytree(pristine, unopened)
        yield {"root": root, "pristine": pristine, "chain": chain, "txids": txids,
               "where": where, "running": running, "unopened": unopened}
    finally:
        node.close()
        if os.environ.get("CHAINBUS_KEEP_TMP") != "1":
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def unopened(made, request):
    """A copy of the stopped node's folder as it left it: every record in
    LevelDB's log (an open moves them into a table file)."""
    path = os.path.join(made["root"], re.sub(r"\W", "_", request.node.name))
    shutil.copytree(made["unopened"], path)
    return path


@pytest.fixture
def copy(made, request):
    """A copy of the stopped node's folder for one test to change."""
    path = os.path.join(made["root"], re.sub(r"\W", "_", request.node.name))
    shutil.copytree(made["pristine"], path)
    return path


def test_a_sound_chain_gives_a_summary_and_exit_0(made, copy):
    code, out, err = verify(copy, "--pow-bits", EASY_BITS)
    assert code == 0, (out, err)
    assert err == ""
    assert len(out) == 1, out
    tip = made["chain"][-1]["hash"]
    #  Users: 3 + 1 + 2 + 1 + 1 + 1; keys: 2 + 2 + 2 + 1 (equal fields) +
    #  0 (empty fields name nobody) + 2.
    assert out[0] == ("chain sound: 5 blocks, 6 transactions, 1 signed, 9 user and 9 key "
                      "history entries, tip %s (height 4)" % tip), out
    #  Again: an audit changes nothing.
    assert verify(copy, "--pow-bits", EASY_BITS)[:2] == (0, out)


def test_a_changed_unsigned_transaction_is_named(made, copy):
    patch(copy, ".log", UNSIGNED_MARK, UNSIGNED_MARK[:-1] + b"6", fix_checksum=True)
    code, out, err = verify(copy, "--pow-bits", EASY_BITS)
    assert code == 1, (out, err)
    original = made["txids"]["unsigned"]
    height, block, position = made["where"][original]
    m = re.fullmatch(r"block %d \(%s\): transaction %d \(txid (%s)\): merkle root does not match: "
                     r"this is not the transaction confirmed here \(no index knows its txid\)"
                     % (height, block, position, HEX64), out[0])
    assert m, out
    assert m.group(1) != original
    assert out[1] == ("block %d (%s): transaction %d: the indexes still name txid %s here: "
                      "the transaction confirmed here was changed" % (height, block, position, original))
    assert out[-1] == "chain NOT sound: 1 problem (5 blocks, 6 transactions checked)", out
    assert len(out) == 3, out


def test_a_changed_signed_transaction_fails_its_signature(made, copy):
    patch(copy, ".log", SIGNED_MARK, SIGNED_MARK[:-1] + b"1", fix_checksum=True)
    code, out, err = verify(copy, "--pow-bits", EASY_BITS)
    assert code == 1, (out, err)
    original = made["txids"]["signed"]
    height, block, position = made["where"][original]
    m = re.fullmatch(r"block %d \(%s\): transaction %d \(txid (%s)\): signature does not verify "
                     r"with sender_public_key" % (height, block, position, HEX64), out[0])
    assert m, out
    assert m.group(1) != original
    assert ("block %d (%s): transaction %d: the indexes still name txid %s here: the transaction "
            "confirmed here was changed" % (height, block, position, original)) in out
    assert out[-1].startswith("chain NOT sound: 1 problem "), out


def test_a_changed_history_entry_is_named(made, copy):
    #  The user history key of "alice" (not her name in the transaction).
    patch(copy, ".log", b"Ualice\x00", b"Ualicf\x00", fix_checksum=True)
    code, out, err = verify(copy, "--pow-bits", EASY_BITS)
    assert code == 1, (out, err)
    txid = made["txids"]["unsigned"]
    height, block, position = made["where"][txid]
    label = "block %d (%s): transaction %d (txid %s): " % (height, block, position, txid)
    assert label + "no 'U' (history) entry for user 'alice'" in out, out
    assert label + "a user history entry ('U') names it for a user it does not name" in out, out
    assert out[-1].startswith("chain NOT sound: 2 problems "), out


def test_a_log_record_changed_without_its_checksum_does_not_open(copy):
    patch(copy, ".log", UNSIGNED_MARK, UNSIGNED_MARK[:-1] + b"6", fix_checksum=False)
    code, out, err = verify(copy, "--pow-bits", EASY_BITS)
    assert code == 1, (out, err)
    assert len(out) == 1 and out[0].startswith("chain NOT sound: the store does not open: "), out
    assert "Corruption" in out[0], out


def test_a_table_block_changed_without_its_checksum_is_unreadable(made, copy):
    #  A first open moves LevelDB's log into a table file (.ldb).
    assert verify(copy, "--pow-bits", EASY_BITS)[0] == 0
    assert not any(LARGE_MARK in open(p, "rb").read() for p in store_files(copy, ".log"))
    patch(copy, ".ldb", LARGE_MARK, LARGE_MARK[:-1] + b"1", fix_checksum=False)
    code, out, err = verify(copy, "--pow-bits", EASY_BITS)
    assert code == 1, (out, err)
    height, block, _ = made["where"][made["txids"]["large"]]
    assert any(re.fullmatch(r"block %d \(%s\): unreadable: Corruption: .*" % (height, block), line)
               for line in out), out
    assert out[-1].startswith("chain NOT sound: "), out


def test_refusals(made):
    #  A running node holds the store: say to stop it (taken by the fixture
    #  while its node ran).
    code, out, err = made["running"]
    assert code == 2 and out == [], (code, out, err)
    assert re.fullmatch(r"chainbus verify: stop the node first \(the store is locked: .*\)\n", err), err
    #  No folder: nothing is created.
    missing = os.path.join(made["root"], "nothing")
    code, out, err = verify(missing, "--pow-bits", EASY_BITS)
    assert code == 2 and out == [], (code, out, err)
    assert err.startswith("chainbus verify: no chain store at ") and err.count("\n") == 1, err
    assert not os.path.exists(missing)
    #  Another network (the default bits are not the test node's).
    code, out, err = verify(made["pristine"])
    assert code == 2 and out == [], (code, out, err)
    assert "was made for another network" in err and err.count("\n") == 1, err
    code, out, err = verify(made["pristine"], "--pow-bits", EASY_BITS, "--network", "other")
    assert code == 2 and "another network" in err, err
    #  Not a flag of the configuration, an extra argument.
    code, out, err = verify(made["pristine"], "--pow-bits", EASY_BITS, "extra")
    assert code == 2 and "unexpected argument 'extra'" in err, err


# ----------------------------------- a block written behind the node's back

def read_varint(raw, pos):
    value = shift = 0
    while True:
        byte = raw[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def write_varint(value):
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def parse_batch(rep):
    """(sequence, {key: value}) of a LevelDB write batch (db/write_batch.cc):
    sequence, count, then each put (1, key, value) or delete (0, key)."""
    sequence, count = struct.unpack_from("<QI", rep, 0)
    pos, puts = 12, {}
    for _ in range(count):
        kind = rep[pos]
        size, pos = read_varint(rep, pos + 1)
        key = bytes(rep[pos:pos + size])
        pos += size
        if kind == 1:
            size, pos = read_varint(rep, pos)
            puts[key] = bytes(rep[pos:pos + size])
            pos += size
    return sequence, count, puts


def log_batches(raw):
    """The write batches of a log, joining records cut at block ends
    (types: 1 full, 2 first, 3 middle, 4 last)."""
    payload = b""
    for pos, length, kind in log_records(raw):
        data = bytes(raw[pos + 7:pos + 7 + length])
        payload = data if kind in (1, 2) else payload + data
        if kind in (1, 4):
            yield parse_batch(payload)


def append_batch(path, puts):
    """Append one write batch of puts to a LevelDB log, as LevelDB writes
    one: numbered after the last, cut into records at 32 KiB blocks."""
    with open(path, "rb") as f:
        raw = f.read()
    last = max(sequence + count - 1 for sequence, count, _ in log_batches(raw))
    rep = struct.pack("<QI", last + 1, len(puts))
    for key, value in puts.items():
        rep += b"\x01" + write_varint(len(key)) + key + write_varint(len(value)) + value
    out, pos, first = bytearray(), len(raw), True
    while rep or first:
        left = LOG_BLOCK - pos % LOG_BLOCK
        if left < 7:
            out += b"\0" * left
            pos += left
            continue
        chunk, rep = rep[:left - 7], rep[left - 7:]
        kind = (1 if not rep else 2) if first else (4 if not rep else 3)
        out += struct.pack("<IHB", masked_crc(bytes([kind]) + chunk), len(chunk), kind) + chunk
        pos += 7 + len(chunk)
        first = False
    with open(path, "ab") as f:
        f.write(out)


def sha256d(data):
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def mine_header(height, prev, time_ms, bits):
    """A 100-byte version-2 header (docs/architecture.md: little-endian
    fields, the nonce last) of an empty block, mined to its target."""
    exponent, mantissa = bits >> 24, bits & 0xFFFFFF
    target = mantissa << (8 * (exponent - 3))
    for nonce in range(1 << 20):
        header = (struct.pack("<IQ", 2, height) + prev + b"\0" * 32
                  + struct.pack("<QIIQ", time_ms, bits, 0, nonce))
        if int.from_bytes(sha256d(header), "big") <= target:
            return header
    raise AssertionError("no nonce meets the target")


def append_block(data_dir, made, time_ms):
    """Write an empty block on the tip straight into the chain store's log,
    with every record the chainstore writes for one (block, index entry,
    height, tip), whatever its time. Returns its hash."""
    logs = store_files(data_dir, ".log")
    assert len(logs) == 1, logs
    with open(logs[0], "rb") as f:
        puts = {}
        for _, _, batch in log_batches(f.read()):
            puts.update(batch)
    tip = bytes.fromhex(made["chain"][-1]["hash"])
    genesis = bytes.fromhex(made["chain"][0]["hash"])
    tip_entry, genesis_entry = puts[b"I" + tip], puts[b"I" + genesis]
    height = struct.unpack_from(">Q", tip_entry, 0)[0] + 1
    bits = int(EASY_BITS, 16)
    header = mine_header(height, tip, time_ms, bits)
    block_hash = sha256d(header)
    #  Every block has the genesis block's work (one target).
    work = int.from_bytes(tip_entry[8:40], "big") + int.from_bytes(genesis_entry[8:40], "big")
    append_batch(logs[0], {
        b"B" + block_hash: msgpack.packb({"header": header, "txs": []}, use_bin_type=True),
        b"I" + block_hash: struct.pack(">Q", height) + work.to_bytes(32, "big") + header,
        b"H" + struct.pack(">Q", height): block_hash,
        b"S": block_hash,
    })
    return block_hash.hex()


def test_a_block_written_by_hand_that_keeps_the_rules_is_sound(made, unopened):
    #  The test's own writer first: a block the chainstore would take.
    tip_time = made["chain"][-1]["timestamp"]
    block = append_block(unopened, made, int(round(tip_time * 1000)) + 1)
    code, out, err = verify(unopened, "--pow-bits", EASY_BITS)
    assert code == 0, (out, err)
    assert out == ["chain sound: 6 blocks, 6 transactions, 1 signed, 9 user and 9 key history "
                   "entries, tip %s (height 5)" % block], out


@pytest.mark.parametrize("when, problem", [
    ("before", r"time 1 is not after the median of the last blocks \(\d+\)"),
    ("future", r"time is too far in the future"),
], ids=["before", "future"])
def test_a_block_that_breaks_the_context_rules_is_named(made, unopened, when, problem):
    #  The chainstore's own rules (cbus_chain_check_context), in its words.
    time_ms = 1 if when == "before" else int(time.time() * 1000) + 10 * 86400 * 1000
    block = append_block(unopened, made, time_ms)
    code, out, err = verify(unopened, "--pow-bits", EASY_BITS)
    assert code == 1, (out, err)
    assert len(out) == 2 and re.fullmatch(r"block 5 \(%s\): %s" % (block, problem), out[0]), out
    assert out[1] == "chain NOT sound: 1 problem (6 blocks, 6 transactions checked)", out
