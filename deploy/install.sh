#!/usr/bin/env bash
#   Install chainbus as a set of systemd services (run as root from the
#   repository). Binaries go to /usr/local/bin, the dashboard to
#   /usr/local/share/chainbus/www, the configuration to /etc/chainbus
#   (an existing file is kept) with a new admin token in
#   /etc/chainbus/admin.token, data to /var/lib/chainbus (user chainbus).
#   Then: systemctl enable --now chainbus.target
#   It installs only what a server runs: the build and runtime packages
#   (scripts/install-deps.sh build runtime), not the test or bench tools.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
    echo "install.sh: run as root" >&2
    exit 1
fi
./scripts/install-deps.sh build runtime
cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release > /dev/null
cmake --build build-release -j "$(nproc)"
cmake --install build-release --prefix /usr/local
id chainbus > /dev/null 2>&1 || useradd --system --home /var/lib/chainbus --shell /usr/sbin/nologin chainbus
install -d -o chainbus -g chainbus -m 0700 /var/lib/chainbus
install -d -m 0755 /etc/chainbus
[ -f /etc/chainbus/chainbus.cfg ] || install -m 0644 deploy/chainbus.cfg /etc/chainbus/chainbus.cfg
#   The admin token (deploy/chainbus.cfg names it): random, kept if present,
#   readable by the chainbus user only.
if [ ! -f /etc/chainbus/admin.token ]; then
    (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > /etc/chainbus/admin.token)
    chown chainbus:chainbus /etc/chainbus/admin.token
fi
install -m 0644 deploy/systemd/*.service deploy/systemd/*.target /etc/systemd/system/
#   The sandbox shared by every chainbus-*.service (a prefix drop-in).
install -d -m 0755 /etc/systemd/system/chainbus-.service.d
install -m 0644 deploy/systemd/chainbus-.service.d/*.conf /etc/systemd/system/chainbus-.service.d/
systemctl daemon-reload 2> /dev/null || echo "install.sh: systemd is not running here; units are installed"
echo "installed: systemctl enable --now chainbus.target"
