#!/usr/bin/env bash
# A batch of FER-2013 experiments on the GPU machine (issue 9), resumable: run it again with the
# same arguments and finished seeds are read back, interrupted ones resumed, missing ones trained.
#
#   FER_TRAIN=path/to/fer-train DATA=/path/to/fer2013 RUNS=/path/to/runs SEEDS=1,2,3 \
#     bash scripts/gpu/fer2013_batch.sh teacher_resnet50 exp3_baseline exp5_hybrid_kd ...
#
# Each JOB is a config stem under configs/fer2013/. Teachers train with TEACHER_SEED (default 0),
# students with SEEDS; students' teacher checkpoints are taken from RUNS. STUDENT overrides the
# student architecture (e.g. STUDENT=mobilenet_v3_small; the run name gets a suffix).
# SET adds overrides to every run (space-separated KEY=VALUE, e.g. SET=optim.cuda_graphs=false).
# Every run: RUNS/<name>[-<student>]/seed<k>/ with metrics.jsonl, best.safetensors, curves.png;
# RUNS/<name>/summary.md holds mean ± std over the seeds.
set -euo pipefail
bin="${FER_TRAIN:-target/release/fer-train}"
data="${DATA:?DATA=/path/to/fer2013}"
runs="${RUNS:?RUNS=/path/to/runs}"
seeds="${SEEDS:-1,2,3}"
tseed="${TEACHER_SEED:-0}"
workers="${WORKERS:-14}"
teacher_ckpt() { echo "$runs/fer2013_teacher_$1/seed$tseed/best.safetensors"; }
for job in "$@"; do
  cfg="configs/fer2013/$job.toml"
  [ -f "$cfg" ] || { echo "no config $cfg" >&2; exit 2; }
  args=(--set "data.root=$data" --set "data.workers=$workers" --set "output_dir=$runs")
  case "$job" in
    teacher_*) s="$tseed" ;;
    exp2_*) s="$seeds"
      args+=(--set "teachers.0.checkpoint=$(teacher_ckpt resnet50)"
             --set "teachers.1.checkpoint=$(teacher_ckpt inception_v3)") ;;
    exp4_*|exp5_*) s="$seeds"; args+=(--set "teachers.0.checkpoint=$(teacher_ckpt resnet50)") ;;
    *) s="$seeds" ;;
  esac
  if [ -n "${STUDENT:-}" ] && [[ "$job" != teacher_* ]]; then
    name="$(sed -n 's/^name = "\(.*\)"/\1/p' "$cfg" | head -n1)-${STUDENT}"
    args+=(--set "model.arch=\"$STUDENT\"" --set "name=\"$name\"")
  fi
  for kv in ${SET:-}; do args+=(--set "$kv"); done
  echo "== $job (seeds $s) $(date +%T)"
  "$bin" -q run --config "$cfg" "${args[@]}" --seeds "$s" --device cuda
done
