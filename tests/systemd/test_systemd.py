"""The systemd unit set, booted in a real systemd: a Debian 12 rootfs made
with debootstrap (cached as a tarball under /var/cache/chainbus-test/),
booted with `systemd-nspawn --boot`, `deploy/install.sh` run inside as an
operator would, then `systemctl enable --now chainbus.target`.

Shown here, each by what an operator sees (systemctl, journalctl, HTTP):
every unit active and /status all up; each unit's `systemd-analyze
security` exposure at most 2.0; a signed seed transaction and a mine with
the admin token; miner@2 and @3 started and stopped; kill -9 of each
service and SIGSTOP of one (the watchdog) recovered, with every
acknowledged transaction still there; a start error (an unreadable admin
token) in `journalctl -p err`, exit 2 and no retry; an enabled miner@2 and
everything else back after a reboot of the container; `systemctl stop
chainbus.target` returning only once every service has stopped.

It runs once, from scripts/test.sh (not under CTest: it builds its own
Release inside the container). It takes a few minutes, most of it the
build; the first run also makes the rootfs (about 2 minutes). It skips,
saying why, where it cannot run: not root, a tool missing, a rootfs that
cannot be made (no Debian mirror), an nspawn that cannot start.
CHAINBUS_SKIP_SYSTEMD=1 skips it; CHAINBUS_KEEP_TMP=1 keeps the rootfs.

On these machines PID 1 is not systemd: nspawn runs with --register=no
--keep-unit, in cgroups of its own (../shared notes, docs/operations.md
"As systemd services"). The host network is shared: the node's ports are
chosen free on the host (free_port), through /etc/chainbus/chainbus.cfg
written before install.sh (which keeps an existing one).
"""

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import pytest
import requests

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "functional"))
from chainbus_node import HEX64, free_port, wait_for as node_wait_for  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CACHE = "/var/cache/chainbus-test"
SUITE = "bookworm"
#  What the rootfs holds besides debootstrap's minbase: an init, and what
#  deploy/install.sh would install (build and runtime), so that install.sh
#  finds it present and the tarball saves the downloads.
BASE_PACKAGES = ["systemd", "systemd-sysv", "dbus"]
SERVICES = ["bus", "chainstore", "mempool", "peersync", "gateway"]
UNITS = ["chainbus-%s.service" % s for s in SERVICES] + ["chainbus-miner@1.service"]
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
EXPOSURE_MAX = 2.0
WATCHDOG_S = 10          # WatchdogSec= of the units


def _need_tools():
    if os.environ.get("CHAINBUS_SKIP_SYSTEMD") == "1":
        return "CHAINBUS_SKIP_SYSTEMD=1"
    if os.geteuid() != 0:
        return "needs root (systemd-nspawn, debootstrap, cgroups)"
    for tool in ("systemd-nspawn", "debootstrap", "nsenter", "zstd", "tar", "git"):
        if not shutil.which(tool):
            return ("%s is missing (scripts/install-deps.sh test installs debootstrap, "
                    "systemd-container and zstd)" % tool)
    if not os.path.isdir("/sys/fs/cgroup"):
        return "no /sys/fs/cgroup"
    return None


