#!/usr/bin/env bash
# Set up (idempotent) and run the whole test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
echo "test: ruff (lint)"
.venv/bin/ruff check src tests bench
exec .venv/bin/pytest -n 2 -p no:cacheprovider "$@"
