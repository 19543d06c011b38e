"""A node whose chainstore stops answering (SIGSTOP) for 12 s (issue 8,
item 3): no service may wait for it inside its loop, so meanwhile

- both nodes keep their link (neither counts the other silent, 7 s),
- its GET /status answers within a second and says the chainstore is down,
- a submission gets a clear 503, or its 201, within the request timeout;

and once it runs again (SIGCONT) blocks flow both ways and nothing that got
a 201 is lost. To make the stall bite, the other node mines a block and
sends transactions while the chainstore is stopped: the stopped node's
peersync must store that block, and answer the peer's STATUS, without
waiting. The scenario runs once (module fixture); each test checks one
part of what a user would see.
"""

import os
import re
import signal
import threading
import time

import pytest
import requests

from chainbus_node import Node, tx_body, wait_for

FREEZE_S = 12
#  gateway/request_timeout_ms, the bound of any bus call behind a route.
REQUEST_TIMEOUT_S = 5.0
#  What a loaded machine may add to it.
SLACK_S = 2.0
#  A service silent this long counts as down (CBUS_HEARTBEAT_DEAD_MS).
HEARTBEAT_DEAD_S = 3.5
GOSSIP_TIMEOUT = 30
UNLINKED = re.compile(r"peer unlinked .*")


def register(node, peer):
    address = "http://127.0.0.1:%d" % peer.port
    r = node.post("/nodes/register", {"nodes": [address]})
    assert r.status_code == 201, r.text
    return address


def peer_states(node, timeout=REQUEST_TIMEOUT_S + SLACK_S):
    """{(address, direction): state} from GET /nodes, or an error string."""
    try:
        r = requests.get(node.url + "/nodes", timeout=timeout)
        return {(n["address"], n["direction"]): n["state"] for n in r.json()["nodes"]}
    except (requests.RequestException, ValueError, KeyError) as e:
        return "GET /nodes failed: %r" % e


def all_linked(states, expected):
    return isinstance(states, dict) and len(states) == expected \
        and all(s == "linked" for s in states.values())


def tip(node):
    s = node.status()
    return s["height"], s["tip"]


def unlinked_lines(node, skip):
    return [l for l in node.log_text().splitlines()[skip:] if UNLINKED.search(l)]


def submit(node, n):
    """POST a transaction; (HTTP status, txid or None, seconds taken)."""
    started = time.monotonic()
    try:
        r = node.post("/transactions/new", tx_body(data={"stall": n}),
                      timeout=REQUEST_TIMEOUT_S + 3 * SLACK_S)
    except requests.RequestException as e:
        return "no answer: %r" % e, None, time.monotonic() - started
    taken = time.monotonic() - started
    return r.status_code, (r.json().get("txid") if r.status_code == 201 else None), taken


class Submitter(threading.Thread):
    """Two submissions to the stopped node, at 1 s and 6 s (or as soon as
    the first is answered), whatever the rest of the test waits for."""

    def __init__(self, node, frozen_at):
        super().__init__(daemon=True)
        self.node, self.frozen_at = node, frozen_at
        self.submits, self.acked = [], []

    def run(self):
        for n, start in enumerate((1.0, 6.0)):
            time.sleep(max(0.0, start - (time.monotonic() - self.frozen_at)))
            at = time.monotonic() - self.frozen_at
            code, txid, taken = submit(self.node, "during %d" % n)
            self.submits.append((round(at, 1), code, round(taken, 2)))
            if txid:
                self.acked.append(txid)


class Sampler(threading.Thread):
    """Both nodes' GET /nodes every half second while the chainstore is
    stopped (its own requests: a test thread may be waiting on another)."""

    def __init__(self, a, b):
        super().__init__(daemon=True)
        self.a, self.b = a, b
        self.samples = []
        self.done = threading.Event()

    def run(self):
        started = time.monotonic()
        while not self.done.is_set():
            self.samples.append((round(time.monotonic() - started, 1),
                                 peer_states(self.a), peer_states(self.b)))
            self.done.wait(0.5)


