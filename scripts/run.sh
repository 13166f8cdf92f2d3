#!/usr/bin/env bash
# Set up (idempotent) and start the all-in-one cloud: the API server plus this host's L2, DHCP,
# L3 and metadata agents, with a host-only external network "public" (203.0.113.0/24).
# Usage (as root): scripts/run.sh [--bind HOST:PORT] [--state-dir DIR]     (stop: .venv/bin/neutrino down)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
    echo "run.sh: the all-in-one cloud builds namespaces and bridges: run it as root (sudo scripts/run.sh)" >&2
    exit 1
fi
scripts/setup.sh
args=("$@")
case " $* " in *" --state-dir "*) ;; *) args+=(--state-dir "$PWD/state") ;; esac
exec .venv/bin/neutrino up "${args[@]}"
