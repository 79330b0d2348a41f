#!/usr/bin/env bash
# Regenerates the committed golden files (scripts/golden/make_golden.py says which and how) with
# the project's venv (scripts/setup.sh). Review the diff: a golden that changes means a reference
# library or a test's input generator changed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
py=.venv/bin/python
inputs=$(mktemp -d)
trap 'rm -rf "$inputs"' EXIT
# The tests write the inputs they generate (seeded) when FER_GOLDEN_INPUTS is set.
export FER_GOLDEN_INPUTS="$inputs"
cargo test -p fer-metrics --test reference -- golden_inputs_are_written_when_asked
cargo test -p fer-data --test preprocess --test synth -- golden_inputs_are_written_when_asked
unset FER_GOLDEN_INPUTS
"$py" scripts/golden/make_golden.py metrics "$inputs"
"$py" scripts/golden/make_golden.py pickle
"$py" scripts/golden/make_golden.py pth
"$py" scripts/golden/make_golden.py preprocess "$inputs"
"$py" scripts/golden/make_golden.py synth "$inputs"
