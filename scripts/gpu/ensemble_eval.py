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

With `--choose-on-val`, every member and the ensemble are also scored on the validation share of
train that the first run's `split.json` records (`data.val_fraction`: the images that chose each
run's epoch, never PublicTest), so that which teachers form an ensemble can be chosen without
looking at PublicTest. The share's indices are checked against the plan's SHA-256 fingerprint of
their file names before use.

With `--per-class`, one more table per split: every member's and the ensemble's ECE at T = 1
(top label, 15 equal-width bins) and, for each predicted class, the mean confidence of the
images predicted as it minus their accuracy, in points (what `fer-infer eval` reports per
class): whether the teachers' predictions of some classes are over-confident, which a
student distilled from them can inherit.
"""

import argparse
import hashlib
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


def validation_share(data, run):
    """Paths and labels of the validation share recorded in RUN/split.json (indices into train)."""
    plan = json.load(open(os.path.join(run, "split.json")))
    part = next((p for p in plan["parts"] if p["split"] == "val"), None)
    if part is None:
        sys.exit(f"{run}/split.json has no validation share (data.val_fraction = 0?)")
    idx = part["indices"]
    # fer-train lists a class-folder dataset by sorted folder name, files sorted within; the
    # class of each file is FER-2013's id of its folder. The fingerprint checks that order.
    root = os.path.join(data, "train")
    paths, labels = [], []
    for folder in sorted(os.listdir(root)):
        for f in sorted(os.listdir(os.path.join(root, folder))):
            if not f.startswith("."):
                paths.append(os.path.join(folder, f))
                labels.append(CLASSES.index(folder))
    h = hashlib.sha256()
    for i in idx:
        h.update(paths[i].encode() + b"\n")
    if h.hexdigest() != part["fingerprint"]:
        sys.exit(f"{run}/split.json: the validation share's fingerprint does not match {root}")
    return [os.path.join(root, paths[i]) for i in idx], torch.tensor([labels[i] for i in idx])


def calibration_row(p, y):
    """ECE (15 equal-width bins, top label) and per predicted class the mean confidence minus
    the accuracy, in points (None where nothing was predicted as the class)."""
    conf, pred = p.max(1)
    right = (pred == y).float()
    bins = torch.clamp((conf * 15).long(), max=14)
    ece = sum(
        (bins == b).sum().item() / len(y) * abs(conf[bins == b].mean().item() - right[bins == b].mean().item())
        for b in range(15)
        if (bins == b).any()
    )
    gaps = []
    for j in range(len(CLASSES)):
        m = pred == j
        gaps.append(100 * (conf[m].mean() - right[m].mean()).item() if m.any() else None)
    return 100 * ece, gaps


def calibration_table(title, names, member_probs, y):
    print(f"\n{title}: ECE % at T = 1 and, per predicted class, mean confidence minus accuracy (points)\n")
    print("| model | ECE % | " + " | ".join(CLASSES) + " |")
    print("|---|---:|" + "---:|" * len(CLASSES))
    rows = list(zip(names, member_probs)) + [(f"**ensemble of {len(names)}**", torch.stack(member_probs).mean(0))]
    for name, p in rows:
        ece, gaps = calibration_row(p, y)
        cells = " | ".join("–" if g is None else f"{g:+.1f}" for g in gaps)
        print(f"| {name} | {ece:.2f} | {cells} |")


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
    ap.add_argument("--choose-on-val", action="store_true")
    ap.add_argument("--per-class", action="store_true")
    ap.add_argument("runs", nargs="+")
    a = ap.parse_args()
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    # CLASSES is fer-train's order for FER-2013 (data/src/labels.rs, the CSV release's ids).
    paths, y = load_split(a.data, a.split, CLASSES)
    vpaths, vy = validation_share(a.data, a.runs[0]) if a.choose_on_val else ([], None)
    inputs, vinputs = {}, {}
    probs, vprobs, rows = [], [], []
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

        def score(x):
            with torch.no_grad():
                return torch.cat([m(x[i : i + 512].to(dev)).softmax(1).cpu() for i in range(0, len(x), 512)])

        p = score(x)
        probs.append(p)
        acc = (p.argmax(1) == y).float().mean().item() * 100
        vacc = float("nan")
        if a.choose_on_val:
            if size not in vinputs:
                vinputs[size] = images(vpaths, size)
            vp = score(vinputs[size])
            vprobs.append(vp)
            vacc = (vp.argmax(1) == vy).float().mean().item() * 100
        try:
            ref = 100 * json.load(open(os.path.join(run, "test.json")))["best"]["accuracy"]
        except (OSError, KeyError):
            ref = float("nan")
        rows.append((os.path.basename(run.rstrip("/")), acc, ref, vacc))
    ens = torch.stack(probs).mean(0)
    ens_acc = (ens.argmax(1) == y).float().mean().item() * 100
    vens = float("nan")
    if vprobs:
        vens = (torch.stack(vprobs).mean(0).argmax(1) == vy).float().mean().item() * 100
    print(f"| member | PublicTest % (this script) | PublicTest % (fer-train test.json) | validation share % ({len(vpaths)} images of train) |")
    print("|---|---:|---:|---:|")
    for name, acc, ref, vacc in rows:
        print(f"| {name} | {acc:.2f} | {ref:.2f} | {vacc:.2f} |")
    print(f"| **ensemble of {len(rows)}** (mean softmax) | **{ens_acc:.2f}** | – | {vens:.2f} |")
    if a.per_class:
        names = [r[0] for r in rows]
        calibration_table(f"PublicTest ({len(y)} images)", names, probs, y)
        if vprobs:
            calibration_table(f"Validation share ({len(vy)} images of train)", names, vprobs, vy)
    bad = [r[:3] for r in rows if abs(r[1] - r[2]) > 0.3]
    if bad:
        print(f"WARNING: members disagree with fer-train's test.json: {bad}", file=sys.stderr)


if __name__ == "__main__":
    main()
