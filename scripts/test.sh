#!/usr/bin/env bash
# The test command of the README: sets up whatever is missing (scripts/setup.sh), then runs every
# test of the workspace. Safe to re-run; the second time only the tests run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
# A one-node Slurm for train/tests/sweep_slurm.rs (installed once; under a second when it runs
# already). Without it that test fails under CI=true and is skipped, saying why, elsewhere.
bash scripts/slurm_local.sh || [ "${CI:-}" != true ]
cargo test --workspace --no-fail-fast
