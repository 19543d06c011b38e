"""Bad input gets a clear JSON error and changes nothing; no input crashes
or hangs any process; a service that does not answer gives 503 with its
name."""

import json
import re
import signal
import socket
import time

import pytest

from chainbus_node import TX_FIELDS, mempool_size, tx_body, wait_for

JSON = {"Content-Type": "application/json"}


@pytest.fixture(autouse=True)
def nothing_changes(request):
    """Around each test on the shared node: same chain, same mempool, and
    every service still the process it was."""
    if "node" not in request.fixturenames:
        yield
        return
    node = request.getfixturevalue("node")
    before = node.status()
    yield
    after = node.status()
    assert after["height"] == before["height"]
    assert after["tip"] == before["tip"]
    assert mempool_size(after) == mempool_size(before)
    node.assert_no_crash()


def assert_json_error(r, code):
    assert r.status_code == code, (r.status_code, r.text[:300])
    assert r.headers.get("Content-Type", "").startswith("application/json"), r.headers
    j = r.json()
    assert isinstance(j["message"], str) and j["message"], j
    #  Every error names its code too (docs/api.md, Error codes).
    assert isinstance(j.get("code"), str) and re.fullmatch(r"[a-z_]+", j["code"]), j
    return j["message"]


def raw_http(node, data, timeout=20):
    """Send raw bytes to the gateway; return (status code or None, reply).
    Fails if the gateway neither answers nor closes within timeout."""
    with socket.create_connection(("127.0.0.1", node.port), timeout=timeout) as s:
        s.sendall(data)
        reply = b""
        deadline = time.monotonic() + timeout
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            except socket.timeout:
                raise AssertionError("gateway neither answered nor closed in %ss: %r"
                                     % (timeout, reply[:200]))
            if not chunk:
                break
            reply += chunk
            if b"\r\n\r\n" in reply:
                head, _, body = reply.partition(b"\r\n\r\n")
                length = [int(l.split(b":")[1]) for l in head.split(b"\r\n")
                          if l.lower().startswith(b"content-length:")]
                if length and len(body) >= length[0]:
                    break
            if time.monotonic() > deadline:
                raise AssertionError("no complete answer in %ss" % timeout)
    if not reply:
        return None, reply
    return int(reply.split(b" ", 2)[1]), reply


# ------------------------------------------------------------ missing values

@pytest.mark.parametrize("field", TX_FIELDS)
def test_missing_one_value(node, field):
    body = tx_body()
    del body[field]
    r = node.post("/transactions/new", body)
    assert assert_json_error(r, 400) == "Missing values: " + field


def test_missing_several_values(node):
    r = node.post("/transactions/new", {"users": "u", "dh_parameters": "p"})
    assert assert_json_error(r, 400) == \
        "Missing values: data, server_public_key, receiver_public_key, sender_public_key"
    r = node.post("/transactions/new", {})
    assert assert_json_error(r, 400) == "Missing values: " + ", ".join(TX_FIELDS)


# ------------------------------------------------------- malformed, not JSON

@pytest.mark.parametrize("body", [
    b"", b" ", b"{", b'{"users": ', b"{users: 1}", b"{'users': 'u'}",
    b'{"users": "u",}', b'{"a": 1} {"b": 2}', b'{"a": 1} trailing',
    b'{"data": NaN}', b'{"data": Infinity}', b'{"data": 01}',
    b'{"users": "\xff\xfe"}', b"\xef\xbb\xbf{}", b"\x00", b'{"a":"\x00"}',
    b'{"users": "a", "users": "b"}',
], ids=repr)
def test_malformed_json(node, body):
    r = node.post("/transactions/new", data=body, headers=JSON)
    assert_json_error(r, 400)


@pytest.mark.parametrize("body", [b"[]", b'"text"', b"42", b"null", b"true",
                                  json.dumps([tx_body()]).encode()], ids=repr)
def test_body_not_an_object(node, body):
    r = node.post("/transactions/new", data=body, headers=JSON)
    assert_json_error(r, 400)


def test_empty_body_without_content_type(node):
    r = node.request("POST", "/transactions/new")
    assert_json_error(r, 400)


# --------------------------------------------------------------- wrong types

