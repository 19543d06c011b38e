"""The two shipped configuration files name every setting: config/chainbus.cfg
(development) and deploy/chainbus.cfg (production). `chainbus config`
prints the one table of settings (libcommon/src/cbus_config.c); a key
missing from a file leaves its operator without the setting's comment, and
a key in a file that the table does not know stops the node at start."""

import os
import re
import subprocess

from chainbus_node import bin_dir

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def keys(text):
    """section/key for every `key = "value"` line of a ZPL text."""
    found, section = set(), None
    for line in text.splitlines():
        if re.match(r"^\w", line):
            section = line.strip()
        match = re.match(r"^\s+(\w+)\s*=", line)
        if match and section:
            found.add(section + "/" + match.group(1))
    return found


def table():
    r = subprocess.run([os.path.join(bin_dir(), "chainbus"), "config"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    found = keys(r.stdout)
    assert "node/network" in found and "network/block_interval" in found, found
    return found


def test_each_shipped_file_names_every_setting():
    every = table()
    for name in ("config/chainbus.cfg", "deploy/chainbus.cfg"):
        path = os.path.join(REPO, name)
        with open(path, encoding="utf-8") as f:
            listed = keys(f.read())
        assert not every - listed, "%s lacks %s" % (name, sorted(every - listed))
        assert not listed - every, "%s has unknown %s" % (name, sorted(listed - every))
        #  And the node reads it.
        r = subprocess.run([os.path.join(bin_dir(), "chainbus"), "config", "--config", path],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, (name, r.stderr)
