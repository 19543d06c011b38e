"""The wallet: `chainbus key` and `chainbus tx` against a running node.

A key file is made 0600 and never replaced. A transaction signed by the
wallet is accepted, and its signature verifies here too, by an Ed25519
implementation that is not libsodium, over msgpack bytes packed by Python
(the canonical encoding of docs/architecture.md). A forged signature and a
field changed after signing are refused with the reason; the same signed
JSON posted again is a duplicate, before and after it is mined, and the
chain holds it once. Data sealed for a receiver opens with the receiver's
key only, and the plaintext is nowhere on the node. Every failure a user can
cause (a bad key file, an unreachable node, an unreadable data file, a node
that refuses) is one line on stderr and a non-zero exit.
"""

import base64
import json
import os
import re
import stat
import subprocess
import uuid

import msgpack
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (Ed25519PrivateKey,
                                                               Ed25519PublicKey)

from chainbus_node import HEX64, bin_dir, free_port

CLI_TIMEOUT = 60
#  The canonical fields, in their canonical order.
FIELDS = ["users", "data", "dh_parameters", "server_public_key",
          "receiver_public_key", "sender_public_key", "timestamp"]
SEALED_PARAMETERS = re.compile(r"^x25519-box:v1:[0-9a-f]{64}:[0-9a-f]{48}$")


def chainbus(*args, stdin=None):
    """Run the chainbus CLI; returns the CompletedProcess (bytes)."""
    return subprocess.run([os.path.join(bin_dir(), "chainbus")] + [str(a) for a in args],
                          input=stdin, capture_output=True, timeout=CLI_TIMEOUT)


def ok(*args, stdin=None):
    """Run a command that must succeed; returns its stdout as text."""
    r = chainbus(*args, stdin=stdin)
    assert r.returncode == 0, "%s: exit %d\n%s" % (args, r.returncode, r.stderr.decode())
    return r.stdout.decode()


def fails(*args, stdin=None):
    """Run a command that must fail with exactly one line on stderr and
    nothing on stdout; returns the line."""
    r = chainbus(*args, stdin=stdin)
    assert r.returncode != 0, "%s succeeded:\n%s" % (args, r.stdout.decode())
    lines = r.stderr.decode(errors="replace").splitlines()
    assert len(lines) == 1, "expected one line on stderr, got:\n" + r.stderr.decode()
    assert r.stdout == b"", r.stdout
    assert lines[0].startswith("chainbus "), lines[0]
    return lines[0]


class Wallet:
    def __init__(self, folder, name):
        self.path = os.path.join(folder, name + ".key")
        self.public = ok("key", "new", self.path).strip()
        assert HEX64.match(self.public), self.public


@pytest.fixture(scope="module")
def wallets(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("wallets"))
    return {name: Wallet(folder, name) for name in ("alice", "bob", "carol")}


def sign(sender, receiver, data, *more):
    """`chainbus tx sign`: the signed transaction as text and as a dict."""
    text = ok("tx", "sign", "--key", sender.path, "--to", receiver.public,
              "--data", json.dumps(data), *more)
    assert text.endswith("\n") and text.count("\n") == 1, text
    return text, json.loads(text)


def post_text(node, text):
    return node.post("/transactions/new", data=text.encode(),
                     headers={"Content-Type": "application/json"})


def verify_here(tx):
    """Verify a transaction's signature without libsodium: Ed25519 from
    the cryptography package over msgpack bytes packed here."""
    canonical = msgpack.packb({k: tx[k] for k in FIELDS}, use_bin_type=True)
    key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(tx["sender_public_key"]))
    key.verify(bytes.fromhex(tx["signature"]), canonical)


def sign_here(wallet, body):
    """Sign a transaction here, with the seed from the wallet's key file
    (the RFC 8032 private key, as docs/transactions.md says)."""
    with open(wallet.path) as f:
        seed = bytes.fromhex(json.load(f)["seed"])
    body = {k: body[k] for k in FIELDS}
    key = Ed25519PrivateKey.from_private_bytes(seed)
    body["signature"] = key.sign(msgpack.packb(body, use_bin_type=True)).hex()
    return body


def canonical_text(value):
    """The JSON text the wallet seals: cbus_json_write's form."""
    return json.dumps(value, ensure_ascii=False)


# --------------------------------------------------------------------- keys

