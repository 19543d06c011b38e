"""GET /metrics as a monitoring system sees it (docs/operations.md, Metrics).

- `promtool check metrics` (Debian's prometheus package) passes on a live
  node's page, which lists HELP and TYPE once per family, every service's
  up, resident memory, the miner's hash rate and the gateway's own HTTP
  requests and latency;
- a service whose heartbeats stop (SIGSTOP) shows up 0 and none of its
  metrics, and is back once it runs again;
- a service killed (kill -9) and restarted by the launcher has its
  chainbus_service_restarts_total go from 0 to 1;
- a real Prometheus, started here on loopback with its own config and
  data folder, scrapes the node, and a query through its HTTP API returns
  the chain height after blocks are mined;
- every query of the example Grafana dashboard (deploy/grafana/
  chainbus.json) names only metrics the live page has, and runs in that
  Prometheus without error;
- docs/operations.md lists every metric of the table
  (`cbus_selftest --metrics`).
"""

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

import pytest
import requests

from chainbus_node import REPO, Node, bin_dir, free_port, tx_body, wait_for

DASHBOARD = os.path.join(REPO, "deploy", "grafana", "chainbus.json")
OPERATIONS = os.path.join(REPO, "docs", "operations.md")
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$")
CORE = ("bus", "chainstore", "mempool", "peersync", "gateway")
RESTARTS = "chainbus_service_restarts_total"
#  The services whose restarts the gateway counts.
RESTARTED = ("bus", "chainstore", "mempool", "peersync")


def table():
    """{name: (type, labels, help)} from the built table."""
    out = subprocess.run([os.path.join(bin_dir(), "cbus_selftest"), "--metrics"],
                         check=True, capture_output=True, text=True).stdout
    rows = {}
    for line in out.splitlines():
        name, kind, labels, help_text = line.split(" ", 3)
        rows[name] = (kind, [] if labels == "-" else labels.split(","), help_text)
    return rows


def parse(text):
    """(families {name: type}, helps {name: count}, samples [(name, labels, value)])."""
    families, helps, samples = {}, {}, []
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert name not in families, "TYPE twice for " + name
            families[name] = kind
        elif line.startswith("# HELP "):
            name = line.split(" ")[2]
            helps[name] = helps.get(name, 0) + 1
        else:
            m = SAMPLE.match(line)
            assert m, "not a sample line: %r" % line
            labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
            samples.append((m.group(1), labels, float(m.group(3))))
    return families, helps, samples


def values(samples, name, **labels):
    return [v for n, l, v in samples if n == name
            and all(l.get(k) == w for k, w in labels.items())]


