#!/usr/bin/env bash
# CK+48 experiments over the 10 subject-grouped folds (issue 9's exp1: our FER-2013 student
# fine-tuned on CK+48, against the same student trained from scratch), resumable like
# fer2013_batch.sh: finished fold runs are read back, interrupted ones resumed.
#
#   FER_TRAIN=path/to/fer-train DATA=/path/to/ckplus48 RUNS=/path/to/runs SEEDS=1 \
#     INIT=/path/to/fer2013_exp3_baseline/seed1/best.safetensors PARALLEL=4 \
#     bash scripts/gpu/ckplus_folds.sh exp1_finetune_fer2013 exp3_baseline
#
# Each JOB is a config stem under configs/ckplus/; INIT replaces model.init.weights of the jobs
# that have one; EXTRA adds fer-train flags (e.g. "--set stages.0.epochs=1"); DEVICE (default
# cuda); PYTHON (default python3) writes the summary. PARALLEL fold runs share the GPU (CK+ runs are small and launch-bound).
# Writes RUNS/ckplus_<job>.summary.json: per seed, the mean over folds of the held-out fold's
# accuracy at the last epoch and at the best epoch (the fold also picks the best epoch, so the
# best-epoch figure is optimistic: the last-epoch one is the honest number).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
bin="${FER_TRAIN:-target/release/fer-train}"
data="${DATA:?DATA=/path/to/ckplus48}"
runs="${RUNS:?RUNS=/path/to/runs}"
seeds="${SEEDS:-1}"
par="${PARALLEL:-4}"
folds="${FOLDS:-10}"
for job in "$@"; do
  cfg="configs/ckplus/$job.toml"
  [ -f "$cfg" ] || { echo "no config $cfg" >&2; exit 2; }
  args=(--set "data.root=$data" --set "data.workers=${WORKERS:-2}" --set "output_dir=$runs")
  if grep -q '^init = ' "$cfg" && [ -n "${INIT:-}" ]; then
    args+=(--set "model.init.weights=$INIT")
  fi
  echo "== $job (folds 0..$((folds - 1)), seeds $seeds, $par at a time) $(date +%T)"
  args+=(${EXTRA:-})
  seq 0 $((folds - 1)) | xargs -P "$par" -I{} sh -c '
    b="$0" c="$1" s="$2" r="$3" j="$4"; shift 4
    "$b" -q run --config "$c" --set data.fold={} --seeds "$s" --device "${DEVICE:-cuda}" "$@" \
      > "$r/ckplus_${j}_fold{}.log" 2>&1 \
      || { echo "fold {} failed:"; tail -5 "$r/ckplus_${j}_fold{}.log"; exit 1; }' \
    "$bin" "$cfg" "$seeds" "$runs" "$job" "${args[@]}"
  "${PYTHON:-python3}" - "$runs" "$cfg" "$folds" <<'PY'
import json, re, statistics, sys, pathlib
runs, cfg, folds = pathlib.Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
name = re.search(r'^name = "(.*)"', open(cfg).read(), re.M).group(1)
per_seed = {}
for k in range(folds):
    d = runs / name.replace("{fold}", str(k))
    for s in sorted(d.glob("seed*")):
        recs = [json.loads(l) for l in open(s / "metrics.jsonl")]
        out = json.load(open(s / "outcome.json"))
        best = next(r for r in recs if r["epoch"] == out["best_epoch"])
        per_seed.setdefault(s.name, []).append(
            {"fold": k, "last": recs[-1]["val_accuracy"], "best": best["val_accuracy"],
             "seconds": sum(r["epoch_seconds"] for r in recs)})
summary = {"config": cfg, "folds": folds, "seeds": {}}
for seed, rows in sorted(per_seed.items()):
    if len(rows) != folds:
        print(f"{seed}: {len(rows)} of {folds} folds finished"); continue
    summary["seeds"][seed] = {"last": statistics.mean(r["last"] for r in rows),
                              "best": statistics.mean(r["best"] for r in rows), "folds": rows}
lasts = [v["last"] for v in summary["seeds"].values()]
if lasts:
    summary["mean_last"] = statistics.mean(lasts)
    summary["std_last"] = statistics.stdev(lasts) if len(lasts) > 1 else 0.0
    summary["mean_best"] = statistics.mean(v["best"] for v in summary["seeds"].values())
job = pathlib.Path(cfg).stem
(runs / f"ckplus_{job}.summary.json").write_text(json.dumps(summary, indent=1))
print(f"{job}: last-epoch accuracy over folds, per seed:",
      {s: round(v["last"] * 100, 2) for s, v in summary["seeds"].items()},
      "best-epoch:", {s: round(v["best"] * 100, 2) for s, v in summary["seeds"].items()})
PY
done
