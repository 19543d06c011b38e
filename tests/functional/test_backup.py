"""Hot backup and verified restore (issue 11, item 3).

`chainbus backup --data-dir D --out DIR` copies a running node while it
takes submissions; `chainbus restore --from DIR --data-dir NEW` checks the
copy against its manifest and puts it in a new folder. What an operator
sees: exit codes, one line on stderr, the transactions in the restored
node, the chain it then syncs from its peer. Times of a backup are
measured in bench/backup.py, not asserted here.
"""

import json
import os
import subprocess
import threading
import time

import msgpack
import pytest
import requests
import zmq

from chainbus_node import EASY_BITS, bin_dir, damage_table, tx_body, wait_for

#  Generous: a sanitizer build on two loaded cores is slow.
LINK_TIMEOUT = 60
COMMAND_TIMEOUT = 120


def chainbus(*args):
    return subprocess.run([os.path.join(bin_dir(), "chainbus")] + list(args),
                          capture_output=True, text=True, timeout=COMMAND_TIMEOUT)


def backup(node, out):
    return chainbus("backup", "--data-dir", node.data_dir, "--out", out,
                    "--pow-bits", EASY_BITS)


def restore(source, data_dir, *more):
    return chainbus("restore", "--from", source, "--data-dir", data_dir,
                    "--pow-bits", EASY_BITS, *more)


def one_line(result):
    """The command said one line on stderr (and nothing on stdout)."""
    text = result.stderr.strip()
    assert text and "\n" not in text, result.stderr
    return text


def known(node, txid):
    """The node has the transaction, pending or in its chain."""
    return node.tx(txid).status_code == 200


def register(node, peer):
    address = "http://127.0.0.1:%d" % peer.port
    r = node.post("/nodes/register", {"nodes": [address]})
    assert r.status_code == 201, r.text
    return address


class Stream:
    """Submissions as fast as one client goes, and a block mined every
    0.2 s, so that some transactions are confirmed while the backup runs.
    Each acknowledgement (201) is kept with the monotonic time it came."""

    def __init__(self, node):
        self.node = node
        self.acked = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._submit),
                        threading.Thread(target=self._mine)]

    def _submit(self):
        session = requests.Session()
        n = 100000
        while not self.stop.is_set():
            r = session.post(self.node.url + "/transactions/new", json=tx_body(n), timeout=60)
            n += 1
            if r.status_code == 201:
                self.acked.append((r.json()["txid"], time.monotonic()))

    def _mine(self):
        while not self.stop.is_set():
            self.node.get("/mine", timeout=60)
            self.stop.wait(0.2)

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for thread in self.threads:
            thread.join(90)


