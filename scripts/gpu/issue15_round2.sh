#!/usr/bin/env bash
# Issue 15, what the first round left unmeasured, on one GPU:
#   PHASE=tests   the CUDA tests (`#[ignore = "needs a CUDA device"]`) of the test binaries in
#                 TESTS (a folder of `cargo test --no-run` executables), each with --ignored;
#   PHASE=warmup  a 30-epoch MobileNetV3-Large FER-2013 run (exp3, device data path) with
#                 cuDNN's autotuning on and off: wall time, its breakdown, the first epoch;
#   PHASE=bf16    the same run in fp32 and bf16 over SEEDS (two runs at a time on the GPU):
#                 PublicTest accuracy of the epoch chosen on validation, mean ± std;
#   PHASE=compare each model of ARCHS alone on the GPU, in each of PRECISIONS (fp32 bf16): a
#                 30-epoch fer-train run and the PyTorch reference loop
#                 (scripts/gpu/torch_reference_train.py, TORCH_EPOCHS epochs, the first left out
#                 of its img/s) in the same session;
#   PHASE=seeds   each model of ARCHS in fp32 and bf16 over SEEDS, every run at once (under CUDA
#                 MPS where it starts); EfficientNet-B0 at lr 0.05 with gradient clipping (its
#                 seeds spread over 9 points at lr 0.1, docs/results.md): PublicTest accuracy of
#                 the epoch chosen on validation, mean ± std, per model and precision.
#
#   FER_TRAIN=path/to/fer-train DATA=/folder/holding/fer2013 RUNS=/tmp/runs OUT=dir PHASE=... \
#     [TESTS=dir] [EPOCHS=30] [SEEDS="1 2 3"] [ARCHS="..."] [PRECISIONS="fp32 bf16"] bash scripts/gpu/issue15_round2.sh
#
# Resumable: a finished run (outcome.json) is read back, not trained again. Tables go to
# OUT/<phase>.md.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
out="${OUT:?OUT=/path/for/results}"
phase="${PHASE:?PHASE=tests|warmup|bf16|compare|seeds}"
epochs="${EPOCHS:-30}"
seeds="${SEEDS:-1 2 3}"
mkdir -p "$out"

run() { # name extra-args... (arch: ARCH, default MobileNetV3-Large)
  local name="$1"; shift
  local runs="${RUNS:?RUNS=/path/to/runs}"
  local dir="$runs/$name"
  if [ ! -f "$dir/outcome.json" ]; then
    mkdir -p "$runs"
    local t0; t0=$(date +%s.%N)
    "${FER_TRAIN:?}" -q run --config configs/fer2013/exp3_baseline.toml --overwrite \
      --set name="$name" --set data.root="${DATA:?}/fer2013" --set output_dir="$runs" \
      --set model.arch="${ARCH:-mobilenet_v3_large}" --set data.workers=8 \
      --set "stages.0.epochs=$epochs" "$@" > "$dir.log" 2>&1 \
      || { echo "$name failed:"; tail -5 "$dir.log"; }
    python3 -c "import sys, time; print(time.time() - float(sys.argv[1]))" "$t0" > "$dir.wall"
  fi
}

# precision_table SHARING MODEL=PREFIX...: for each model, PublicTest accuracy (mean ± std over
# SEEDS, epoch chosen on validation) of the runs PREFIX{fp32,bf16}_s<seed>, and bf16 − fp32.
precision_table() {
  python3 - "$RUNS" "$seeds" "$@" <<'PY'
import json, os, statistics, sys
runs, seeds, sharing, pairs = sys.argv[1], sys.argv[2].split(), sys.argv[3], sys.argv[4:]
print(f"| model | precision | PublicTest %, mean ± std (epoch chosen on val) | last epoch | per seed | train img/s (epochs 2+, {sharing}) |")
print("|---|---|---:|---:|---|---:|")
for pair in pairs:
    model, prefix = pair.split("=", 1)
    means = {}
    for p in ("fp32", "bf16"):
        best, last, speed = [], [], []
        for s in seeds:
            d = os.path.join(runs, f"{prefix}{p}_s{s}")
            try:
                t = json.load(open(os.path.join(d, "test.json")))
                recs = [json.loads(l) for l in open(os.path.join(d, "metrics.jsonl"))]
            except (OSError, ValueError):
                continue
            best.append(100 * t["best"]["accuracy"])
            last.append(100 * t["last"]["accuracy"])
            speed.append(statistics.mean(r["img_per_s"] for r in recs[1:]))
        if len(best) < 2:
            print(f"| {model} | {p} | {len(best)} finished |")
            continue
        means[p] = statistics.mean(best)
        ms = lambda v: f"{statistics.mean(v):.2f} ± {statistics.stdev(v):.2f}"
        print(f"| {model} | {p} | {ms(best)} | {ms(last)} | {' / '.join(f'{b:.2f}' for b in best)} | {statistics.mean(speed):,.0f} |")
    if len(means) == 2:
        print(f"| {model} | bf16 − fp32 | {means['bf16'] - means['fp32']:+.2f} | | | |")
PY
}

