"""Reference metrics from torchmetrics and scikit-learn for probs.f32 [N,K] and labels.i64 [N]."""
import json
import sys

import numpy as np
import torch
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score
from torchmetrics.classification import MulticlassCalibrationError

d, n, k = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
p = np.fromfile(f"{d}/probs.f32", dtype=np.float32).reshape(n, k)
y = np.fromfile(f"{d}/labels.i64", dtype=np.int64)
pt, yt = torch.from_numpy(p), torch.from_numpy(y)
pred = p.argmax(1)
out = {
    "ece": MulticlassCalibrationError(num_classes=k, n_bins=15, norm="l1")(pt, yt).item(),
    "mce": MulticlassCalibrationError(num_classes=k, n_bins=15, norm="max")(pt, yt).item(),
    "macro_f1": f1_score(y, pred, average="macro", labels=list(range(k)), zero_division=0),
    "accuracy": accuracy_score(y, pred),
    "balanced_accuracy": balanced_accuracy_score(y, pred),
    "nll": torch.nn.functional.nll_loss(torch.log(pt.double().clamp_min(1e-12)), yt).item(),
    "brier": float(((p.astype(np.float64) - np.eye(k)[y]) ** 2).sum(1).mean()),
}
print(json.dumps(out))
