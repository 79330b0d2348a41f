"""The face-detection measurement of docs/benchmarks.md ("Face detection on photos").

    .venv/bin/python scripts/face_detection_sets.py make OUT
    target/debug/fer-infer predict --faces detect --detector auto --format csv OUT/composites/*.png > auto.csv
    .venv/bin/python scripts/face_detection_sets.py score OUT auto.csv

`make` writes, from scikit-image's public-domain astronaut and cameraman photos:
  sizes/      each face 30-180 px wide on a grey 640x480 canvas;
  large/      256x256 crops in which the face is 25-80 % of the side;
  composites/ 40 images of 1-3 head-and-shoulders patches (faces 30-200 px) pasted without
              overlap on resized bundled backgrounds, with their face boxes in truth.json.
`score` counts the composites' faces found (IoU >= 0.3) and the false detections.

    .venv/bin/python scripts/face_detection_sets.py pad-ckplus ../shared/data/ckplus48 OUT

`pad-ckplus` makes a stand-in for a set of one-face photos from CK+48 (posed expressions): each
48x48 face crop upscaled to 144 px (bicubic) and placed in the upper middle of a 256x256 canvas
of its border's median grey, keeping CK+'s class folders and file names (`--format ckplus`).
"""

import csv
import json
import random
import sys
from pathlib import Path

from PIL import Image, ImageOps
from skimage import data

# Each photo and its face box, as BlazeFace's short-range model finds it in the original.
SOURCES = [("ast", data.astronaut, (178, 81, 272, 175)), ("cam", data.camera, (180, 121, 264, 206))]


def rgb(a):
    return Image.fromarray(a).convert("RGB")


def make(out: Path):
    (out / "sizes").mkdir(parents=True, exist_ok=True)
    (out / "large").mkdir(exist_ok=True)
    (out / "composites").mkdir(exist_ok=True)
    for name, load, (x0, y0, x1, y1) in SOURCES:
        img, fw = rgb(load()), x1 - x0
        for target in [30, 40, 50, 60, 70, 80, 100, 130, 180]:
            s = target / fw
            small = img.resize((int(512 * s), int(512 * s)), Image.BILINEAR)
            canvas = Image.new("RGB", (640, 480), (120, 120, 120))
            canvas.paste(small, (int(320 - 230 * s), int(240 - 130 * s)))
            canvas.save(out / "sizes" / f"{name}_{target:03d}.png")
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        for frac in [0.25, 0.35, 0.5, 0.65, 0.8]:
            h = fw / frac / 2
            crop = img.crop((int(cx - h), int(cy - h), int(cx + h), int(cy + h)))
            crop.resize((256, 256), Image.BILINEAR).save(out / "large" / f"{name}_{int(frac * 100):02d}.png")
    composites(out / "composites")


def composites(out: Path):
    random.seed(7)
    skl = Path(data.__file__).parents[2] / "sklearn/datasets/images"
    bgs = [rgb(data.coffee()), rgb(data.chelsea()), rgb(data.rocket()), Image.open(skl / "china.jpg"),
           Image.open(skl / "flower.jpg"), rgb(data.brick()), rgb(data.grass()), rgb(data.gravel())]
    srcs = [(rgb(load()), box) for _, load, box in SOURCES]
    truth = {}
    for i in range(40):
        bg = random.choice(bgs).convert("RGB").resize((640, 480))
        n = random.choice([1, 1, 2, 3])
        boxes, rects = [], []
        for _ in range(n):
            for _attempt in range(100):
                img, (x0, y0, x1, y1) = random.choice(srcs)
                if random.random() < 0.5:
                    img, (x0, x1) = ImageOps.mirror(img), (512 - x1, 512 - x0)
                s = (random.uniform(30, 200) if n == 1 else random.uniform(30, 110)) / (x1 - x0)
                cx, cy, half = (x0 + x1) / 2, (y0 + y1) / 2, 1.1 * (x1 - x0)
                patch = img.crop((int(cx - half), int(cy - half), int(cx + half), int(cy + half * 1.3)))
                pw, ph = int(patch.width * s), int(patch.height * s)
                if pw >= 640 or ph >= 480:
                    continue
                px, py = random.randint(0, 640 - pw), random.randint(0, 480 - ph)
                r = (px, py, px + pw, py + ph)
                if any(not (r[2] < q[0] or q[2] < r[0] or r[3] < q[1] or q[3] < r[1]) for q in rects):
                    continue
                ox, oy = px - (cx - half) * s, py - (cy - half) * s
                boxes.append([ox + x0 * s, oy + y0 * s, ox + x1 * s, oy + y1 * s])
                rects.append(r)
                bg.paste(patch.resize((pw, ph)), (px, py))
                break
        bg.save(out / f"h{i:02d}.png")
        truth[f"h{i:02d}.png"] = boxes
    (out / "truth.json").write_text(json.dumps(truth))


def iou(a, b):
    w = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    i = w * h
    return i / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - i)


def score(out: Path, csv_path: Path):
    truth = json.loads((out / "composites" / "truth.json").read_text())
    found = {}
    for r in csv.DictReader(open(csv_path)):
        name = Path(r["path"]).name
        found.setdefault(name, [])
        if r["face"] != "":
            found[name].append([float(r[k]) for k in ("x0", "y0", "x1", "y1")])
    hit = miss = false = small = small_hit = 0
    for name, boxes in truth.items():
        dets = list(found.get(name, []))
        for t in boxes:
            m = [d for d in dets if iou(d, t) >= 0.3]
            hit, miss = hit + bool(m), miss + (not m)
            if m:
                dets.remove(m[0])
            if t[2] - t[0] < 80:
                small, small_hit = small + 1, small_hit + bool(m)
        false += len(dets)
    print(f"found {hit} of {hit + miss} faces ({small_hit} of {small} under 80 px), {false} false detections")


def pad_ckplus(src: Path, out: Path):
    import numpy as np

    n = 0
    for d in sorted(p for p in src.iterdir() if p.is_dir()):
        (out / d.name).mkdir(parents=True, exist_ok=True)
        for f in sorted(d.glob("*.png")):
            a = np.asarray(Image.open(f).convert("L").resize((144, 144), Image.BICUBIC), float)
            bg = np.median(np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]]))
            c = np.full((256, 256), bg)
            c[40:184, 56:200] = a
            Image.fromarray(c.astype(np.uint8)).save(out / d.name / f.name)
            n += 1
    print(f"{n} images in {out}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "make":
        make(Path(sys.argv[2]))
    elif len(sys.argv) == 4 and sys.argv[1] == "pad-ckplus":
        pad_ckplus(Path(sys.argv[2]), Path(sys.argv[3]))
    elif len(sys.argv) == 4 and sys.argv[1] == "score":
        score(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        sys.exit(__doc__)
