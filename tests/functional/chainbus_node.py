"""chainbus_node - start, stop, restart and break whole chainbus nodes.

Used by the functional tests (through conftest.py) and by bench/. A Node is
one `chainbus node` launcher and its children (bus, chainstore, mempool,
miners, peersync, gateway): real processes, real sockets, a real LevelDB in
a fresh folder under /tmp, on a free loopback port. Every wait is bounded;
a node that does not come up, or does not stop, raises NodeError with the
tail of its log.

The binaries come from $CHAINBUS_BIN, default <repo>/build/bin, so that the
same tests run against the sanitizer build (CTest sets the variable).
"""

import glob
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import requests

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

#  Near-instant proof of work, for tests.
EASY_BITS = "0x2000ffff"

#  Generous: a sanitizer build on two loaded cores is slow to start.
READY_TIMEOUT = float(os.environ.get("CHAINBUS_READY_TIMEOUT", "60"))
HTTP_TIMEOUT = float(os.environ.get("CHAINBUS_HTTP_TIMEOUT", "60"))
STOP_TIMEOUT = 30.0

#  The seed's transaction, in the seed's field order.
SEED_TX = {
    "users": "user1",
    "data": [],
    "dh_parameters": "param",
    "server_public_key": "server_key",
    "receiver_public_key": "receiver_key",
    "sender_public_key": "sender_key",
}
TX_FIELDS = list(SEED_TX)

#  Lines that a sanitizer writes when it finds something.
SANITIZER_MARKS = (
    "ERROR: AddressSanitizer",
    "ERROR: LeakSanitizer",
    "runtime error:",
    "UndefinedBehaviorSanitizer",
)

HEX64 = re.compile(r"^[0-9a-f]{64}$")


class NodeError(Exception):
    pass


def bin_dir():
    return os.environ.get("CHAINBUS_BIN") or os.path.join(REPO, "build", "bin")