case "$phase" in
tests)
  : > "$out/tests.md"
  for t in "${TESTS:?TESTS=folder of test binaries}"/*; do
    echo "== $(basename "$t")" | tee -a "$out/tests.md"
    "$t" --ignored --test-threads 1 2>&1 | grep -E "^test |test result|panicked|differ" \
      | tee -a "$out/tests.md"
  done
  ;;
warmup)
  run warm_benchmark_on --set seed=1
  run warm_benchmark_off --set seed=1 --set optim.cudnn_benchmark=false
  python3 - "$RUNS" warm_benchmark_on warm_benchmark_off <<'PY' | tee "$out/warmup.md"
import json, os, sys
runs = sys.argv[1]
print("| run | wall s (process) | set-up | training | validation | checkpoints | test | epoch 1 s | epochs 2+ s (mean) | PublicTest % (best on val) |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for name in sys.argv[2:]:
    d = os.path.join(runs, name)
    try:
        o = json.load(open(os.path.join(d, "outcome.json")))["seconds"]
        recs = [json.loads(l) for l in open(os.path.join(d, "metrics.jsonl"))]
        test = json.load(open(os.path.join(d, "test.json")))
        wall = float(open(d + ".wall").read())
    except (OSError, ValueError, KeyError) as e:
        print(f"| {name} | missing: {e} |")
        continue
    rest = [r["epoch_seconds"] for r in recs[1:]]
    print(f"| {name} | {wall:.1f} | {o['setup']:.1f} | {o['train']:.1f} | {o['validation']:.1f} | "
          f"{o['checkpoints']:.1f} | {o['test']:.1f} | {recs[0]['epoch_seconds']:.1f} | "
          f"{sum(rest) / max(len(rest), 1):.2f} | {100 * test['best']['accuracy']:.2f} |")
PY
  ;;
bf16)
  for s in $seeds; do
    run "fp32_s$s" --set seed="$s" &
    run "bf16_s$s" --set seed="$s" --set optim.precision=bf16 &
    wait
  done
  precision_table "two runs sharing the GPU" mobilenet_v3_large= | tee "$out/bf16.md"
  ;;
compare)
  : > "$out/torch.jsonl"
  for a in ${ARCHS:-mobilenet_v3_small mobilenet_v3_large efficientnet_b0}; do
    for p in ${PRECISIONS:-fp32 bf16}; do
      ARCH="$a" run "cmp_${a}_$p" --set seed=1 --set optim.precision="$p"
      "${PYTHON:-python3}" scripts/gpu/torch_reference_train.py --root "${DATA:?}/fer2013" \
        --arch "$a" --precision "$p" --epochs "${TORCH_EPOCHS:-4}" --json "$out/torch.jsonl" \
        > "$out/torch_${a}_$p.log" 2>&1
    done
  done
  python3 - "$RUNS" "$out/torch.jsonl" <<'PY' | tee "$out/compare.md"
import json, os, statistics, sys
runs, torch_file = sys.argv[1], sys.argv[2]
ref = {}
for line in open(torch_file):
    r = json.loads(line)
    ref[(r["arch"], r["precision"])] = r["train_img_per_s"]
print("| model | precision | fer-train run wall s | fer-train img/s (epochs 2+) | PyTorch reference img/s | ratio | PublicTest % (best on val) |")
print("|---|---|---:|---:|---:|---:|---:|")
for name in sorted(os.listdir(runs)):
    if not name.startswith("cmp_") or not os.path.isdir(os.path.join(runs, name)):
        continue
    arch, p = name[4:].rsplit("_", 1)
    d = os.path.join(runs, name)
    try:
        recs = [json.loads(l) for l in open(os.path.join(d, "metrics.jsonl"))]
        test = json.load(open(os.path.join(d, "test.json")))
        wall = float(open(d + ".wall").read())
    except (OSError, ValueError):
        print(f"| {arch} | {p} | unfinished |")
        continue
    mine = statistics.mean(r["img_per_s"] for r in recs[1:])
    theirs = ref.get((arch, p))
    ratio = f"{mine / theirs:.2f}" if theirs else "-"
    print(f"| {arch} | {p} | {wall:.1f} | {mine:,.0f} | {theirs or 0:,.0f} | {ratio} | {100 * test['best']['accuracy']:.2f} |")
PY
  ;;
seeds)
  # shellcheck source=scripts/gpu/mps.sh
  source scripts/gpu/mps.sh
  archs="${ARCHS:-mobilenet_v3_small efficientnet_b0}"
  for a in $archs; do
    extra=()
    [ "$a" = efficientnet_b0 ] && extra=(--set optim.lr=0.05 --set optim.grad_clip_norm=5.0)
    for s in $seeds; do
      for p in fp32 bf16; do
        ARCH="$a" run "seeds_${a}_${p}_s$s" --set seed="$s" --set optim.precision="$p" \
          --set data.workers=2 "${extra[@]}" &
      done
    done
  done
  wait
  # shellcheck disable=SC2046 # one MODEL=PREFIX pair per word
  precision_table "every run sharing the GPU" $(for a in $archs; do echo "$a=seeds_${a}_"; done) \
    | tee "$out/seeds.md"
  ;;
*) echo "PHASE must be tests, warmup, bf16, compare or seeds"; exit 2 ;;
esac
