"""Independent reference for fer_infer::face: BlazeFace run by Python onnxruntime, decoded and
merged with numpy, written from MediaPipe's definition of the model's outputs (16×16×2 and 8×8×6
anchors, box and keypoint offsets in input pixels, sigmoid scores, weighted NMS at IoU 0.3).

For each image (scikit-image's public-domain astronaut and camera) and each model, writes into
--out: <img>.png (the image, RGB), <img>-<size>.input.f32 (the letterboxed NHWC input in
[-1, 1], made with PIL), <img>-<size>.scores.f32 / .boxes.f32 (raw outputs, the two grids
concatenated) and prints JSON {<img>-<size>: [detections]} (normalised coordinates).
"""
import argparse
import json
import os

import numpy as np
import onnxruntime as ort
import skimage.data
from PIL import Image


def anchors():
    out = []
    for cells, per in ((16, 2), (8, 6)):
        for y in range(cells):
            for x in range(cells):
                out += [((x + 0.5) / cells, (y + 0.5) / cells)] * per
    return np.array(out, dtype=np.float64)


def letterbox(img, size):
    h, w = img.shape[:2]
    side = max(h, w)
    canvas = np.zeros((side, side, 3), np.uint8)
    py, px = (side - h) // 2, (side - w) // 2
    canvas[py:py + h, px:px + w] = img
    small = np.asarray(Image.fromarray(canvas).resize((size, size), Image.BILINEAR))
    return small.astype(np.float32) / 127.5 - 1.0


def decode(scores, boxes, size, threshold):
    a = anchors()
    p = 1.0 / (1.0 + np.exp(-np.clip(scores.astype(np.float64), -100, 100)))
    dets = []
    for i in np.argsort(-p, kind="stable"):
        if p[i] < threshold:
            break
        r = boxes[i].astype(np.float64) / size
        kps = [[a[i][0] + r[4 + 2 * k], a[i][1] + r[5 + 2 * k]] for k in range(6)]
        dets.append({"score": p[i], "center": a[i] + r[:2], "extent": r[2:4], "kp": np.array(kps)})
    return dets


def iou(d, e):
    lo = lambda x: x["center"] - x["extent"] / 2
    hi = lambda x: x["center"] + x["extent"] / 2
    wh = np.clip(np.minimum(hi(d), hi(e)) - np.maximum(lo(d), lo(e)), 0, None)
    inter = wh[0] * wh[1]
    return inter / (np.prod(d["extent"]) + np.prod(e["extent"]) - inter)


def weighted_nms(dets, thr):
    out = []
    while dets:
        best = dets[0]
        cluster = [d for d in dets if iou(best, d) >= thr]
        dets = [d for d in dets if iou(best, d) < thr]
        w = np.array([d["score"] for d in cluster])
        mean = lambda key: sum(d[key] * d["score"] for d in cluster) / w.sum()
        out.append({"score": float(best["score"]), "center": mean("center").tolist(),
                    "extent": mean("extent").tolist(), "keypoints": mean("kp").tolist()})
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", required=True, help="folder with the two BlazeFace ONNX files")
    ap.add_argument("--out", required=True)
    ap.add_argument("--threshold", type=float, default=0.5)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    images = {"astronaut": skimage.data.astronaut(),
              "camera": np.stack([skimage.data.camera()] * 3, axis=-1)}
    models = {128: "face_detection_front_128x128_barracuda.onnx",
              256: "face_detection_back_256x256_barracuda.onnx"}
    result = {}
    for name, img in images.items():
        Image.fromarray(img).save(os.path.join(a.out, f"{name}.png"))
        for size, file in models.items():
            s = ort.InferenceSession(os.path.join(a.models, file), providers=["CPUExecutionProvider"])
            x = letterbox(img, size)[None]
            outs = s.run(None, {s.get_inputs()[0].name: x})
            scores = np.concatenate([outs[0].reshape(-1), outs[1].reshape(-1)])
            boxes = np.concatenate([outs[2].reshape(-1, 16), outs[3].reshape(-1, 16)])
            key = f"{name}-{size}"
            x.astype(np.float32).tofile(os.path.join(a.out, f"{key}.input.f32"))
            scores.astype(np.float32).tofile(os.path.join(a.out, f"{key}.scores.f32"))
            boxes.astype(np.float32).tofile(os.path.join(a.out, f"{key}.boxes.f32"))
            result[key] = weighted_nms(decode(scores, boxes, size, a.threshold), 0.3)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
