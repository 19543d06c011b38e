"""A full disk is a pause, never a loss (issue 9, item 3).

A node runs with its data folder on a small loop-mounted ext4 (needs root
for the mount; skipped otherwise, saying so). The disk is filled by a
filler file while a client keeps submitting and mining:

- every answer to a submission is a 201 (recorded) or a 507 whose JSON
  says `no_space` and names the disk full and the folder;
- GET /status says which store is full, and is not ok; GET /mine answers
  at once with 507, not after the mine timeout;
- no store retries a failed write in a loop (the log counts the writes
  LevelDB was given and failed, and the pauses);
- once the filler is removed the node takes submissions and mines again
  by itself, without a restart (the time it takes is printed);
- a kill -9 while a store is paused after a failed write (a second filler
  races the submissions so that a write that fitted fails), then a start:
  every store opens;
- after a stop and a start every acknowledged txid is found, and
  `chainbus verify` finds the chain sound.

Without root, a reserve (node/disk_reserve_mb) larger than the free space
shows the pause alone.
"""

import base64
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time

import pytest
import requests

from chainbus_node import EASY_BITS, bin_dir, tx_body, wait_for

IMAGE_MB = 96
#  Generous: the sanitizer build on two shared cores.
RESUME_TIMEOUT = 20.0


def run(*args):
    return subprocess.run(list(args), capture_output=True, timeout=60)


@pytest.fixture
def small_disk():
    """A mounted ext4 of IMAGE_MB; unmounted and removed afterwards, even
    when the test fails."""
    if os.geteuid() != 0:
        pytest.skip("needs root: mounts a small ext4 image (mount -o loop)")
    for tool in ("mkfs.ext4", "mount", "umount"):
        if not shutil.which(tool):
            pytest.skip("needs %s" % tool)
    root = tempfile.mkdtemp(prefix="cbdisk", dir="/tmp")
    image, mount = os.path.join(root, "image"), os.path.join(root, "m")
    os.mkdir(mount)
    mounted = False
    try:
        with open(image, "wb") as f:
            f.truncate(IMAGE_MB * 1024 * 1024)
        r = run("mkfs.ext4", "-q", "-F", image)
        assert r.returncode == 0, r.stderr
        r = run("mount", "-o", "loop", image, mount)
        if r.returncode != 0:
            pytest.skip("cannot loop-mount here: %s" % r.stderr.decode().strip())
        mounted = True
        yield mount
    finally:
        if mounted and run("umount", mount).returncode != 0:
            time.sleep(1)
            if run("umount", mount).returncode != 0:
                run("umount", "-l", mount)
        shutil.rmtree(root, ignore_errors=True)


