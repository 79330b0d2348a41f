#!/usr/bin/env bash
# Export FER-2013 student checkpoints to ONNX, calibrate and evaluate them (issue 9): the
# temperature is fitted on the run's calibration hold-out (split.json beside the checkpoint,
# from data.calib_fraction; a run without one, on its validation share of train), then
# PublicTest is evaluated with ONNX Runtime and tract (every metric at the fitted T and at
# T = 1), once more with flip and with ten-crop test-time augmentation (ONNX Runtime), and
# CK+48 cross-dataset (the six shared classes).
#
#   bash scripts/fer2013_eval.sh OUT_DIR NAME=CHECKPOINT [NAME=CHECKPOINT ...]
#   e.g. bash scripts/fer2013_eval.sh runs/fer2013-eval exp3_s1=runs/fer2013_exp3_baseline/seed1/best.safetensors
#
# Writes OUT_DIR/<name>.onnx (raw), OUT_DIR/<name>.cal.onnx (calibrated, when the run has a
# hold-out) and OUT_DIR/<name>-{calib,holdout,ort,tract,flip,tencrop,ckplus}.txt plus the eval
# folders (holdout: the calibrated model on the hold-out that calibrated it); prints one
# line per step. Data: ../shared/data (override with DATA=...). BIN=folder with fer-export and
# fer-infer skips the build; PARALLEL=N evaluates N checkpoints at once.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out="${1:?usage: fer2013_eval.sh OUT_DIR NAME=CHECKPOINT ...}"; shift
export DATA="${DATA:-../shared/data}" OUT="$out"
if [ -z "${BIN:-}" ]; then cargo build -q --bins; export BIN=target/debug; else export BIN; fi
mkdir -p "$out"
one() {
  set -euo pipefail
  local name="${1%%=*}" ckpt="${1#*=}" model plan
  "$BIN/fer-export" --onnx --checkpoint "$ckpt" --out "$OUT/$name.onnx" > /dev/null
  model="$OUT/$name.onnx"
  plan="$(dirname "$ckpt")/split.json"
  part=""
  if [ -f "$plan" ] && grep -q '"calibration"' "$plan"; then
    part=calibration
  elif [ -f "$plan" ] && grep -q '"stratified"' "$plan"; then
    part=validation  # trained without a calibration hold-out: its validation share calibrates
  fi
  if [ -n "$part" ]; then
    "$BIN/fer-infer" calibrate --model "$model" --data "$DATA/fer2013" --format fer2013-folder \
      --split train --holdout "$plan" --holdout-part "$part" --out "$OUT/$name.cal.onnx" \
      > "$OUT/$name-calib.txt" 2>&1
    echo "$name calibration: $(grep -E '^fitted T' "$OUT/$name-calib.txt")"
    model="$OUT/$name.cal.onnx"
    # The calibrated model on the hold-out that fitted T (predictions.csv for
    # scripts/calibration_diagnostics.py HOLDOUT_DIR TEST_DIR; its ECE and NLL are the
    # calibration's own, also in -calib.txt).
    "$BIN/fer-infer" eval --model "$model" --data "$DATA/fer2013" --format fer2013-folder \
      --split train --holdout "$plan" --holdout-part "$part" --bootstrap 0 \
      --out "$OUT/$name-holdout" > "$OUT/$name-holdout.txt" 2>&1
    echo "$name fer2013/train $part share: $(grep -E '^(accuracy|NLL)' "$OUT/$name-holdout.txt" | tr -s ' ' | paste -sd ';')"
  fi
  for b in ort tract; do
    "$BIN/fer-infer" eval --model "$model" --data "$DATA/fer2013" --format fer2013-folder \
      --split val --backend "$b" --out "$OUT/$name-$b" > "$OUT/$name-$b.txt" 2>&1
    echo "$name fer2013/val $b: $(grep -E '^accuracy' "$OUT/$name-$b.txt")"
  done
  "$BIN/fer-infer" eval --model "$model" --data "$DATA/fer2013" --format fer2013-folder \
    --split val --backend ort --tta flip --out "$OUT/$name-flip" > "$OUT/$name-flip.txt" 2>&1
  echo "$name fer2013/val ort, flip TTA: $(grep -E '^accuracy' "$OUT/$name-flip.txt")"
  "$BIN/fer-infer" eval --model "$model" --data "$DATA/fer2013" --format fer2013-folder \
    --split val --backend ort --tta ten-crop --out "$OUT/$name-tencrop" > "$OUT/$name-tencrop.txt" 2>&1
  echo "$name fer2013/val ort, ten-crop TTA: $(grep -E '^accuracy' "$OUT/$name-tencrop.txt")"
  "$BIN/fer-infer" eval --model "$model" --data "$DATA/ckplus48" --format ckplus \
    --backend ort --out "$OUT/$name-ckplus" > "$OUT/$name-ckplus.txt" 2>&1
  echo "$name ckplus48 ort: $(grep -E '^accuracy' "$OUT/$name-ckplus.txt")"
}
export -f one
printf '%s\n' "$@" | xargs -P "${PARALLEL:-1}" -I{} bash -c 'one "$1"' _ {}