def scrape(node):
    r = node.get("/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    return r.text


def forged_json(n):
    """A signed transaction whose signature is made up: the mempool
    refuses it (bad_signature)."""
    body = tx_body(data=["forged", n], sender_public_key=os.urandom(32).hex())
    body["timestamp"] = 1795248100000000 + n
    body["signature"] = os.urandom(64).hex()
    return body


@pytest.fixture(scope="module")
def busy_node():
    """A node that has mined, taken a transaction, refused two (one at
    the gateway, one at the mempool), answered a 404 and linked to a
    peer, so that every metric has a series."""
    node, peer = Node(), Node(miners=0)
    try:
        node.start()
        peer.start()
        node.submit(tx_body(data={"metrics": "one"}, users=["m-a"]))
        assert node.post("/transactions/new", {"users": "x"}).status_code == 400
        assert node.post("/transactions/new", forged_json(1)).status_code == 400
        for _ in range(3):
            node.mine()
        assert node.get("/no/such/route").status_code == 404
        address = "http://127.0.0.1:%d" % peer.port
        assert node.post("/nodes/register", {"nodes": [address]}).status_code == 201
        wait_for(lambda: peer.height() == 3, 60, "the peer to sync from the node")
        #  One heartbeat after the last change, so every snapshot has it.
        time.sleep(1.5)
        yield node
    finally:
        peer.close()
        node.close()


def test_page_is_valid_prometheus_text(busy_node):
    promtool = shutil.which("promtool")
    if not promtool:
        pytest.skip("promtool not installed (Debian package prometheus; "
                    "scripts/install-deps.sh test)")
    text = scrape(busy_node)
    check = subprocess.run([promtool, "check", "metrics"], input=text,
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.strip() == "" and check.stderr.strip() == "", check.stdout + check.stderr


def test_page_has_what_the_table_says(busy_node):
    rows = table()
    text = scrape(busy_node)
    families, helps, samples = parse(text)
    #  Families come from the table, HELP and TYPE once each, in its words.
    for name, kind in families.items():
        assert name in rows, name
        assert kind == rows[name][0] and helps[name] == 1, name
        assert "# HELP %s %s\n" % (name, rows[name][2]) in text
    for name, labels, _ in samples:
        base = re.sub(r"_(bucket|sum|count)$", "", name) if name not in rows else name
        assert base in families, name
        want = set(rows[base][1]) | ({"le"} if name.endswith("_bucket") else set())
        if "service" not in want:
            want.add("service")         #  The gateway names every SELF series' source
        assert set(labels) == want, (name, labels)
    #  Every service is up and says its resident memory; the miner its rate.
    for service in CORE:
        assert values(samples, "chainbus_service_up", service=service) == [1.0], service
        if service != "bus" or values(samples, "chainbus_service_resident_memory_bytes",
                                      service="bus"):
            memory = values(samples, "chainbus_service_resident_memory_bytes", service=service)
            assert memory and 1e6 < memory[0] < 1e10, (service, memory)
    miners = [l["service"] for n, l, _ in samples if n == "chainbus_miner_hashes_per_second"]
    assert len(miners) == 1 and miners[0].startswith("miner"), miners
    assert values(samples, "chainbus_service_up", service=miners[0]) == [1.0]
    #  The gateway's own: the three mines, the refusal, the 404, and each
    #  request timed.
    http = "chainbus_http_requests_total"
    assert values(samples, http, service="gateway", route="/mine", code="200") == [3.0]
    assert values(samples, http, route="/transactions/new", code="201") == [1.0]
    assert values(samples, http, route="/transactions/new", code="400") == [2.0]
    assert values(samples, "chainbus_mempool_txs_refused_total", code="bad_signature") == [1.0]
    assert values(samples, http, route="other", code="404") == [1.0]
    duration = "chainbus_http_request_duration_seconds"
    count = values(samples, duration + "_count", route="/mine")
    assert count == [3.0]
    assert values(samples, duration + "_bucket", route="/mine", le="+Inf") == count
    assert 0 < values(samples, duration + "_sum", route="/mine")[0] < 60
    buckets = [(float(l["le"]), v) for n, l, v in samples
               if n == duration + "_bucket" and l["route"] == "/mine"]
    assert [v for _, v in sorted(buckets)] == sorted(v for _, v in buckets)
    assert values(samples, "chainbus_bus_events_lost_total", service="gateway") == [0.0]
    #  Restarts are counted by the gateway's health part: every service
    #  has a count, 0 on this node (test_killed_service_restart_is_counted
    #  shows one counted).
    for service in RESTARTED:
        assert values(samples, RESTARTS, service=service) == [0.0], service


def test_dead_service_shows_down(busy_node):
    node = busy_node
    families, _, samples = parse(scrape(node))
    theirs = [n for n, l, _ in samples if l.get("service") == "peersync"
              and n != "chainbus_service_up" and n != "chainbus_service_resident_memory_bytes"]
    node.signal_service("peersync", signal.SIGSTOP)
    try:
        def down():
            s = parse(scrape(node))[2]
            return values(s, "chainbus_service_up", service="peersync") == [0.0] and s
        samples = wait_for(down, 15, "chainbus_service_up of peersync to be 0")
        #  What the gateway says of it stays (up 0, its restarts); its own go.
        assert not [n for n, l, _ in samples if l.get("service") == "peersync"
                    and n not in ("chainbus_service_up", "chainbus_service_restarts_total")]
        assert values(samples, "chainbus_service_up", service="chainstore") == [1.0]
    finally:
        node.signal_service("peersync", signal.SIGCONT)
    samples = wait_for(lambda: (lambda s: values(s, "chainbus_service_up", service="peersync")
                                == [1.0] and s)(parse(scrape(node))[2]),
                       15, "chainbus_service_up of peersync to be 1 again")
    again = [n for n, l, _ in samples if l.get("service") == "peersync"
             and n != "chainbus_service_up" and n != "chainbus_service_resident_memory_bytes"]
    assert sorted(set(again)) == sorted(set(theirs))


class Prometheus:
    """A real Prometheus on loopback scraping one node every second."""

    def __init__(self, target_port):
        self.root = tempfile.mkdtemp(prefix="cbprom", dir="/tmp")
        self.port = free_port()
        config = os.path.join(self.root, "prometheus.yml")
        with open(config, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                    "scrape_configs:\n  - job_name: chainbus\n    static_configs:\n"
                    "      - targets: ['127.0.0.1:%d']\n" % target_port)
        self.log = open(os.path.join(self.root, "prometheus.log"), "wb")
        self.proc = subprocess.Popen(
            [shutil.which("prometheus"), "--config.file=" + config,
             "--storage.tsdb.path=" + os.path.join(self.root, "data"),
             "--web.listen-address=127.0.0.1:%d" % self.port, "--log.level=warn"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(self.ready, 60, "Prometheus to be ready")

    def ready(self):
        assert self.proc.poll() is None, self.log_text()
        try:
            return requests.get(self.url("/-/ready"), timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def query(self, expr):
        r = requests.get(self.url("/api/v1/query"), params={"query": expr}, timeout=10)
        body = r.json()
        assert r.status_code == 200 and body["status"] == "success", (expr, r.text)
        return body["data"]["result"]

    def log_text(self):
        with open(os.path.join(self.root, "prometheus.log"), "rb") as f:
            return f.read().decode(errors="replace")[-3000:]

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.root, ignore_errors=True)


def dashboard_queries():
    """Every PromQL expression of the dashboard's panels."""
    with open(DASHBOARD) as f:
        dashboard = json.load(f)
    found = []

    def walk(item):
        if isinstance(item, dict):
            if isinstance(item.get("expr"), str):
                found.append(item["expr"])
            for value in item.values():
                walk(value)
        elif isinstance(item, list):
            for value in item:
                walk(value)
    walk(dashboard)
    return found


def test_dashboard_uses_only_exported_metrics(busy_node):
    queries = dashboard_queries()
    assert len(queries) >= 15
    text = scrape(busy_node)
    live = {n for n, _, _ in parse(text)[2]}
    rows = table()
    names = set()
    for expr in queries:
        names |= set(re.findall(r"\bchainbus_[a-z0-9_]+", expr))
    missing = sorted(n for n in names if n not in live)
    assert not missing, "the dashboard names metrics the node does not export: %s" % missing
    #  And only names of the table (no typo that a live page happened to have).
    for name in names:
        assert re.sub(r"_(bucket|sum|count)$", "", name) in rows or name in rows, name


def test_real_prometheus_scrapes_the_node(busy_node):
    if not shutil.which("prometheus"):
        pytest.skip("prometheus not installed (Debian package prometheus; "
                    "scripts/install-deps.sh test)")
    node = busy_node
    prometheus = Prometheus(node.port)
    try:
        #  Prometheus' own view: the target is up, and our metrics are in.
        wait_for(lambda: [r for r in prometheus.query('up{job="chainbus"}')
                          if r["value"][1] == "1"], 30, "Prometheus to scrape the node")
        up = wait_for(lambda: prometheus.query('chainbus_service_up{service="chainstore"}'),
                      30, "chainbus_service_up in Prometheus")
        assert up[0]["value"][1] == "1"
        for _ in range(2):
            node.mine()
        height = node.height()

        def height_seen():
            result = prometheus.query("chainbus_chain_height")
            return result and float(result[0]["value"][1]) == height and result
        result = wait_for(height_seen, 30, "Prometheus to see height %d" % height)
        assert result[0]["metric"]["service"] == "chainstore"
        #  Every query of the dashboard runs there (Grafana's interval
        #  variable as Grafana would fill it).
        for expr in dashboard_queries():
            prometheus.query(expr.replace("$__rate_interval", "1m"))
    finally:
        prometheus.close()


def test_killed_service_restart_is_counted(busy_node):
    """kill -9 of peersync under the launcher: its restarts go from 0 to 1,
    the others' stay 0, and it is up again. Last of the tests on busy_node,
    so that the others see a node nothing restarted in."""
    node = busy_node
    samples = parse(scrape(node))[2]
    for service in RESTARTED:
        assert values(samples, RESTARTS, service=service) == [0.0], service
    node.kill_service("peersync")

    def counted():
        s = parse(scrape(node))[2]
        return (values(s, RESTARTS, service="peersync") == [1.0]
                and values(s, "chainbus_service_up", service="peersync") == [1.0] and s)
    samples = wait_for(counted, 30, "peersync's restart counted and it up again", interval=0.25)
    for service in ("bus", "chainstore", "mempool"):
        assert values(samples, RESTARTS, service=service) == [0.0], service


def test_operations_lists_every_metric():
    with open(OPERATIONS) as f:
        text = f.read()
    section = text.split("\n## Metrics\n", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `(chainbus_[a-z0-9_]+)` \|", section, re.M))
    assert listed == set(table()), (sorted(set(table()) - listed), sorted(listed - set(table())))