@pytest.fixture(scope="module")
def stall():
    a, b = Node(), Node()
    seen = {"acked": [], "status": []}
    try:
        a.start()
        b.start()
        #  Linked both ways: each node has an outbound and an inbound link.
        register(b, a)
        register(a, b)
        for node in (a, b):
            wait_for(lambda: all_linked(peer_states(node), 2), GOSSIP_TIMEOUT,
                     "both links at " + node.url)
        block = a.mine()
        wait_for(lambda: tip(b)[1] == block["hash"], GOSSIP_TIMEOUT, "b to have a's block")
        for n in range(3):
            seen["acked"].append(a.submit(tx_body(data={"before": n}))[0])
        seen["log_a"] = len(a.log_text().splitlines())
        seen["log_b"] = len(b.log_text().splitlines())
        seen["height_before"] = a.height()

        pid = a.signal_service("chainstore", signal.SIGSTOP)
        frozen_at = time.monotonic()
        sampler = Sampler(a, b)
        sampler.start()
        submitter = Submitter(a, frozen_at)
        submitter.start()
        try:
            #  b gets ahead: its block and transactions reach a's peersync.
            seen["b_block"] = b.mine()
            for n in range(3):
                b.submit(tx_body(data={"from b during": n}))
            while time.monotonic() - frozen_at < FREEZE_S - 1:
                at = time.monotonic() - frozen_at
                started = time.monotonic()
                try:
                    r = requests.get(a.url + "/status", timeout=REQUEST_TIMEOUT_S + SLACK_S)
                    up = r.json().get("services", {}).get("chainstore", {}).get("up")
                    seen["status"].append((round(at, 1), round(time.monotonic() - started, 2),
                                           r.status_code, up))
                except (requests.RequestException, ValueError) as e:
                    seen["status"].append((round(at, 1), round(time.monotonic() - started, 2),
                                           repr(e), None))
                time.sleep(0.5)
            #  The rest of the 12 s: the links are still sampled.
            time.sleep(max(0.0, FREEZE_S - (time.monotonic() - frozen_at)))
        finally:
            os.kill(pid, signal.SIGCONT)
            sampler.done.set()
            sampler.join(2 * (REQUEST_TIMEOUT_S + SLACK_S))
            submitter.join(2 * (REQUEST_TIMEOUT_S + 3 * SLACK_S))
        seen["submits"] = submitter.submits
        seen["acked"] += submitter.acked
        seen["frozen_for"] = time.monotonic() - frozen_at
        seen["links"] = sampler.samples
        seen["unlinked_a"] = unlinked_lines(a, seen["log_a"])
        seen["unlinked_b"] = unlinked_lines(b, seen["log_b"])
        seen["a"], seen["b"] = a, b
        yield seen
    finally:
        errors = []
        for node in (a, b):
            try:
                node.close()
            except Exception as e:  # report both nodes
                errors.append(str(e))
        if errors:
            pytest.fail("\n".join(errors), pytrace=False)


def test_links_stay_up_while_the_chainstore_is_stopped(stall):
    assert stall["frozen_for"] >= FREEZE_S
    samples = stall["links"]
    assert len(samples) >= FREEZE_S, samples
    bad = [s for s in samples if not (all_linked(s[1], 2) and all_linked(s[2], 2))]
    assert not bad, "links not all linked at (t, a's view, b's view): %s" % bad[:5]
    #  Not even briefly: neither node logged an unlinked peer.
    assert not stall["unlinked_a"], stall["unlinked_a"]
    assert not stall["unlinked_b"], stall["unlinked_b"]


def test_status_answers_within_a_second_and_names_the_chainstore_down(stall):
    samples = stall["status"]
    slow = [s for s in samples if not isinstance(s[2], int) or s[1] > 1.0]
    assert not slow, "GET /status (at, took, code, chainstore up): %s" % slow
    assert len(samples) >= 3, samples
    late = [s for s in samples if s[0] > HEARTBEAT_DEAD_S + 0.5]
    assert late, samples
    assert all(s[2] in (200, 503) and s[3] is False for s in late), late


def test_submission_gets_a_clear_answer_within_its_timeout(stall):
    submits = stall["submits"]
    assert len(submits) == 2, submits
    for at, code, taken in submits:
        assert code in (201, 503), (at, code, taken)
        assert taken <= REQUEST_TIMEOUT_S + SLACK_S, (at, code, taken)


def test_everything_resumes_after_sigcont(stall):
    a, b = stall["a"], stall["b"]
    a.wait_ready()
    #  a stores b's block, mined while its chainstore was stopped.
    wait_for(lambda: tip(a) == tip(b), GOSSIP_TIMEOUT, "a to catch up with b")
    assert a.height() >= stall["b_block"]["index"]
    for source, target in ((a, b), (b, a)):
        block = source.mine()
        wait_for(lambda: tip(target)[1] == block["hash"], GOSSIP_TIMEOUT,
                 "the block of %s at %s" % (source.url, target.url))
    for node in (a, b):
        assert all_linked(peer_states(node), 2)
        node.assert_no_crash()


def test_nothing_acknowledged_is_lost(stall):
    a, b = stall["a"], stall["b"]
    txid, _ = a.submit(tx_body(data="after the stall"))
    acked = stall["acked"] + [txid]

    def found(node, txid):
        r = node.tx(txid)
        return r.status_code == 200 and r.json()["status"] in ("pending", "confirmed") \
            and r.json()

    for txid in acked:
        wait_for(lambda: found(a, txid), GOSSIP_TIMEOUT, "%s at a" % txid)
    #  Once a block holds them, b has that block too.
    block = a.mine()
    wait_for(lambda: tip(b)[1] == block["hash"], GOSSIP_TIMEOUT, "a's last block at b")
    for txid in acked:
        at_a = found(a, txid)
        if at_a["status"] == "confirmed":
            at_b = found(b, txid)
            assert at_b and at_b["status"] == "confirmed", (txid, at_b)
            assert at_b["block_hash"] == at_a["block_hash"]


def test_nobody_is_punished_for_a_stopped_chainstore(stall):
    """The stopped node's refusals were its own (unavailable): no peer
    lost score for them, at either end."""
    for node in (stall["a"], stall["b"]):
        scores = {n["address"]: n["score"] for n in node.get("/nodes").json()["nodes"]}
        assert scores and all(v == 0 for v in scores.values()), (node.url, scores)
