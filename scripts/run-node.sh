#!/usr/bin/env bash
#  The README's first command: install what is missing, build a Release
#  into build/, and run a whole node in the foreground on
#  http://localhost:5000 with its data in ./chainbus-data.
#  Extra arguments go to `chainbus node` (for example --miners 2).
#  Ctrl-C stops every service of the node.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh build
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
exec build/bin/chainbus node --http-port 5000 --data-dir ./chainbus-data "$@"