def fill(path, stop=None):
    """Write path until the disk is full (or stop is set); returns bytes."""
    chunk, written = b"\0" * (1 << 20), 0
    with open(path, "ab", buffering=0) as f:
        while chunk and not (stop and stop.is_set()):
            try:
                written += f.write(chunk)
            except OSError:
                if len(chunk) <= 4096:
                    if stop is None:
                        break
                    time.sleep(0.005)
                    continue
                chunk = chunk[: len(chunk) // 4]
        try:
            os.fsync(f.fileno())
        except OSError:
            pass
    return written


class Submitter:
    """Posts transactions in a thread: every 201's txid is kept, every
    other answer must be a 507 that names the full disk."""

    def __init__(self, node, tag, mount, size=0, random=False):
        self.node, self.tag, self.mount, self.size = node, tag, mount, size
        self.random = random
        self.acked, self.full, self.bad = [], 0, []
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        n = 0
        with requests.Session() as s:
            while not self.stop_flag.is_set():
                n += 1
                body = tx_body("%s-%d" % (self.tag, n))
                if self.size:
                    body["data"] = (base64.b64encode(os.urandom(self.size * 3 // 4)).decode()
                                    if self.random else "x" * self.size)
                try:
                    r = s.post(self.node.url + "/transactions/new", json=body, timeout=30)
                except requests.RequestException as e:
                    self.bad.append(repr(e))
                    continue
                if r.status_code == 201:
                    self.acked.append(r.json()["txid"])
                elif r.status_code == 507 and no_space(r, self.mount):
                    self.full += 1
                    self.stop_flag.wait(0.01)
                else:
                    self.bad.append("%d %s" % (r.status_code, r.text[:300]))

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop_flag.set()
        self.thread.join(60)
        assert not self.thread.is_alive()


def no_space(r, mount):
    j = r.json()
    return (j.get("code") == "no_space" and "disk full" in j.get("message", "")
            and mount in j["message"])


def count(node, pattern):
    return len(re.findall(pattern, node.log_text()))


def test_full_disk_pauses_and_resumes(small_disk, make_node):
    node = make_node(start=False, miners=1)
    node.data_dir = os.path.join(small_disk, "d")
    node.start()
    acked = [node.submit(tx_body("before-%d" % i))[0] for i in range(10)]
    assert node.mine()["index"] == 1

    # ------------------------------------------------------------ full
    filler = os.path.join(small_disk, "filler")
    fill(filler)
    with Submitter(node, "full", small_disk) as sub:
        wait_for(lambda: sub.full >= 20, 30, "submissions refused 507")
        #  /status names each full store, its folder and the reason.
        def status_full():
            services = node.status()["services"]
            return all("disk full" in services[role].get("storage", "")
                       for role in ("chainstore", "mempool"))
        try:
            wait_for(status_full, 10, "/status to say both stores are full")
        except Exception:
            print(node.status())
            raise
        status = node.status()
        assert status["ok"] is False, status
        for role in ("chainstore", "mempool"):
            assert os.path.join(small_disk, "d", "chain" if role == "chainstore" else "mempool") \
                in status["services"][role]["storage"], status
            #  ... and the kind of fault: a full disk, not a failed store.
            assert status["services"][role].get("storage_code") == "no_space", status
        #  GET /mine: at once, with the chain store's reason.
        start = time.monotonic()
        r = node.get("/mine")
        took = time.monotonic() - start
        assert r.status_code == 507 and no_space(r, small_disk), (r.status_code, r.text)
        assert took < 5, took
        time.sleep(2)
    acked += sub.acked
    assert not sub.bad, sub.bad[:5]
    #  No write retried in a loop: the stores refused without trying.
    failed_writes = count(node, r"leveldb write failed")
    pauses = count(node, r"store paused")
    print("while full: %d submissions refused 507, %d acknowledged, %d failed LevelDB writes, "
          "%d pauses, /mine answered in %.3f s" % (sub.full, len(sub.acked), failed_writes,
                                                  pauses, took))
    assert failed_writes <= 4, failed_writes
    assert count(node, r"block refused unchecked") <= 3

    # ------------------------------------------------------ space again
    os.remove(filler)
    freed = time.monotonic()
    resumed = None
    while time.monotonic() - freed < RESUME_TIMEOUT:
        r = node.post("/transactions/new", tx_body("again-%f" % time.monotonic()))
        if r.status_code == 201:
            resumed = time.monotonic() - freed
            acked.append(r.json()["txid"])
            break
        assert r.status_code == 507 and no_space(r, small_disk), (r.status_code, r.text)
        time.sleep(0.05)
    assert resumed is not None, "no 201 within %.0f s of freeing space" % RESUME_TIMEOUT
    wait_for(lambda: node.status()["ok"], RESUME_TIMEOUT, "/status ok again")
    mined = None
    deadline = time.monotonic() + RESUME_TIMEOUT
    while mined is None and time.monotonic() < deadline:
        r = node.get("/mine")
        if r.status_code == 200:
            mined = r.json()
        else:
            assert r.status_code == 507, (r.status_code, r.text)
            time.sleep(0.2)
    assert mined, "no block mined after space came back"
    resumed_mine = time.monotonic() - freed
    print("space back: submissions accepted after %.2f s, a block mined after %.2f s"
          % (resumed, resumed_mine))
    acked += [node.submit(tx_body("after-%d" % i))[0] for i in range(10)]

    # ------------------------- kill -9 while paused after a failed write
    #  A write the check lets through can still fail: LevelDB turns its
    #  16 MiB memory table into a table file after the write that filled
    #  it. With 26 MiB free, incompressible submissions fill the log to
    #  16 MiB (each write fits), the table of 16 MiB does not fit, and the
    #  next write fails in LevelDB; the store pauses until a reopen.
    #  The node is killed then, and started once there is room.
    room = os.path.join(small_disk, "room")
    fs = os.statvfs(small_disk)
    with open(room, "wb") as f:
        f.truncate(0)
        os.posix_fallocate(f.fileno(), 0, fs.f_bavail * fs.f_frsize - (26 << 20))
    failed_before = count(node, r"leveldb write failed")
    clients = [Submitter(node, "big%d" % k, small_disk, size=200000, random=True)
               for k in range(4)]
    for client in clients:
        client.__enter__()
    try:
        wait_for(lambda: count(node, r"leveldb write failed") > failed_before, 30,
                 "a LevelDB write to fail")
        time.sleep(1.5)
        node.kill_all()
    finally:
        for client in clients:
            client.__exit__()
    for client in clients:
        acked += client.acked
        assert all("Connection" in b for b in client.bad), client.bad[:5]
    log = node.log_text()
    print("failed write: %d acknowledged, %d refused 507, %d LevelDB writes failed; "
          "killed while paused" % (sum(len(c.acked) for c in clients),
                                   sum(c.full for c in clients),
                                   count(node, r"leveldb write failed") - failed_before))
    assert "reopen=yes" in log
    assert count(node, r"leveldb write failed") - failed_before <= 3
    os.remove(room)
    #  Every store opens after the kill.
    node.start()
    node.stop()

    # ------------------------------------------------- stop, start, find
    node.start()
    for txid in acked:
        r = node.tx(txid)
        assert r.status_code == 200, (txid, r.status_code, r.text)
    node.mine()
    node.stop()
    r = subprocess.run([os.path.join(bin_dir(), "chainbus"), "verify", "--data-dir",
                        node.data_dir, "--pow-bits", EASY_BITS],
                       capture_output=True, timeout=120)
    out = r.stdout.decode()
    assert r.returncode == 0 and out.startswith("chain sound"), (r.returncode, out,
                                                                 r.stderr.decode())


def test_a_reserve_larger_than_the_disk_pauses_the_node(make_node):
    """Without root: node/disk_reserve_mb above the free space of /tmp
    makes every store's disk 'full' from the first write on, which shows
    the pause on any machine (the resume needs the loop mount above)."""
    reserve_mb = 1 << 20
    fs = os.statvfs("/tmp")
    if fs.f_bavail * fs.f_frsize >= reserve_mb << 20:
        pytest.skip("/tmp has a TiB free or more: the reserve cannot exceed it")
    node = make_node(miners=1, extra_args=["--disk-reserve", str(reserve_mb)])
    for n in range(20):
        r = node.post("/transactions/new", tx_body("reserve-%d" % n))
        assert r.status_code == 507 and no_space(r, node.data_dir), (r.status_code, r.text)
    wait_for(lambda: all("disk full" in node.status()["services"][role].get("storage", "")
                         for role in ("chainstore", "mempool")), 10,
             "/status to name both stores full")
    status = node.status()
    assert status["ok"] is False
    for role in ("chainstore", "mempool"):
        assert status["services"][role].get("storage_code") == "no_space", status
    start = time.monotonic()
    r = node.get("/mine")
    assert r.status_code == 507 and no_space(r, node.data_dir), (r.status_code, r.text)
    assert time.monotonic() - start < 5
    #  Nothing was tried: every write was refused before LevelDB saw it.
    assert count(node, r"leveldb write failed") == 0
    assert node.status()["mempool"]["size"] == 0