@pytest.mark.parametrize("field,value", [
    ("users", 42), ("users", []), ("users", [1]), ("users", [""]), ("users", ""),
    ("users", ["a", None]), ("users", ["a", ["b"]]), ("users", {"a": "b"}),
    ("users", None), ("users", True), ("users", ["u"] * 65), ("users", "u" * 257),
    ("dh_parameters", 1), ("dh_parameters", None), ("dh_parameters", ["p"]),
    ("server_public_key", {}), ("server_public_key", 1.5),
    ("receiver_public_key", []), ("receiver_public_key", False),
    ("sender_public_key", None), ("sender_public_key", 7),
    ("sender_public_key", "k" * 4097),
    ("data", [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]),
], ids=lambda v: repr(v)[:40])
def test_wrong_types(node, field, value):
    r = node.post("/transactions/new", tx_body(**{field: value}))
    message = assert_json_error(r, 400)
    assert field in message, message


def test_deep_nesting_does_not_crash(node):
    for depth in (1000, 100000):
        body = b'{"users": "u", "data": ' + b"[" * depth + b"]" * depth + b"}"
        r = node.post("/transactions/new", data=body, headers=JSON)
        assert r.status_code in (400, 413), r.status_code
        assert r.json()["message"]


# --------------------------------------------------------------- size limits

def test_body_over_default_limit_is_413(node):
    big = json.dumps(tx_body(data="x" * 262144)).encode()
    r = node.post("/transactions/new", data=big, headers=JSON)
    assert_json_error(r, 413)


def test_huge_content_length_is_refused_at_once(node):
    head = (b"POST /transactions/new HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nContent-Length: 100000000\r\n\r\n")
    started = time.monotonic()
    code, reply = raw_http(node, head + b'{"users": ')
    assert code == 413, reply[:300]
    assert time.monotonic() - started < 10
    assert json.loads(reply.partition(b"\r\n\r\n")[2])["message"]


def test_chunked_body_over_limit_is_413(node):
    def chunks():
        for _ in range(80):
            yield b"[" + b"0," * 2000 + b"0]"
    r = node.post("/transactions/new", data=chunks(), headers=JSON)
    assert_json_error(r, 413)


def test_max_body_flag(make_node):
    node = make_node(extra_args=["--max-body", "1024"], miners=0)
    before = node.mempool_size()
    fits = tx_body(data="x" * 700)
    assert len(json.dumps(fits)) < 1024
    assert node.post("/transactions/new", fits).status_code == 201
    over = tx_body(data="x" * 1100)
    assert_json_error(node.post("/transactions/new", over), 413)
    assert_json_error(node.post("/nodes/register", {"nodes": ["127.0.0.1:1"] * 100}), 413)
    assert node.mempool_size() == before + 1
    node.assert_no_crash()


# ------------------------------------------------------- methods and routes

@pytest.mark.parametrize("method,path", [
    ("GET", "/transactions/new"), ("PUT", "/transactions/new"),
    ("DELETE", "/transactions/new"), ("POST", "/chain"), ("POST", "/mine"),
    ("DELETE", "/mine"), ("GET", "/nodes/register"), ("PUT", "/nodes/register"),
    ("POST", "/nodes/resolve"), ("POST", "/status"), ("PATCH", "/status"),
    ("POST", "/blocks/0"), ("DELETE", "/transactions/" + "00" * 32),
])
def test_wrong_method_is_405(node, method, path):
    r = node.request(method, path, data=b"{}", headers=JSON)
    assert_json_error(r, 405)
    assert r.headers.get("Allow") in ("GET", "POST"), r.headers
    assert method not in r.headers["Allow"]


@pytest.mark.parametrize("path", [
    "/nope", "/chain/extra", "/mine/now", "/transactionsx/new", "/CHAIN",
    "/nodes/register/x", "/status/x", "/%00", "/chain%00", "/.." + "/x" * 3,
    "/" + "a" * 3000,
])
def test_unknown_route_is_404(node, path):
    r = node.get(path)
    assert_json_error(r, 404)


