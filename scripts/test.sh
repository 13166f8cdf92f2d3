#!/usr/bin/env bash
# Set up (idempotent) and run the whole test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
[ "$(id -u)" -eq 0 ] && scripts/services.sh   # PostgreSQL, MariaDB, RabbitMQ if installed but stopped
echo "test: ruff (lint) and mypy (types)"
.venv/bin/ruff check src tests bench
.venv/bin/mypy src
exec .venv/bin/pytest -n 2 -p no:cacheprovider "$@"
