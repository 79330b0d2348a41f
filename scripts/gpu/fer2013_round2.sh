#!/usr/bin/env bash
# What the first FER-2013 round (fer2013_lanes.sh) left out, as four lanes on a 2-GPU machine:
# the Inception-v3 teacher at 299 px, exp2 distilled from it, and the MobileNetV3-Small and
# EfficientNet-B0 students of exp3 and exp5, over SEEDS. Trains the ResNet-50 teacher first where
# RUNS lacks it. Resumable like fer2013_batch.sh: finished seeds are read back.
#
#   FER_TRAIN=fer-train DATA=/data/fer2013 RUNS=/runs [HOLD=file] bash scripts/gpu/fer2013_round2.sh
#
# GPU 1 starts at once; GPU 0's lanes wait until the file HOLD (if given) exists, so a benchmark
# can have GPU 0 to itself first. Logs: RUNS/r2lane<k>.log; RUNS/r2lanes.done lists finished lanes.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
runs="${RUNS:?RUNS=/path/to/runs}"
: "${DATA:?DATA=/path/to/fer2013}"
export FER_TRAIN RUNS="$runs" DATA WORKERS="${WORKERS:-6}" TEACHER_SEED=0
seeds="${SEEDS:-1,2,3}"
mkdir -p "$runs"
batch() { SEEDS="$1" bash scripts/gpu/fer2013_batch.sh "${@:2}"; }
teacher() { until [ -f "$runs/fer2013_teacher_$1/seed0/outcome.json" ]; do sleep 5; done; }
hold() { [ -z "${HOLD:-}" ] || until [ -f "$HOLD" ]; do sleep 5; done; }
lane() {
  local k="$1" gpu="$2"; shift 2
  export CUDA_VISIBLE_DEVICES="$gpu"
  { echo "lane $k on GPU $gpu $(date +%T)"; "$@"; echo "lane $k ended $(date +%T)"; } \
    > "$runs/r2lane$k.log" 2>&1
  echo "lane $k $(date +%T)" >> "$runs/r2lanes.done"
}
lane0() {
  batch 0 teacher_resnet50
  STUDENT=mobilenet_v3_small batch "$seeds" exp5_hybrid_kd
  STUDENT=efficientnet_b0 batch "$seeds" exp5_hybrid_kd
}
lane1() { batch 0 teacher_inception_v3; teacher resnet50; batch 1 exp2_response_kd_two_phase; }
lane2() {
  hold
  STUDENT=mobilenet_v3_small batch "$seeds" exp3_baseline
  STUDENT=efficientnet_b0 batch "$seeds" exp3_baseline
}
lane3() { hold; teacher inception_v3; teacher resnet50; batch 2 exp2_response_kd_two_phase; batch 3 exp2_response_kd_two_phase; }
lane 0 1 lane0 & lane 1 1 lane1 & lane 2 0 lane2 & lane 3 0 lane3 &
wait
batch "$seeds" exp2_response_kd_two_phase > "$runs/r2summary.log" 2>&1
for s in mobilenet_v3_small efficientnet_b0; do
  STUDENT=$s batch "$seeds" exp3_baseline exp5_hybrid_kd >> "$runs/r2summary.log" 2>&1
done
echo "round 2 done $(date +%T)"
