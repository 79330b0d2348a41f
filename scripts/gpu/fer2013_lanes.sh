#!/usr/bin/env bash
# Issue 9's whole FER-2013 programme on one GPU machine, as four lanes of runs that share the
# GPUs (two per GPU: a single MobileNetV3 run leaves an H200 half idle): both teachers, exp2–exp5
# with MobileNetV3-Large over SEEDS, then CK+48 exp1 (the FER-2013 exp3 student fine-tuned by
# subject folds) against the CK+48 baseline from scratch. Resumable: run it again and finished
# runs are read back (fer2013_batch.sh, ckplus_folds.sh).
#
#   FER_TRAIN=fer-train DATA=/data (holding fer2013/ and ckplus48/) RUNS=/runs GPUS=2 \
#     bash scripts/gpu/fer2013_lanes.sh
#
# Logs: RUNS/lane<k>.log; a line in RUNS/lanes.done per finished lane.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
data="${DATA:?DATA=/folder holding fer2013/ and ckplus48/}"
runs="${RUNS:?RUNS=/path/to/runs}"
gpus="${GPUS:-1}"
export FER_TRAIN RUNS="$runs" DATA="$data/fer2013" WORKERS="${WORKERS:-7}" TEACHER_SEED=0
mkdir -p "$runs"
batch() { SEEDS="$1" bash scripts/gpu/fer2013_batch.sh "${@:2}"; }
# Waits until the teacher run has finished (outcome.json is written last).
teacher() {
  until [ -f "$runs/fer2013_teacher_$1/seed0/outcome.json" ]; do sleep 5; done
}
lane() {
  local k="$1"; shift
  export CUDA_VISIBLE_DEVICES=$(( (k / 2) % gpus ))
  { echo "lane $k on GPU $CUDA_VISIBLE_DEVICES $(date +%T)"; "$@"; echo "lane $k ended $(date +%T)"; } \
    > "$runs/lane$k.log" 2>&1
  echo "lane $k $(date +%T)" >> "$runs/lanes.done"
}
lane0() { batch 0 teacher_resnet50; batch 1 exp5_hybrid_kd exp4_rkd; teacher inception_v3; batch 1 exp2_response_kd_two_phase; }
lane1() { batch 0 teacher_inception_v3; teacher resnet50; batch 2 exp5_hybrid_kd exp4_rkd exp2_response_kd_two_phase; }
lane2() { batch 1 exp3_baseline; teacher resnet50; batch 3 exp5_hybrid_kd exp4_rkd; }
lane3() {
  batch 2 exp3_baseline; batch 3 exp3_baseline
  DATA="$data/ckplus48" SEEDS=1 PARALLEL=3 WORKERS=2 bash scripts/gpu/ckplus_folds.sh exp3_baseline
  until [ -f "$runs/fer2013_exp3_baseline/seed1/outcome.json" ]; do sleep 5; done
  DATA="$data/ckplus48" SEEDS=1 PARALLEL=3 WORKERS=2 \
    INIT="$runs/fer2013_exp3_baseline/seed1/best.safetensors" \
    bash scripts/gpu/ckplus_folds.sh exp1_finetune_fer2013
  teacher inception_v3; batch 3 exp2_response_kd_two_phase
}
lane 0 lane0 & lane 1 lane1 & lane 2 lane2 & lane 3 lane3 &
wait
# Summaries over all seeds (every seed is finished: nothing trains).
batch 1,2,3 exp3_baseline exp4_rkd exp5_hybrid_kd exp2_response_kd_two_phase > "$runs/summary.log" 2>&1
echo "all lanes done $(date +%T)"
