"""PyTorch reference training loop with GPU augmentation, for end-to-end comparison with
`fer-train run` on FER-2013 (issue 15): the same recipe as configs/fer2013/exp3_baseline.toml
(torchvision model from scratch, 112 px, SGD Nesterov lr 0.1, 2 warm-up epochs then cosine,
weight decay 5e-4, label smoothing 0.1, batch 256, channels-last), written the way a PyTorch user
would: the whole training split as uint8 on the GPU, one affine grid per batch for random resized
crop + flip + rotation, brightness/contrast and random erasing on the GPU, validation each epoch.

  python3 scripts/gpu/torch_reference_train.py --root /data/fer2013 --arch mobilenet_v3_large \
      --epochs 30 [--precision fp32|bf16] [--seed 1] [--json out.jsonl]

Prints one JSON line: wall seconds (data upload, training and validation), training img/s over
the epochs after the first (which pays cuDNN's autotuning), and the last epoch's accuracy on --val-split (PublicTest here, reported as is; no
selection is made on it).
"""
import argparse
import json
import math
import os
import time

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from PIL import Image

CLASSES = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]


def load_split(root, split):
    xs, ys = [], []
    for k, c in enumerate(CLASSES):
        d = os.path.join(root, split, c)
        for f in sorted(os.listdir(d)):
            xs.append(np.asarray(Image.open(os.path.join(d, f)).convert("L"), dtype=np.uint8))
            ys.append(k)
    return torch.from_numpy(np.stack(xs)).unsqueeze(1), torch.tensor(ys)


def augment(x, size, g):
    """x: [B, 1, 48, 48] uint8 on the GPU -> [B, 3, size, size] normalised float."""
    b = x.shape[0]
    dev = x.device
    x = x.float()
    scale = torch.empty(b, device=dev).uniform_(0.8, 1.0, generator=g)
    logr = torch.empty(b, device=dev).uniform_(math.log(3 / 4), math.log(4 / 3), generator=g)
    ratio = logr.exp()
    w = (scale * ratio).sqrt().clamp(max=1.0)
    h = (scale / ratio).sqrt().clamp(max=1.0)
    cx = (torch.rand(b, device=dev, generator=g) * 2 - 1) * (1 - w)
    cy = (torch.rand(b, device=dev, generator=g) * 2 - 1) * (1 - h)
    flip = torch.where(torch.rand(b, device=dev, generator=g) < 0.5, -1.0, 1.0)
    ang = torch.empty(b, device=dev).uniform_(-10, 10, generator=g) * math.pi / 180
    cos, sin = ang.cos(), ang.sin()
    theta = torch.zeros(b, 2, 3, device=dev)
    theta[:, 0, 0] = w * cos * flip
    theta[:, 0, 1] = -w * sin
    theta[:, 1, 0] = h * sin * flip
    theta[:, 1, 1] = h * cos
    theta[:, 0, 2] = cx
    theta[:, 1, 2] = cy
    grid = F.affine_grid(theta, (b, 1, size, size), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    bf = torch.empty(b, 1, 1, 1, device=dev).uniform_(0.8, 1.2, generator=g)
    cf = torch.empty(b, 1, 1, 1, device=dev).uniform_(0.8, 1.2, generator=g)
    x = (x * bf).clamp(0, 255)
    m = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (m + cf * (x - m)).clamp(0, 255)
    x = (x / 255 - 0.5) / 0.5
    # Random erasing, p = 0.25, area 2-20 %, ratio 0.3-3.3.
    area = torch.empty(b, device=dev).uniform_(0.02, 0.2, generator=g) * size * size
    er = torch.empty(b, device=dev).uniform_(math.log(0.3), math.log(3.3), generator=g).exp()
    eh = (area * er).sqrt().clamp(1, size - 1)
    ew = (area / er).sqrt().clamp(1, size - 1)
    ey = torch.rand(b, device=dev, generator=g) * (size - eh)
    ex = torch.rand(b, device=dev, generator=g) * (size - ew)
    on = torch.rand(b, device=dev, generator=g) < 0.25
    r = torch.arange(size, device=dev).float()
    inside = (
        (r.view(1, size, 1) >= ey.view(b, 1, 1))
        & (r.view(1, size, 1) < (ey + eh).view(b, 1, 1))
        & (r.view(1, 1, size) >= ex.view(b, 1, 1))
        & (r.view(1, 1, size) < (ex + ew).view(b, 1, 1))
        & on.view(b, 1, 1)
    )
    x = x.masked_fill(inside.unsqueeze(1), 0.0)
    return x.expand(b, 3, size, size).contiguous(memory_format=torch.channels_last)


def plain(x, size):
    x = F.interpolate(x.float(), size=(size, size), mode="bilinear", align_corners=False)
    x = (x.clamp(0, 255) / 255 - 0.5) / 0.5
    return x.expand(-1, 3, -1, -1).contiguous(memory_format=torch.channels_last)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--arch", default="mobilenet_v3_large")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--size", type=int, default=112)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--val-split", default="val")
    ap.add_argument("--json")
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    torch.backends.cudnn.benchmark = True
    dev = torch.device("cuda")
    t0 = time.time()
    xtr, ytr = load_split(a.root, "train")
    xva, yva = load_split(a.root, a.val_split)
    t_read = time.time() - t0
    start = time.time()
    xtr, ytr, xva, yva = xtr.to(dev), ytr.to(dev), xva.to(dev), yva.to(dev)
    model = getattr(torchvision.models, a.arch)(num_classes=7).to(dev)
    model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True,
                          weight_decay=5e-4)
    steps = len(xtr) // a.batch
    total, warm = a.epochs * steps, 2 * steps
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        lambda s: (s + 1) / warm if s < warm
        else 0.5 * (1 + math.cos(math.pi * (s - warm) / max(1, total - warm))))
    g = torch.Generator(device=dev)
    g.manual_seed(a.seed)
    amp = a.precision == "bf16"
    train_s, images, acc = 0.0, 0, 0.0
    for epoch in range(a.epochs):
        model.train()
        torch.cuda.synchronize()
        e0 = time.time()
        perm = torch.randperm(len(xtr), device=dev, generator=g)
        for i in range(steps):
            idx = perm[i * a.batch:(i + 1) * a.batch]
            x = augment(xtr[idx], a.size, g)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
                loss = F.cross_entropy(model(x), ytr[idx], label_smoothing=0.1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        torch.cuda.synchronize()
        if epoch > 0 or a.epochs == 1:  # the first epoch pays cuDNN's autotuning
            train_s += time.time() - e0
            images += steps * a.batch
        model.eval()
        correct = 0
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
            for i in range(0, len(xva), 512):
                out = model(plain(xva[i:i + 512], a.size))
                correct += (out.argmax(1) == yva[i:i + 512]).sum().item()
        acc = correct / len(xva)
        print(f"epoch {epoch + 1}: loss {loss.item():.4f} val acc {acc:.4f}", flush=True)
    wall = time.time() - start
    rec = {"runner": "pytorch-reference", "arch": a.arch, "size": a.size,
           "precision": a.precision, "epochs": a.epochs, "seed": a.seed,
           "read_s": round(t_read, 1), "wall_s": round(wall, 1),
           "train_img_per_s": round(images / train_s, 1), "last_val_accuracy": acc,
           "torch": torch.__version__, "gpu": torch.cuda.get_device_name()}
    print(json.dumps(rec), flush=True)
    if a.json:
        with open(a.json, "a") as f:
            f.write(json.dumps(rec) + "\n")


if __name__ == "__main__":
    main()
