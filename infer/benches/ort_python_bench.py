"""Times Python onnxruntime and `fer-infer bench` (our ONNX Runtime path and tract) on the same
ONNX files in one run, with the same threads, batch sizes, warm-up and iteration counts.

    .venv/bin/python infer/benches/ort_python_bench.py --fer-infer target/release/fer-infer \
        --threads 2 --iters 30 --warmup 5 --batch 1,32 model1.onnx model2.onnx ...

Each model is measured in `--rounds` rounds (ours, then Python, alternating), and the table
keeps for every runtime the round with the lowest median: on a shared machine other processes
inflate some rounds at random, and the least disturbed round is the best estimate of what the
runtime itself costs. Prints a markdown table (mean and median in milliseconds, ratios of
medians) and, with --json, writes every round.
"""

import argparse
import json
import subprocess
import time

import numpy as np
import onnxruntime as ort


def time_python(model, batch, threads, iters, warmup):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    _, c, h, w = inp.shape
    x = np.random.default_rng(42).uniform(-2, 2, size=(batch, c, h, w)).astype(np.float32)
    for _ in range(warmup):
        sess.run(None, {inp.name: x})
    ms = []
    for _ in range(iters):
        t = time.perf_counter()
        sess.run(None, {inp.name: x})
        ms.append((time.perf_counter() - t) * 1e3)
    ms = np.array(ms)
    return {"mean_ms": float(ms.mean()), "p50_ms": float(np.percentile(ms, 50)),
            "p90_ms": float(np.percentile(ms, 90))}


def time_ours(fer_infer, model, batches, threads, iters, warmup):
    cmd = [fer_infer, "bench", "--model", model, "--backend", "all",
           "--batch", ",".join(map(str, batches)), "--threads", str(threads),
           "--iters", str(iters), "--warmup", str(warmup), "--format", "json"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return {(r["backend"], r["batch"]): r for r in json.loads(out)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+")
    ap.add_argument("--fer-infer", required=True, help="path of the fer-infer binary")
    ap.add_argument("--batch", default="1,32")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", help="write all measurements here")
    a = ap.parse_args()
    batches = [int(b) for b in a.batch.split(",")]
    rows, records = [], []
    best = lambda rs: min(rs, key=lambda r: r["p50_ms"])
    for model in a.models:
        rounds = {b: {"python": [], "ort": [], "tract": []} for b in batches}
        for _ in range(a.rounds):
            ours = time_ours(a.fer_infer, model, batches, a.threads, a.iters, a.warmup)
            for b in batches:
                rounds[b]["ort"].append(ours[("ort-cpu", b)])
                rounds[b]["tract"].append(ours[("tract", b)])
                rounds[b]["python"].append(time_python(model, b, a.threads, a.iters, a.warmup))
        for b in batches:
            r = rounds[b]
            py, o, t = best(r["python"]), best(r["ort"]), best(r["tract"])
            records.append({"model": model, "batch": b, "rounds": r})
            rows.append(
                f"| {model.rsplit('/', 1)[-1]} | {b} | {py['mean_ms']:.2f} / {py['p50_ms']:.2f} "
                f"| {o['mean_ms']:.2f} / {o['p50_ms']:.2f} | {t['mean_ms']:.2f} / {t['p50_ms']:.2f} "
                f"| {o['p50_ms'] / py['p50_ms']:.2f} | {t['p50_ms'] / o['p50_ms']:.2f} |")
    print(f"threads {a.threads}, {a.warmup} warm-up + {a.iters} timed runs, best of {a.rounds} "
          "rounds; mean / p50 in ms\n")
    print("| model | batch | Python ORT | fer-infer ORT | fer-infer tract "
          "| ORT / Python (p50) | tract / ORT (p50) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    print("\n".join(rows))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(records, f, indent=1)


if __name__ == "__main__":
    main()
