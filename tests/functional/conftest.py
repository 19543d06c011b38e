"""Fixtures for the functional tests: whole nodes, one per module or test.

Each node has its own free port and its own data folder under /tmp, so that
test files can run in parallel (CTest runs one file per entry). Set
CHAINBUS_BIN to test another build (CTest points it at its build's bin/),
CHAINBUS_KEEP_TMP=1 to keep the data folders and logs.
"""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from chainbus_node import Node, bin_dir  # noqa: E402
#  The dashboard tests' Chromium fixtures (browser, phone), for every file.
from chainbus_browser import _desktop_browser, _phone_browser, browser, phone  # noqa: E402,F401


def pytest_configure(config):
    launcher = os.path.join(bin_dir(), "chainbus")
    if not os.access(launcher, os.X_OK):
        raise pytest.UsageError("no %s: build first, or set CHAINBUS_BIN" % launcher)


@pytest.fixture(scope="module")
def node():
    """One running node shared by the tests of a module (easy proof of
    work, one miner). Tests that need a pristine node use make_node."""
    n = Node()
    try:
        n.start()
        yield n
    finally:
        n.close()


@pytest.fixture
def make_node():
    """Factory: make_node(miners=1, extra_args=[...], start=True) -> Node.
    Every node made is stopped at the end of the test, and the test fails
    if a sanitizer reported anything in its log."""
    made = []

    def make(start=True, **kw):
        n = Node(**kw)
        made.append(n)
        if start:
            n.start()
        return n

    yield make
    errors = []
    for n in made:
        try:
            n.close()
        except Exception as e:  # report every node, not just the first
            errors.append(str(e))
    if errors:
        pytest.fail("\n".join(errors), pytrace=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each test's outcome on its item, so that fixtures tearing down
    (chainbus_browser's screenshots) know whether it failed."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.chainbus_call_report = report
