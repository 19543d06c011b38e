"""`chainbus tap` prints each bus event as one JSON line."""

import pytest

from chainbus_node import HEX64, Tap, tx_body


@pytest.fixture
def tapped(node):
    taps = []

    def make(prefix=None):
        tap = Tap(node, prefix)
        taps.append(tap)
        return tap

    yield make
    for tap in taps:
        tap.close()
        with open(tap.errors.name, "rb") as f:
            errors = f.read().decode(errors="replace")
        for mark in ("Sanitizer", "runtime error:"):
            assert mark not in errors, errors


def until_seen(node, tap, action, match, tries=10, wait=3.0):
    """Repeat action until the tap shows a matching event: a subscriber
    that has just connected misses what was published before it joined."""
    for _ in range(tries):
        result = action()
        event = tap.wait_event(lambda e: match(e, result), wait)
        if event:
            return result, event
    pytest.fail("tap saw no matching event; it printed:\n%s" % "".join(tap.lines[-20:]))


def test_tap_sees_mined_block(node, tapped):
    tap = tapped("chain.")
    mined, event = until_seen(
        node, tap, node.mine,
        lambda e, m: e["topic"] == "chain.block.connected" and e["body"]["hash"] == m["hash"])
    body = event["body"]
    assert set(event) >= {"topic", "sequence", "body"}
    assert isinstance(event["sequence"], int)
    assert body["src"] == "chainstore"
    assert isinstance(body["boot"], int)
    assert body["height"] == mined["index"]
    assert body["prev_hash"] == mined["previous_hash"]
    assert HEX64.match(body["hash"])
    assert body["txids"] == [t["txid"] for t in mined["transactions"]]
    #  Only what the prefix selects.
    assert all(e["topic"].startswith("chain.") for e in tap.events())

    #  The next block comes next in sequence from the same publisher.
    txid, _ = node.submit(tx_body("tapped"))
    mined2 = node.mine()
    event2 = tap.wait_event(lambda e: e["topic"] == "chain.block.connected"
                            and e["body"]["hash"] == mined2["hash"], 30)
    assert event2, "".join(tap.lines[-20:])
    assert event2["body"]["txids"] == [txid]
    assert event2["sequence"] > event["sequence"]
    assert event2["body"]["boot"] == body["boot"]


def test_tap_without_prefix_sees_every_family(node, tapped):
    tap = tapped()
    (txid, _), event = until_seen(
        node, tap, lambda: node.submit(tx_body("tap-all")),
        lambda e, r: e["topic"] == "mempool.tx.added" and e["body"]["txid"] == r[0])
    assert event["body"]["src"] == "mempool"
    assert event["body"]["users"] == ["user1"]
    assert tap.wait_event(lambda e: e["topic"] == "node.heartbeat", 10)
    node.mine()
    removed = tap.wait_event(lambda e: e["topic"] == "mempool.tx.removed"
                             and e["body"]["txid"] == txid, 30)
    assert removed and removed["body"]["reason"] == "mined"