def test_backup_during_submissions_restores_every_acknowledged_tx(make_node):
    a = make_node()
    for n in range(20):
        a.submit(tx_body(n))
        if n % 4 == 3:
            a.mine()
    out = os.path.join(a.root, "backup")
    with Stream(a) as stream:
        wait_for(lambda: len(stream.acked) >= 100, 60, "100 acknowledged submissions")
        started = time.monotonic()
        result = backup(a, out)
        ended = time.monotonic()
        # The stream goes on after the backup: those the restored node
        # must get from its peer.
        count = len(stream.acked)
        wait_for(lambda: len(stream.acked) >= count + 50, 60, "50 submissions more")
    assert result.returncode == 0, result.stderr
    line = one_line(result)
    assert "written to %s" % out in line, line
    before = [txid for txid, at in stream.acked if at < started]
    after = [txid for txid, at in stream.acked if at > ended]
    assert len(before) >= 100 and len(after) >= 50

    # The manifest names both stores with the tip each holds, and the key.
    with open(os.path.join(out, "chainbus-backup.json")) as f:
        manifest = json.load(f)
    assert manifest["network"] == "dev" and manifest["format"] == 1
    assert manifest["chain"]["height"] >= 5 and manifest["chain"]["entries"] > 0
    assert len(manifest["mempool"]["sha256"]) == 64
    assert "node.key" in [f["path"] for f in manifest["files"]]

    # chainbus verify passes on the copy itself.
    verified = chainbus("verify", "--data-dir", out, "--pow-bits", EASY_BITS)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.startswith("chain sound"), verified.stdout

    # Restored into a new folder (after verify opened the copy: the
    # manifest names the stores' content, not LevelDB's files).
    b = make_node(start=False)
    restored = restore(out, b.data_dir)
    assert restored.returncode == 0, restored.stderr
    assert "restored from %s into %s" % (out, b.data_dir) in one_line(restored)
    assert os.stat(os.path.join(b.data_dir, "node.key")).st_mode & 0o077 == 0
    # A copy that runs beside its original needs an identity of its own
    # (docs/operations.md): two nodes with one key refuse each other.
    os.remove(os.path.join(b.data_dir, "node.key"))
    b.start()
    assert b.height() >= manifest["chain"]["height"]
    missing = [txid for txid in before if not known(b, txid)]
    assert not missing, "%d of %d acknowledged before the backup are not in the restored " \
        "node: %s" % (len(missing), len(before), missing[:5])

    # Then it syncs the rest from its peer, the original node.
    register(b, a)
    wait_for(lambda: b.status()["tip"] == a.status()["tip"], LINK_TIMEOUT,
             "the restored node to sync to its peer's tip")
    assert b.chain() == a.chain()
    confirmed_later = [txid for txid in after if a.tx(txid).json().get("status") != "pending"]
    assert all(known(b, txid) for txid in confirmed_later)


def test_restore_refuses_a_folder_not_empty_another_network_and_damage(make_node):
    a = make_node()
    a.submit(tx_body(1))
    a.mine()
    out = os.path.join(a.root, "backup")
    assert backup(a, out).returncode == 0

    # A data folder that is not empty: exit 2, one line, nothing touched.
    busy = os.path.join(a.root, "busy")
    os.mkdir(busy)
    with open(os.path.join(busy, "keep"), "w") as f:
        f.write("mine")
    result = restore(out, busy)
    assert result.returncode == 2
    assert "is not empty" in one_line(result)
    assert os.listdir(busy) == ["keep"]

    # Another network's configuration: refused, nothing made.
    other = os.path.join(a.root, "other")
    result = chainbus("restore", "--from", out, "--data-dir", other, "--network", "elsewhere",
                      "--pow-bits", EASY_BITS)
    assert result.returncode == 2
    assert "the backup is of network dev" in one_line(result)
    assert not os.path.exists(other)

    # A damaged key file, then a store missing a table file: refused,
    # and nothing is left of the half-restored folder.
    damaged = os.path.join(a.root, "damaged")
    with open(os.path.join(out, "node.key"), "a") as f:
        f.write("#")
    result = restore(out, damaged)
    assert result.returncode == 2
    assert "node.key does not match the manifest" in one_line(result)
    assert not os.path.exists(damaged)
    # A byte flipped in the chain store's largest file (its log or a
    # table): LevelDB drops or refuses what it cannot read, and the
    # content no longer matches the manifest's sum.
    chain = os.path.join(out, "chain")
    data = max((name for name in os.listdir(chain) if name.endswith((".log", ".ldb"))),
               key=lambda name: os.path.getsize(os.path.join(chain, name)))
    with open(os.path.join(chain, data), "r+b") as f:
        f.seek(os.path.getsize(os.path.join(chain, data)) // 2)
        byte = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([byte[0] ^ 0xff]))
    result = restore(out, damaged)
    assert result.returncode == 2
    assert "chain store" in one_line(result)
    assert not os.path.exists(damaged)

    # A folder without its manifest is no backup.
    os.remove(os.path.join(out, "chainbus-backup.json"))
    result = restore(out, damaged)
    assert result.returncode == 2
    assert "has no chainbus-backup.json" in one_line(result)


