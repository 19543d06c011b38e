"""Health that tells the truth (issue 11, item 4).

- A chain store with a damaged table file: the first read that meets it
  marks the store damaged; GET /status then says "ok": false with the
  reason (code damaged, LevelDB's message), and GET /chain answers 500
  at once instead of breaking its body off.
- Free disk below the floor (node/disk_reserve_mb): GET /status names
  each store (code no_space) and a submission gets 507.
- A service that keeps restarting: "ok": false (code restarting) until
  its restarts fall out of gateway/restart_window_ms.
- A permanent start error (HTTP port in use, a store of another network,
  a node key that is no keypair) stops `chainbus node` with exit 2 and
  the child's reason, after a few tries; a transient one (a chain store
  lock held by another process, a bind address not up) is retried.
- A restarted miner keeps its name (--miner-id from the launcher); the
  launcher survives its output pipe's reader going.
- GET /mine with no miner: 503 "no miner is running", at once.
- A gateway bound beyond loopback without an admin token warns at start.
- `chainbus net` restarts a node that dies.
"""

import os
import random
import shutil
import signal
import socket
import string
import subprocess
import tempfile
import time

import pytest
import requests

from chainbus_node import (EASY_BITS, Node, bin_dir, damage_table, free_port, proc_state,
                           start_net, tx_body, wait_for)


def reasons(status, code=None):
    return [r for r in status["reasons"] if code is None or r["code"] == code]


