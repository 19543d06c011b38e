"""libcommon is split into libraries by layer so that a program links only
what it uses (CMakeLists.txt): the built programs' dynamic sections
(readelf -d) show which shared libraries each really needs."""

import os
import re
import subprocess

import pytest

from chainbus_node import bin_dir

#  What each program must not need: a miner or the bus has no storage, no
#  HTTP server and no HTTP client; only the tools and peersync fetch over
#  HTTP; only the stores open LevelDB. (Smaller libraries such as jansson
#  may still be listed: a sanitizer build links without --as-needed.)
FORBIDDEN = {
    "chainbus-miner": ["libleveldb", "libmicrohttpd", "libcurl"],
    "chainbus-bus": ["libleveldb", "libmicrohttpd", "libcurl"],
    "chainbus-gateway": ["libleveldb", "libcurl"],
    "chainbus-chainstore": ["libmicrohttpd", "libcurl"],
    "chainbus-mempool": ["libmicrohttpd", "libcurl"],
    "chainbus-peersync": ["libleveldb", "libmicrohttpd"],
}
#  And what some of them must need, so that the check reads real output.
REQUIRED = {
    "chainbus-miner": ["libzmq", "libczmq"],
    "chainbus-gateway": ["libmicrohttpd"],
    "chainbus-chainstore": ["libleveldb"],
    "chainbus": ["libleveldb", "libcurl"],
}


def needed(program):
    out = subprocess.run(["readelf", "-d", os.path.join(bin_dir(), program)],
                         check=True, capture_output=True, text=True).stdout
    return [re.sub(r"\.so.*", "", name) for name in re.findall(r"NEEDED.*\[(.+?)\]", out)]


@pytest.mark.parametrize("program", sorted(set(FORBIDDEN) | set(REQUIRED)))
def test_program_links_only_its_layers(program):
    libraries = needed(program)
    for library in REQUIRED.get(program, []):
        assert library in libraries, "%s should need %s: %s" % (program, library, libraries)
    for library in FORBIDDEN.get(program, []):
        assert library not in libraries, "%s needs %s: %s" % (program, library, libraries)
