#!/usr/bin/env bash
# Set up (idempotent) and run the whole test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
[ "$(id -u)" -eq 0 ] && scripts/services.sh   # PostgreSQL, MariaDB, RabbitMQ if installed but stopped
echo "test: ruff (lint), mypy (types) and import-linter (layers)"
.venv/bin/ruff check src tests bench
.venv/bin/mypy src
.venv/bin/lint-imports --no-cache   # the layering contracts in pyproject.toml
exec .venv/bin/pytest -n 2 --dist loadgroup --durations=25 -p no:cacheprovider "$@"
