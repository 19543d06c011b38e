"""chainbus export, chainbus import and chainbus net.

A chain made by a real node (transactions with nested and non-ASCII data,
lists of users, a signed one) is exported while the node runs and again
once it is stopped; both files are GET /chain byte for byte. Imported into
a fresh data folder, a node started on it serves the same chain. Imports
that must fail (a folder with a chain, a tampered block, a file that is not
a chain) fail with one line naming the problem and leave no chain behind.
`chainbus net --nodes 2` starts two peered nodes and SIGINT stops them all.
"""

import json
import os
import random
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time

import msgpack
import pytest
import requests
import zmq
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from chainbus_node import (EASY_BITS, SANITIZER_MARKS, Node, NodeError, bin_dir,
                           port_free, start_net, tx_body, wait_for)

CLI_TIMEOUT = 60


def chainbus(*args, stdin=None):
    """Run the chainbus CLI; returns the CompletedProcess (bytes)."""
    return subprocess.run([os.path.join(bin_dir(), "chainbus")] + [str(a) for a in args],
                          input=stdin, capture_output=True, timeout=CLI_TIMEOUT)


def one_line(raw):
    """The stderr of a CLI run, asserted to be exactly one line."""
    text = raw.decode(errors="replace")
    lines = text.splitlines()
    assert len(lines) == 1, "expected one line on stderr, got:\n" + text
    return lines[0]


def signed_tx():
    """A transaction signed with a fresh Ed25519 key: the signature covers
    the canonical msgpack map of the seven fields (docs/architecture.md)."""
    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes(serialization.Encoding.Raw,
                                           serialization.PublicFormat.Raw)
    body = {"users": ["signer", "témoin"], "data": {"amount": 5, "memo": "signé ✓"},
            "dh_parameters": "p", "server_public_key": "s", "receiver_public_key": "r",
            "sender_public_key": public.hex(), "timestamp": int(time.time() * 1e6)}
    body["signature"] = key.sign(msgpack.packb(body, use_bin_type=True)).hex()
    return body


@pytest.fixture(scope="module")
def made():
    """A node's chain of four blocks, exported while it runs and after it
    stopped. The node is left stopped."""
    node = Node()
    root = tempfile.mkdtemp(prefix="cbx", dir="/tmp")
    try:
        node.start()
        node.submit(tx_body(data={"émoji": "☃ 🚀", "nested": {
            "list": [1, -2, 3.25, 0.1, 1e300, -0.0, None, True, False, "x"],
            "empty": {}, "deep": [[[]]], "big": 2 ** 62}, "quote": "a\"b\\c\n"}))
        node.submit(tx_body(users=["alice", "bob", "çarol"], data=[]))
        node.mine()
        node.submit(signed_tx())
        node.submit(tx_body(7))
        node.mine()
        node.mine()                     # an empty block
        http = node.get("/chain").content
        assert json.loads(http)["length"] == 4

        running = os.path.join(root, "running.json")
        r = chainbus("export", "--data-dir", node.data_dir, "--json", running)
        assert r.returncode == 0, r.stderr
        assert "4 blocks" in one_line(r.stderr)
        node.stop()
        stopped = os.path.join(root, "stopped.json")
        r = chainbus("export", "--data-dir", node.data_dir, "--pow-bits", EASY_BITS,
                     "--json", stopped)
        assert r.returncode == 0, r.stderr
        assert "stopped" in one_line(r.stderr)
        yield {"node": node, "root": root, "http": http,
               "running": running, "stopped": stopped}
    finally:
        node.close()
        shutil.rmtree(root, ignore_errors=True)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def test_export_while_running_is_get_chain(made):
    raw = read(made["running"])
    assert raw == made["http"]
    chain = json.loads(raw)
    assert [b["index"] for b in chain["chain"]] == [0, 1, 2, 3]
    assert len(chain["chain"][1]["transactions"]) == 2
    assert any("signature" in tx for tx in chain["chain"][2]["transactions"])


def test_export_while_stopped_is_the_same(made):
    assert read(made["stopped"]) == made["http"]
    #  To standard output too.
    r = chainbus("export", "--data-dir", made["node"].data_dir, "--pow-bits", EASY_BITS,
                 "--json", "-")
    assert r.returncode == 0, r.stderr
    assert r.stdout == made["http"]


