"""Error codes: every HTTP error carries a "code" beside its "message",
from the one list in libcommon/include/cbus_code.h, which docs/api.md
lists exactly; real refusals carry the code they should (the gateway's
own, or the service's passed through)."""

import os
import re
import secrets
import signal
import tempfile
import time

import pytest

from chainbus_node import REPO, Node, tx_body, wait_for

CODE_HEADER = os.path.join(REPO, "libcommon", "include", "cbus_code.h")
API_DOC = os.path.join(REPO, "docs", "api.md")
TOKEN = secrets.token_hex(32)


def header_codes():
    """{wire name: meaning} from the X-macro table of cbus_code.h."""
    with open(CODE_HEADER) as f:
        text = f.read()
    rows = re.findall(r'X \((\w+),\s*"([a-z_]+)",\s*"([^"]*)"\)', text)
    assert len(rows) > 20, "the X-macro table did not parse: %d rows" % len(rows)
    return {name: meaning for _, name, meaning in rows}


def doc_section(title):
    with open(API_DOC) as f:
        text = f.read()
    m = re.search(r"^## %s\n(.*?)(?=^## )" % re.escape(title), text, re.S | re.M)
    assert m, "docs/api.md has no section '## %s'" % title
    return m.group(1)


def test_docs_list_exactly_the_codes():
    codes = header_codes()
    listed = re.findall(r"^\| `([a-z_]+)` \|", doc_section("Error codes"), re.M)
    assert len(listed) == len(set(listed)), "a code is listed twice: %s" % listed
    #  "ok" is the code of OK replies: no error carries it.
    assert set(listed) == set(codes) - {"ok"}, (
        "docs/api.md lists %s, cbus_code.h has %s"
        % (sorted(set(listed) - set(codes)), sorted(set(codes) - set(listed) - {"ok"})))


def test_docs_examples_use_known_codes():
    codes = header_codes()
    with open(API_DOC) as f:
        text = f.read()
    used = set(re.findall(r'"code": "([a-z_]+)"', text))
    assert used, "no example in docs/api.md shows a code"
    assert used <= set(codes) - {"ok"}, sorted(used - set(codes))


# ------------------------------------------------------------ real answers

@pytest.fixture(scope="module")
def guarded():
    fd, path = tempfile.mkstemp(prefix="cbtoken", dir="/tmp")
    with os.fdopen(fd, "w") as f:
        f.write(TOKEN + "\n")
    os.chmod(path, 0o600)
    node = Node(extra_args=["--admin-token-file", path, "--max-body", "1024",
                            "--request-timeout", "1000"])
    try:
        node.start()
        yield node
    finally:
        node.close()
        os.unlink(path)


def assert_code(r, status, code):
    assert r.status_code == status, (r.status_code, r.text[:300])
    j = r.json()
    assert isinstance(j["message"], str) and j["message"], j
    assert j.get("code") == code, j
    assert set(j) == {"message", "code"}, j
    return j["message"]


def test_edge_refusals_carry_their_codes(guarded):
    n = guarded
    assert_code(n.post("/transactions/new", data=b"{"), 400, "bad_json")
    assert_code(n.post("/transactions/new", data=b""), 400, "bad_json")
    assert_code(n.post("/transactions/new", [1, 2]), 400, "bad_json")
    message = assert_code(n.post("/transactions/new", {"users": "u"}), 400, "bad_tx")
    assert message.startswith("Missing values: "), message
    assert_code(n.post("/transactions/new", tx_body(zz=1)), 400, "bad_tx")
    assert_code(n.post("/nodes/register", {"nodes": []},
                       headers={"Authorization": "Bearer " + TOKEN}), 400, "bad_json")
    assert_code(n.get("/no/such/route"), 404, "not_found")
    assert_code(n.get("/blocks/999999"), 404, "not_found")
    assert_code(n.get("/transactions/" + "ab" * 32), 404, "not_found")
    assert_code(n.get("/blocks/not-a-block"), 400, "invalid")
    assert_code(n.get("/transactions?user=u&limit=0"), 400, "invalid")
    assert_code(n.request("DELETE", "/status"), 405, "method_not_allowed")
    assert_code(n.get("/mine"), 401, "unauthorized")
    assert_code(n.post("/transactions/new", tx_body("x" * 2000)), 413, "too_large")


def test_a_service_refusal_passes_its_code(guarded):
    #  peersync refuses the address (INVALID): its code comes through.
    r = guarded.post("/nodes/register", {"nodes": ["not an address"]},
                     headers={"Authorization": "Bearer " + TOKEN})
    assert_code(r, 400, "invalid")


def test_stopped_mempool_is_unavailable(guarded):
    n = guarded
    pid = n.signal_service("mempool", signal.SIGSTOP)
    try:
        started = time.monotonic()
        message = assert_code(n.post("/transactions/new", tx_body("frozen")), 503,
                              "unavailable")
        assert "mempool" in message, message
        assert time.monotonic() - started < 10
    finally:
        os.kill(pid, signal.SIGCONT)
    n.wait_ready()
    n.submit(tx_body("after-cont"))


def test_killed_mempool_is_unavailable(guarded):
    """With the launcher paused, a killed mempool stays dead: the gateway
    answers 503 unavailable at once (not reachable), or at the timeout."""
    n = guarded
    os.kill(n.pid, signal.SIGSTOP)
    try:
        old = n.signal_service("mempool", signal.SIGKILL)
        n.expected_deaths += 1

        def refused():
            r = n.post("/transactions/new", tx_body("killed"))
            #  A list: a Response of status >= 400 is false.
            return [r] if r.status_code != 201 else None

        [r] = wait_for(refused, 20, "a submission to the killed mempool to be refused")
        message = assert_code(r, 503, "unavailable")
        assert "mempool" in message, message
    finally:
        os.kill(n.pid, signal.SIGCONT)
    wait_for(lambda: [p for p in n.service_pids("mempool") if p != old], 60,
             "the launcher to restart chainbus-mempool")
    n.wait_ready()
    n.submit(tx_body("after-restart"))
