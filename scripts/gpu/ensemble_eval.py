"""PublicTest accuracy of a teacher ensemble, computed independently of fer-train.

    python3 scripts/gpu/ensemble_eval.py --data DIR/fer2013 --split val RUN_DIR [RUN_DIR ...]

Each RUN_DIR is a finished fer-train run (best.safetensors, test.json, config.resolved.toml, which
names the architecture and input size; members may differ in both). The weights are loaded
into torchvision's architecture (our checkpoints use torchvision's state_dict names; `vgg_fer`,
which torchvision does not define, is built from torchvision's VGG parts by the parity tests'
reference, `train/tests/py/torchvision_ref.py`), the images preprocessed as fer-train does (gray
replicated to RGB, PIL bilinear resize to the input size, ImageNet mean/std), and every member
is scored alone — its accuracy must equal the trainer's
own `test.json` up to the precision difference (this script scores in float32; a teacher trained
with `precision = "bf16"` is scored by fer-train under bf16 autocast: 0.06–0.14 points apart in
round 5), which checks this script — then the ensemble, as the mean of the members' softmax
outputs (what `kind = "kd_ensemble"` distils at T = 1). Prints a Markdown table.
"""

import argparse
import json
import os
import struct
import sys

import tomllib

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../train/tests/py"))
from torchvision_ref import build  # noqa: E402  (one Python definition of every architecture)

CLASSES = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "I64": torch.int64}


def read_safetensors(path):
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    body = memoryview(raw)[8 + n :]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        t = torch.frombuffer(bytearray(body[a:b]), dtype=DTYPES[info["dtype"]])
        out[name] = t.reshape(info["shape"]).clone()
    return out


def load_split(root, split, classes):
    paths, labels = [], []
    for i, c in enumerate(classes):
        d = os.path.join(root, split, c)
        for f in sorted(os.listdir(d)):
            paths.append(os.path.join(d, f))
            labels.append(i)
    return paths, torch.tensor(labels)


def images(paths, size):
    arr = np.stack(
        [np.asarray(Image.open(p).convert("L").resize((size, size), Image.BILINEAR)) for p in paths]
    )
    x = torch.from_numpy(arr).float().div_(255).unsqueeze(1).expand(-1, 3, -1, -1)
    return (x - MEAN) / STD


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--split", default="val")
    ap.add_argument("runs", nargs="+")
    a = ap.parse_args()
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    # CLASSES is fer-train's order for FER-2013 (data/src/labels.rs, the CSV release's ids).
    paths, y = load_split(a.data, a.split, CLASSES)
    inputs = {}
    probs, rows = [], []
    for run in a.runs:
        with open(os.path.join(run, "config.resolved.toml"), "rb") as f:
            model = tomllib.load(f)["model"]
        arch, size = model["arch"], model["input_size"]
        if size not in inputs:
            inputs[size] = images(paths, size)
        x = inputs[size]
        m = build(arch, len(CLASSES), size)
        sd = read_safetensors(os.path.join(run, "best.safetensors"))
        missing, unexpected = m.load_state_dict(sd, strict=False)
        missing = [k for k in missing if not k.endswith("num_batches_tracked")]
        if missing or unexpected:
            sys.exit(f"{run}: weights do not match torchvision {arch}: missing {missing[:5]}, unexpected {unexpected[:5]}")
        m = m.to(dev).eval()
        with torch.no_grad():
            p = torch.cat([m(x[i : i + 512].to(dev)).softmax(1).cpu() for i in range(0, len(x), 512)])
        probs.append(p)
        acc = (p.argmax(1) == y).float().mean().item() * 100
        try:
            ref = 100 * json.load(open(os.path.join(run, "test.json")))["best"]["accuracy"]
        except (OSError, KeyError):
            ref = float("nan")
        rows.append((os.path.basename(run.rstrip("/")), acc, ref))
    ens = torch.stack(probs).mean(0)
    ens_acc = (ens.argmax(1) == y).float().mean().item() * 100
    print(f"| member | PublicTest % (this script) | PublicTest % (fer-train test.json) |")
    print("|---|---:|---:|")
    for name, acc, ref in rows:
        print(f"| {name} | {acc:.2f} | {ref:.2f} |")
    print(f"| **ensemble of {len(rows)}** (mean softmax) | **{ens_acc:.2f}** | – |")
    bad = [r for r in rows if abs(r[1] - r[2]) > 0.3]
    if bad:
        print(f"WARNING: members disagree with fer-train's test.json: {bad}", file=sys.stderr)


if __name__ == "__main__":
    main()
