"""GET /status answers within a second whatever the services do: each is
given 500 ms (not gateway/request_timeout_ms), so a frozen one is named
down at once, and comes back up when it resumes."""

import signal
import time

import pytest

from chainbus_node import wait_for

SERVICES = ("chainstore", "mempool", "peersync")


def timed_status(node):
    started = time.monotonic()
    r = node.get("/status", timeout=30)
    elapsed = time.monotonic() - started
    assert r.status_code == 200, r.text
    return r.json(), elapsed


@pytest.mark.parametrize("role", SERVICES)
def test_frozen_service_is_named_down_within_a_second(make_node, role):
    #  The default request timeout (5 s) is what /status must not wait.
    node = make_node(miners=0)
    status, _ = timed_status(node)
    assert status["ok"], status
    pid = node.signal_service(role, signal.SIGSTOP)
    try:
        #  At once, and still after its heartbeat went stale (3.5 s).
        for _ in range(6):
            status, elapsed = timed_status(node)
            assert elapsed < 1.0, "GET /status took %.2f s with %s frozen" % (elapsed, role)
            assert status["services"][role]["up"] is False, status
            assert status["ok"] is False, status
            assert status["services"]["gateway"]["up"] is True, status
            time.sleep(0.7)
        if role == "chainstore":
            assert status["height"] is None and status["tip"] is None, status
        if role == "mempool":
            assert status["mempool"] is None, status
        if role == "peersync":
            assert status["peers"] is None and status["sync"] is None, status
    finally:
        node.signal_service(role, signal.SIGCONT)
    assert node.service_pids(role) == [pid]
    status = wait_for(lambda: (lambda s: s if s["ok"] else None)(node.status()), 30,
                      "GET /status to be ok again after SIGCONT")
    assert all(status["services"][s]["up"] for s in SERVICES), status
    assert status["height"] == 0
    node.assert_no_crash()
