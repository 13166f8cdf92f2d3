#!/usr/bin/env bash
# Install what neutrino needs on a Debian machine, idempotently: apt packages, then .venv.
# Usage: scripts/setup.sh            (run as root, or with sudo available for apt)
set -euo pipefail
cd "$(dirname "$0")/.."

# openvswitch-switch: only its binaries and schema are used; every simulated host runs its own
# ovsdb-server/ovs-vswitchd (neutrino.kernel.ovs). A system-wide OVS the package may start
# (where systemd or init scripts run) is left alone and never used.
APT_PACKAGES=(python3 python3-venv python3-dev gcc iproute2 iputils-ping dnsmasq-base nftables busybox ethtool haproxy dnsmasq-utils conntrack openvswitch-switch
              rabbitmq-server postgresql)  # the lab's own services (neutrino lab up --own-services)

missing=()
installed="$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${APT_PACKAGES[@]}" 2>/dev/null || true)"
for pkg in "${APT_PACKAGES[@]}"; do
    grep -qx "$pkg installed" <<<"$installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup: installing apt packages: ${missing[*]}"
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}"
fi

PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv with $($PY --version)"
    "$PY" -m venv .venv
fi
# The stamp holds the hash of the pyproject.toml last installed: a fresh clone or checkout (new
# file times, same pins) finds the environment ready at once; changed pins reinstall.
stamp=.venv/.neutrino-installed
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ ! -x .venv/bin/neutrino ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "setup: installing Python dependencies (pinned in pyproject.toml)"
    .venv/bin/pip install -q --upgrade pip
    .venv/bin/pip install -q -e '.[test]'
    echo "$want" > "$stamp"
fi
echo "setup: ready (.venv/bin/neutrino)"