def run_node(args, timeout=90):
    """`chainbus node` in the foreground until it exits: (rc, stderr, seconds)."""
    started = time.monotonic()
    r = subprocess.run([os.path.join(bin_dir(), "chainbus"), "node"] + args,
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
    return r.returncode, r.stderr.decode(errors="replace"), time.monotonic() - started


# ------------------------------------------------------------ damaged store


def test_a_damaged_table_file_makes_status_not_ok_and_chain_refuse(make_node):
    node = make_node(miners=1)
    #  Blocks of incompressible text, so that one block's bytes are found
    #  as they are in the table file (LevelDB compresses with Snappy).
    for height in range(1, 7):
        for k in range(3):
            mark = "VICTIM%d_%d_" % (height, k) + "".join(
                random.choice(string.ascii_letters) for _ in range(3000))
            node.submit(tx_body("damage-%d-%d" % (height, k), server_public_key=mark))
        node.mine()
    #  A stop and a start move the log into a table file.
    node.restart()
    node.stop()
    assert damage_table(node.data_dir, b"VICTIM4_1_"), "no table file holds block 4's bytes"
    node.start()
    assert node.status()["ok"] is True, "nothing read the damage yet"
    #  The first read of block 4 finds it.
    try:
        first = node.get("/chain")
        assert first.status_code != 200 or "VICTIM4_1_" not in first.text
    except requests.exceptions.ChunkedEncodingError:
        pass            #  The stream had started: it ends early (docs/api.md)
    status = wait_for(lambda: (lambda s: s if not s["ok"] else None)(node.status()), 10,
                      "/status to say the store is damaged")
    damaged = reasons(status, "damaged")
    assert damaged and damaged[0]["service"] == "chainstore", status
    assert "Corruption" in damaged[0]["message"], damaged
    #  From now on GET /chain says why at once, before any body.
    r = node.get("/chain")
    assert r.status_code == 500, r.text[:300]
    assert r.json()["code"] == "damaged" and "damaged" in r.json()["message"], r.text
    assert "chain store damaged" in node.log_text()
    #  Sticky: still not ok a while later.
    time.sleep(1.5)
    assert reasons(node.status(), "damaged")


# ------------------------------------------------------------ disk floor


def test_free_space_below_the_floor_is_a_status_reason_and_507(make_node):
    reserve_mb = 1 << 20
    fs = os.statvfs("/tmp")
    if fs.f_bavail * fs.f_frsize >= reserve_mb << 20:
        pytest.skip("/tmp has a TiB free or more: the floor cannot exceed it")
    node = make_node(miners=0, extra_args=["--disk-reserve", str(reserve_mb)])
    #  Each store probes its disk every second and pauses below the floor.
    status = wait_for(lambda: (lambda s: s if len(reasons(s, "no_space")) == 2 else None)(
        node.status()), 10, "both stores to be reported below the floor")
    assert status["ok"] is False
    assert {r["service"] for r in reasons(status, "no_space")} == {"chainstore", "mempool"}
    assert all("disk full" in r["message"] for r in reasons(status, "no_space")), status
    r = node.post("/transactions/new", tx_body("below-the-floor"))
    assert r.status_code == 507 and r.json()["code"] == "no_space", r.text
    assert node.status()["mempool"]["size"] == 0


# ------------------------------------------------------------ restart loop


def test_a_service_that_keeps_restarting_is_not_ok(make_node):
    window_s = 20
    node = make_node(miners=0, extra_args=["--restart-window", str(window_s * 1000)])
    assert node.status()["ok"] is True
    started = time.monotonic()
    #  The gateway counts a restart from the new process's heartbeat
    #  (every second): a process that dies before its first is not seen.
    for round_ in range(4):
        since = time.time() * 1000
        wait_for(lambda: (node.status()["services"]["mempool"]["last_seen_ms"] or 0) > since,
                 10, "the mempool's heartbeat")
        if round_ < 3:
            node.kill_service("mempool")
    status = wait_for(lambda: (lambda s: s if reasons(s, "restarting") else None)(
        node.status()), 10, "/status to say the mempool keeps restarting")
    assert status["ok"] is False
    restarting = reasons(status, "restarting")
    assert restarting[0]["service"] == "mempool", status
    assert "restarted 3 times" in restarting[0]["message"], restarting
    assert "restart heard service=mempool restarts=3" in node.log_text()
    #  Once the restarts are older than the window the node is ok again.
    wait_for(lambda: node.status()["ok"], window_s + 15, "/status ok again after the window")
    assert time.monotonic() - started >= window_s - 1


# ------------------------------------------------------ permanent start errors


def test_http_port_in_use_stops_the_node_with_exit_2_and_the_reason():
    port = free_port()
    root = tempfile.mkdtemp(prefix="cbh", dir="/tmp")
    taken = socket.socket()
    try:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        rc, err, seconds = run_node(["--http-port", str(port), "--data-dir", root + "/d",
                                     "--miners", "0", "--pow-bits", EASY_BITS])
        assert rc == 2, err
        assert "chainbus-gateway cannot start" in err, err
        assert "port %d" % port in err, err
        assert seconds < 45, seconds
    finally:
        taken.close()
        shutil.rmtree(root, ignore_errors=True)


def test_a_store_of_another_network_stops_the_node_with_exit_2(make_node):
    node = make_node(miners=0)
    node.stop()
    rc, err, seconds = run_node(["--http-port", str(node.port), "--data-dir", node.data_dir,
                                 "--miners", "0", "--pow-bits", EASY_BITS,
                                 "--network", "another-net"])
    assert rc == 2, err
    assert "chainbus-chainstore cannot start" in err, err
    assert "another network" in err, err
    assert seconds < 45, seconds


def test_a_node_key_that_is_no_keypair_stops_the_node_with_exit_2(make_node):
    node = make_node(miners=0)
    node.stop()
    with open(os.path.join(node.data_dir, "node.key"), "w") as f:
        f.write("not a key\n")
    rc, err, _ = run_node(["--http-port", str(node.port), "--data-dir", node.data_dir,
                           "--miners", "0", "--pow-bits", EASY_BITS])
    assert rc == 2, err
    assert "chainbus-peersync cannot start" in err and "node.key" in err, err


def test_a_held_chain_store_lock_is_retried_not_a_stop(make_node):
    """A chain store whose LevelDB LOCK another process holds (an
    operator's `chainbus verify`, the last run still closing) is a
    transient start error: the chainstore exits 1, not 2, so the node
    keeps trying and comes up once the lock is released."""
    import fcntl
    node = make_node(miners=0)
    node.stop()
    lock = open(os.path.join(node.data_dir, "chain", "LOCK"), "a+")
    try:
        #  What LevelDB does (util/env_posix.cc): a write lock by fcntl F_SETLK.
        fcntl.lockf(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        node.start(wait=False)
        wait_for(lambda: not node.running()
                 or node.log_text().count("child died child=chainstore") >= 2, 60,
                 "the chainstore to fail twice on the held lock")
        assert node.running(), "the node stopped on a held lock\n" + node.log_tail()
        text = node.log_text()
        assert "stopping the node" not in text, node.log_tail()
        assert "chainstore: not started: cannot open database" in text, node.log_tail()
        assert "child died child=chainstore exit=1" in text, node.log_tail()
    finally:
        fcntl.lockf(lock, fcntl.LOCK_UN)
        lock.close()
    node.wait_ready()
    assert node.status()["ok"], node.status()
    node.expected_deaths = node.log_text().count("child died")


def _service_status_lines(role, args, root):
    """Run chainbus-<role> with a NOTIFY_SOCKET of ours, as systemd would:
    (exit code, the STATUS= lines it sent)."""
    path = os.path.join(root, "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(0.2)
    proc = subprocess.Popen([os.path.join(bin_dir(), "chainbus-" + role)] + args,
                            env=dict(os.environ, NOTIFY_SOCKET=path),
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    lines = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                data, ancillary, _, _ = sock.recvmsg(4096, socket.CMSG_SPACE(16))
            except socket.timeout:
                if proc.poll() is not None:
                    break
                continue
            #  BARRIER=1 comes with a pipe's end: closing it answers.
            for level, kind, fds in ancillary:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    for index in range(0, len(fds) - len(fds) % 4, 4):
                        os.close(int.from_bytes(fds[index:index + 4], "little"))
            lines += [l for l in data.decode(errors="replace").splitlines()
                      if l.startswith("STATUS=")]
        return proc.wait(30), lines
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        sock.close()


def test_the_status_line_says_the_start_error_and_its_class(make_node):
    """What `systemctl status` shows: the reason and whether it is
    permanent (exit 2) or transient (exit 1), not just 'not started'."""
    import fcntl
    node = make_node(miners=0)
    node.stop()
    common = ["--data-dir", node.data_dir, "--pow-bits", EASY_BITS]
    rc, lines = _service_status_lines("chainstore", common + ["--network", "another-net"],
                                      node.root)
    assert rc == 2, lines
    assert any(l.startswith("STATUS=chainstore: permanent start error (exit 2): ")
               and "another network" in l for l in lines), lines
    with open(os.path.join(node.data_dir, "chain", "LOCK"), "a+") as lock:
        fcntl.lockf(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.unlink(os.path.join(node.root, "notify"))
        rc, lines = _service_status_lines("chainstore", common, node.root)
    assert rc == 1, lines
    assert any(l.startswith("STATUS=chainstore: transient start error (exit 1): ")
               and "LOCK" in l for l in lines), lines


def test_a_bind_address_not_up_is_transient(make_node):
    """An HTTP bind address that is not on this host yet (EADDRNOTAVAIL,
    as at boot before the network is up): the gateway exits 1 and is
    restarted, the node does not stop."""
    node = make_node(miners=0, start=False, extra_args=["--http-bind", "192.0.2.1"])
    node.start(wait=False)
    wait_for(lambda: not node.running()
             or node.log_text().count("child died child=gateway") >= 3, 60,
             "the gateway to fail three times")
    assert node.running(), "the node stopped\n" + node.log_tail()
    assert "child died child=gateway exit=1" in node.log_text(), node.log_tail()
    assert "transient start error" in node.log_text(), node.log_tail()
    node.expected_deaths = node.log_text().count("child died")


def test_a_restarted_miner_keeps_its_name(make_node):
    """The launcher gives its miners --miner-id 1..N: a miner restarted
    is the same miner.N on the bus (no stale miner.<random> series)."""
    node = make_node(miners=2)

    def miner_names():
        text = node.get("/metrics").text
        return sorted(set(l.split('service="', 1)[1].split('"', 1)[0]
                          for l in text.splitlines()
                          if l.startswith("chainbus_service_up{") and 'service="miner.' in l))

    wait_for(lambda: miner_names() == ["miner.1", "miner.2"], 30, "miners 1 and 2 heard")
    node.kill_service("miner")
    time.sleep(3)           # the restarted one's heartbeats
    assert miner_names() == ["miner.1", "miner.2"], miner_names()
    height = node.height()
    node.mine()
    assert node.height() > height


def test_the_launcher_survives_its_output_reader_going():
    """The launcher writes its children's lines to its standard output:
    a pipe whose reader is gone must not kill it (SIGPIPE ignored)."""
    root = tempfile.mkdtemp(prefix="cbp", dir="/tmp")
    port = free_port()
    read_end, write_end = os.pipe()
    proc = subprocess.Popen(
        [os.path.join(bin_dir(), "chainbus"), "node", "--http-port", str(port),
         "--data-dir", root + "/d", "--miners", "0", "--pow-bits", EASY_BITS],
        stdin=subprocess.DEVNULL, stdout=write_end, stderr=write_end, start_new_session=True)
    os.close(write_end)
    try:
        url = "http://127.0.0.1:%d/status" % port

        def ok():
            try:
                return requests.get(url, timeout=5).json()["ok"]
            except (requests.RequestException, ValueError):
                return None

        wait_for(ok, 60, "the node to be ready")
        os.close(read_end)
        read_end = None
        #  Lines keep coming (each /status answer is not logged, but a
        #  killed service is): make some.
        for pid in [int(p) for p in os.listdir("/proc") if p.isdigit()]:
            try:
                with open("/proc/%d/stat" % pid) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                with open("/proc/%d/comm" % pid) as f:
                    comm = f.read().strip()
            except OSError:
                continue
            if int(fields[1]) == proc.pid and comm == "chainbus-mempoo":
                os.kill(pid, signal.SIGKILL)
        time.sleep(2)
        assert proc.poll() is None, "the launcher died: %s" % proc.returncode
        wait_for(ok, 60, "the node to be ready again")
        os.killpg(proc.pid, signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if read_end is not None:
            os.close(read_end)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        shutil.rmtree(root, ignore_errors=True)


# ------------------------------------------------------------ GET /mine


def test_mine_without_a_miner_is_503_at_once(make_node):
    node = make_node(miners=0)
    started = time.monotonic()
    r = node.get("/mine")
    #  Right after a start the gateway gives its miners a heartbeat window.
    assert time.monotonic() - started < 8
    assert r.status_code == 503, r.text
    assert r.json()["message"].startswith("no miner is running"), r.text
    started = time.monotonic()
    r = node.get("/mine")
    assert r.status_code == 503 and "no miner is running" in r.text, r.text
    assert time.monotonic() - started < 1.5


def test_mine_when_the_only_miner_stops_is_503_soon(make_node):
    node = make_node(miners=1)
    assert node.get("/mine").status_code == 200
    node.signal_service("miner", signal.SIGSTOP)
    try:
        started = time.monotonic()
        r = node.get("/mine")
        if r.status_code == 200:
            # A block the miner had solved (or was sending) as the stop
            # reached it: once, under load. The next one cannot be mined.
            started = time.monotonic()
            r = node.get("/mine")
        assert r.status_code == 503 and "no miner is running" in r.text, r.text
        assert time.monotonic() - started < 8
    finally:
        node.signal_service("miner", signal.SIGCONT)
    wait_for(lambda: node.get("/mine").status_code == 200, 20, "mining again")


# ------------------------------------------------------------ start warning


def test_bound_beyond_loopback_without_a_token_warns(make_node):
    wide = make_node(miners=0, extra_args=["--http-bind", "0.0.0.0"])
    wait_for(lambda: "beyond loopback without an admin token" in wide.log_text(), 10,
             "the warning")
    local = make_node(miners=0)
    assert "beyond loopback" not in local.log_text()


# ------------------------------------------------------------ chainbus net


def _launcher_pids(data_dir):
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if len(argv) > 2 and argv[0].endswith(b"/chainbus") and argv[1] == b"node" \
                and data_dir.encode() in argv and proc_state(int(entry)) not in (None, "Z"):
            found.append(int(entry))
    return found


def test_net_restarts_a_node_that_dies():
    root = tempfile.mkdtemp(prefix="cbn", dir="/tmp")
    data_dir = os.path.join(root, "net")
    port = free_port()
    proc, lines, ready, thread = start_net(["--nodes", "1", "--base-port", str(port),
                                    "--data-dir", data_dir, "--pow-bits", EASY_BITS,
                                    "--miners", "0"])
    node_dir = os.path.join(data_dir, "node1")
    url = "http://127.0.0.1:%d/status" % port
    try:
        assert ready.wait(90), "net not ready:\n" + "".join(lines)
        old = _launcher_pids(node_dir)
        assert len(old) == 1, old
        os.kill(old[0], signal.SIGKILL)

        def back():
            pids = _launcher_pids(node_dir)
            if not pids or pids == old:
                return None
            try:
                return requests.get(url, timeout=5).json()["ok"]
            except (requests.RequestException, ValueError):
                return None

        wait_for(back, 60, "chainbus net to restart node 1")
        assert any("node died node=1" in l for l in lines), "".join(lines)
        assert proc.poll() is None
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(30) == 0, "".join(lines)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        for pid in _launcher_pids(node_dir):
            os.kill(pid, signal.SIGKILL)
        thread.join(5)
        if os.environ.get("CHAINBUS_KEEP_TMP") != "1":
            shutil.rmtree(root, ignore_errors=True)
