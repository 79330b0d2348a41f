#!/usr/bin/env bash
# Training throughput, fer-train against PyTorch eager, side by side on one GPU (issue 8).
# Run on the GPU machine from the repository root:
#   FER_TRAIN=path/to/release/fer-train PYTHON=/opt/torch/.venv/bin/python \
#     bash scripts/gpu/bench_training.sh OUT_DIR
# Needs: a release fer-train (cargo build --release -p fer-train) and a Python with torch and
# torchvision. Writes OUT_DIR/{ours,torch}.jsonl and prints a markdown table.
set -euo pipefail
out="${1:?usage: bench_training.sh OUT_DIR}"
bin="${FER_TRAIN:-target/release/fer-train}"
py="${PYTHON:-python3}"
steps="${STEPS:-30}"
warmup="${WARMUP:-10}"
mkdir -p "$out"
: > "$out/ours.jsonl"
: > "$out/torch.jsonl"
"$bin" env | tee "$out/env.txt"
"$py" -c 'import torch, torchvision; print("torch", torch.__version__, "torchvision", torchvision.__version__, torch.cuda.get_device_name())' | tee -a "$out/env.txt"

# (architectures, sizes, precisions) groups; every run channels-last, batch 256.
groups=(
  "mobilenet_v3_small,mobilenet_v3_large,efficientnet_b0|112,224|fp32,bf16"
  "resnet50|224|fp32,bf16"
  "inception_v3|299|fp32,bf16"
)
for g in "${groups[@]}"; do
  IFS='|' read -r archs sizes precs <<< "$g"
  "$bin" -q bench --arch "$archs" --size "$sizes" --precision "$precs" --channels-last \
    --warmup "$warmup" --steps "$steps" --device cuda | tee -a "$out/ours.jsonl"
  "$py" scripts/gpu/torch_eager_bench.py --arch "$archs" --size "$sizes" --precision "$precs" \
    --channels-last --warmup "$warmup" --steps "$steps" | tee -a "$out/torch.jsonl"
done
# The exp5 step: MobileNetV3-Large student at 112 px, frozen ResNet-50 teacher at 112 px.
for p in fp32 bf16; do
  "$bin" -q bench --arch mobilenet_v3_large --size 112 --precision "$p" --channels-last \
    --teacher resnet50@112 --warmup "$warmup" --steps "$steps" --device cuda | tee -a "$out/ours.jsonl"
  "$py" scripts/gpu/torch_eager_bench.py --arch mobilenet_v3_large --size 112 --precision "$p" \
    --channels-last --teacher resnet50@112 --warmup "$warmup" --steps "$steps" | tee -a "$out/torch.jsonl"
done

"$py" - "$out" <<'PY'
import json, sys
out = sys.argv[1]
load = lambda f: {(r["model"], r["step"], r["precision"]): r for r in map(json.loads, open(f"{out}/{f}"))}
ours, ref = load("ours.jsonl"), load("torch.jsonl")
print("\n| model | step | precision | fer-train img/s | PyTorch eager img/s | ratio |")
print("|---|---|---|---:|---:|---:|")
for k, r in ours.items():
    t = ref.get(k)
    ratio = f"{r['img_per_s'] / t['img_per_s']:.2f}" if t else "-"
    tv = f"{t['img_per_s']:,.0f}" if t else "-"
    print(f"| {k[0]} | {k[1]} | {k[2]} | {r['img_per_s']:,.0f} | {tv} | {ratio} |")
PY
