#!/usr/bin/env bash
# The test command of the README: sets up whatever is missing (scripts/setup.sh), then runs every
# test of the workspace. Safe to re-run; the second time only the tests run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
cargo test --workspace --no-fail-fast
