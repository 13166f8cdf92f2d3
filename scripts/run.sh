#!/usr/bin/env bash
# Set up (idempotent) and run the all-in-one neutrino server.
# Usage: scripts/run.sh [--bind HOST:PORT] [--state-dir DIR] [--db URL]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
args=("$@")
case " $* " in *" --state-dir "*) ;; *) args+=(--state-dir "$PWD/state") ;; esac
exec .venv/bin/neutrino server "${args[@]}"