def test_backup_refuses_a_bad_out_and_a_stopped_node(make_node):
    a = make_node()
    root = a.root
    # An --out that is a file, a folder with something in it, one that
    # cannot be made: exit 2, one line, nothing changed.
    afile = os.path.join(root, "afile")
    with open(afile, "w") as f:
        f.write("x")
    result = backup(a, afile)
    assert result.returncode == 2 and "is not a folder" in one_line(result)
    full = os.path.join(root, "full")
    os.mkdir(full)
    with open(os.path.join(full, "keep"), "w") as f:
        f.write("x")
    result = backup(a, full)
    assert result.returncode == 2 and "is not empty" in one_line(result)
    assert os.listdir(full) == ["keep"]
    result = backup(a, os.path.join(afile, "below"))
    assert result.returncode == 2 and "cannot be made" in one_line(result)
    result = backup(a, os.path.join(root, "no", "such", "parent"))
    assert result.returncode == 2 and "cannot be made" in one_line(result)
    if os.geteuid() != 0:
        locked = os.path.join(root, "locked")
        os.mkdir(locked, 0o500)
        result = backup(a, locked)
        assert result.returncode == 2 and "cannot be written" in one_line(result)

    # An empty folder given (mktemp -d) and a relative path both work.
    empty = os.path.join(root, "empty")
    os.mkdir(empty)
    assert backup(a, empty).returncode == 0
    result = subprocess.run([os.path.join(bin_dir(), "chainbus"), "backup", "--data-dir",
                             a.data_dir, "--out", "relative", "--pow-bits", EASY_BITS],
                            capture_output=True, text=True, cwd=root, timeout=COMMAND_TIMEOUT)
    assert result.returncode == 0, result.stderr
    assert os.path.exists(os.path.join(root, "relative", "chainbus-backup.json"))

    # No node running: refused, and the folder it made is gone again.
    a.stop()
    gone = os.path.join(root, "gone")
    result = backup(a, gone)
    assert result.returncode == 2 and "does not answer" in one_line(result)
    assert not os.path.exists(gone)


def _ask(ctx, node, service, body, request_id):
    s = ctx.socket(zmq.DEALER)
    s.linger = 0
    s.connect("ipc://%s/run/%s.ipc" % (node.data_dir, service))
    s.send_multipart([b"STORE.BACKUP", request_id, msgpack.packb(body)])
    return s


def _answer(s, request_id):
    assert s.poll(COMMAND_TIMEOUT * 1000), "no answer to STORE.BACKUP"
    status, echoed, reply = s.recv_multipart()
    assert echoed == request_id
    return status.decode(), msgpack.unpackb(reply)


def test_store_backup_on_the_bus_as_documented(make_node):
    """STORE.BACKUP as docs/bus.md describes it, to each store's owner."""
    a = make_node()
    a.submit(tx_body(1))
    ctx = zmq.Context()
    try:
        for service in ("mempool", "chainstore"):
            for body in ({}, {"path": "relative/copy"}, {"path": a.root}):
                s = _ask(ctx, a, service, body, b"\x01" * 8)
                status, reply = _answer(s, b"\x01" * 8)
                s.close()
                assert (status, reply["code"]) == ("INVALID", "invalid"), (service, body, reply)
            # Two at once: the second is refused while the first is written.
            first = os.path.join(a.root, service + "-1")
            s = _ask(ctx, a, service, {"path": first}, b"\x02" * 8)
            s.send_multipart([b"STORE.BACKUP", b"\x03" * 8,
                              msgpack.packb({"path": first + "-again"})])
            answers = {}
            for _ in range(2):
                assert s.poll(COMMAND_TIMEOUT * 1000)
                status, echoed, reply = s.recv_multipart()
                answers[echoed] = (status.decode(), msgpack.unpackb(reply))
            s.close()
            status, reply = answers[b"\x02" * 8]
            assert status == "OK", reply
            assert {"entries", "bytes", "digest", "ms", "height", "tip"} <= set(reply)
            assert len(reply["digest"]) == 32 and len(reply["tip"]) == 32
            assert reply["entries"] > 0
            assert answers[b"\x03" * 8][0] == "FULL"
            assert answers[b"\x03" * 8][1]["code"] == "full"
            assert os.path.isdir(first) and not os.path.exists(first + "-again")
    finally:
        ctx.term()


