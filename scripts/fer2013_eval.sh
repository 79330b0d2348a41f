#!/usr/bin/env bash
# Export FER-2013 student checkpoints to ONNX and evaluate them (issue 9): PublicTest with ONNX
# Runtime and tract, and cross-dataset on CK+48 (the six shared classes) with ONNX Runtime.
#
#   bash scripts/fer2013_eval.sh OUT_DIR NAME=CHECKPOINT [NAME=CHECKPOINT ...]
#   e.g. bash scripts/fer2013_eval.sh runs/fer2013-eval exp3_s1=runs/fer2013_exp3_baseline/seed1/best.safetensors
#
# Writes OUT_DIR/<name>.onnx and OUT_DIR/<name>-{ort,tract,ckplus}/ (metrics.json, plots) and
# prints one line per evaluation. Data: ../shared/data (override with DATA=...).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out="${1:?usage: fer2013_eval.sh OUT_DIR NAME=CHECKPOINT ...}"; shift
data="${DATA:-../shared/data}"
cargo build -q --bins
bin=target/debug
mkdir -p "$out"
for spec in "$@"; do
  name="${spec%%=*}"; ckpt="${spec#*=}"
  "$bin/fer-export" --onnx --checkpoint "$ckpt" --out "$out/$name.onnx"
  for b in ort tract; do
    "$bin/fer-infer" eval --model "$out/$name.onnx" --data "$data/fer2013" --format fer2013-folder \
      --split val --backend "$b" --out "$out/$name-$b" > "$out/$name-$b.txt" 2>&1
    echo "$name fer2013/val $b: $(grep -E '^accuracy' "$out/$name-$b.txt")"
  done
  "$bin/fer-infer" eval --model "$out/$name.onnx" --data "$data/ckplus48" --format ckplus \
    --backend ort --out "$out/$name-ckplus" > "$out/$name-ckplus.txt" 2>&1
  echo "$name ckplus48 ort: $(grep -E '^accuracy' "$out/$name-ckplus.txt")"
done