def _mirror():
    """The Debian mirror this machine's apt uses (debootstrap's source)."""
    for path in ["/etc/apt/sources.list.d/debian.sources", "/etc/apt/sources.list"]:
        try:
            text = open(path).read()
        except OSError:
            continue
        m = re.search(r"^URIs:\s*(\S+)", text, re.M) or \
            re.search(r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+%s\s" % SUITE, text, re.M)
        if m:
            return m.group(1)
    return "http://deb.debian.org/debian"


def _packages():
    out = subprocess.run([os.path.join(REPO, "scripts", "install-deps.sh"), "--list",
                          "build", "runtime"], check=True, capture_output=True, text=True)
    return BASE_PACKAGES + out.stdout.split()


def _rootfs_tarball(log):
    """The cached rootfs tarball, made by debootstrap when missing. Its
    name carries a hash of the package list: a changed list makes anew."""
    packages = _packages()
    key = hashlib.sha256((SUITE + " minbase " + " ".join(sorted(packages))).encode())
    tarball = os.path.join(CACHE, "debian12-%s.tar.zst" % key.hexdigest()[:12])
    if os.path.exists(tarball):
        return tarball
    os.makedirs(CACHE, exist_ok=True)
    work = tempfile.mkdtemp(prefix="rootfs-", dir=CACHE)
    try:
        root = os.path.join(work, "root")
        with open(log, "a") as out:
            done = subprocess.run(["nice", "debootstrap", "--variant=minbase",
                                   "--include=" + ",".join(packages), SUITE, root, _mirror()],
                                  stdout=out, stderr=subprocess.STDOUT, timeout=1200)
        if done.returncode != 0:
            pytest.skip("cannot make the Debian 12 rootfs with debootstrap (exit %d; no "
                        "Debian mirror?): %s" % (done.returncode, _tail(log, 5)))
        partial = os.path.join(work, "rootfs.tar.zst")
        subprocess.run(["tar", "-C", root, "--numeric-owner", "--xattrs", "-I", "zstd -T0 -3",
                        "-cf", partial, "."], check=True, timeout=600)
        os.rename(partial, tarball)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return tarball


def _tail(path, lines=40):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


def _copy_source(dest):
    """The checkout's files (tracked and new, as git lists them: no build
    folders) into dest, as an operator's clone would be."""
    files = subprocess.run(["git", "-C", REPO, "ls-files", "-z", "-co", "--exclude-standard"],
                           check=True, capture_output=True).stdout
    os.makedirs(dest)
    pack = subprocess.Popen(["tar", "-C", REPO, "--null", "--ignore-failed-read", "-T", "-",
                             "-cf", "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    unpack = subprocess.Popen(["tar", "-C", dest, "-xf", "-"], stdin=pack.stdout)
    pack.stdout.close()
    pack.communicate(files)
    assert unpack.wait() == 0 and pack.returncode == 0, "cannot copy the checkout"


class Container:
    """A booted systemd-nspawn container over a rootfs folder."""

    def __init__(self, root, name, log):
        self.root, self.name, self.log = root, name, log
        self.proc = None
        self.leader = None
        self.cgroups = []

    # ------------------------------------------------------------ cgroups

    def _make_cgroups(self):
        """nspawn's own cgroup in each hierarchy systemd uses (the host's
        PID 1 is not systemd: nothing else gives it one)."""
        if self.cgroups:
            return
        for hierarchy in ("unified", "systemd"):
            base = os.path.join("/sys/fs/cgroup", hierarchy)
            if os.path.isfile(os.path.join(base, "cgroup.procs")):
                path = os.path.join(base, "chainbus-test-%s" % self.name)
                os.makedirs(path, exist_ok=True)
                self.cgroups.append(path)

    def _enter_cgroups(self):
        for path in self.cgroups:
            with open(os.path.join(path, "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))

    def remove_cgroups(self):
        for path in self.cgroups:
            for folder, _, _ in sorted(os.walk(path), key=lambda w: -len(w[0])):
                try:
                    os.rmdir(folder)
                except OSError:
                    pass
        self.cgroups = []

    # --------------------------------------------------------------- boot

    def boot(self, timeout=120):
        host_init = open("/proc/1/comm").read().strip()
        if host_init != "systemd":
            self._make_cgroups()
        out = open(self.log, "a")
        self.proc = subprocess.Popen(
            ["systemd-nspawn", "-D", self.root, "--boot", "--register=no", "--keep-unit",
             "--machine=" + self.name, "--console=passive"],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            preexec_fn=self._enter_cgroups, env={"PATH": PATH})
        out.close()
        deadline = time.monotonic() + timeout
        while self.leader is None:
            if self.proc.poll() is not None:
                pytest.skip("systemd-nspawn cannot run here (exit %d): %s"
                            % (self.proc.returncode, _tail(self.log, 8)))
            assert time.monotonic() < deadline, "no container init\n" + _tail(self.log)
            self.leader = self._find_leader()
            time.sleep(0.1)
        while True:
            done = self.run("systemctl", "is-system-running", "--wait", check=False,
                            timeout=timeout)
            state = done.stdout.strip()
            if state in ("running", "degraded"):
                return
            assert state in ("", "offline", "initializing", "starting") \
                and time.monotonic() < deadline, (state, done.stderr, self.failed_units())
            time.sleep(0.2)

    def _find_leader(self):
        """The container's PID 1: nspawn's descendant whose PID in its own
        namespace is 1."""
        todo = [self.proc.pid]
        while todo:
            pid = todo.pop()
            try:
                status = open("/proc/%d/status" % pid).read()
                m = re.search(r"^NSpid:\s+(.*)$", status, re.M)
                if m and pid != self.proc.pid and m.group(1).split()[-1] == "1":
                    #  Once it runs systemd (before, it is nspawn's child
                    #  still setting up the container's mounts).
                    if os.path.basename(os.readlink("/proc/%d/exe" % pid)) == "systemd":
                        return pid
                    return None
                for task in os.listdir("/proc/%d/task" % pid):
                    todo += [int(c) for c in
                             open("/proc/%d/task/%s/children" % (pid, task)).read().split()]
            except (OSError, ValueError):
                continue
        return None

    def wait_exit(self, timeout):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def reboot(self, timeout=120):
        self.run("systemctl", "reboot", check=False)
        rc = self.wait_exit(timeout)
        assert rc is not None, "the container did not reboot\n" + _tail(self.log)
        self.leader = None
        self._clean_propagate()
        self.boot()

    def shutdown(self):
        if self.proc and self.proc.poll() is None:
            if self.leader:
                self.run("systemctl", "poweroff", check=False, timeout=30)
            if self.wait_exit(60) is None:
                self.proc.send_signal(signal.SIGTERM)
                if self.wait_exit(30) is None:
                    if self.leader:
                        os.kill(self.leader, signal.SIGKILL)
                    self.proc.kill()
                    self.proc.wait(30)
        self._clean_propagate()
        self.remove_cgroups()

    def _clean_propagate(self):
        try:
            os.rmdir("/run/systemd/nspawn/propagate/" + self.name)
        except OSError:
            pass

    # ---------------------------------------------------------- commands

    def run(self, *command, check=True, timeout=120, input=None):
        """A command inside, in a clean environment, as root."""
        done = subprocess.run(["nsenter", "-t", str(self.leader), "-a", "env", "-i",
                               "PATH=" + PATH, "HOME=/root", "LANG=C.UTF-8",
                               "SYSTEMD_PAGER=", "SYSTEMD_COLORS=0"] + list(command),
                              capture_output=True, text=True, timeout=timeout, input=input)
        if check:
            assert done.returncode == 0, "%s: exit %d\n%s\n%s" % (
                " ".join(command), done.returncode, done.stdout[-3000:], done.stderr[-3000:])
        return done

    def show(self, unit, *props):
        out = self.run("systemctl", "show", unit, "-p", ",".join(props)).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def failed_units(self):
        return self.run("systemctl", "--failed", "--no-legend", check=False).stdout

    def journal(self, *args):
        return self.run("journalctl", "--no-pager", *args, check=False).stdout

    def chainbus_processes(self):
        """Names of the chainbus processes running in the container."""
        out = self.run("sh", "-c", "cat /proc/[0-9]*/comm 2>/dev/null", check=False).stdout
        return sorted(n for n in out.split() if n.startswith("chainbus"))


def wait_for(predicate, timeout, what, interval=0.2):
    """chainbus_node's wait_for, polling less often: each poll here is a
    command run in the container."""
    return node_wait_for(predicate, timeout, what, interval)


class Site:
    """The node in the container, seen from outside: HTTP and systemctl."""

    def __init__(self, box, port, token):
        self.box, self.port, self.token = box, port, token
        self.url = "http://127.0.0.1:%d" % port
        self.acknowledged = []       # txids answered 201

    def get(self, path, timeout=10, **kw):
        return requests.get(self.url + path, timeout=timeout, **kw)

    def status(self):
        try:
            r = self.get("/status", timeout=5)
            return r.json() if r.status_code == 200 else None
        except (requests.RequestException, ValueError):
            return None

    def all_up(self, miners=("miner.1",)):
        """/status with every service up and these miners heard."""
        s = self.status()
        if not s or not s.get("ok"):
            return None
        services = s.get("services", {})
        if not all(services.get(role, {}).get("up") for role in SERVICES):
            return None
        if not set(miners) <= set(services.get("miners") or []):
            return None
        return s

    def post_tx(self, text):
        r = requests.post(self.url + "/transactions/new", data=text.encode(), timeout=10,
                          headers={"Content-Type": "application/json"})
        if r.status_code == 201:
            self.acknowledged.append(r.json()["txid"])
        return r

    def units_active(self, units=UNITS):
        out = self.box.run("systemctl", "is-active", *units, check=False).stdout.split()
        return out == ["active"] * len(units)

    def missing(self):
        """Acknowledged transactions the node no longer has."""
        lost = []
        for txid in self.acknowledged:
            r = self.get("/transactions/" + txid, timeout=30)
            if r.status_code != 200:
                lost.append((txid, r.status_code))
        return lost


@pytest.fixture(scope="module")
def site():
    reason = _need_tools()
    if reason:
        pytest.skip(reason)
    folder = tempfile.mkdtemp(prefix="chainbus-systemd-", dir="/var/tmp")
    log = os.path.join(folder, "container.log")
    print("systemd test: folder %s" % folder)
    tarball = _rootfs_tarball(log)
    root = os.path.join(folder, "root")
    os.makedirs(root)
    subprocess.run(["tar", "-C", root, "--numeric-owner", "--xattrs", "-I", "zstd -T0",
                    "-xf", tarball], check=True, timeout=600)
    _copy_source(os.path.join(root, "root", "chainbus"))
    #  The operator's config, written before install.sh (which keeps it):
    #  ports free on the host, whose network the container shares.
    port = free_port()
    config = open(os.path.join(REPO, "deploy", "chainbus.cfg")).read()
    config, n = re.subn(r'(\n\s*http_port\s*=\s*)"5000"', r'\1"%d"' % port, config)
    assert n == 1, "deploy/chainbus.cfg has no http_port = \"5000\""
    os.makedirs(os.path.join(root, "etc", "chainbus"))
    with open(os.path.join(root, "etc", "chainbus", "chainbus.cfg"), "w") as f:
        f.write(config)
    box = Container(root, "chainbus-test-%d" % os.getpid(), log)
    try:
        box.boot()
        started = time.monotonic()
        install = box.run("nice", "-n", "5", "/root/chainbus/deploy/install.sh",
                          check=False, timeout=1800)
        with open(os.path.join(folder, "install.log"), "w") as f:
            f.write(install.stdout + install.stderr)
        assert install.returncode == 0, "install.sh failed:\n" + install.stderr[-3000:]
        print("systemd test: install.sh took %.0f s" % (time.monotonic() - started))
        token = open(os.path.join(root, "etc", "chainbus", "admin.token")).read().strip()
        box.run("systemctl", "enable", "--now", "chainbus.target")
        yield Site(box, port, token)
    finally:
        try:
            box.shutdown()
        finally:
            if os.environ.get("CHAINBUS_KEEP_TMP") == "1":
                print("systemd test: kept %s" % folder)
            else:
                shutil.rmtree(folder, ignore_errors=True)


def _diagnose(site):
    return "%s\n%s" % (site.box.failed_units(),
                       site.box.journal("-u", "chainbus-*", "-n", "60", "-o", "short-monotonic"))


def test_every_unit_active_and_status_all_up(site):
    try:
        wait_for(site.all_up, 60, "/status with every service up")
        wait_for(site.units_active, 30, "every unit active")
    except AssertionError as e:
        raise AssertionError("%s\n%s" % (e, _diagnose(site)))
    for unit in UNITS:
        props = site.box.show(unit, "Type", "ActiveState", "SubState", "WatchdogUSec",
                              "NotifyAccess")
        assert props["Type"] == "notify" and props["ActiveState"] == "active", (unit, props)
        assert props["WatchdogUSec"] == "%ds" % WATCHDOG_S, (unit, props)


def test_each_unit_exposure_at_most_2(site):
    scores = {}
    for unit in UNITS:
        out = site.box.run("systemd-analyze", "security", "--no-pager", unit, check=False).stdout
        m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", out)
        assert m, "no exposure level for %s:\n%s" % (unit, out[-2000:])
        scores[unit] = float(m.group(1))
    print("systemd test: exposure", scores)
    assert all(score <= EXPOSURE_MAX for score in scores.values()), scores


def _sign(site, count, tag):
    """count signed seed-shaped transactions, signed inside the container
    by the installed wallet (`chainbus tx sign`), one JSON text each."""
    script = """set -e
cd /root
[ -f alice.key ] || chainbus key new alice.key > /dev/null
[ -f bob.key ] || chainbus key new bob.key > /dev/null
bob=$(chainbus key show bob.key)
for n in $(seq %d); do
  chainbus tx sign --key alice.key --to "$bob" --users user1 --data "[\\"%s\\", $n]"
done
""" % (count, tag)
    out = site.box.run("bash", "-c", script, timeout=300).stdout.splitlines()
    assert len(out) == count, out[:3]
    return out


def test_signed_seed_tx_and_mine_with_the_token(site):
    text = _sign(site, 1, "seed")[0]
    tx = json.loads(text)
    assert tx["users"] == "user1" and tx.get("signature"), tx
    r = site.post_tx(text)
    assert r.status_code == 201, r.text
    txid = r.json()["txid"]
    assert HEX64.match(txid)
    #  The unsigned seed is refused (deploy/chainbus.cfg: require_signatures).
    unsigned = dict(tx)
    del unsigned["signature"]
    r = requests.post(site.url + "/transactions/new", json=unsigned, timeout=10)
    assert r.status_code == 400 and r.json()["code"] == "bad_signature", r.text
    #  /mine asks for the admin token that install.sh made.
    assert site.get("/mine").status_code == 401
    deadline = time.monotonic() + 120
    while True:
        r = site.get("/mine", timeout=90, headers={"Authorization": "Bearer " + site.token})
        assert r.status_code == 200, r.text
        confirmed = site.get("/transactions/" + txid).json()
        if confirmed.get("status") == "confirmed":
            break
        assert time.monotonic() < deadline, confirmed
    assert r.json()["message"] == "New Block Forged"


def test_miners_2_and_3_started_and_stopped(site):
    box = site.box
    box.run("systemctl", "start", "chainbus-miner@2", "chainbus-miner@3")
    wait_for(lambda: site.all_up(("miner.1", "miner.2", "miner.3")), 30, "miners 2 and 3 heard")
    box.run("systemctl", "stop", "chainbus-miner@2", "chainbus-miner@3")
    out = box.run("systemctl", "is-active", "chainbus-miner@2", "chainbus-miner@3",
                  check=False).stdout.split()
    assert out == ["inactive", "inactive"], out
    wait_for(lambda: (lambda s: s and set(s["services"].get("miners") or []) == {"miner.1"})(
        site.status()), 30, "only miner 1 left in /status")


class Stream:
    """Signed transactions posted one after another in a thread; the 201s
    are the acknowledged ones (Site.acknowledged)."""

    def __init__(self, site, texts):
        self.site, self.texts = site, texts
        self.stop = threading.Event()
        self.sent = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        for text in self.texts:
            if self.stop.is_set():
                return
            try:
                self.site.post_tx(text)
            except requests.RequestException:
                pass
            self.sent += 1
            time.sleep(0.05)

    def close(self):
        self.stop.set()
        self.thread.join(30)


def _main_pid(box, unit):
    return int(box.show(unit, "MainPID")["MainPID"])


def _restarted(box, unit, old_pid):
    props = box.show(unit, "MainPID", "ActiveState")
    pid = int(props["MainPID"])
    return props["ActiveState"] == "active" and pid not in (0, old_pid)


def test_kill_9_of_each_and_sigstop_recovered_nothing_lost(site):
    box = site.box
    texts = _sign(site, 400, "stream")
    stream = Stream(site, texts[:-5])
    try:
        time.sleep(1)
        for unit in UNITS:
            pid = _main_pid(box, unit)
            assert pid > 0, unit
            box.run("systemctl", "kill", "--kill-whom=main", "--signal=SIGKILL", unit)
            wait_for(lambda: _restarted(box, unit, pid), 30, unit + " restarted after kill -9")
            wait_for(site.all_up, 60, "/status all up after kill -9 of " + unit)
        #  A hung loop: SIGSTOP the mempool. Its keep-alives stop, so the
        #  watchdog kills it (SIGABRT) and systemd starts it again.
        unit = "chainbus-mempool.service"
        pid = _main_pid(box, unit)
        stopped = time.monotonic()
        box.run("systemctl", "kill", "--kill-whom=main", "--signal=SIGSTOP", unit)
        wait_for(lambda: _restarted(box, unit, pid), WATCHDOG_S + 30,
                 "the watchdog restarting the SIGSTOPped mempool")
        took = time.monotonic() - stopped
        #  The last keep-alive came at most a third of WatchdogSec before.
        assert took >= WATCHDOG_S * 2 / 3 - 1, took
        print("systemd test: SIGSTOPped mempool restarted after %.1f s" % took)
        assert "Watchdog timeout" in box.journal("-u", unit, "-o", "cat")
        wait_for(site.all_up, 60, "/status all up after the watchdog restart")
        time.sleep(1)
    finally:
        stream.close()
    #  Posts while a service is down wait for the gateway's timeout (5 s)
    #  or fail at once: how many are acknowledged depends on the machine.
    assert len(site.acknowledged) >= 30, (len(site.acknowledged), stream.sent)
    #  Recovered: the node takes transactions again, every one of them.
    for text in texts[-5:]:
        r = site.post_tx(text)
        assert r.status_code == 201, r.text
    assert site.missing() == []
    for unit in UNITS:
        assert int(box.show(unit, "NRestarts")["NRestarts"]) >= 1, unit


def test_start_error_in_journal_priority_err_exit_2_no_retry(site):
    box = site.box
    unit = "chainbus-gateway.service"
    since = box.run("date", "+%Y-%m-%d %H:%M:%S").stdout.strip()
    time.sleep(1)
    box.run("chmod", "000", "/etc/chainbus/admin.token")
    try:
        done = box.run("systemctl", "restart", unit, check=False)
        assert done.returncode != 0, "the gateway started with an unreadable token"
        props = box.show(unit, "ActiveState", "ExecMainStatus", "NRestarts", "Result")
        assert props["ActiveState"] == "failed" and props["ExecMainStatus"] == "2", props
        #  The status line says why, not just that it failed.
        status = box.show(unit, "StatusText")["StatusText"]
        assert "permanent start error" in status and "admin.token" in status, status
        time.sleep(3)     # no restart comes (RestartPreventExitStatus=2)
        again = box.show(unit, "ActiveState", "NRestarts")
        assert again == {"ActiveState": "failed", "NRestarts": props["NRestarts"]}, again
        errors = box.journal("-p", "err", "--since", since, "-o", "cat")
        assert "admin.token" in errors, errors
        #  The same at info priority and below does not leak in: the lines
        #  kept at err are the error ones.
        assert "starting version=" not in errors, errors
    finally:
        box.run("chmod", "600", "/etc/chainbus/admin.token")
    box.run("systemctl", "reset-failed", unit)
    box.run("systemctl", "start", unit)
    wait_for(site.all_up, 60, "/status all up with the gateway back")


def _fresh_start(site):
    """Every unit started anew (a test before may have left one failed
    or stopped), and /status all up."""
    site.box.run("systemctl", "reset-failed")
    site.box.run("systemctl", "restart", "chainbus.target")
    try:
        wait_for(site.units_active, 60, "every unit active")
        wait_for(site.all_up, 60, "/status all up")
    except AssertionError as e:
        raise AssertionError("%s\n%s" % (e, _diagnose(site)))


def test_reboot_brings_everything_back(site):
    box = site.box
    _fresh_start(site)
    box.run("systemctl", "enable", "--now", "chainbus-miner@2")
    wait_for(lambda: site.all_up(("miner.1", "miner.2")), 30, "miner 2 heard")
    height = site.status()["height"]
    box.reboot()
    try:
        wait_for(lambda: site.all_up(("miner.1", "miner.2")), 90,
                 "/status all up with miners 1 and 2 after the reboot")
        wait_for(lambda: site.units_active(UNITS + ["chainbus-miner@2.service"]), 30,
                 "every unit active after the reboot")
    except AssertionError as e:
        raise AssertionError("%s\n%s" % (e, _diagnose(site)))
    assert site.status()["height"] >= height
    assert site.missing() == []
    box.run("systemctl", "disable", "--now", "chainbus-miner@2")


def test_stop_target_returns_once_every_service_stopped(site):
    box = site.box
    _fresh_start(site)
    started = time.monotonic()
    box.run("systemctl", "stop", "chainbus.target", timeout=120)
    took = time.monotonic() - started
    left = box.chainbus_processes()
    states = box.run("systemctl", "is-active", *UNITS, check=False).stdout.split()
    print("systemd test: systemctl stop chainbus.target took %.2f s" % took)
    assert left == [], "still running when stop returned (%.2f s): %s" % (took, left)
    assert states == ["inactive"] * len(UNITS), states
    #  And a clean stop: each service logged its stop with exit 0 (its
    #  last line, under its syslog identifier).
    for role in SERVICES:
        last = box.journal("-t", "chainbus-" + role, "-o", "cat", "-n", "1").strip()
        assert last == "stopped exit=0", (role, last)
