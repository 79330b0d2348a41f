#!/usr/bin/env bash
# The main job of the README, end to end on the built-in synthetic expression set:
#   set-up (if missing) → build → synthetic data → teacher (ResNet-18) → exp5 student
#   (MobileNetV3-Small, hybrid KD) and beside it the exp3 baseline (the same student on the
#   labels only) → ONNX export → temperature calibration on a hold-out of train → evaluation with
#   ONNX Runtime and tract → report, with what KD added over the baseline.
# Everything lands in runs/ (the report: runs/demo/report.md).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
t0=$(date +%s)
bash scripts/setup.sh
cargo build --bins
bin=target/debug
step() { printf '\n== %s (%d s)\n' "$*" "$(( $(date +%s) - t0 ))" >&2; }

step "synthetic data"
if [ ! -d runs/demo-data/val ]; then
  "$bin/fer-train" synth --out runs/demo-data --seed 0 --train-per-class 200 --val-per-class 50
fi
step "teacher: ResNet-18 (half width, 64 px)"
"$bin/fer-train" run --config configs/demo/teacher_resnet18.toml --overwrite
step "student: MobileNetV3-Small, exp5 hybrid KD (Hinton KD + RKD distance)"
"$bin/fer-train" run --config configs/demo/exp5_hybrid_kd.toml --overwrite
step "baseline: the same student on the labels only (exp3), to show what KD adds"
"$bin/fer-train" run --config configs/demo/exp3_baseline.toml --overwrite
mkdir -p runs/demo
for m in student:demo_exp5_hybrid_kd baseline:demo_exp3_baseline; do
  name=${m%%:*} run=runs/${m#*:}
  step "$name: export to ONNX"
  "$bin/fer-export" --onnx --checkpoint "$run/best.safetensors" --out "runs/demo/$name.onnx"
  step "$name: calibrate the temperature on the training run's hold-out (data.calib_fraction)"
  "$bin/fer-infer" calibrate --model "runs/demo/$name.onnx" --data runs/demo-data \
    --format fer2013-folder --split train --holdout "$run/split.json" \
    --out "runs/demo/$name.calibrated.onnx"
done
step "baseline: evaluate with ort"
"$bin/fer-infer" eval --model runs/demo/baseline.calibrated.onnx --data runs/demo-data \
  --format fer2013-folder --split val --backend ort --out runs/demo/eval-baseline-ort
for backend in ort tract; do
  step "evaluate with $backend"
  "$bin/fer-infer" eval --model runs/demo/student.calibrated.onnx --data runs/demo-data \
    --format fer2013-folder --split val --backend "$backend" --out "runs/demo/eval-$backend"
done
step "parity between runtimes"
"$bin/fer-infer" parity --model runs/demo/student.calibrated.onnx --data runs/demo-data/val --max-images 64
step "report"
"$bin/fer-infer" report runs/demo/eval-ort runs/demo/eval-tract runs/demo/eval-baseline-ort \
  --baseline baseline.calibrated --out runs/demo
echo
echo "done in $(( $(date +%s) - t0 )) s; report: runs/demo/report.md, curves: runs/demo_exp5_hybrid_kd/curves.png"
