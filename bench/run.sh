#!/usr/bin/env bash
#  Benchmarks: install what is missing, build a Release into build/, then
#  run bench/bench.py (see its --help). Every argument goes to bench.py:
#    bench/run.sh                         everything (2 to 3 minutes)
#    bench/run.sh --only http             ceilings and POST /transactions/new
#    bench/run.sh --compare old.json      beside an earlier run's figures
#  CHAINBUS_BENCH_NO_BUILD=1 skips the build (with --bin DIR, say).
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh build bench
if [ "${CHAINBUS_BENCH_NO_BUILD:-0}" != 1 ]; then
    cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build build -j"$(nproc)" >/dev/null
fi
#  Debian's python3 has python3-requests; one earlier on PATH may not.
PYTHON=/usr/bin/python3
[ -x "$PYTHON" ] || PYTHON=python3
exec "$PYTHON" bench/bench.py "$@"
