#!/usr/bin/env bash
# Issue 15's "must hold": the CPU loader and the device data path give the same FER-2013
# accuracy within seed noise (exp3, MobileNetV3-Large, SEEDS), all runs at once on one GPU.
#
#   FER_TRAIN=path/to/fer-train DATA=/folder/holding/fer2013 RUNS=/tmp/runs [SEEDS="1 2 3"] \
#     bash scripts/gpu/issue15_parity.sh
#
# Prints a markdown table of PublicTest accuracy (test.json: the epoch chosen on the validation
# share of train, and the last epoch) per path, mean ± sample std over the seeds.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
bin="${FER_TRAIN:?}"; data="${DATA:?}"; runs="${RUNS:?}"; seeds="${SEEDS:-1 2 3}"
arch="${ARCH:-mobilenet_v3_large}"
mkdir -p "$runs"
for path in on off; do
  for s in $seeds; do
    name="parity_${path}_s$s"
    [ -f "$runs/$name/outcome.json" ] && continue
    "$bin" -q run --config configs/fer2013/exp3_baseline.toml --overwrite --set name="$name" \
      --set data.root="$data/fer2013" --set output_dir="$runs" --set model.arch="$arch" \
      --set data.workers=4 --set seed="$s" --set data.device_data="$path" \
      > "$runs/$name.log" 2>&1 &
  done
done
wait
python3 - "$runs" "$seeds" <<'PY'
import json, os, statistics as st, sys
runs, seeds = sys.argv[1], sys.argv[2].split()
print("| data path | seeds | PublicTest acc %, epoch chosen on val | last epoch | per seed (chosen) | mean train img/s |")
print("|---|---:|---:|---:|---|---:|")
for path in ["on", "off"]:
    best, last, ips = [], [], []
    for s in seeds:
        d = os.path.join(runs, f"parity_{path}_s{s}")
        try:
            t = json.load(open(os.path.join(d, "test.json")))
        except OSError:
            continue
        best.append(100 * t["best"]["accuracy"]); last.append(100 * t["last"]["accuracy"])
        recs = [json.loads(l) for l in open(os.path.join(d, "metrics.jsonl"))]
        ips.append(sum(r["img_per_s"] for r in recs) / len(recs))
    if not best:
        continue
    sd = lambda v: st.stdev(v) if len(v) > 1 else 0.0
    name = "device" if path == "on" else "CPU loader"
    print(f"| {name} | {len(best)} | {st.mean(best):.2f} ± {sd(best):.2f} | {st.mean(last):.2f} ± {sd(last):.2f} | {' / '.join(f'{b:.2f}' for b in best)} | {st.mean(ips):,.0f} |")
PY
