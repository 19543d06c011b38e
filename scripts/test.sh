#!/usr/bin/env bash
#  The README's second command: install what is missing, build, and run
#  every test twice: once on the normal build (build/), once on an
#  AddressSanitizer + UndefinedBehaviorSanitizer build (build-asan/),
#  except the dashboard's browser tests (label browser), run once.
#  Each run is CTest: the libcommon self-tests, then the functional tests
#  (tests/functional/, pytest) that start real nodes from that build.
#  A third suite builds the libFuzzer harnesses with clang (build-fuzz/,
#  CHAINBUS_FUZZ=ON) and runs each on its seed corpus for
#  CHAINBUS_FUZZ_SECONDS (20), JOBS at a time (fuzz/, CTest label fuzz).
#  Once, after the normal suite, tests/systemd/test_systemd.py boots the
#  systemd unit set in a Debian 12 container (systemd-nspawn) and installs
#  it there with deploy/install.sh (a few minutes; it builds its own
#  Release inside; it skips, saying why, where nspawn cannot run).
#
#  Environment: JOBS (parallel builds and CTest entries, default nproc),
#  CHAINBUS_FUZZ_SECONDS (each harness's run, default 20),
#  CHAINBUS_SKIP_ASAN=1 to run the normal build only (for quick local runs;
#  CI never sets it; it skips the fuzz suite too), CHAINBUS_SKIP_SYSTEMD=1
#  to skip the systemd test (it then reports itself skipped).
#  Exit status: 0 only when every build and every test passed.
set -uo pipefail
cd "$(dirname "$0")/.."

JOBS=${JOBS:-$(nproc)}
failures=0
summary=()
total_passed=0
total_failed=0

./scripts/install-deps.sh build runtime test || exit 1

#  run_suite NAME BUILD_DIR [CMAKE_ARGS...]: configure, build, run CTest,
#  and record the counts CTest reports. SUITE_BUILD_ARGS and
#  SUITE_CTEST_ARGS (arrays, empty by default) narrow the build and the
#  tests (the fuzz suite builds and runs only its harnesses).
SUITE_BUILD_ARGS=()
SUITE_CTEST_ARGS=()
run_suite () {
    local name=$1 dir=$2
    shift 2
    local log="$dir/ctest.log"
    echo "==== $name: configure and build in $dir"
    if ! cmake -S . -B "$dir" "$@" >/dev/null \
       || ! cmake --build "$dir" -j"$JOBS" ${SUITE_BUILD_ARGS[@]+"${SUITE_BUILD_ARGS[@]}"}; then
        summary+=("$name: BUILD FAILED")
        failures=$((failures + 1))
        return
    fi
    echo "==== $name: ctest"
    (cd "$dir" && ctest --output-on-failure -j"$JOBS" --timeout 900 \
                  ${SUITE_CTEST_ARGS[@]+"${SUITE_CTEST_ARGS[@]}"}) 2>&1 | tee "$log"
    local rc=${PIPESTATUS[0]}
    local line passed failed
    line=$(grep -E '[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -1)
    if [ -n "$line" ]; then
        failed=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$line")
        local of
        of=$(sed -E 's/.* failed out of ([0-9]+).*/\1/' <<<"$line")
        passed=$((of - failed))
        total_passed=$((total_passed + passed))
        total_failed=$((total_failed + failed))
        summary+=("$name: $passed passed, $failed failed")
    else
        summary+=("$name: ctest ran no test (exit $rc)")
        failures=$((failures + 1))
    fi
    [ "$rc" -ne 0 ] && failures=$((failures + 1))
    return 0
}

run_suite normal build

#  run_systemd: the systemd test, once (not under the sanitizers: it runs
#  the Release that install.sh builds inside the container). Its counts
#  come from pytest's closing line.
run_systemd () {
    local log=build/systemd.log
    mkdir -p build
    echo "==== systemd: tests/systemd/test_systemd.py (Debian 12 in systemd-nspawn)"
    timeout 3600 /usr/bin/python3 -m pytest -q -p no:cacheprovider -rfEs \
        tests/systemd/test_systemd.py 2>&1 | tee "$log"
    local rc=${PIPESTATUS[0]}
    local line count passed=0 failed=0 skipped=0
    line=$(grep -E '[0-9]+ (passed|failed|skipped|errors?)' "$log" | tail -1)
    for count in $(grep -oE '[0-9]+ passed' <<<"$line" | cut -d' ' -f1); do
        passed=$((passed + count)); done
    for count in $(grep -oE '[0-9]+ (failed|errors?)' <<<"$line" | cut -d' ' -f1); do
        failed=$((failed + count)); done
    for count in $(grep -oE '[0-9]+ skipped' <<<"$line" | cut -d' ' -f1); do
        skipped=$((skipped + count)); done
    [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ] && failed=1
    total_passed=$((total_passed + passed))
    total_failed=$((total_failed + failed))
    summary+=("systemd: $passed passed, $failed failed, $skipped skipped")
    [ "$rc" -ne 0 ] && failures=$((failures + 1))
    return 0
}
run_systemd

if [ "${CHAINBUS_SKIP_ASAN:-0}" != 1 ]; then
    #  Leak checking is on: services shut down cleanly on SIGTERM, and the
    #  functional tests fail a test whose node logged a sanitizer report.
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:halt_on_error=1:strict_string_checks=1
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    #  The dashboard's browser tests (CTest label browser) run on the
    #  normal build only: what they check is the page's JavaScript in
    #  Chromium; the gateway routes they use are run under the sanitizers
    #  by test_events, test_explorer_routes, test_transactions and others.
    SUITE_CTEST_ARGS=(-LE '^browser$')
    run_suite sanitizers build-asan -DCHAINBUS_SANITIZE=ON
    SUITE_CTEST_ARGS=()
    unset ASAN_OPTIONS UBSAN_OPTIONS

    #  Every decoder of outside bytes under libFuzzer (clang, ASan, UBSan):
    #  about 20 s per harness, two at a time. A crash, leak or sanitizer
    #  report fails its entry; the input is kept in build-fuzz/fuzz/run/.
    #  A build-fuzz configured with another compiler would lose the options
    #  when CMake resets its cache: start it afresh.
    grep -qs '^CMAKE_C_COMPILER:.*clang-14$' build-fuzz/CMakeCache.txt \
        || rm -f build-fuzz/CMakeCache.txt
    SUITE_BUILD_ARGS=(--target fuzz)
    SUITE_CTEST_ARGS=(-L '^fuzz$')
    run_suite fuzz build-fuzz -DCMAKE_C_COMPILER=clang-14 -DCHAINBUS_FUZZ=ON \
              -DCHAINBUS_FUZZ_SECONDS="${CHAINBUS_FUZZ_SECONDS:-20}"
    SUITE_BUILD_ARGS=()
    SUITE_CTEST_ARGS=()
fi

echo
echo "==== summary"
for line in "${summary[@]}"; do echo "$line"; done
grep -E '^(FAILED|ERROR|SKIPPED) ' build/systemd.log 2>/dev/null | sed 's|^|  systemd: |'
for dir in build build-asan build-fuzz; do
    [ -f "$dir/ctest.log" ] || continue
    grep -A100 'The following tests FAILED' "$dir/ctest.log" | sed 1d \
        | grep -E '^\s+[0-9]+ - ' | sed "s|^|  $dir:|"
done
echo "all: $total_passed passed, $total_failed failed"
[ "$failures" -eq 0 ] && [ "$total_failed" -eq 0 ]
