"""docs/bus.md lists exactly the messages and fields that the one
definition of each message (libcommon/include/cbus_msgs.h) has: every
request, reply and event with its fields, their types and order, nested
maps included. The definitions are read from the built program
(`cbus_selftest --messages`), so a field added in the code and not in the
page, or the other way round, fails here."""

import os
import re
import subprocess

from chainbus_node import REPO, bin_dir

DOC = os.path.join(REPO, "docs", "bus.md")
TOKEN = re.compile(r"\s*(\w+|[{}\[\]:,?])")


def parse_body(text):
    """'{a: int, b?: [bin32], c: {d: str} or nil}' -> [("a", "int"),
    ("b", "[bin32]?"), ("c", "map|nil"), ("c.d", "str")]."""
    tokens = TOKEN.findall(text)
    position = 0

    def take(expected=None):
        nonlocal position
        token = tokens[position]
        assert expected is None or token == expected, (expected, token, text)
        position += 1
        return token

    def parse_map(prefix):
        fields = []
        take("{")
        while tokens[position] != "}":
            name = take()
            optional = tokens[position] == "?"
            if optional:
                take("?")
            take(":")
            kind, nested = parse_type(prefix + name + ".")
            if position < len(tokens) and tokens[position] == "or":
                take("or")
                take("nil")
                kind += "|nil"
            fields.append((prefix + name, kind + ("?" if optional else "")))
            fields.extend(nested)
            if tokens[position] == ",":
                take(",")
        take("}")
        return fields

    def parse_type(prefix):
        if tokens[position] == "{":
            return "map", parse_map(prefix)
        if tokens[position] == "[":
            take("[")
            kind, nested = parse_type(prefix)
            take("]")
            return "[%s]" % kind, nested
        return take(), []

    fields = parse_map("")
    assert position == len(tokens), "trailing text in %r" % text
    return fields


def first_body(cell):
    """The first `{...}` code span of a table cell, or None."""
    match = re.search(r"`(\{.*?\})`", cell)
    return match.group(1) if match else None


def documented():
    """{(kind, wire, service): [(field, type)]} from docs/bus.md."""
    messages = {}
    service = "any"
    table = None
    with open(DOC, encoding="utf-8") as page:
        for line in page:
            heading = re.match(r"^### (\w+)", line)
            if heading:
                service = heading.group(1)
            if line.startswith("| topic |"):
                table = "events"
            elif line.startswith("| command |"):
                table = "commands"
            elif not line.startswith("|"):
                table = None
            if not table or line.startswith("|---") or line.startswith("| topic") \
                    or line.startswith("| command"):
                continue
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            name = re.match(r"`([^`]+)`", cells[0])
            if table == "events":
                key = ("EVENT", name.group(1), cells[1])
                messages[key] = parse_body(first_body(cells[2]))
            elif name:
                messages[("REQUEST", name.group(1), service)] = parse_body(first_body(cells[1]))
                messages[("REPLY", name.group(1), service)] = parse_body(first_body(cells[2]))
            else:
                #  The refusal row: any command, any service.
                messages[("REPLY", "*", "any")] = parse_body(first_body(cells[2]))
    return messages


def defined():
    """{(kind, wire, service): [(field, type)]} from the definitions."""
    out = subprocess.run([os.path.join(bin_dir(), "cbus_selftest"), "--messages"],
                         check=True, capture_output=True, text=True).stdout
    messages = {}
    for line in out.splitlines():
        kind, wire, service, _name, *fields = line.split()
        pairs = []
        for field in fields:
            name, kind_text = field.split(":", 1)
            pairs.append((name, kind_text))
        messages[(kind, wire, service)] = pairs
    return messages


def test_parser_reads_nested_bodies():
    assert parse_body("{a: int, b?: [bin32], c: {d: str} or nil, e: [{f: bool}]}") == [
        ("a", "int"), ("b", "[bin32]?"), ("c", "map|nil"), ("c.d", "str"),
        ("e", "[map]"), ("e.f", "bool")]


def test_every_message_is_documented_with_its_fields():
    code = defined()
    docs = documented()
    assert len(code) > 40
    missing = sorted(set(code) - set(docs))
    extra = sorted(set(docs) - set(code))
    assert not missing, "defined but not in docs/bus.md: %s" % missing
    assert not extra, "in docs/bus.md but not defined: %s" % extra
    for key in sorted(code):
        assert docs[key] == code[key], "%s %s (%s): docs %s, code %s" % (
            key[0], key[1], key[2], docs[key], code[key])
