"""The code stays in pieces that fit in a head (issue 8): no C file over
1,000 lines and no function over 120 lines, self-tests excepted. Functions
are found the way the code is laid out (CLASS style): the name and its
arguments at the start of a line, the body between a `{` and a `}` each
alone at the start of a line."""

import os
import re
import subprocess

from chainbus_node import REPO

MAX_FILE_LINES = 1000
MAX_FUNCTION_LINES = 120
NAME = re.compile(r"^(\w+) \(")


def c_files():
    out = subprocess.run(["git", "ls-files", "*.c"], cwd=REPO, check=True,
                         capture_output=True, text=True).stdout
    return [path for path in out.split() if os.path.exists(os.path.join(REPO, path))]


def functions(path):
    """[(name, first line, body lines)] of a C file."""
    found = []
    name = None
    start = None
    with open(os.path.join(REPO, path), encoding="utf-8") as source:
        for number, line in enumerate(source, 1):
            match = NAME.match(line)
            if match and start is None:
                name = match.group(1)
            elif line.startswith("{") and name and start is None:
                start = number
            elif line.startswith("}") and start is not None:
                found.append((name, start, number - start - 1))
                name = start = None
    return found


def is_self_test(path, name):
    return name.endswith("_test") or path.endswith("_test.c") or "selftest" in path \
        or name.startswith("s_test")


def test_the_shape_finder_sees_functions():
    found = functions("libcommon/src/cbus_util.c")
    names = [name for name, _start, _lines in found]
    assert "cbus_buf_append" in names and "cbus_util_test" in names


def test_no_file_is_over_a_thousand_lines():
    long = []
    for path in c_files():
        with open(os.path.join(REPO, path), encoding="utf-8") as source:
            count = sum(1 for _ in source)
        if count > MAX_FILE_LINES:
            long.append("%s (%d)" % (path, count))
    assert not long, "files over %d lines: %s" % (MAX_FILE_LINES, ", ".join(long))


def test_no_function_is_over_120_lines():
    long = []
    for path in c_files():
        for name, start, lines in functions(path):
            if lines > MAX_FUNCTION_LINES and not is_self_test(path, name):
                long.append("%s:%d %s (%d)" % (path, start, name, lines))
    assert not long, "functions over %d lines: %s" % (MAX_FUNCTION_LINES, ", ".join(long))