def test_export_refuses_another_network_and_writes_nothing(made):
    out = os.path.join(made["root"], "other.json")
    r = chainbus("export", "--data-dir", made["node"].data_dir, "--json", out)
    assert r.returncode != 0
    assert "another network" in one_line(r.stderr)
    assert not os.path.exists(out)
    assert not [f for f in os.listdir(made["root"]) if f.startswith("other.json")]
    #  No node and no store: nothing to export, nothing created.
    empty = os.path.join(made["root"], "nothing")
    r = chainbus("export", "--data-dir", empty, "--json", out)
    assert r.returncode != 0
    assert "no chain" in one_line(r.stderr)
    assert not os.path.exists(out) and not os.path.exists(os.path.join(empty, "chain"))


def test_export_names_a_node_whose_chainstore_does_not_answer(make_node):
    #  A stopped chainstore does not answer PING but still holds the
    #  store's lock: export says so (the store's "locked" fault, not its
    #  wording) and writes nothing.
    node = make_node()
    out = os.path.join(node.data_dir, "frozen.json")
    pid = node.signal_service("chainstore", signal.SIGSTOP)
    try:
        r = chainbus("export", "--data-dir", node.data_dir, "--pow-bits", EASY_BITS,
                     "--json", out)
    finally:
        os.kill(pid, signal.SIGCONT)
    line = one_line(r.stderr)
    assert r.returncode != 0, line
    assert line.startswith("chainbus export: ") and "lock" in line, line
    assert line.endswith("(a node holds it but its chainstore does not answer)"), line
    assert not [f for f in os.listdir(node.data_dir) if f.startswith("frozen.json")]


class FakeChainstore:
    """A ROUTER on a data folder's chainstore endpoint that answers each
    command from a table (command -> body, or None for no answer) and
    keeps the bodies it was sent, so that a test sees export's bytes."""

    def __init__(self, data_dir, answers):
        os.makedirs(os.path.join(data_dir, "run"), exist_ok=True)
        self.ctx = zmq.Context()
        self.router = self.ctx.socket(zmq.ROUTER)
        self.router.linger = 0
        self.router.bind("ipc://%s/run/chainstore.ipc" % data_dir)
        self.answers, self.asked, self.done = answers, [], threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.done.is_set():
            if not self.router.poll(100):
                continue
            peer, command, request_id, body = self.router.recv_multipart()
            self.asked.append((command.decode(), body))
            answer = self.answers.get(command.decode())
            if answer is not None:
                self.router.send_multipart([peer, b"OK", request_id, msgpack.packb(answer)])

    def close(self):
        self.done.set()
        self.thread.join(5)
        self.router.close()
        self.ctx.term()


def export_from_fake(answers):
    """Run export against a fake chainstore; returns (result, asked, out)."""
    root = tempfile.mkdtemp(prefix="cbf", dir="/tmp")
    out = os.path.join(root, "fake.json")
    fake = FakeChainstore(root, answers)
    try:
        r = chainbus("export", "--data-dir", root, "--json", out)
        wrote = [f for f in os.listdir(root) if f.startswith("fake.json")]
        return r, fake.asked, wrote
    finally:
        fake.close()
        shutil.rmtree(root, ignore_errors=True)


PONG = {"role": "chainstore", "pid": 1}


def test_export_speaks_the_documented_bytes_and_names_an_unfit_reply():
    #  PING and TIP are empty maps; CHAIN.PAGE is from, to, max_bytes in
    #  that order (docs/bus.md). A page without blocks ends the export.
    tip = {"height": 2, "hash": b"\x01" * 32, "work": b"\x02" * 32, "time_ms": 5,
           "network": "dev", "genesis": b"\x03" * 32, "bits": 7}
    r, asked, wrote = export_from_fake({"PING": PONG, "TIP": tip,
                                        "CHAIN.PAGE": {"blocks": [], "next": 0}})
    line = one_line(r.stderr)
    assert r.returncode != 0 and line == "chainbus export: chainbus-chainstore sent a page " \
        "without blocks", line
    assert asked == [("PING", b"\x80"), ("TIP", b"\x80"),
                     ("CHAIN.PAGE", msgpack.packb({"from": 0, "to": 2, "max_bytes": 262144}))]
    assert not wrote
    #  A tip without a field the definition requires: the line names it.
    del tip["genesis"]
    r, asked, wrote = export_from_fake({"PING": PONG, "TIP": tip})
    line = one_line(r.stderr)
    assert r.returncode != 0 and line.endswith("does not fit: TIP reply: genesis is missing"), line
    assert [c for c, _ in asked] == ["PING", "TIP"] and not wrote