def test_key_new_is_0600_and_never_replaced(tmp_path):
    path = str(tmp_path / "w.key")
    public = ok("key", "new", path).strip()
    assert HEX64.match(public)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with open(path) as f:
        before = f.read()
    content = json.loads(before)
    assert content["type"] == "chainbus-ed25519"
    assert content["public_key"] == public
    assert re.fullmatch(r"[0-9a-f]{64}", content["seed"])
    #  The seed is an RFC 8032 private key: another implementation derives
    #  the same public key from it.
    derived = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(content["seed"])).public_key()
    assert derived.public_bytes(serialization.Encoding.Raw,
                                serialization.PublicFormat.Raw).hex() == public
    assert ok("key", "show", path).strip() == public

    line = fails("key", "new", path)
    assert "already exists" in line
    with open(path) as f:
        assert f.read() == before
    assert os.listdir(str(tmp_path)) == ["w.key"], "a temporary file was left behind"
    #  Two keys are two keys.
    assert ok("key", "new", str(tmp_path / "x.key")).strip() != public
    #  A folder that does not exist.
    assert "cannot create key file" in fails("key", "new", str(tmp_path / "no" / "k.key"))


def test_bad_key_files_are_refused(tmp_path, wallets):
    bob = wallets["bob"]

    def refused(path, words):
        for args in (["key", "show", path],
                     ["tx", "sign", "--key", path, "--to", bob.public, "--data", "1"],
                     ["tx", "open", "0" * 64, "--key", path, "--node", "http://127.0.0.1:1"]):
            line = fails(*args)
            assert words in line and path in line, line

    refused(str(tmp_path / "missing.key"), "cannot read key file")
    refused(str(tmp_path), "not a regular file")

    def write(name, text, mode=0o600):
        path = str(tmp_path / name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    refused(write("garbage.key", "hello"), "not a chainbus key file")
    refused(write("empty.key", ""), "not a chainbus key file")
    refused(write("other.key", '{"type": "rsa", "seed": "00"}'), "not a chainbus key file")
    with open(wallets["alice"].path) as f:
        good = json.load(f)
    #  A seed that does not give the public key: a damaged file.
    damaged = dict(good, seed=good["seed"][:-1] + ("0" if good["seed"][-1] != "0" else "1"))
    refused(write("damaged.key", json.dumps(damaged)), "damaged")
    refused(write("short.key", json.dumps(dict(good, seed="abcd"))), "damaged")
    #  Readable by others: its secret may be someone else's already.
    refused(write("open.key", json.dumps(good), 0o644), "open to others")
    refused(write("group.key", json.dumps(good), 0o640), "open to others")
    #  The same content, private, is fine.
    assert ok("key", "show", write("fine.key", json.dumps(good))).strip() == good["public_key"]


# ------------------------------------------------------------------ signing

def test_signed_tx_is_accepted_and_verifies_here(node, wallets):
    alice, bob = wallets["alice"], wallets["bob"]
    data = {"amount": 5, "memo": "signé ✓", "list": [1, 2.5, 0.1, None, True]}
    text, tx = sign(alice, bob, data)
    assert list(tx) == FIELDS + ["signature"]
    assert tx["sender_public_key"] == alice.public
    assert tx["receiver_public_key"] == bob.public
    assert tx["users"] == alice.public            # the default: the sender
    assert tx["dh_parameters"] == "" and tx["server_public_key"] == ""
    assert tx["data"] == data
    assert re.fullmatch(r"[0-9a-f]{128}", tx["signature"])
    verify_here(tx)

    r = post_text(node, text)
    assert r.status_code == 201, r.text
    txid = r.json()["txid"]
    shown = node.tx(txid).json()["transaction"]
    assert shown["signature"] == tx["signature"]
    assert shown["timestamp"] == tx["timestamp"]
    assert shown["data"] == data


def test_forged_signature_is_refused(node, wallets):
    text, tx = sign(wallets["alice"], wallets["bob"], {"forge": 1})
    digit = tx["signature"][10]
    tx["signature"] = tx["signature"][:10] + ("0" if digit != "0" else "1") + tx["signature"][11:]
    with pytest.raises(InvalidSignature):
        verify_here(tx)
    r = node.post("/transactions/new", tx)
    assert r.status_code == 400, r.text
    assert "signature" in r.json()["message"].lower(), r.text
    #  A signature by another key over the same bytes is a forgery too.
    _, other = sign(wallets["carol"], wallets["bob"], {"forge": 1})
    tx["signature"] = other["signature"]
    r = node.post("/transactions/new", tx)
    assert r.status_code == 400 and "signature" in r.json()["message"].lower(), r.text


@pytest.mark.parametrize("field, value", [
    ("data", {"amount": 500}),
    ("receiver_public_key", "ab" * 32),
    ("users", ["someone else"]),
    ("timestamp", None),                     # one microsecond later
    ("server_public_key", "s"),
    ("dh_parameters", "p"),
])
def test_field_changed_after_signing_is_refused(node, wallets, field, value):
    _, tx = sign(wallets["alice"], wallets["bob"], {"amount": 5})
    tx[field] = tx["timestamp"] + 1 if field == "timestamp" else value
    r = node.post("/transactions/new", tx)
    assert r.status_code == 400, r.text
    assert "does not verify" in r.json()["message"], r.text


def test_replay_is_a_duplicate_before_and_after_mining(node, wallets):
    text, tx = sign(wallets["alice"], wallets["bob"], {"pay": "once"})
    first = post_text(node, text)
    assert first.status_code == 201, first.text
    txid = first.json()["txid"]
    again = post_text(node, text)
    assert again.status_code == 200, again.text
    assert again.json()["duplicate"] is True and again.json()["txid"] == txid

    node.mine()
    assert node.tx(txid).json()["status"] == "confirmed"
    late = post_text(node, text)
    assert late.status_code == 200, late.text
    assert late.json()["duplicate"] is True and late.json().get("confirmed") is True
    node.mine()
    chain = node.chain()["chain"]
    copies = [t for b in chain for t in b["transactions"] if t["txid"] == txid]
    assert len(copies) == 1, copies


def test_two_signings_of_the_same_data_are_two_transactions(node, wallets):
    """The wallet stamps the time: the same command twice is two payments,
    not a replay."""
    one, _ = sign(wallets["alice"], wallets["bob"], {"same": True})
    two, _ = sign(wallets["alice"], wallets["bob"], {"same": True})
    assert post_text(node, one).status_code == 201
    assert post_text(node, two).status_code == 201


def test_users_flag(wallets):
    alice, bob = wallets["alice"], wallets["bob"]
    assert sign(alice, bob, 1, "--users", "u1")[1]["users"] == "u1"
    assert sign(alice, bob, 1, "--users", "u1,u2")[1]["users"] == ["u1", "u2"]
    assert sign(alice, bob, 1, "--users", "u1", "--users=u2,u3")[1]["users"] == ["u1", "u2", "u3"]
    assert sign(alice, bob, 1, "--server-key", "srv")[1]["server_public_key"] == "srv"
    assert "empty user" in fails("tx", "sign", "--key", alice.path, "--to", bob.public,
                                 "--data", "1", "--users", "a,,b")


def test_data_file_and_stdin(tmp_path, wallets):
    alice, bob = wallets["alice"], wallets["bob"]
    data = {"from": "file", "n": [1, 2]}
    path = tmp_path / "data.json"
    path.write_text(json.dumps(data, indent=2) + "\n")
    tx = json.loads(ok("tx", "sign", "--key", alice.path, "--to", bob.public,
                       "--data-file", str(path)))
    assert tx["data"] == data
    verify_here(tx)
    tx = json.loads(ok("tx", "sign", "--key", alice.path, "--to", bob.public,
                       "--data-file", "-", stdin=b'["from stdin"]'))
    assert tx["data"] == ["from stdin"]


# ------------------------------------------------------------------ sealing

def test_sealed_data_opens_for_the_receiver_only(node, wallets):
    alice, bob, carol = wallets["alice"], wallets["bob"], wallets["carol"]
    marker = "hunter2-" + uuid.uuid4().hex
    secret = {"secret": marker, "n": [1, 2.5, 0.1], "nested": {"ok": True, "none": None}}
    out = ok("tx", "send", "--key", alice.path, "--to", bob.public, "--data", json.dumps(secret),
             "--seal", "--users", "alice,bob", "--node", node.url)
    txid = out.strip()
    assert HEX64.match(txid), out

    r = node.tx(txid)
    assert r.status_code == 200 and marker not in r.text, r.text
    tx = r.json()["transaction"]
    assert SEALED_PARAMETERS.match(tx["dh_parameters"]), tx["dh_parameters"]
    assert list(tx["data"]) == ["sealed"]
    ciphertext = base64.b64decode(tx["data"]["sealed"], validate=True)
    #  The box is the plaintext plus its 16-byte tag: nothing else leaks in.
    assert len(ciphertext) == len(canonical_text(secret).encode()) + 16
    assert tx["users"] == ["alice", "bob"]
    verify_here(tx)

    opened = ok("tx", "open", txid, "--key", bob.path, "--node", node.url)
    assert json.loads(opened) == secret
    assert opened == canonical_text(secret) + "\n"
    for wrong in (alice, carol):
        line = fails("tx", "open", txid, "--key", wrong.path, "--node", node.url)
        assert "not sealed for this key" in line, line

    #  On the chain: still sealed, still opens.
    node.mine()
    assert node.tx(txid).json()["status"] == "confirmed"
    chain_text = node.get("/chain").text
    assert txid in chain_text and marker not in chain_text
    assert json.loads(ok("tx", "open", txid, "--key", bob.path, "--node", node.url)) == secret


def test_sealing_twice_gives_different_boxes(wallets):
    alice, bob = wallets["alice"], wallets["bob"]
    _, one = sign(alice, bob, {"x": 1}, "--seal")
    _, two = sign(alice, bob, {"x": 1}, "--seal")
    assert one["dh_parameters"] != two["dh_parameters"]
    assert one["data"] != two["data"]


def test_seal_to_a_key_that_is_not_a_point_fails(wallets):
    line = fails("tx", "sign", "--key", wallets["alice"].path, "--to", "00" * 32,
                 "--data", "1", "--seal")
    assert "not a usable Ed25519 public key" in line


def test_open_refuses_unsealed_tampered_and_malformed(node, wallets):
    """Transactions that Alice signed herself, with sealing she broke: the
    node takes them (it checks nothing about sealing), Bob cannot open them
    and is told why."""
    alice, bob = wallets["alice"], wallets["bob"]
    _, sealed = sign(alice, bob, {"x": "y"}, "--seal")
    bump = [0]

    def submit(dh_parameters, data):
        bump[0] += 1
        body = sign_here(alice, dict(sealed, dh_parameters=dh_parameters, data=data,
                                     timestamp=sealed["timestamp"] + bump[0]))
        r = node.post("/transactions/new", body)
        assert r.status_code == 201, r.text
        return r.json()["txid"]

    def open_line(txid):
        return fails("tx", "open", txid, "--key", bob.path, "--node", node.url)

    #  Not sealed at all.
    assert "is not sealed" in open_line(submit("param", []))
    assert "is not sealed" in open_line(submit("", {"x": "y"}))
    #  Untouched, it opens.
    assert json.loads(ok("tx", "open", submit(sealed["dh_parameters"], sealed["data"]),
                         "--key", bob.path, "--node", node.url)) == {"x": "y"}
    #  One ciphertext byte changed.
    raw = bytearray(base64.b64decode(sealed["data"]["sealed"]))
    raw[20] ^= 1
    txid = submit(sealed["dh_parameters"], {"sealed": base64.b64encode(bytes(raw)).decode()})
    assert "cannot open" in open_line(txid)
    #  The nonce changed.
    params = sealed["dh_parameters"]
    params = params[:-1] + ("0" if params[-1] != "0" else "1")
    assert "cannot open" in open_line(submit(params, sealed["data"]))
    #  Malformed parameters and data.
    for dh, data, words in [
            ("x25519-box:v1:zz", sealed["data"], "malformed dh_parameters"),
            (sealed["dh_parameters"] + "00", sealed["data"], "malformed dh_parameters"),
            (sealed["dh_parameters"].upper().replace("X25519-BOX:V1", "x25519-box:v1"),
             sealed["data"], "malformed dh_parameters"),
            ("x25519-box:v9:00", sealed["data"], "unknown version"),
            (sealed["dh_parameters"], {"sealed": "not base64!"}, "malformed sealed data"),
            (sealed["dh_parameters"], {"sealed": "QUJD"}, "malformed sealed data"),
            (sealed["dh_parameters"], dict(sealed["data"], extra=1), "malformed sealed data"),
            (sealed["dh_parameters"], "just text", "malformed sealed data")]:
        line = open_line(submit(dh, data))
        assert words in line, (dh, data, line)


# ------------------------------------------------------------- tx send, get

def test_tx_send_and_get(node, wallets):
    alice, bob = wallets["alice"], wallets["bob"]
    txid = ok("tx", "send", "--key", alice.path, "--to", bob.public, "--data", '{"a": 1}',
              "--node", node.url + "/").strip()
    assert HEX64.match(txid)
    got = json.loads(ok("tx", "get", txid, "--node", node.url))
    assert got["status"] == "pending"
    assert got["transaction"]["txid"] == txid
    assert got["transaction"]["data"] == {"a": 1}
    verify_here(got["transaction"])
    node.mine()
    got = json.loads(ok("tx", "get", txid.upper(), "--node", node.url))
    assert got["status"] == "confirmed" and got["confirmations"] >= 1

    line = fails("tx", "get", "ab" * 32, "--node", node.url)
    assert "404" in line and "Transaction not found" in line
    #  With the code of the error (its body's, or the status's usual one).
    assert "404 not_found: Transaction not found" in line, line
    assert "64 hex digits" in fails("tx", "get", "xyz", "--node", node.url)


def test_strict_node_takes_the_wallet_and_refuses_in_one_line(make_node, wallets):
    """A node that takes signed transactions only (deploy/'s policy) takes
    the wallet's, sealed or not; what it refuses comes back as one line
    with its status and message."""
    alice, bob = wallets["alice"], wallets["bob"]
    strict = make_node(extra_args=["--max-body", "1024", "--require-signatures", "1"])
    send = ["tx", "send", "--key", alice.path, "--to", bob.public, "--node", strict.url]
    plain = ok(*send, "--data", '{"n": 1}').strip()
    sealed = ok(*send, "--data", '{"n": 2}', "--seal").strip()
    assert strict.tx(plain).status_code == 200 and strict.tx(sealed).status_code == 200
    assert json.loads(ok("tx", "open", sealed, "--key", bob.path,
                         "--node", strict.url)) == {"n": 2}
    line = fails(*send, "--data", json.dumps({"big": "x" * 4000}))
    assert "413" in line and "Body too large" in line, line
    assert "413 too_large: " in line, line
    r = strict.post("/transactions/new", {k: v for k, v in sign(alice, bob, 3)[1].items()
                                          if k != "signature"})
    assert r.status_code == 400, r.text


def test_unreachable_node(wallets):
    alice, bob = wallets["alice"], wallets["bob"]
    url = "http://127.0.0.1:%d" % free_port()
    for args in (["tx", "send", "--key", alice.path, "--to", bob.public, "--data", "1"],
                 ["tx", "get", "ab" * 32],
                 ["tx", "open", "ab" * 32, "--key", bob.path]):
        line = fails(*args, "--node", url)
        assert "cannot reach " + url in line, line


def test_unreadable_data_file(tmp_path, wallets):
    alice, bob = wallets["alice"], wallets["bob"]
    base = ["tx", "send", "--key", alice.path, "--to", bob.public, "--node", "http://127.0.0.1:1"]
    line = fails(*base, "--data-file", str(tmp_path / "missing.json"))
    assert "cannot read data file" in line and "No such file" in line
    assert "cannot read data file" in fails(*base, "--data-file", str(tmp_path))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert "is not JSON" in fails(*base, "--data-file", str(bad))
    big = tmp_path / "big.json"
    big.write_text('"' + "x" * (300 * 1024) + '"')
    assert "larger than a transaction" in fails(*base, "--data-file", str(big))


@pytest.mark.parametrize("args, words", [
    (["tx"], "which tx command"),
    (["tx", "pay"], "unknown command"),
    (["tx", "sign", "--to", "00"], "--key FILE is required"),
    (["tx", "sign", "--key", "k"], "--to PUBKEY is required"),
    (["tx", "sign", "--key", "k", "--to", "t"], "one of --data"),
    (["tx", "sign", "--key", "k", "--to", "t", "--data", "1", "--data-file", "f"], "one of --data"),
    (["tx", "sign", "--key", "k", "--to", "t", "--data", "1", "--node", "http://x"],
     "--node is not a flag of tx sign"),
    (["tx", "sign", "--bogus"], "unknown flag --bogus"),
    (["tx", "sign", "--key"], "--key needs a value"),
    (["tx", "sign", "--seal=yes"], "--seal takes no value"),
    (["tx", "get"], "TXID is required"),
    (["tx", "get", "ab" * 32, "--node", "ftp://x"], "http:// or https://"),
    (["tx", "get", "ab" * 32, "extra"], "unexpected argument"),
    (["key", "new"], "FILE is required"),
    (["key", "show", "a", "b"], "unexpected argument"),
])
def test_bad_command_lines(args, words):
    r = chainbus(*args)
    assert r.returncode == 2, r
    line = r.stderr.decode().strip()
    assert "\n" not in line and words in line, line


def test_bad_receiver_key(wallets):
    line = fails("tx", "sign", "--key", wallets["alice"].path, "--to", "bob", "--data", "1")
    assert "--to must be a public key" in line
