"""The small input rules of issue 9: a query parameter given twice, a
number out of range in a cursor or a limit, and a JSON number that could
not come back exactly as given are each a 400 that names the problem and
changes nothing; a number that can come back does, unchanged."""

import json
import re

import pytest

from chainbus_node import tx_body

JSON = {"Content-Type": "application/json"}


def assert_400(r, *words):
    assert r.status_code == 400, (r.status_code, r.text[:300])
    j = r.json()
    assert re.fullmatch(r"[a-z_]+", j["code"]), j
    for word in words:
        assert word in j["message"], (word, j)
    return j


@pytest.mark.parametrize("query,name", [
    ("user=user1&user=user2", "user"),
    ("user=user1&limit=5&limit=6", "limit"),
    ("key=k&before=1:0&before=2:0", "before"),
])
def test_doubled_parameter_is_400_naming_it(node, query, name):
    j = assert_400(node.get("/transactions?" + query), "Query parameter %s " % name,
                   "more than once")
    assert j["code"] == "invalid"


def test_doubled_parameter_on_any_route(node):
    assert_400(node.get("/chain?format=a&format=a"), "format", "more than once")
    assert_400(node.get("/status?x=1&x="), "Query parameter x ")


@pytest.mark.parametrize("cursor", [
    "99999999999999999999:0",       # beyond 64 bits: used to wrap silently
    "9223372036854775808:0",        # beyond 63 bits
    "1:4294967296",                 # index beyond 32 bits
    "-1:0", "+1:0", " 1:0", "1:", ":1", "1", "1:2:3", "0x10:0",
])
def test_cursor_out_of_range_is_400(node, cursor):
    assert_400(node.get("/transactions", params={"user": "user1", "before": cursor}),
               "before must be")


@pytest.mark.parametrize("limit", ["0", "101", "18446744073709551617", "-5", "1e2", ""])
def test_limit_out_of_range_is_400(node, limit):
    assert_400(node.get("/transactions", params={"user": "user1", "limit": limit}),
               "limit must be 1 to 100")


def test_cursor_in_range_is_taken(node):
    r = node.get("/transactions", params={"user": "nobody-here", "before": "9223372036854775807:4294967295",
                                          "limit": "100"})
    assert r.status_code == 200, r.text
    assert r.json() == {"transactions": [], "next": None}


@pytest.mark.parametrize("number", [
    "1e-400",                        # below the smallest double: was stored as 0.0
    "-1e-400",
    "0.10000000000000000001",        # more digits than a double keeps
    "123456789012345678.5",
    "2.4703282292062327e-324",       # rounds to a neighbour
])
def test_number_that_cannot_come_back_is_400(node, number):
    before = node.mempool_size()
    raw = json.dumps(tx_body(data=["X"])).replace('"X"', number)
    j = assert_400(node.post("/transactions/new", data=raw, headers=JSON),
                   "cannot be kept exactly", number[:12])
    assert j["code"] == "bad_json"
    assert node.mempool_size() == before


def test_numbers_come_back_as_given(node):
    """Integers of 64 bits, and reals a double holds, come back as the same
    numbers (a real in its shortest form: 1.50 comes back as 1.5)."""
    given = ("[0.1, 1.50, -0.0, 5e-324, 1e300, 1.7976931348623157e308, "
             "-9223372036854775808, 9223372036854775807, 12345678901234567, 2.5e-3]")
    raw = json.dumps(tx_body(data="X")).replace('"X"', given)
    r = node.post("/transactions/new", data=raw, headers=JSON)
    assert r.status_code == 201, r.text
    back = node.tx(r.json()["txid"]).json()
    data = back["transaction"]["data"] if "transaction" in back else back["data"]
    assert data == json.loads(given)
    assert [repr(x) for x in data[:2]] == ["0.1", "1.5"]
    assert isinstance(data[6], int) and data[7] == 2 ** 63 - 1


def test_integer_beyond_64_bits_is_400(node):
    raw = json.dumps(tx_body(data=["X"])).replace('"X"', "18446744073709551616")
    assert_400(node.post("/transactions/new", data=raw, headers=JSON), "a number is too large")
