"""Peer management (docs/api.md "DELETE /nodes/<address>", docs/p2p.md
"Removing a peer"): DELETE /nodes/<address> removes a registered peer,
its link and its line in the peer list, for good (a restart does not bring
it back, and it is not dialled again); an unknown one is a 404; it is an
admin route. Registering this node's own address is refused with 400 and
code "self"."""

import os
import secrets
import tempfile
import time
from urllib.parse import quote

from chainbus_node import Node, wait_for

LINK_TIMEOUT = 30
TOKEN = secrets.token_hex(32)


def nodes(node):
    return node.get("/nodes").json()["nodes"]


def linked_from(node, other):
    """The entry of node's list that is other, linked (by node id)."""
    other_id = other.get("/node/info").json()["node_id"]
    return [n for n in nodes(node) if n["node_id"] == other_id and n["state"] == "linked"]


def delete(node, address, **kw):
    return node.request("DELETE", "/nodes/" + quote(address, safe=""), **kw)


def test_delete_removes_the_peer_its_link_and_its_line(make_node):
    a, b = make_node(), make_node()
    address = "http://127.0.0.1:%d" % b.port
    r = a.post("/nodes/register", {"nodes": [address]})
    assert r.status_code == 201, r.text
    wait_for(lambda: linked_from(a, b) and linked_from(b, a), LINK_TIMEOUT, "a and b to link")

    # Any form of the address names it: host:port is read as http://.
    r = delete(a, "127.0.0.1:%d" % b.port)
    assert r.status_code == 200, r.text
    assert r.json() == {"message": "Node removed", "total_nodes": [], "removed": address}
    assert not any(n["address"] == address for n in nodes(a))
    with open(os.path.join(a.data_dir, "peers")) as f:
        assert address not in f.read()
    # The link closes: b stops listing a (its inbound link went away) ...
    wait_for(lambda: not linked_from(b, a), LINK_TIMEOUT, "b to lose its link from a")
    # ... and a does not dial b again, nor after a restart.
    time.sleep(3)
    assert not linked_from(b, a) and nodes(a) == []
    a.restart()
    time.sleep(3)
    assert nodes(a) == [] and not linked_from(b, a)
    assert "peer removed peer=%s" % address in a.log_text()

    # Gone means gone: a second DELETE is a 404.
    r = delete(a, address)
    assert r.status_code == 404, r.text
    assert r.json()["code"] == "not_found"


def test_delete_unknown_and_malformed(node):
    r = delete(node, "http://127.0.0.1:1")
    assert r.status_code == 404, r.text
    assert r.json()["code"] == "not_found" and "No registered node" in r.json()["message"]
    r = delete(node, "no port here")
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "invalid"


def test_registering_this_node_itself_is_refused(node):
    info = node.get("/node/info").json()
    for own in ("http://127.0.0.1:%d" % node.port, "localhost:%d" % node.port,
                info["p2p_endpoint"]):
        r = node.post("/nodes/register", {"nodes": ["127.0.0.1:5999", own]})
        assert r.status_code == 400, r.text
        assert r.json()["code"] == "self", r.text
        assert "this node's own address" in r.json()["message"]
    # All or nothing: the other address was not added either.
    assert nodes(node) == []


def test_delete_is_an_admin_route():
    fd, path = tempfile.mkstemp(prefix="cbtoken", dir="/tmp")
    with os.fdopen(fd, "w") as f:
        f.write(TOKEN + "\n")
    os.chmod(path, 0o600)
    node = Node(extra_args=["--admin-token-file", path])
    try:
        node.start()
        auth = {"Authorization": "Bearer " + TOKEN}
        r = node.post("/nodes/register", {"nodes": ["127.0.0.1:5999"]}, headers=auth)
        assert r.status_code == 201, r.text
        r = delete(node, "127.0.0.1:5999")
        assert r.status_code == 401 and r.json()["code"] == "unauthorized", r.text
        assert [n["address"] for n in nodes(node)] == ["http://127.0.0.1:5999"]
        r = delete(node, "127.0.0.1:5999", headers=auth)
        assert r.status_code == 200, r.text
        assert nodes(node) == []
    finally:
        node.close()
        os.unlink(path)
