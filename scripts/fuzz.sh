#!/usr/bin/env bash
#  Runs the libFuzzer harnesses (fuzz/) longer than the test suite does,
#  one at a time, and merges what they find into the committed corpus.
#
#  Usage: scripts/fuzz.sh [SECONDS] [HARNESS...]
#    SECONDS   how long each harness runs (default 300)
#    HARNESS   which (default all: tx_json tx block bus_msg bus_frames peer
#              config key seal import metrics)
#  Environment: NICE (default 10), the niceness of the runs.
#
#  Each harness runs on a copy of fuzz/corpus/<name>/ in
#  build-fuzz/fuzz/long/<name>/; afterwards the inputs that add coverage
#  are merged into fuzz/corpus/<name>/ (libFuzzer -merge=1, which keeps
#  only the inputs that add coverage), ready to commit. A crash stops that
#  harness: its input is kept as build-fuzz/fuzz/long/<name>/crash-*
#  (copy it to fuzz/corpus/<name>/crash-<what> once fixed). Prints, per
#  harness: executions per second, libFuzzer's coverage (cov:, edges
#  reached), the corpus size before and after. Exit status: 0 when no
#  harness found anything.
set -uo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-300}
shift || true
harnesses=("$@")
[ ${#harnesses[@]} -eq 0 ] && harnesses=(tx_json tx block bus_msg bus_frames peer config key seal import metrics)
nice_level=${NICE:-10}

./scripts/install-deps.sh build test || exit 1
grep -qs '^CMAKE_C_COMPILER:.*clang-14$' build-fuzz/CMakeCache.txt || rm -f build-fuzz/CMakeCache.txt
cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang-14 -DCHAINBUS_FUZZ=ON >/dev/null || exit 1
cmake --build build-fuzz -j2 --target fuzz >/dev/null || exit 1

found=0
printf '%-11s %8s %6s %9s %9s  %s\n' harness exec/s cov before after result
for name in "${harnesses[@]}"; do
    harness=build-fuzz/bin/fuzz_$name
    corpus=fuzz/corpus/$name
    work=build-fuzz/fuzz/long/$name
    if [ ! -x "$harness" ] || [ ! -d "$corpus" ]; then
        echo "fuzz.sh: no harness '$name'" >&2
        found=1
        continue
    fi
    rm -rf "$work"
    mkdir -p "$work/corpus"
    cp -R "$corpus"/. "$work/corpus/"
    before=$(ls "$corpus" | wc -l)
    nice -n "$nice_level" "$harness" -max_total_time="$seconds" -timeout=10 \
        -rss_limit_mb=2048 -close_fd_mask=3 -print_final_stats=1 \
        -artifact_prefix="$work/" "$work/corpus" >"$work/log" 2>&1
    rc=$?
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/log" | tail -1)
    cov=$(grep -oE 'cov: [0-9]+' "$work/log" | tail -1 | sed 's/cov: //')
    result=ok
    if [ "$rc" -ne 0 ]; then
        result="FOUND (exit $rc): $(ls "$work" | grep -E '^(crash|leak|oom|timeout)-' | head -1)"
        found=1
    fi
    #  New inputs that add coverage go into the committed corpus.
    nice -n "$nice_level" "$harness" -merge=1 -close_fd_mask=3 -artifact_prefix="$work/" \
        "$corpus" "$work/corpus" \
        >"$work/merge.log" 2>&1 || true
    after=$(ls "$corpus" | wc -l)
    printf '%-11s %8s %6s %9s %9s  %s\n' "$name" "${speed:-?}" "${cov:-?}" "$before" "$after" "$result"
done
exit "$found"
