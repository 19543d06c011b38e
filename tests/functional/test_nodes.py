"""POST /nodes/register and GET /nodes/resolve."""

import pytest


def register(node, nodes):
    return node.post("/nodes/register", {"nodes": nodes})


def test_register_three_forms_once_and_after_restart(make_node):
    node = make_node()
    forms = ["http://127.0.0.1:5101", "127.0.0.1:5102", "tcp://127.0.0.1:5103"]
    r = register(node, forms)
    assert r.status_code == 201, r.text
    j = r.json()
    assert j["message"] == "New nodes have been added"
    total = j["total_nodes"]
    assert isinstance(total, list) and len(total) == 3, total
    for port in ("5101", "5102", "5103"):
        assert sum(port in t for t in total) == 1, (port, total)

    #  Twice adds once, in any of the forms.
    r = register(node, forms + ["http://127.0.0.1:5101"])
    assert r.status_code == 201, r.text
    assert sorted(r.json()["total_nodes"]) == sorted(total)

    #  The list survives a full stop and start.
    node.restart()
    r = register(node, ["127.0.0.1:5104"])
    assert r.status_code == 201, r.text
    after = r.json()["total_nodes"]
    assert len(after) == 4, after
    assert set(total) <= set(after)

    listed = node.get("/nodes")
    assert listed.status_code == 200, listed.text
    assert sorted(p["address"] for p in listed.json()["nodes"]) == sorted(after)

    #  And a kill -9 of peersync.
    node.kill_service("peersync")
    r = register(node, ["127.0.0.1:5104"])
    assert r.status_code == 201, r.text
    assert sorted(r.json()["total_nodes"]) == sorted(after)


@pytest.mark.parametrize("bad", [
    "not an address",
    "ftp://127.0.0.1:5000",
    "http://",
    "127.0.0.1",
    "127.0.0.1:0",
    "127.0.0.1:99999",
    "127.0.0.1:port",
    "http://127.0.0.1:5000/path?x=1",
    "",
    " 127.0.0.1:5000",
    "tcp://:5000",
    "udp://127.0.0.1:5000",
    "http://127.0.0.1:5000\r\nX-Injected: 1",
    "a" * 5000,
])
def test_register_refuses_bad_addresses_and_adds_nothing(node, bad):
    before = register(node, ["127.0.0.1:5201"]).json()["total_nodes"]
    #  A bad address among good ones: refused whole.
    r = register(node, ["127.0.0.1:5202", bad])
    assert r.status_code == 400, (bad, r.status_code, r.text)
    assert isinstance(r.json()["message"], str)
    #  peersync's refusal, its code passed through.
    assert r.json()["code"] == "invalid", r.text
    after = register(node, ["127.0.0.1:5201"]).json()["total_nodes"]
    assert sorted(after) == sorted(before)
    assert not any("5202" in p for p in after)


@pytest.mark.parametrize("body", [
    {}, {"nodes": []}, {"nodes": "127.0.0.1:5000"}, {"nodes": [5000]},
    {"nodes": [None]}, {"nodes": {"a": "127.0.0.1:5000"}}, {"node": ["127.0.0.1:5000"]},
    [], "nodes", None,
])
def test_register_refuses_bad_bodies(node, body):
    r = node.post("/nodes/register", body) if body is not None else \
        node.post("/nodes/register", data=b"null", headers={"Content-Type": "application/json"})
    assert r.status_code == 400, (body, r.status_code, r.text)
    assert isinstance(r.json()["message"], str)
    assert r.json()["code"] == "bad_json", r.text
    node.assert_no_crash()


def test_resolve_without_peers(make_node):
    node = make_node()
    node.mine()
    r = node.get("/nodes/resolve")
    assert r.status_code == 200, r.text
    j = r.json()
    assert j["message"] == "Our chain is authoritative"
    chain = node.chain()["chain"]
    assert [b["hash"] for b in j["chain"]] == [b["hash"] for b in chain]
    assert node.status()["height"] == chain[-1]["index"]