class FakeServices:
    """ROUTERs on a data folder's chainstore and mempool endpoints, each
    answering from a function (command -> body, or None for no answer),
    so that a test says exactly what the services do."""

    def __init__(self, data_dir, answer):
        os.makedirs(os.path.join(data_dir, "run"), exist_ok=True)
        self.ctx = zmq.Context()
        self.routers = {}
        for service in ("chainstore", "mempool"):
            s = self.ctx.socket(zmq.ROUTER)
            s.linger = 0
            s.bind("ipc://%s/run/%s.ipc" % (data_dir, service))
            self.routers[service] = s
        self.answer, self.asked, self.done = answer, [], threading.Event()
        self.bodies = []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        poller = zmq.Poller()
        for s in self.routers.values():
            poller.register(s, zmq.POLLIN)
        while not self.done.is_set():
            for s, _ in poller.poll(100):
                service = next(name for name, r in self.routers.items() if r is s)
                peer, command, request_id, body = s.recv_multipart()
                self.asked.append((service, command.decode()))
                self.bodies.append((service, command.decode(), msgpack.unpackb(body)))
                reply = self.answer(service, command.decode())
                status = b"OK"
                if isinstance(reply, tuple):
                    status, reply = reply
                if reply is not None:
                    s.send_multipart([peer, status, request_id, msgpack.packb(reply)])

    def close(self):
        self.done.set()
        self.thread.join(5)
        for s in self.routers.values():
            s.close()
        self.ctx.term()


TIP = {"height": 2, "hash": b"\x01" * 32, "work": b"\x02" * 32, "time_ms": 5,
       "network": "dev", "genesis": b"\x03" * 32, "bits": 7}


def test_backup_ends_with_the_reason_when_a_service_restarts_or_hangs_during_a_copy(tmp_path):
    """A copy is answered only when it is durable, which may take long;
    backup waits as long as the same process answers PING, and no longer."""
    for case in ("restarted", "hung"):
        pings = []

        def answer(service, command):
            if command == "TIP":
                return TIP
            if command == "PING":
                pings.append(service)
                if service == "mempool" and len(pings) > 1 and case == "hung":
                    return None
                pid = 10 if service != "mempool" or len(pings) == 1 or case == "hung" else 11
                return {"role": service, "pid": pid}
            if command == "STORE.BACKUP.CANCEL":
                return {"cancelled": case == "hung"}
            return None                 # STORE.BACKUP: never answered

        root = str(tmp_path / case)
        fake = FakeServices(root, answer)
        try:
            out = os.path.join(root, "out")
            started = time.monotonic()
            result = chainbus("backup", "--data-dir", root, "--out", out)
            took = time.monotonic() - started
        finally:
            fake.close()
        assert result.returncode == 1, result.stderr
        assert one_line(result) == "chainbus backup: the mempool stopped or restarted during " \
            "STORE.BACKUP: run the backup again"
        assert took < 30, took
        assert ("mempool", "STORE.BACKUP") in fake.asked
        assert ("chainstore", "STORE.BACKUP") not in fake.asked
        # The copy was cancelled, and answered, before anything was removed.
        assert ("mempool", "STORE.BACKUP.CANCEL") in fake.asked
        assert not os.path.exists(out)



