"""Slow and many HTTP clients do not shut others out (issue 9 item 1).

Attackers (bench/http_attack.py, in their own processes) hold thousands of
connections from loopback sources 127.0.0.2 and up, reopening each one the
gateway closes; the normal client is 127.0.0.1. While they do, GET /status
and POST /transactions/new are each answered within a second. The gateway
closes heads that do not complete in time and bodies below the minimum
rate however they trickle, caps the connections of one address, closes
waiting connections first near its cap, closes connections whose answers
are not read in time (a slow read: pipelined requests, answers never read),
and logs each kind of refusal as a count in one line every few seconds, not
one line per connection.

The attackers run under os.nice(10) (--nice), so that on a loaded 2-core
machine the Python attackers do not starve the normal client's own
process; the bound is asserted on the 95th percentile of the answers, the
slowest one may take twice as long.
"""

import json
import os
import re
import subprocess
import sys
import time

import pytest
import requests

from chainbus_node import bin_dir, tx_body

HERE = os.path.dirname(os.path.abspath(__file__))
ATTACK = os.path.join(HERE, "..", "..", "bench", "http_attack.py")


def sanitized():
    try:
        with open(os.path.join(bin_dir(), "..", "CMakeCache.txt")) as f:
            return "CHAINBUS_SANITIZE:BOOL=ON" in f.read()
    except OSError:
        return False


#  The bound; a sanitizer build is several times slower.
ANSWER_WITHIN_S = 3.0 if sanitized() else 1.0
#  A request closed unread near the cap is sent again, at most this often
#  in a row (test_slow_readers_do_not_shut_others_out).
RETRIES = 3
#  Attackers yield to the node and to the normal client.
ATTACKER_NICE = 10