def port_free(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


#  A node listens on its HTTP port P, and peersync on P + 1000 (CurveZMQ)
#  and P + 2000 (directory) unless told otherwise.
NODE_PORT_OFFSETS = (0, 1000, 2000)


def free_port():
    """An HTTP port P such that P, P + 1000 and P + 2000 are free right
    now. Drawn at random below the kernel's ephemeral range (32768 up), so
    that no client connection's port collides with it and parallel tests
    rarely pick the same one."""
    for _ in range(200):
        port = random.randrange(10000, 30000)
        if all(port_free(port + o) for o in NODE_PORT_OFFSETS):
            return port
    raise NodeError("no free ports")


def tx_body(n=None, **fields):
    """The seed's transaction, made distinct by n, with fields overridden."""
    body = dict(SEED_TX)
    if n is not None:
        body["data"] = [n]
    body.update(fields)
    return body


def forged_txs(count, tag):
    """count distinct signed transactions, as peers relay them (msgpack),
    whose signatures are made up: each fails verification (bad_signature)."""
    import msgpack
    txs = []
    for n in range(count):
        tx = {"users": "flood", "data": [tag, n], "dh_parameters": "p",
              "server_public_key": "s", "receiver_public_key": "r",
              "sender_public_key": os.urandom(32).hex(),
              "timestamp": 1795248100000000 + n, "signature": os.urandom(64)}
        txs.append(msgpack.packb(tx, use_bin_type=True))
    return txs


def proc_children(pid):
    """Direct children of pid, from /proc (empty if pid is gone)."""
    kids = []
    try:
        tasks = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return kids
    for task in tasks:
        try:
            with open("/proc/%d/task/%s/children" % (pid, task)) as f:
                kids += [int(x) for x in f.read().split()]
        except OSError:
            pass
    return kids


def proc_name(pid):
    """Basename of argv[0] of pid, or None if it is gone."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            argv0 = f.read().split(b"\0")[0].decode(errors="replace")
    except OSError:
        return None
    return os.path.basename(argv0)


def proc_state(pid):
    """One-letter state of pid (R, S, T, Z...), or None if it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def proc_status_kb(pid, key):
    """A kB figure from /proc/<pid>/status (VmRSS, VmHWM), or None."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def wait_for(predicate, timeout, what, interval=0.05):
    """Poll predicate until it returns something true; return that."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise NodeError("timed out after %.0fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def damage_table(data_dir, marker):
    """Flip 40 bytes just past marker in the chain store's table file that
    holds it (the node stopped; write the marked bytes incompressible, so
    that they stand in the table as they are). Returns the file's path, or
    None when no table file holds marker."""
    hit = None
    for path in glob.glob(os.path.join(data_dir, "chain", "*.ldb")):
        data = bytearray(open(path, "rb").read())
        at = data.find(marker)
        if at > 0:
            for k in range(at + 100, at + 140):
                data[k] ^= 0xFF
            with open(path, "wb") as f:
                f.write(bytes(data))
            hit = path
    return hit


def start_net(args):
    """`chainbus net ARGS` in a session of its own, its output read by a
    thread: (proc, lines, ready, thread), ready set at its "network ready"
    line, thread ending with the output."""
    proc = subprocess.Popen(
        [os.path.join(bin_dir(), "chainbus"), "net"] + args,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True)
    lines, ready = [], threading.Event()

    def reader():
        for raw in proc.stdout:
            lines.append(raw.decode(errors="replace"))
            if lines[-1].startswith("network ready"):
                ready.set()

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    return proc, lines, ready, thread


class Node:
    """One whole node under test.

    miners: how many miners the launcher starts (0: none).
    pow_bits: difficulty; EASY_BITS by default, None for the node's default.
    extra_args: more flags for `chainbus node` (--max-body 1024 ...).
    """

    def __init__(self, miners=1, pow_bits=EASY_BITS, extra_args=(), port=None):
        #  Short paths: ipc socket names live in <data_dir>/run/.
        self.root = tempfile.mkdtemp(prefix="cb", dir="/tmp")
        self.data_dir = os.path.join(self.root, "d")
        self.log_path = os.path.join(self.root, "node.log")
        self.port = port or free_port()
        self.miners = miners
        self.pow_bits = pow_bits
        self.extra_args = list(extra_args)
        self.proc = None
        self.baseline = {}
        #  Services this test killed on purpose: the launcher logs each
        #  death, and close() fails on any death beyond these.
        self.expected_deaths = 0
        #  Log lines before this one are from a start abandoned because a
        #  port was taken: their deaths are not the test's.
        self._log_skip = 0
        self.http = requests.Session()

    # ----------------------------------------------------------------- life

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def command(self, *more):
        args = [os.path.join(bin_dir(), "chainbus"), "node",
                "--http-port", str(self.port),
                "--data-dir", self.data_dir,
                "--miners", str(self.miners)]
        if self.pow_bits:
            args += ["--pow-bits", self.pow_bits]
        return args + self.extra_args + list(more)

    def start(self, wait=True):
        """Start the launcher (in its own session, logging to node.log).
        If a port was taken meanwhile (another test, another program), try
        again on new ports."""
        for attempt in range(3):
            try:
                return self._start(wait)
            except NodeError:
                if attempt == 2 or not self.port_taken():
                    raise
                self.kill_all()
                with open(self.log_path, "ab") as log:
                    log.write(b"==== test: a port was taken, trying others\n")
                #  The failed binds are not the test's concern: forget them.
                self._log_skip = len(self.log_text().splitlines())
                self.port = free_port()

    def _start(self, wait):
        assert self.proc is None or self.proc.poll() is not None
        with open(self.log_path, "ab") as log:
            log.write(b"==== test: start %s\n" % " ".join(self.command()).encode())
            log.flush()
            self.proc = subprocess.Popen(
                self.command(), stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True)
        if wait:
            self.wait_ready()
        return self

    @property
    def pid(self):
        return self.proc.pid

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def required_roles(self, status):
        return ["bus", "chainstore", "mempool", "peersync", "gateway"]

    def is_ready(self, status):
        services = status.get("services", {})
        for role in self.required_roles(status):
            if not services.get(role, {}).get("up"):
                return False
        if self.miners > 0:
            return len(miners_up(status)) > 0
        return True

    def wait_ready(self, timeout=READY_TIMEOUT):
        """Poll GET /status until the services this node needs are up."""
        deadline = time.monotonic() + timeout
        last = None
        while True:
            if self.proc.poll() is not None:
                raise NodeError("node exited with %s before it was ready\n%s"
                                % (self.proc.returncode, self.log_tail()))
            try:
                r = requests.get(self.url + "/status", timeout=5)
                last = "%d %s" % (r.status_code, r.text[:500])
                if r.status_code == 200 and self.is_ready(r.json()):
                    self.baseline = self.services()
                    return r.json()
            except (requests.RequestException, ValueError) as e:
                last = repr(e)
            if self.port_taken():
                raise NodeError("a port of the node was taken\n" + self.log_tail())
            if time.monotonic() > deadline:
                raise NodeError("node not ready after %.0fs; last /status: %s\n%s"
                                % (timeout, last, self.log_tail()))
            time.sleep(0.1)

    def descendants(self):
        """Every process below the launcher (children and theirs)."""
        if not self.running():
            return []
        found, todo = [], [self.pid]
        while todo:
            kids = proc_children(todo.pop())
            found += kids
            todo += kids
        return found

    def stop(self, timeout=STOP_TIMEOUT):
        """SIGTERM the launcher and wait for it and all its children."""
        if not self.running():
            return None
        kids = self.descendants()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill_all()
            raise NodeError("node did not stop within %.0fs of SIGTERM\n%s"
                            % (timeout, self.log_tail()))
        left = [p for p in kids if proc_state(p) not in (None, "Z")]
        if left:
            for p in left:
                _kill(p, signal.SIGKILL)
            raise NodeError("launcher exited but left %s running" % left)
        return rc

    def kill_all(self):
        """kill -9 the launcher and every service at once (a power cut)."""
        if not self.running():
            return
        procs = [self.pid] + self.descendants()
        for p in procs:
            _kill(p, signal.SIGSTOP)
        for p in procs:
            _kill(p, signal.SIGKILL)
        self.proc.wait(STOP_TIMEOUT)
        wait_for(lambda: all(proc_state(p) in (None, "Z") for p in procs),
                 STOP_TIMEOUT, "killed processes to go")

    def restart(self):
        self.stop()
        return self.start()

    def close(self):
        """Stop (or kill) the node, then fail if a sanitizer spoke."""
        try:
            if self.running():
                self.stop()
        finally:
            if self.running():
                self.kill_all()
            self.http.close()
        self.assert_sanitizer_clean()
        self.assert_no_unexpected_deaths()
        if os.environ.get("CHAINBUS_KEEP_TMP") != "1":
            shutil.rmtree(self.root, ignore_errors=True)

    # ------------------------------------------------------------- services

    def services(self):
        """{pid: role} of the launcher's children, role without the prefix
        (chainbus-mempool -> mempool)."""
        roles = {}
        for p in proc_children(self.pid) if self.running() else []:
            name = proc_name(p)
            if name and name.startswith("chainbus-"):
                roles[p] = name[len("chainbus-"):]
        return roles

    def service_pids(self, role):
        return sorted(p for p, r in self.services().items() if r == role)

    def signal_service(self, role, sig):
        pids = self.service_pids(role)
        if not pids:
            raise NodeError("no chainbus-%s under launcher %d: %s"
                            % (role, self.pid, self.services()))
        os.kill(pids[0], sig)
        return pids[0]

    def kill_service(self, role, wait=True):
        """kill -9 one service; with wait, until the launcher restarted it
        and the node is ready again. Returns the new pid (or the old one)."""
        old = self.signal_service(role, signal.SIGKILL)
        self.expected_deaths += 1
        if not wait:
            return old
        new = wait_for(lambda: [p for p in self.service_pids(role)
                                if p != old and proc_state(p) not in (None, "Z")],
                       READY_TIMEOUT, "the launcher to restart chainbus-" + role)
        self.wait_ready()
        return new[0]

    def unexpected_restarts(self):
        """Services started at the last wait_ready that are not there now:
        a crash (the launcher restarts it with a new pid)."""
        now = self.services()
        return {p: r for p, r in self.baseline.items() if p not in now}

    def assert_no_crash(self):
        assert self.running(), "launcher died\n" + self.log_tail()
        gone = self.unexpected_restarts()
        assert not gone, "services died: %s\n%s" % (gone, self.log_tail())

    # ------------------------------------------------------------------ log

    def port_taken(self):
        """True if a service of the current start could not bind a port."""
        lines = self.log_text().splitlines()[self._log_skip:]
        return any(re.search(r"cannot bind|cannot listen|address already in use", l, re.I)
                   for l in lines)

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines=60):
        return "---- %s (tail)\n%s" % (
            self.log_path, "\n".join(self.log_text().splitlines()[-lines:]))

    def sanitizer_reports(self):
        text = self.log_text().splitlines()
        return [i for i, line in enumerate(text)
                if any(m in line for m in SANITIZER_MARKS)]

    def assert_sanitizer_clean(self):
        hits = self.sanitizer_reports()
        if hits:
            text = self.log_text().splitlines()
            first = hits[0]
            excerpt = "\n".join(text[max(0, first - 5):first + 40])
            raise NodeError("sanitizer report in %s:\n%s" % (self.log_path, excerpt))

    def assert_no_unexpected_deaths(self):
        """Fail if a service died that the test did not kill, or one did
        not stop on SIGTERM (the launcher logs both)."""
        lines = self.log_text().splitlines()[self._log_skip:]
        died = [l for l in lines if "child died" in l]
        stuck = [l for l in lines if "did not stop" in l]
        if len(died) > self.expected_deaths or stuck:
            raise NodeError("%d service deaths (%d expected), %d stuck at stop:\n%s"
                            % (len(died), self.expected_deaths, len(stuck),
                               "\n".join(died + stuck)))

    # ----------------------------------------------------------------- HTTP

    def request(self, method, path, timeout=HTTP_TIMEOUT, **kw):
        return self.http.request(method, self.url + path, timeout=timeout, **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        """POST a JSON value (or raw bytes/str with data=...)."""
        if body is not None:
            kw["data"] = json.dumps(body).encode()
            kw.setdefault("headers", {})["Content-Type"] = "application/json"
        return self.request("POST", path, **kw)

    def status(self):
        r = self.get("/status")
        assert r.status_code == 200, r.text
        return r.json()

    def height(self):
        return self.status()["height"]

    def mempool_size(self):
        return mempool_size(self.status())

    def submit(self, body):
        """POST /transactions/new; asserts 201 and returns (txid, N)."""
        r = self.post("/transactions/new", body)
        assert r.status_code == 201, "%d %s" % (r.status_code, r.text)
        j = r.json()
        m = re.fullmatch(r"Transaction will be added to Block (\d+)", j["message"])
        assert m, j
        return j["txid"], int(m.group(1))

    def mine(self):
        r = self.get("/mine")
        assert r.status_code == 200, "%d %s" % (r.status_code, r.text)
        return r.json()

    def chain(self):
        r = self.get("/chain")
        assert r.status_code == 200, "%d %s" % (r.status_code, r.text[:500])
        return r.json()

    def tx(self, txid):
        return self.get("/transactions/" + txid)


def mempool_size(status):
    """The mempool size as /status reports it (None if the mempool is down)."""
    m = status.get("mempool")
    return m["size"] if m else None


def miners_up(status):
    """Names of the miners that /status reports alive ("miner.1"...)."""
    return status.get("services", {}).get("miners") or []


def _kill(pid, sig):
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


class Tap:
    """`chainbus tap` as a subprocess; lines are read by a thread."""

    def __init__(self, node, prefix=None):
        args = [os.path.join(bin_dir(), "chainbus"), "tap",
                "--data-dir", node.data_dir]
        if prefix is not None:
            args.append(prefix)
        self.errors = open(os.path.join(node.root, "tap.err"), "wb")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=self.errors)
        self.lines = []
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for raw in self.proc.stdout:
            with self.cond:
                self.lines.append(raw.decode(errors="replace"))
                self.cond.notify_all()

    def events(self):
        """Every line so far, parsed (raises on a line that is not JSON)."""
        with self.cond:
            return [json.loads(l) for l in self.lines]

    def wait_event(self, match, timeout):
        """The first event for which match(event) is true, or None."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self.cond:
            while True:
                for line in self.lines[seen:]:
                    event = json.loads(line)
                    if match(event):
                        return event
                seen = len(self.lines)
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None and seen == len(self.lines):
                    if left > 0:
                        #  The tap exited: one last look, then give up.
                        self.cond.wait(0.2)
                        if len(self.lines) > seen:
                            continue
                    return None
                self.cond.wait(min(left, 0.5))

    def close(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.thread.join(5)
        self.errors.close()
        return self.proc.returncode