def test_backup_given_up_cancels_the_copy_and_keeps_what_may_still_be_written(tmp_path):
    """Ctrl-C or SIGTERM during a copy: backup asks the service to cancel
    it and removes its folder only once answered; a service that does not
    answer the cancel either may still write there: nothing is removed,
    and the reason says so."""
    import signal
    for case, signum in (("answered", signal.SIGINT), ("answered", signal.SIGTERM),
                         ("silent", signal.SIGINT)):
        def answer(service, command):
            if command == "TIP":
                return TIP
            if command == "PING":
                return {"role": service, "pid": 10}
            if command == "STORE.BACKUP.CANCEL" and case == "answered":
                return {"cancelled": True}
            return None                 # STORE.BACKUP never answered

        root = str(tmp_path / ("%s-%d" % (case, signum)))
        fake = FakeServices(root, answer)
        out = os.path.join(root, "out")
        try:
            p = subprocess.Popen([os.path.join(bin_dir(), "chainbus"), "backup", "--data-dir",
                                  root, "--out", out], stderr=subprocess.PIPE, text=True)
            wait_for(lambda: ("mempool", "STORE.BACKUP") in fake.asked, 30, "STORE.BACKUP")
            p.send_signal(signum)
            started = time.monotonic()
            _, err = p.communicate(timeout=COMMAND_TIMEOUT)
            took = time.monotonic() - started
        finally:
            fake.close()
        assert p.returncode == 1, err
        cancels = [b for b in fake.bodies if b[:2] == ("mempool", "STORE.BACKUP.CANCEL")]
        assert cancels and cancels[0][2] == {"path": os.path.join(out, "mempool")}, fake.bodies
        if case == "answered":
            assert err.strip() == "chainbus backup: interrupted", err
            assert not os.path.exists(out)
            assert took < 10, took
        else:
            assert "did not answer STORE.BACKUP.CANCEL" in err and "nothing was removed" in err
            assert os.path.isdir(out)
            assert 9 < took < 30, took


def test_backup_takes_both_stores_again_when_a_reorg_left_the_pool_tip(tmp_path):
    """The chain copy must hold the block the pool copy's tip names (a
    transaction it confirmed is in no pool copy): the chainstore is given
    that tip, and refuses stale when a reorganisation disconnected it;
    backup then takes both again, three times at most."""
    pool_tip = b"\x09" * 32

    def answer(service, command):
        if command == "TIP":
            return TIP
        if command == "PING":
            return {"role": service, "pid": 10}
        if command == "STORE.BACKUP" and service == "mempool":
            return {"entries": 1, "bytes": 1, "digest": b"\x00" * 32, "ms": 1,
                    "height": 3, "tip": pool_tip}
        if command == "STORE.BACKUP":
            return (b"INVALID", {"code": "stale", "reason": "not on the active chain"})
        return None

    root = str(tmp_path / "reorg")
    fake = FakeServices(root, answer)
    out = os.path.join(root, "out")
    try:
        result = chainbus("backup", "--data-dir", root, "--out", out)
    finally:
        fake.close()
    assert result.returncode == 1, result.stderr
    assert "reorganisations disconnected the pool copy's tip before the chain copy 3 times" \
        in one_line(result)
    asked = [b for b in fake.bodies if b[1] == "STORE.BACKUP"]
    assert [b[0] for b in asked] == ["mempool", "chainstore"] * 3
    assert all(b[2].get("after_tip") == pool_tip for b in asked if b[0] == "chainstore")
    assert not os.path.exists(out)