def test_export_refuses_an_endpoint_that_is_not_a_chainstore():
    #  Another service's pong: not exported from, and the store is not
    #  opened behind its back.
    r, asked, wrote = export_from_fake({"PING": {"role": "mempool", "pid": 1}})
    line = one_line(r.stderr)
    assert r.returncode != 0
    assert line == "chainbus export: the chainstore's endpoint is answered by mempool", line
    assert [c for c, _ in asked] == ["PING"] and not wrote
    #  A pong that is not one (no pid).
    r, asked, wrote = export_from_fake({"PING": {"role": "chainstore"}})
    line = one_line(r.stderr)
    assert r.returncode != 0 and line.endswith("does not fit: PING reply: pid is missing"), line


def test_import_then_a_node_serves_the_same_chain(made, make_node):
    node = make_node(start=False)
    r = chainbus("import", "--data-dir", node.data_dir, "--pow-bits", EASY_BITS,
                 "--json", made["running"])
    assert r.returncode == 0, r.stderr
    assert "4 blocks" in one_line(r.stderr)
    assert not os.path.exists(os.path.join(node.data_dir, "chain.import"))
    node.start()
    assert node.get("/chain").content == made["http"]
    #  Every transaction is found where the chain says it is.
    for block in json.loads(made["http"])["chain"]:
        for tx in block["transactions"]:
            found = node.tx(tx["txid"])
            assert found.status_code == 200, found.text
    #  While the node runs, its folder is refused; and the chain goes on.
    r = chainbus("import", "--data-dir", node.data_dir, "--pow-bits", EASY_BITS,
                 "--json", made["running"])
    assert r.returncode != 0
    assert "running" in one_line(r.stderr)
    assert node.mine()["index"] == 4


def test_import_refuses_a_chain_of_another_network(made):
    target = tempfile.mkdtemp(prefix="cbi", dir="/tmp")
    try:
        r = chainbus("import", "--data-dir", target, "--network", "other",
                     "--pow-bits", EASY_BITS, "--json", made["running"])
        assert r.returncode != 0
        line = one_line(r.stderr)
        assert "block 0 is not the genesis of network other" in line, line
        assert not os.path.exists(os.path.join(target, "chain"))
    finally:
        shutil.rmtree(target, ignore_errors=True)


def test_import_refuses_a_folder_that_holds_a_chain(made):
    r = chainbus("import", "--data-dir", made["node"].data_dir, "--pow-bits", EASY_BITS,
                 "--json", made["running"])
    assert r.returncode != 0
    assert "already holds a chain" in one_line(r.stderr)
    #  The chain there is untouched.
    r = chainbus("export", "--data-dir", made["node"].data_dir, "--pow-bits", EASY_BITS,
                 "--json", "-")
    assert r.returncode == 0 and r.stdout == made["http"]


def tamper_tx_data(chain):
    chain["chain"][1]["transactions"][1]["data"] = ["changed"]
    return r"block 1: transaction 1: txid does not match its contents$"


def tamper_proof(chain):
    chain["chain"][2]["proof"] += 1
    return r"block 2: hash does not match its header$"


def tamper_tx_data_and_txid(chain):
    tx = chain["chain"][2]["transactions"][1]
    tx["data"] = [8]
    del tx["txid"]
    return r"block 2: .*merkle root does not match"


def tamper_signature(chain):
    tx = next(t for t in chain["chain"][2]["transactions"] if "signature" in t)
    tx["signature"] = ("0" if tx["signature"][0] != "0" else "1") + tx["signature"][1:]
    return r"block 2: .*[Ss]ignature does not verify"


def tamper_order(chain):
    chain["chain"][2], chain["chain"][3] = chain["chain"][3], chain["chain"][2]
    return r"block 2: its index is 3$"


def tamper_genesis(chain):
    chain["chain"][0]["bits"] = "1f00ffff"
    return r"block 0: hash does not match its header$"


def tamper_repeat(chain):
    chain["chain"].append(chain["chain"][3])
    chain["length"] = 5
    return r"block 4: its index is 3$"


@pytest.mark.parametrize("tamper", [
    tamper_tx_data, tamper_proof, tamper_tx_data_and_txid, tamper_signature,
    tamper_order, tamper_genesis, tamper_repeat,
], ids=lambda f: f.__name__[len("tamper_"):])
def test_import_refuses_a_tampered_chain_and_leaves_none(made, tamper):
    chain = json.loads(made["http"])
    expected = tamper(chain)
    path = os.path.join(made["root"], "tampered.json")
    with open(path, "w") as f:
        json.dump(chain, f, ensure_ascii=False)
    target = tempfile.mkdtemp(prefix="cbi", dir="/tmp")
    try:
        r = chainbus("import", "--data-dir", target, "--pow-bits", EASY_BITS, "--json", path)
        assert r.returncode not in (0, -6, -11), r
        line = one_line(r.stderr)
        assert re.match("chainbus import: " + expected, line), line
        assert not os.path.exists(os.path.join(target, "chain"))
        assert not os.path.exists(os.path.join(target, "chain.import"))
    finally:
        shutil.rmtree(target, ignore_errors=True)


