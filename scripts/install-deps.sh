#!/usr/bin/env bash
#  Installs the Debian 12 packages chainbus needs, and only those missing.
#
#  Usage: scripts/install-deps.sh [build] [test] [bench]   (default: all three)
#
#  Quiet and idempotent: when everything is present it prints nothing and
#  touches nothing, so it may run before every build. Installing needs
#  root; run as another user with packages missing, it names them and
#  fails rather than half-building.
set -euo pipefail

BUILD_PKGS=(gcc make cmake pkg-config
            libzmq3-dev libczmq-dev libmsgpack-dev libleveldb-dev
            libsodium-dev libmicrohttpd-dev libjansson-dev libssl-dev
            libcurl4-openssl-dev)
#  The functional tests use Debian's Python modules (PyPI is not assumed);
#  the dashboard's test drives Debian's Chromium with Selenium.
#  binutils: readelf, for the check that programs link only their layers.
#  clang and libFuzzer: the fuzz suite (fuzz/, CHAINBUS_FUZZ=ON).
TEST_PKGS=(binutils python3 python3-pytest python3-requests python3-zmq python3-cryptography
           python3-msgpack curl chromium chromium-driver python3-selenium
           clang-14 libfuzzer-14-dev)
BENCH_PKGS=(wrk python3 python3-requests curl)
#  prometheus: promtool and a real Prometheus server for the metrics test
#  (tests/functional/test_metrics.py).
TEST_PKGS+=(prometheus)

groups=("$@")
[ ${#groups[@]} -eq 0 ] && groups=(build test bench)

wanted=()
for group in "${groups[@]}"; do
    case "$group" in
        build) wanted+=("${BUILD_PKGS[@]}") ;;
        test)  wanted+=("${TEST_PKGS[@]}") ;;
        bench) wanted+=("${BENCH_PKGS[@]}") ;;
        *) echo "install-deps: unknown group '$group' (build, test, bench)" >&2
           exit 2 ;;
    esac
done

missing=()
for pkg in "${wanted[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    if [ "$status" != "install ok installed" ]; then
        case " ${missing[*]-} " in
            *" $pkg "*) ;;
            *) missing+=("$pkg") ;;
        esac
    fi
done

[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing Debian packages: ${missing[*]}" >&2
    echo "install-deps: run as root, or: sudo apt-get install ${missing[*]}" >&2
    exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