class Attackers:
    def __init__(self, node, plan, seconds, no_reopen=False):
        self.procs = []
        first = 2
        for kind, count, addresses in plan:
            args = [sys.executable, ATTACK, "attack", "--port", str(node.port), "--kind", kind,
                    "--count", str(count), "--addresses", str(addresses),
                    "--first", str(first), "--seconds", str(seconds),
                    "--nice", str(ATTACKER_NICE)]
            self.procs.append(subprocess.Popen(args + (["--no-reopen"] if no_reopen else []),
                                               stdout=subprocess.PIPE, text=True))
            first += addresses

    def results(self, stop=True):
        """Each attacker's last line; stop=False waits for it to end by itself."""
        out = []
        for p in self.procs:
            if stop:
                p.terminate()
            lines = p.communicate(timeout=60)[0].strip().splitlines()
            assert p.returncode in (0, -15) and lines, (p.returncode, lines)
            out.append(json.loads(lines[-1]))
        return out

    def kill(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def served_meanwhile(node, seconds, retried=None):
    """A normal client, GET /status then POST /transactions/new, again and
    again for seconds. Returns the time of each answer, in seconds.
    With retried (a list), a request whose connection the gateway closed
    before answering is sent again on a new connection, up to RETRIES
    times, as HTTP clients do when a server closes a connection it had
    not read the request from (its time counts the retries); each retry
    is noted, and the caller bounds how many there were."""
    took_all = []
    client = requests.Session()
    deadline = time.monotonic() + seconds
    n = 0

    def ask(method, path, **kw):
        for attempt in range(RETRIES + 1):
            try:
                return client.request(method, node.url + path, timeout=10, **kw)
            except requests.exceptions.ConnectionError:
                if retried is None or attempt == RETRIES:
                    raise
                retried.append(path)

    while time.monotonic() < deadline:
        n += 1
        started = time.monotonic()
        r = ask("GET", "/status")
        assert r.status_code == 200, r.text
        took = time.monotonic() - started
        started = time.monotonic()
        r = ask("POST", "/transactions/new", json=tx_body("slow-%d-%f" % (n, started)))
        assert r.status_code == 201, r.text
        took_all += [took, time.monotonic() - started]
        time.sleep(0.1)
    assert n >= seconds     # the loop really ran
    return took_all


def assert_answered_in_time(took_all):
    """Answered within ANSWER_WITHIN_S (the issue's second): 95% of the
    answers, and every one within twice that (a loaded machine's hiccup)."""
    ranked = sorted(took_all)
    p95 = ranked[min(len(ranked) - 1, int(len(ranked) * 0.95))]
    assert p95 < ANSWER_WITHIN_S, (p95, ranked[-10:])
    assert ranked[-1] < 2 * ANSWER_WITHIN_S, ranked[-10:]


def refusal_lines(node):
    return [l for l in node.log_text().splitlines() if "http refusals in the last" in l]


def counted(lines, kind):
    return sum(int(m.group(1)) for l in lines for m in [re.search(r" %s=(\d+)" % kind, l)] if m)


def test_trickling_and_idle_clients_do_not_shut_others_out(make_node):
    node = make_node(miners=0)
    #  1,000 trickling heads + 1,000 trickling bodies + 5,000 idle, from
    #  70 addresses (100 each: the per-address cap alone does not stop them).
    attack = Attackers(node, [("headers", 1000, 10), ("bodies", 1000, 10), ("idle", 5000, 50)],
                       seconds=60)
    try:
        time.sleep(6)               # the attack builds up, and outlives a head deadline
        started = time.monotonic()
        took_all = served_meanwhile(node, 10)
        attack_seconds = time.monotonic() - started + 6
        results = attack.results()
    finally:
        attack.kill()
    heads, bodies, idle = results
    #  The attack was real: every connection was held, and each trickling
    #  one was closed at its deadline and opened again (about every 5 s).
    for r in results:
        assert r["opened"] >= r["wanted"], r
    assert heads["closed_by_server"] >= heads["wanted"], heads
    assert bodies["closed_by_server"] >= bodies["wanted"], bodies
    assert idle["closed_by_server"] >= idle["wanted"], idle
    assert_answered_in_time(took_all)
    #  Logged as counts, one line every 5 s, not one per connection.
    time.sleep(5.5)
    lines = refusal_lines(node)
    assert counted(lines, "header_late") >= heads["wanted"] + idle["wanted"], lines
    assert counted(lines, "body_slow") >= bodies["wanted"], lines
    assert len(lines) <= attack_seconds / 5 + 3, lines
    node.assert_no_crash()


def test_one_address_is_capped(make_node):
    #  A head deadline far beyond the attack, and the attacker left to end
    #  by itself: however late it starts, its 50 connections are still
    #  open when it reports.
    node = make_node(miners=0, extra_args=["--max-connections-per-address", "50",
                                           "--header-timeout", "60000"])
    attack = Attackers(node, [("idle", 120, 1)], seconds=4, no_reopen=True)
    try:
        (result,) = attack.results(stop=False)
    finally:
        attack.kill()
    #  The gateway took 50 and closed the other 70 at once.
    assert result["open"] == 50, result
    assert result["closed_by_server"] == 70, result
    #  Another address is served meanwhile.
    assert node.get("/status", timeout=5).status_code == 200
    deadline = time.monotonic() + 7
    while time.monotonic() < deadline and counted(refusal_lines(node), "capped") < 70:
        time.sleep(0.2)
    assert counted(refusal_lines(node), "capped") == 70, refusal_lines(node)


def test_waiting_connections_make_room_near_the_cap(make_node):
    #  Three times more idle connections than the cap, reopened as they are
    #  closed: the oldest waiting ones are closed first to keep room.
    node = make_node(miners=0, extra_args=["--max-connections", "1000"])
    attack = Attackers(node, [("idle", 3000, 30)], seconds=40)
    try:
        time.sleep(3)
        took_all = served_meanwhile(node, 6)
        (result,) = attack.results()
    finally:
        attack.kill()
    assert result["opened"] >= 3000, result
    assert_answered_in_time(took_all)
    time.sleep(5.5)
    assert counted(refusal_lines(node), "idle_closed") > 1000, refusal_lines(node)


def test_slow_readers_do_not_shut_others_out(make_node):
    #  A slow read: 330 connections from two addresses against a cap of
    #  300, each with a 2 KB receive buffer, sending pipelined GET /status
    #  and never reading an answer, reopened as the gateway closes them.
    #  Before the guard gave answers a deadline they held every slot (their
    #  requests were "being answered" forever) and the normal client was
    #  served 0 of 5 times.
    node = make_node(miners=0, extra_args=["--max-connections", "300"])
    attack = Attackers(node, [("pipeline", 330, 2)], seconds=40)
    try:
        time.sleep(7)               # every slot taken, and past an answer's deadline
        retried = []
        took_all = served_meanwhile(node, 8, retried)
        (result,) = attack.results()
    finally:
        attack.kill()
    assert result["opened"] >= 330, result
    assert result["closed_by_server"] >= 100, result
    assert_answered_in_time(took_all)
    #  Near the cap a newcomer with nothing stale to make room for it
    #  takes the slot of a connection of the address holding the most
    #  (docs/operations.md); the normal client's is rarely closed.
    assert len(retried) <= len(took_all) // 10, (len(retried), len(took_all))
    time.sleep(5.5)
    lines = refusal_lines(node)
    #  The slow readers were closed: at their answers' deadline, or for
    #  the normal client's connections.
    assert counted(lines, "answer_slow") + counted(lines, "crowded") >= 10, lines
    node.assert_no_crash()