@pytest.mark.parametrize("content", [
    b"", b"not json", b"\xff\xfe\x00garbage", b"[]", b"{}", b"{\"chain\": []}",
    b"{\"chain\": \"blocks\"}", b"{\"chain\": [null]}", b"{\"chain\": [1, 2]}",
    b"{\"chain\": [{}]}", b"{\"chain\": [{\"index\": \"0\"}]}",
    b"{\"chain\": [{\"index\": 0, \"timestamp\": 1e400}]}",
    b"{\"chain\": [{\"index\": 99999999999999999999}]}",
    b"{\"chain\": [], \"chain\": []}",
    "GENESIS_WITH_LENGTH", "GENESIS_BAD_TX",
], ids=lambda c: c if isinstance(c, str) else c[:24].decode(errors="replace"))
def test_import_refuses_files_that_are_not_chains(made, content):
    genesis = json.loads(made["http"])["chain"][0]
    if content == "GENESIS_WITH_LENGTH":
        content = json.dumps({"chain": [genesis], "length": 2}).encode()
    elif content == "GENESIS_BAD_TX":
        second = json.loads(made["http"])["chain"][1]
        second["transactions"][0] = {"users": 5}
        content = json.dumps({"chain": [genesis, second]}).encode()
    target = tempfile.mkdtemp(prefix="cbi", dir="/tmp")
    try:
        r = chainbus("import", "--data-dir", target, "--pow-bits", EASY_BITS,
                     "--json", "-", stdin=content)
        assert r.returncode not in (0, -6, -11), r
        line = one_line(r.stderr)
        assert line.startswith("chainbus import: ") and len(line) > 25, line
        assert not os.path.exists(os.path.join(target, "chain"))
    finally:
        shutil.rmtree(target, ignore_errors=True)


# ---------------------------------------------------------------- chainbus net

def free_base_port(nodes):
    """A base port whose HTTP ports, peer ports (+1000) and directory ports
    (+2000, docs/p2p.md) are all free. Drawn below the kernel's ephemeral
    range, so that outgoing connections do not take them meanwhile."""
    for _ in range(200):
        base = random.randrange(20000, 28000)
        ports = [base + i + k for i in range(nodes) for k in (0, 1000, 2000)]
        if all(port_free(p) for p in ports):
            return base
    raise NodeError("no free block of ports")


def processes_using(text):
    """Pids whose command line mentions text."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                if text.encode() in f.read():
                    pids.append(int(entry))
        except OSError:
            pass
    return pids


def test_net_two_nodes_peered_and_stopped_by_ctrl_c():
    root = tempfile.mkdtemp(prefix="cbn", dir="/tmp")
    data_dir = os.path.join(root, "net")
    base = free_base_port(2)
    proc, lines, ready, thread = start_net(["--nodes", "2", "--base-port", str(base),
                                    "--data-dir", data_dir, "--pow-bits", EASY_BITS])
    try:
        assert ready.wait(90), "net not ready:\n" + "".join(lines)
        ports = [base, base + 1]
        for index, port in enumerate(ports):
            assert any(l.startswith("node %d: http://127.0.0.1:%d" % (index + 1, port))
                       and os.path.join(data_dir, "node%d" % (index + 1)) in l for l in lines), lines
            r = requests.get("http://127.0.0.1:%d/status" % port, timeout=10)
            assert r.status_code == 200 and r.json()["ok"], r.text
            listed = requests.get("http://127.0.0.1:%d/nodes" % port, timeout=10)
            assert listed.status_code == 200, listed.text
            other = ports[1 - index]
            addresses = [p["address"] for p in listed.json()["nodes"]]
            assert "http://127.0.0.1:%d" % other in addresses, addresses
        assert processes_using(data_dir)

        #  Ctrl-C: the terminal sends SIGINT to the whole process group.
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(30) == 0, "".join(lines)
        wait_for(lambda: not processes_using(data_dir), 10, "every process of the net to go")
        thread.join(5)
        assert not any(m in l for l in lines for m in SANITIZER_MARKS), "".join(lines)
        for index in (1, 2):
            with open(os.path.join(data_dir, "node%d.log" % index), errors="replace") as f:
                log = f.read()
            assert not any(m in log for m in SANITIZER_MARKS), log[-3000:]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        for pid in processes_using(data_dir):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        thread.join(5)
        if os.environ.get("CHAINBUS_KEEP_TMP") != "1":
            shutil.rmtree(root, ignore_errors=True)
