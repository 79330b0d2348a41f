#!/usr/bin/env bash
# Regenerates the committed golden files (scripts/golden/make_golden.py says which and how) with
# the project's venv (scripts/setup.sh). Review the diff: a golden that changes means a reference
# library or a test's input generator changed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
py=.venv/bin/python
inputs=$(mktemp -d)
trap 'rm -rf "$inputs"' EXIT
# The metrics test writes the inputs it generates (seeded) when FER_GOLDEN_INPUTS is set.
FER_GOLDEN_INPUTS="$inputs" cargo test -p fer-metrics --test reference -- \
    golden_inputs_are_written_when_asked
"$py" scripts/golden/make_golden.py metrics "$inputs"
"$py" scripts/golden/make_golden.py pickle