def test_store_backup_cancel_and_after_tip_on_the_bus(make_node):
    """STORE.BACKUP.CANCEL as docs/bus.md says: answered once nothing
    writes at the path, the next backup is not refused full; the
    chainstore refuses stale an after_tip off its active chain."""
    a = make_node()
    for n in range(30):
        a.submit(tx_body(5000 + n))
    a.mine()
    ctx = zmq.Context()
    try:
        for service in ("mempool", "chainstore"):
            path = os.path.join(a.root, service + "-cancelled")
            s = _ask(ctx, a, service, {"path": path}, b"\x04" * 8)
            s.send_multipart([b"STORE.BACKUP.CANCEL", b"\x05" * 8, msgpack.packb({"path": path})])
            answers = {}
            while b"\x05" * 8 not in answers:
                assert s.poll(COMMAND_TIMEOUT * 1000)
                status, echoed, reply = s.recv_multipart()
                answers[echoed] = (status.decode(), msgpack.unpackb(reply))
            s.close()
            assert answers[b"\x05" * 8][0] == "OK", answers
            cancelled = answers[b"\x05" * 8][1]["cancelled"]
            # Stopped and removed before the answer; or done before it.
            assert cancelled == (b"\x04" * 8 not in answers), answers
            assert os.path.exists(path) == (not cancelled)
            # Nothing is left running: the next copy is taken at once.
            again = path + "-again"
            s = _ask(ctx, a, service, {"path": again}, b"\x06" * 8)
            status, reply = _answer(s, b"\x06" * 8)
            s.close()
            assert status == "OK", reply
            # A cancel of nothing running says so.
            s = ctx.socket(zmq.DEALER)
            s.linger = 0
            s.connect("ipc://%s/run/%s.ipc" % (a.data_dir, service))
            s.send_multipart([b"STORE.BACKUP.CANCEL", b"\x07" * 8,
                              msgpack.packb({"path": again})])
            status, reply = _answer(s, b"\x07" * 8)
            s.close()
            assert (status, reply) == ("OK", {"cancelled": False})
        # A tip off the active chain: refused stale, nothing made.
        stale = os.path.join(a.root, "stale")
        s = _ask(ctx, a, "chainstore", {"path": stale, "after_tip": b"\x07" * 32}, b"\x08" * 8)
        status, reply = _answer(s, b"\x08" * 8)
        s.close()
        assert (status, reply["code"]) == ("INVALID", "stale"), reply
        assert not os.path.exists(stale)
        tip = a.status()["tip"]
        s = _ask(ctx, a, "chainstore", {"path": stale, "after_tip": bytes.fromhex(tip)},
                 b"\x09" * 8)
        status, reply = _answer(s, b"\x09" * 8)
        s.close()
        assert status == "OK" and reply["tip"] == bytes.fromhex(tip), reply
    finally:
        ctx.term()


def test_restore_refuses_a_manifest_listing_a_file_twice(make_node):
    a = make_node()
    out = os.path.join(a.root, "backup")
    assert backup(a, out).returncode == 0
    path = os.path.join(out, "chainbus-backup.json")
    with open(path) as f:
        manifest = json.load(f)
    key = [f for f in manifest["files"] if f["path"] == "node.key"][0]
    for files, said in ((manifest["files"] + [key], "lists node.key twice"),
                        ([dict(key, path="../node.key")], "is not {path, size, sha256}"),
                        ([dict(key, path="/etc/passwd")], "is not {path, size, sha256}")):
        with open(path, "w") as f:
            json.dump(dict(manifest, files=files), f)
        target = os.path.join(a.root, "restored")
        result = restore(out, target)
        assert result.returncode == 2, result.stderr
        assert said in one_line(result)
        assert not os.path.exists(target)


