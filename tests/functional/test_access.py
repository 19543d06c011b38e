"""Access control: with gateway/admin_token_file set, the routes that make
the node act (GET /mine, POST /nodes/register, GET /nodes/resolve) need
"Authorization: Bearer <token>"; reading and submitting transactions stay
open. A token file the node cannot use stops it at start with the reason."""

import os
import secrets
import subprocess
import tempfile

import pytest

from chainbus_node import Node, tx_body

TOKEN = secrets.token_hex(32)


def token_file(text, mode=0o600):
    fd, path = tempfile.mkstemp(prefix="cbtoken", dir="/tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


@pytest.fixture(scope="module")
def guarded():
    path = token_file(TOKEN + "\n")
    node = Node(extra_args=["--admin-token-file", path])
    try:
        node.start()
        yield node
    finally:
        node.close()
        os.unlink(path)


def bearer(token):
    return {"Authorization": "Bearer " + token}


def assert_refused(r):
    assert r.status_code == 401, r.text
    assert "admin token" in r.json()["message"]
    assert r.json()["code"] == "unauthorized", r.text
    assert r.headers["WWW-Authenticate"].startswith("Bearer")


def test_admin_routes_need_the_token(guarded):
    for headers in ({}, bearer("wrong"), bearer(TOKEN[:-1]), bearer(TOKEN + "0"),
                    {"Authorization": "Basic " + TOKEN}):
        assert_refused(guarded.get("/mine", headers=headers))
        assert_refused(guarded.post("/nodes/register", {"nodes": ["127.0.0.1:5999"]},
                                    headers=headers))
        assert_refused(guarded.get("/nodes/resolve", headers=headers))
    #  Refused means not done: nothing mined, nobody registered.
    assert guarded.height() == 0
    assert guarded.get("/nodes").json()["nodes"] == []


def test_the_token_opens_them(guarded):
    txid, _ = guarded.submit(tx_body("guarded"))
    r = guarded.get("/mine", headers=bearer(TOKEN))
    assert r.status_code == 200, r.text
    assert txid in [t["txid"] for t in r.json()["transactions"]]
    r = guarded.post("/nodes/register", {"nodes": ["127.0.0.1:5999"]}, headers=bearer(TOKEN))
    assert r.status_code == 201, r.text


def test_reading_and_submitting_stay_open(guarded):
    txid, _ = guarded.submit(tx_body("open"))
    for path in ("/chain", "/status", "/nodes", "/node/info", "/blocks/0",
                 "/transactions/" + txid, "/transactions?user=user1", "/"):
        assert guarded.get(path).status_code == 200, path


@pytest.mark.parametrize("text,mode,reason", [
    ("short\n", 0o600, "must hold one token"),
    ("two tokens " + TOKEN, 0o600, "must hold one token"),
    (TOKEN, 0o644, "open to others"),
    (None, 0o600, "cannot read token file"),
])
def test_an_unusable_token_file_stops_the_node(text, mode, reason):
    path = token_file(text, mode) if text is not None else "/nonexistent/admin.token"
    node = Node(extra_args=["--admin-token-file", path])
    try:
        done = subprocess.run(node.command(), capture_output=True, text=True, timeout=60)
        assert done.returncode == 2
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and reason in lines[0] and path in lines[0], done.stderr
    finally:
        if text is not None:
            os.unlink(path)
        subprocess.run(["rm", "-rf", node.root])
