"""Reference for infer/tests/eval.rs: runs the ONNX model with onnxruntime on the dumped
preprocessed inputs, applies the temperature read from the file's metadata with onnx, and
scores the probabilities with torchmetrics and scikit-learn.

usage: eval_reference.py MODEL.onnx DIR N  (DIR holds inputs.f32 [N,C,H,W] and labels.i64)
prints one JSON object on stdout.
"""
import json
import sys

import numpy as np
import onnx
import onnxruntime as ort
import torch
from sklearn.metrics import balanced_accuracy_score, confusion_matrix, f1_score
from sklearn.metrics import precision_recall_fscore_support
from torchmetrics.classification import MulticlassAccuracy, MulticlassCalibrationError

model_path, d, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
props = {p.key: p.value for p in onnx.load(model_path).metadata_props}
t = float(props["fer.temperature"])
sess = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
inp = sess.get_inputs()[0]
c, h, w = inp.shape[1], inp.shape[2], inp.shape[3]
x = np.fromfile(f"{d}/inputs.f32", dtype="<f4").reshape(n, c, h, w)
y = np.fromfile(f"{d}/labels.i64", dtype="<i8")
logits = sess.run(["logits"], {inp.name: x})[0].astype(np.float64)
k = logits.shape[1]


def scores(temp):
    z = logits / temp
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    pt, yt = torch.tensor(p, dtype=torch.float32), torch.tensor(y)
    pred = p.argmax(axis=1)
    prec, rec, f1, sup = precision_recall_fscore_support(
        y, pred, labels=list(range(k)), zero_division=0)
    onehot = np.eye(k)[y]
    top = p.max(axis=1)
    when = [pred == j for j in range(k)]
    return {
        "predicted": [int(w.sum()) for w in when],
        "confidence": [float(top[w].mean()) if w.any() else 0.0 for w in when],
        "probs": p.reshape(-1).tolist(),
        "accuracy": MulticlassAccuracy(num_classes=k, average="micro")(pt, yt).item(),
        "balanced_accuracy": balanced_accuracy_score(y, pred),
        "macro_f1": f1_score(y, pred, average="macro", labels=list(range(k)), zero_division=0),
        "precision": prec.tolist(),
        "recall": rec.tolist(),
        "f1": f1.tolist(),
        "confusion_matrix": confusion_matrix(y, pred, labels=list(range(k))).tolist(),
        "ece": MulticlassCalibrationError(num_classes=k, n_bins=15, norm="l1")(pt, yt).item(),
        "mce": MulticlassCalibrationError(num_classes=k, n_bins=15, norm="max")(pt, yt).item(),
        "nll": float(-np.log(np.maximum(p[np.arange(n), y], 1e-12)).mean()),
        "brier": float(((p - onehot) ** 2).sum(axis=1).mean()),
    }


print(json.dumps({"temperature": t, "at_t": scores(t), "at_1": scores(1.0)}))