def test_a_damaged_table_found_by_a_backup_marks_the_store_damaged(make_node):
    """A table file of the chain store that does not read back fails the
    backup (exit 1, nothing left) and, as any read finding it, makes
    /status say the chain store is damaged."""
    import random
    import string
    node = make_node()
    # Incompressible text, so that a block's bytes are in a table file as
    # they are (LevelDB compresses with Snappy); a restart moves the log
    # into a table.
    for height in range(1, 5):
        mark = "VICTIM%d_" % height + "".join(
            random.choice(string.ascii_letters) for _ in range(3000))
        node.submit(tx_body("damage-%d" % height, server_public_key=mark))
        node.mine()
    node.restart()
    node.stop()
    assert damage_table(node.data_dir, b"VICTIM3_"), "no table file holds block 3's bytes"
    node.start()
    assert node.status()["ok"] is True, "nothing read the damage yet"
    out = os.path.join(node.root, "backup")
    result = backup(node, out)
    assert result.returncode == 1, result.stderr
    assert "Corruption" in one_line(result)
    assert not os.path.exists(out)
    status = node.status()
    damaged = [r for r in status.get("reasons", []) if r.get("code") == "damaged"]
    assert status["ok"] is False and damaged, status
    assert damaged[0]["service"] == "chainstore" and "Corruption" in damaged[0]["message"]


def _own_address():
    """A non-loopback IPv4 address of this machine, or None."""
    import socket
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("192.0.2.123", 9))
        address = s.getsockname()[0]
    except OSError:
        return None
    finally:
        s.close()
    return None if address.startswith("127.") else address


def test_store_backup_is_refused_from_another_machine(make_node):
    """STORE.BACKUP over CurveZMQ tcp from an allowlisted key at an
    address that is not loopback (as a remote miner would) is refused
    local_only and writes nothing; backup through such an endpoint too."""
    from chainbus_node import free_port
    address = _own_address()
    if not address:
        pytest.skip("this machine has no IPv4 address but loopback to connect from")
    public, secret = zmq.curve_keypair()
    ports = {"chainstore": free_port(), "mempool": free_port()}
    flags = []
    for service, port in ports.items():
        flags += ["--endpoint-" + service, "tcp://%s:%d" % (address, port)]
    a = make_node(start=False, extra_args=flags)
    os.makedirs(a.data_dir, exist_ok=True)
    with open(os.path.join(a.data_dir, "allowlist"), "w") as f:
        f.write(public.decode() + "\n")
    a.start()
    server = subprocess.run([os.path.join(bin_dir(), "chainbus"), "service-key", "--data-dir",
                             a.data_dir], capture_output=True, text=True).stdout.strip()
    ctx = zmq.Context()
    try:
        for service, port in ports.items():
            path = os.path.join(a.root, "remote-" + service)
            for command in (b"STORE.BACKUP", b"STORE.BACKUP.CANCEL"):
                s = ctx.socket(zmq.DEALER)
                s.linger = 0
                s.curve_serverkey = server.encode()
                s.curve_publickey, s.curve_secretkey = public, secret
                s.connect("tcp://%s:%d" % (address, port))
                s.send_multipart([command, b"\x0a" * 8, msgpack.packb({"path": path})])
                status, reply = _answer(s, b"\x0a" * 8)
                s.close()
                assert (status, reply["code"]) == ("INVALID", "local_only"), (service, reply)
                assert "only from this machine" in reply["reason"]
            assert not os.path.exists(path)
        out = os.path.join(a.root, "backup")
        result = chainbus("backup", "--data-dir", a.data_dir, "--out", out, "--pow-bits",
                          EASY_BITS, *flags)
        assert result.returncode == 2, result.stderr
        assert "taken only from this machine" in one_line(result)
        assert not os.path.exists(out)
    finally:
        ctx.term()
    # Over CurveZMQ tcp from loopback, backup works.
    flags = []
    for service in ("chainstore", "mempool"):
        flags += ["--endpoint-" + service, "tcp://127.0.0.1:%d" % free_port()]
    b = make_node(start=False, extra_args=flags)
    os.makedirs(b.data_dir, exist_ok=True)
    open(os.path.join(b.data_dir, "allowlist"), "w").close()
    b.start()
    out = os.path.join(b.root, "backup")
    result = chainbus("backup", "--data-dir", b.data_dir, "--out", out, "--pow-bits", EASY_BITS,
                      *flags)
    assert result.returncode == 0, result.stderr
    assert os.path.isfile(os.path.join(out, "chainbus-backup.json"))
