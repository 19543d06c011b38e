#!/usr/bin/env bash
#  Installs the Debian 12 packages chainbus needs, and only those missing.
#
#  Usage: scripts/install-deps.sh [--list] [build] [runtime] [test] [bench]
#         (default: all four)
#
#  Groups: build and runtime are what a server needs (deploy/install.sh
#  builds there and runs the services: compiler, headers, the shared
#  libraries); test and bench are the test and benchmark tools (browser,
#  pytest, debootstrap, wrk ...), for developers and CI only. With --list
#  it prints the groups' packages, one a line, and installs nothing (the
#  systemd test seeds its Debian rootfs with build and runtime).
#
#  Quiet and idempotent: when everything is present it prints nothing and
#  touches nothing, so it may run before every build. Installing needs
#  root; run as another user with packages missing, it names them and
#  fails rather than half-building.
set -euo pipefail

BUILD_PKGS=(gcc libc6-dev make cmake pkg-config
            libzmq3-dev libczmq-dev libmsgpack-dev libleveldb-dev
            libsodium-dev libmicrohttpd-dev libjansson-dev libssl-dev
            libcurl4-openssl-dev libsystemd-dev)
#  The shared libraries the programs load (what a server runs; the -dev
#  packages above pull them in too, this names them for a host that is
#  given built programs).
RUNTIME_PKGS=(libzmq5 libczmq4 libmsgpackc2 libleveldb1d libsodium23
              libmicrohttpd12 libjansson4 libssl3 libcurl4 libsystemd0)
#  The functional tests use Debian's Python modules (PyPI is not assumed);
#  the dashboard's test drives Debian's Chromium with Selenium.
#  python3-plyvel: test_explorer_routes reads and edits a stopped node's
#  chain store (its summary records).
#  binutils: readelf, for the check that programs link only their layers.
#  clang and libFuzzer: the fuzz suite (fuzz/, CHAINBUS_FUZZ=ON).
#  debootstrap, systemd-container (systemd-nspawn), zstd: the systemd test
#  (tests/systemd/) boots the units in a Debian 12 container it makes.
TEST_PKGS=(binutils python3 python3-pytest python3-requests python3-zmq python3-cryptography
           python3-msgpack python3-plyvel curl chromium chromium-driver python3-selenium
           clang-14 libfuzzer-14-dev
           debootstrap systemd-container zstd
           prometheus)   # promtool and a real Prometheus: tests/functional/test_metrics.py
BENCH_PKGS=(wrk python3 python3-requests python3-plyvel curl)   # plyvel: bench/explorer_routes.py deletes summary records

list_only=0
if [ "${1-}" = --list ]; then
    list_only=1
    shift
fi
groups=("$@")
[ ${#groups[@]} -eq 0 ] && groups=(build runtime test bench)

wanted=()
for group in "${groups[@]}"; do
    case "$group" in
        build)   wanted+=("${BUILD_PKGS[@]}") ;;
        runtime) wanted+=("${RUNTIME_PKGS[@]}") ;;
        test)    wanted+=("${TEST_PKGS[@]}") ;;
        bench)   wanted+=("${BENCH_PKGS[@]}") ;;
        *) echo "install-deps: unknown group '$group' (build, runtime, test, bench)" >&2
           exit 2 ;;
    esac
done

if [ "$list_only" = 1 ]; then
    printf '%s\n' "${wanted[@]}" | awk '!seen[$0]++'
    exit 0
fi

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