def test_path_traversal_serves_nothing(node):
    for target in (b"/../../../../etc/passwd", b"/%2e%2e/%2e%2e/etc/passwd",
                   b"/www/../../../etc/passwd", b"/..%2f..%2f..%2fetc%2fpasswd"):
        code, reply = raw_http(node, b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        assert code in (400, 403, 404), reply[:300]
        assert b"root:" not in reply


def test_garbage_and_oversized_requests_do_not_crash(node):
    #  A half-sent request holds its connection but not the gateway.
    with socket.create_connection(("127.0.0.1", node.port), timeout=10) as idle:
        idle.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 500)
        assert node.get("/status", timeout=10).status_code == 200
    raw_http(node, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 500
             + b"\r\n\r\n")
    raw_http(node, b"NOT HTTP AT ALL\r\n\r\n")
    raw_http(node, b"GET /status HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200000 + b"\r\n\r\n")
    raw_http(node, b"GET /" + b"a" * 100000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    raw_http(node, b"POST /transactions/new HTTP/1.1\r\nHost: x\r\n"
                   b"Content-Length: -5\r\n\r\n{}")
    raw_http(node, b"POST /transactions/new HTTP/1.1\r\nHost: x\r\n"
                   b"Transfer-Encoding: chunked\r\n\r\nzzzz\r\n\r\n")
    #  A client that goes away in the middle of a body.
    with socket.create_connection(("127.0.0.1", node.port), timeout=10) as s:
        s.sendall(b"POST /transactions/new HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Length: 500\r\n\r\n{\"users\": ")
    assert node.get("/status").status_code == 200


# ------------------------------------------------- services that don't answer

def test_stopped_mempool_is_503_then_recovers(make_node):
    node = make_node(extra_args=["--request-timeout", "1000"])
    before = node.status()
    pid = node.signal_service("mempool", signal.SIGSTOP)
    try:
        started = time.monotonic()
        r = node.post("/transactions/new", tx_body("while-stopped"))
        message = assert_json_error(r, 503)
        assert "mempool" in message, message
        assert r.json()["code"] == "unavailable", r.text
        assert time.monotonic() - started < 10
        #  /status still answers and says who is down.
        status = node.get("/status", timeout=30)
        assert status.status_code == 200, status.text
        assert node.get("/chain").status_code == 200
    finally:
        node.signal_service("mempool", signal.SIGCONT)
    assert node.service_pids("mempool") == [pid]
    node.wait_ready()
    txid, _ = node.submit(tx_body("after-cont"))
    assert node.tx(txid).status_code == 200
    assert node.height() == before["height"]
    node.assert_no_crash()


def test_stopped_chainstore_is_503(make_node):
    node = make_node(extra_args=["--request-timeout", "1000"])
    height = node.height()
    node.signal_service("chainstore", signal.SIGSTOP)
    try:
        for path in ("/chain", "/blocks/0", "/transactions/" + "11" * 32):
            r = node.get(path)
            message = assert_json_error(r, 503)
            assert "chainstore" in message, (path, message)
            assert r.json()["code"] == "unavailable", (path, r.text)
        deadline = time.monotonic() + 20
        while True:
            status = node.get("/status").json()
            if status["services"]["chainstore"]["up"] is False:
                break
            assert time.monotonic() < deadline, status
            time.sleep(0.5)
    finally:
        node.signal_service("chainstore", signal.SIGCONT)
    node.wait_ready()
    assert node.height() == height
    node.assert_no_crash()


def test_mine_without_miner_is_503(make_node):
    node = make_node(miners=0, extra_args=["--mine-timeout", "1000"])
    height = node.height()
    txid, _ = node.submit(tx_body("no-miner"))
    started = time.monotonic()
    message = assert_json_error(node.get("/mine"), 503)
    assert "miner" in message or "mempool" in message, message
    assert time.monotonic() - started < 15
    assert node.height() == height
    assert node.tx(txid).json()["status"] == "pending"
    node.assert_no_crash()


def test_a_flood_of_bad_requests_is_counted_not_logged_line_by_line(make_node):
    """Every error answer used to be a log line: a client asking for 404s
    as fast as it can would fill the disk with the log. At most 20 a
    period (5 s) are logged one by one; the rest are counted in one line."""
    n = make_node(miners=0)
    for i in range(300):
        assert n.get("/no-such-route-%d" % i).status_code == 404
    wait_for(lambda: "more not logged one by one" in n.log_text(), 15, "the count of the rest")
    lines = [l for l in n.log_text().splitlines() if "http status=404" in l]
    assert 1 <= len(lines) <= 2 * 20, len(lines)
    counted = sum(int(m) for m in re.findall(r"(\d+) more not logged one by one", n.log_text()))
    assert len(lines) + counted == 300, (len(lines), counted)
