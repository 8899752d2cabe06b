#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, and runs every test target. Integration
# tests start their own private PostgreSQL cluster (or use $TOVD_TEST_DATABASE_URL).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
swift build --build-tests
swift test --skip-build "$@"
