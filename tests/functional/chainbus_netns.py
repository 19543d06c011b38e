"""chainbus_netns - a node and its remote services in network namespaces.

Used by test_remote_services.py and bench/remote_miner.py. A Lab makes a
node namespace and one namespace per remote service, each joined to the
node's by a veth pair (10.77.<k>.1 on the node's side, 10.77.<k>.2 on the
service's); the node's service endpoints are bound on 10.77.0.1, an
address on the node namespace's loopback that every link routes to. No
address outside these namespaces and loopback is used. Lab.close() kills
every process left in its namespaces and deletes them, whatever happened
(use it as a context manager). Needs root (ip netns).
"""

import os
import re
import signal
import subprocess
import time

from chainbus_node import bin_dir

NODE_ADDRESS = "10.77.0.1"
PORTS = {"bus_in": 7101, "bus_out": 7102, "chainstore": 7103}
HTTP_PORT = 15000


def need_root():
    """None if namespaces can be made here, else why not."""
    if os.geteuid() != 0:
        return "needs root: runs a node and miners in network namespaces (ip netns)"
    if subprocess.run(["ip", "-V"], capture_output=True).returncode != 0:
        return "needs iproute2 (ip)"
    return None


def run(*args, check=True):
    r = subprocess.run(list(args), capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(args), r.stderr.strip()))
    return r


def endpoint(name):
    return "tcp://%s:%d" % (NODE_ADDRESS, PORTS[name])


class Lab:
    """Namespaces <tag>n (the node) and <tag>1.. (remote services)."""

    def __init__(self, links, root):
        self.tag = "cb%d" % os.getpid()
        self.root = root
        self.node_ns = self.tag + "n"
        self.links = {}             # index -> (namespace, node-side veth)
        self.procs = []
        self.made = []
        try:
            self._make(links)
        except Exception:
            self.close()
            raise

    def _make(self, links):
        run("ip", "netns", "add", self.node_ns)
        self.made.append(self.node_ns)
        run("ip", "-n", self.node_ns, "link", "set", "lo", "up")
        run("ip", "-n", self.node_ns, "addr", "add", NODE_ADDRESS + "/32", "dev", "lo")
        for k in range(1, links + 1):
            ns = "%s%d" % (self.tag, k)
            run("ip", "netns", "add", ns)
            self.made.append(ns)
            run("ip", "-n", ns, "link", "set", "lo", "up")
            near, far = "%sv%d" % (self.tag, k), "%sw%d" % (self.tag, k)
            run("ip", "link", "add", near, "netns", self.node_ns, "type", "veth",
                "peer", "name", far, "netns", ns)
            run("ip", "-n", self.node_ns, "addr", "add", "10.77.%d.1/24" % k, "dev", near)
            run("ip", "-n", ns, "addr", "add", "10.77.%d.2/24" % k, "dev", far)
            run("ip", "-n", self.node_ns, "link", "set", near, "up")
            run("ip", "-n", ns, "link", "set", far, "up")
            run("ip", "-n", ns, "route", "add", NODE_ADDRESS + "/32", "via", "10.77.%d.1" % k)
            self.links[k] = (ns, near)

    def link(self, k, up):
        """Take link k down or up on the node's side."""
        run("ip", "-n", self.node_ns, "link", "set", self.links[k][1], "up" if up else "down")

    def spawn(self, ns, args, log_path, stdout=None):
        log = open(log_path, "ab")
        proc = subprocess.Popen(["ip", "netns", "exec", ns] + list(args),
                                stdin=subprocess.DEVNULL,
                                stdout=stdout if stdout else log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.procs.append(proc)
        return proc

    def http(self, path, timeout=60):
        """(status, body) of a GET in the node's namespace (curl)."""
        r = run("ip", "netns", "exec", self.node_ns, "curl", "-s", "-m", str(timeout),
                "-w", "\n%{http_code}", "http://127.0.0.1:%d%s" % (HTTP_PORT, path),
                check=False)
        body, _, code = r.stdout.rpartition("\n")
        return int(code or 0), body

    def service_key(self, *args):
        """`chainbus service-key ...` on this machine (no namespace)."""
        r = run(os.path.join(bin_dir(), "chainbus"), "service-key", *args)
        return r.stdout.strip()

    def close(self):
        for proc in self.procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except OSError:
                    pass
        deadline = time.monotonic() + 20
        for proc in self.procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except OSError:
                    pass
                proc.wait(5)
        #  Anything still inside a namespace of ours (a grandchild) goes too.
        for ns in self.made:
            r = run("ip", "netns", "pids", ns, check=False)
            for pid in r.stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except OSError:
                    pass
        for ns in reversed(self.made):
            run("ip", "netns", "del", ns, check=False)
        self.made = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def remote_config(path, data_dir, cert, server_key, miner_id):
    """A remote miner's config file: deploy/remote-miner.cfg with this
    lab's values, so that the example is the one tested."""
    from chainbus_node import REPO
    with open(os.path.join(REPO, "deploy", "remote-miner.cfg")) as f:
        text = f.read()
    values = {"data_dir": data_dir, "id": str(miner_id), "bus_in": endpoint("bus_in"),
              "bus_out": endpoint("bus_out"), "chainstore": endpoint("chainstore"),
              "client_cert": cert, "server_key": server_key}
    for key, value in values.items():
        text, n = re.subn(r'(?m)^(    %s = )".*"$' % key, lambda m: '%s"%s"' % (m.group(1), value),
                          text)
        assert n == 1, key
    with open(path, "w") as f:
        f.write(text)


def node_args(data_dir, pow_bits, miners=0, more=()):
    return [os.path.join(bin_dir(), "chainbus"), "node", "--data-dir", data_dir,
            "--http-port", str(HTTP_PORT), "--miners", str(miners), "--pow-bits", pow_bits,
            "--endpoint-bus-in", endpoint("bus_in"), "--endpoint-bus-out", endpoint("bus_out"),
            "--endpoint-chainstore", endpoint("chainstore")] + list(more)


def count(path, pattern):
    try:
        with open(path, errors="replace") as f:
            return len(re.findall(pattern, f.read()))
    except OSError:
        return 0
