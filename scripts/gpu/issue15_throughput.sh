#!/usr/bin/env bash
# End-to-end training throughput on one GPU (issue 15): whole `fer-train run`s on FER-2013 with
# the device data path, the graphed step alone (`fer-train bench --cuda-graphs`), and the PyTorch
# reference loop with GPU augmentation (scripts/gpu/torch_reference_train.py), in one session.
#
#   FER_TRAIN=path/to/release/fer-train DATA=/path/holding/fer2013 RUNS=/tmp/runs OUT=dir \
#     [EPOCHS=30] [TORCH_EPOCHS=6] [ARCHS="mobilenet_v3_small mobilenet_v3_large efficientnet_b0"] \
#     bash scripts/gpu/issue15_throughput.sh
#
# Writes OUT/throughput.md (a table) and OUT/*.jsonl; each run's directory stays under RUNS.
# Resumable: a finished run (outcome.json) is read back, not trained again.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
bin="${FER_TRAIN:?FER_TRAIN=path/to/fer-train}"
data="${DATA:?DATA=/folder holding fer2013/}"
runs="${RUNS:?RUNS=/path/to/runs}"
out="${OUT:?OUT=/path/for/results}"
epochs="${EPOCHS:-30}"
torch_epochs="${TORCH_EPOCHS:-6}"
archs="${ARCHS:-mobilenet_v3_small mobilenet_v3_large efficientnet_b0}"
py="${PYTHON:-python3}"
mkdir -p "$runs" "$out"
: > "$out/step.jsonl"
: > "$out/torch.jsonl"
"$bin" env > "$out/env.txt" 2>&1

run() { # name config arch extra...
  local name="$1" cfg="$2" arch="$3"; shift 3
  local dir="$runs/$name"
  if [ ! -f "$dir/outcome.json" ]; then
    local t0; t0=$(date +%s.%N); mkdir -p "$runs"
    "$bin" -q run --config "$cfg" --overwrite --set name="$name" \
      --set data.root="$data/fer2013" --set output_dir="$runs" --set model.arch="$arch" \
      --set data.workers=8 --set "stages.0.epochs=$epochs" --set seed=1 "$@" \
      > "$dir.log" 2>&1 || { echo "$name failed:"; tail -5 "$dir.log"; }
    python3 -c "import sys, time; print(time.time() - float(sys.argv[1]))" "$t0" > "$dir.wall"
  fi
}
for a in $archs; do
  run "exp3_$a" configs/fer2013/exp3_baseline.toml "$a"
  "$bin" -q bench --arch "$a" --size 112 --precision fp32,bf16 --channels-last --cuda-graphs \
    --warmup 20 --steps 60 --device cuda >> "$out/step.jsonl" 2>/dev/null
done
# The same MobileNetV3-Small run with the CPU loader (the path before issue 15), for comparison.
if [ -n "${LOADER_BASELINE:-}" ]; then
  run exp3_mobilenet_v3_small_loader configs/fer2013/exp3_baseline.toml mobilenet_v3_small \
    --set data.device_data=off
fi
run teacher_resnet50 configs/fer2013/teacher_resnet50.toml resnet50
"$bin" -q bench --arch resnet50 --size 112 --precision bf16 --channels-last --cuda-graphs \
  --warmup 10 --steps 40 --device cuda >> "$out/step.jsonl" 2>/dev/null
for a in $archs; do
  "$py" scripts/gpu/torch_reference_train.py --root "$data/fer2013" --arch "$a" \
    --epochs "$torch_epochs" --json "$out/torch.jsonl" > "$out/torch_$a.log" 2>&1
done
"$py" - "$runs" "$out" <<'PY' | tee "$out/throughput.md"
import json, os, sys
runs, out = sys.argv[1], sys.argv[2]
step = {}
for line in open(os.path.join(out, "step.jsonl")):
    try:
        r = json.loads(line)
    except ValueError:
        continue
    arch, _ = r["model"].split("@")
    if r["precision"] == ("bf16" if arch == "resnet50" else "fp32"):
        step[arch] = r["img_per_s"]
    print(f"step {r['model']} {r['precision']}: {r['img_per_s']:,.0f} img/s", file=sys.stderr)
torch = {}
for line in open(os.path.join(out, "torch.jsonl")):
    r = json.loads(line)
    torch[r["arch"]] = r
print("| model | run wall s | train img/s (mean of epochs) | graphed step img/s | run / step | PyTorch ref img/s | run / PyTorch | data path | test acc (best on val) |")
print("|---|---:|---:|---:|---:|---:|---:|---|---:|")
for name in sorted(os.listdir(runs)):
    d = os.path.join(runs, name)
    if not os.path.isfile(os.path.join(d, "metrics.jsonl")):
        continue
    recs = [json.loads(l) for l in open(os.path.join(d, "metrics.jsonl"))]
    arch = name.split("_", 1)[1].replace("_loader", "") if name.startswith("exp3_") else "resnet50"
    ips = sum(r["img_per_s"] for r in recs) / len(recs)
    wall = open(d + ".wall").read().strip() if os.path.exists(d + ".wall") else "?"
    env = json.load(open(os.path.join(d, "env.json")))
    test = json.load(open(os.path.join(d, "test.json")))["best"]["accuracy"] if os.path.exists(os.path.join(d, "test.json")) else float("nan")
    s = step.get(arch)
    t = torch.get(arch, {}).get("train_img_per_s")
    ratio = f"{ips / s:.2f}" if s else "–"
    tr = f"{ips / t:.2f}" if t else "–"
    print(f"| {name} | {float(wall):.0f} | {ips:,.0f} | {s or 0:,.0f} | {ratio} | {t or 0:,.0f} | {tr} | {env.get('data_path','?')} | {100 * test:.2f} |")
PY
