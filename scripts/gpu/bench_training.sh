#!/usr/bin/env bash
# Training throughput, fer-train against PyTorch eager, side by side on one GPU (issue 8).
# Run on the GPU machine from the repository root:
#   FER_TRAIN=path/to/release/fer-train PYTHON=/opt/torch/.venv/bin/python \
#     bash scripts/gpu/bench_training.sh OUT_DIR
# Needs: a release fer-train (cargo build --release -p fer-train) and a Python with torch and
# torchvision. fer-train runs every configuration twice, eagerly and with the step captured as a
# CUDA graph (`--cuda-graphs`, what training does by default). GRAPH_ONLY_LARGE=1 skips the eager
# fer-train run of ResNet-50 and Inception-v3. Writes OUT_DIR/{ours,torch}.jsonl and prints a
# markdown table. With LOADER_BENCH=path/to/loader_bench (cargo build --release -p fer-data
# --example loader_bench) and FER2013=path/to/fer2013, the data loader runs on real FER-2013 (its
# packed cache, built on first use) at the same time as the MobileNetV3 group, with
# LOADER_WORKERS workers (default 8), handing over 8-bit pixel batches as fer-train does by default
# (data.pixel_batches; LOADER_FLOAT=1 for float32 batches), and its images/s are printed under the
# table.
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
ours() {
  "$bin" -q bench "$@" --channels-last --warmup "$warmup" --steps "$steps" --device cuda \
    | tee -a "$out/ours.jsonl"
}
loader_pid=""
if [ -n "${LOADER_BENCH:-}" ]; then
  pixels=--pixels
  if [ -n "${LOADER_FLOAT:-}" ]; then pixels=; fi
  "$LOADER_BENCH" --root "${FER2013:?FER2013=/path/to/fer2013}" --cache "$out/fer2013_train.fercache" \
    --size 112 --epochs 6 --workers "${LOADER_WORKERS:-8}" ${pixels} > "$out/loader.txt" 2>&1 &
  loader_pid=$!
fi
for g in "${groups[@]}"; do
  IFS='|' read -r archs sizes precs <<< "$g"
  if [ "${GRAPH_ONLY_LARGE:-0}" != 1 ] || [[ "$archs" == *mobilenet* ]]; then
    ours --arch "$archs" --size "$sizes" --precision "$precs"
  fi
  ours --arch "$archs" --size "$sizes" --precision "$precs" --cuda-graphs
  "$py" scripts/gpu/torch_eager_bench.py --arch "$archs" --size "$sizes" --precision "$precs" \
    --channels-last --warmup "$warmup" --steps "$steps" | tee -a "$out/torch.jsonl"
done
# The exp5 step: MobileNetV3-Large student at 112 px, frozen ResNet-50 teacher at 112 px.
for p in fp32 bf16; do
  ours --arch mobilenet_v3_large --size 112 --precision "$p" --teacher resnet50@112
  ours --arch mobilenet_v3_large --size 112 --precision "$p" --teacher resnet50@112 --cuda-graphs
  "$py" scripts/gpu/torch_eager_bench.py --arch mobilenet_v3_large --size 112 --precision "$p" \
    --channels-last --teacher resnet50@112 --warmup "$warmup" --steps "$steps" | tee -a "$out/torch.jsonl"
done

[ -z "$loader_pid" ] || wait "$loader_pid"

"$py" - "$out" <<'PY'
import json, sys
out = sys.argv[1]
rows = lambda f: [json.loads(l) for l in open(f"{out}/{f}") if l.startswith("{")]
key = lambda r: (r["model"], r["step"], r["precision"])
ref = {key(r): r for r in rows("torch.jsonl")}
eager, graph = {}, {}
for r in rows("ours.jsonl"):
    (graph if r.get("graph_replays", 0) > 0 else eager)[key(r)] = r
fmt = lambda r: f"{r['img_per_s']:,.0f}" if r else "-"
print("\n| model | step | precision | fer-train eager | fer-train CUDA graph | PyTorch eager | best fer-train / PyTorch |")
print("|---|---|---|---:|---:|---:|---:|")
for k in dict.fromkeys(list(eager) + list(graph)):
    e, g, t = eager.get(k), graph.get(k), ref.get(k)
    best = max(x["img_per_s"] for x in (e, g) if x)
    ratio = f"{best / t['img_per_s']:.2f}" if t else "-"
    print(f"| {k[0]} | {k[1]} | {k[2]} | {fmt(e)} | {fmt(g)} | {fmt(t)} | {ratio} |")
import os
if os.path.exists(f"{out}/loader.txt"):
    print("\nloader on FER-2013 (augmented, 112 px, run beside the MobileNetV3 group):")
    print("".join(l for l in open(f"{out}/loader.txt") if l.startswith(("epoch", "opened", "cache")) or "batches of" in l))
PY
