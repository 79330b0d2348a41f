#!/usr/bin/env python3
"""What post-hoc calibration can and cannot do for one model (docs/results.md, round 20).

    .venv/bin/python scripts/calibration_diagnostics.py HOLDOUT_EVAL_DIR TEST_EVAL_DIR

Each directory is a `fer-infer eval --out` directory (predictions.csv, metrics.json): the
first on the calibration hold-out (the validation share), the second on the test split. The
logits are recovered from the stored probabilities and temperature (log p · T, exact up to a
constant per image). Prints:

1. the ECE (15 equal-width bins, top label, as `fer_metrics::ece`) that a perfectly calibrated
   model with these confidences would show on each set (2,000 draws of correct ~ Bernoulli(c)):
   the noise floor of the measurement;
2. the reliability at the temperature fitted on the hold-out, bin by bin;
3. ECE, accuracy and NLL on both sets after maps fitted by NLL on the hold-out, and the same
   maps fitted on the test split itself (ORACLE: a diagnostic of what the family can reach, it
   chooses nothing): one temperature, temperature + class biases, vector scaling (a scale and a
   bias per class), one temperature per predicted class (classes predicted fewer than 50 times
   keep the global one), and top-label Platt scaling of the confidence.
"""
import csv
import json
import sys
from pathlib import Path

import numpy as np
from scipy.optimize import minimize

BINS = 15


def load(d):
    d = Path(d)
    t0 = json.loads((d / "metrics.json").read_text())["model"]["temperature"]
    rows = list(csv.DictReader(open(d / "predictions.csv")))
    cols = [k for k in rows[0] if k.startswith("p_")]
    names = [c[2:] for c in cols]
    p = np.array([[float(r[c]) for c in cols] for r in rows])
    y = np.array([names.index(r["label"]) for r in rows])
    return np.log(np.maximum(p, 1e-12)) * t0, y


def softmax(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def bins(c):
    return np.minimum((c * BINS).astype(int), BINS - 1)


def ece_top(c, ok):
    b = bins(c)
    return 100 * sum(abs(c[b == i].mean() - ok[b == i].mean()) * (b == i).sum()
                     for i in range(BINS) if (b == i).any()) / len(c)


def ece(p, y):
    return ece_top(p.max(1), (p.argmax(1) == y).astype(float))


def nll(p, y):
    return -np.log(np.maximum(p[np.arange(len(y)), y], 1e-300)).mean()


def fit_t(z, y):
    return minimize(lambda t: nll(softmax(z / t[0]), y), [1.0], method="Nelder-Mead").x[0]


def logit(c):
    c = np.clip(c, 1e-6, 1 - 1e-6)
    return np.log(c / (1 - c))


def main(hold_dir, test_dir):
    zh, yh = load(hold_dir)
    zt, yt = load(test_dir)
    k = zh.shape[1]
    rng = np.random.default_rng(0)
    print("1. ECE of a perfectly calibrated model with these confidences (T = 1)")
    for name, z in (("hold-out", zh), ("test", zt)):
        c = softmax(z).max(1)
        draws = [ece_top(c, (rng.random(len(c)) < c).astype(float)) for _ in range(2000)]
        print(f"   {name:9s} {len(c):5d} images: {np.mean(draws):.2f} ± {np.std(draws):.2f} %")
    t = fit_t(zh, yh)
    print(f"2. reliability at T = {t:.3f} (fitted on the hold-out): bin start: images / "
          "mean confidence − accuracy, points")
    for name, z, y in (("hold-out", zh, yh), ("test", zt, yt)):
        p = softmax(z / t)
        c, ok = p.max(1), (p.argmax(1) == y).astype(float)
        b = bins(c)
        cells = [f"{i / BINS:.2f}: {(b == i).sum()} / {100 * (c[b == i].mean() - ok[b == i].mean()):+.1f}"
                 for i in range(BINS) if (b == i).sum()]
        print(f"   {name}: mean confidence {100 * c.mean():.2f}, accuracy {100 * ok.mean():.2f}")
        print("     " + ", ".join(cells))

    def tb(z, y):
        v = minimize(lambda v: nll(softmax(z / v[0] + v[1:]), y), np.r_[1.0, np.zeros(k)],
                     method="L-BFGS-B").x
        return lambda x: softmax(x / v[0] + v[1:])

    def vector(z, y):
        v = minimize(lambda v: nll(softmax(z * v[:k] + v[k:]), y), np.r_[np.ones(k), np.zeros(k)],
                     method="L-BFGS-B").x
        return lambda x: softmax(x * v[:k] + v[k:])

    def per_class(z, y):
        g = fit_t(z, y)
        ts = np.full(k, g)
        for c in range(k):
            m = z.argmax(1) == c
            if m.sum() >= 50:
                ts[c] = fit_t(z[m], y[m])
        return lambda x: softmax(x / ts[x.argmax(1)][:, None])

    def platt(z, y):
        g = fit_t(z, y)
        p = softmax(z / g)
        c, ok = p.max(1), (p.argmax(1) == y).astype(float)

        def loss(v):
            q = np.clip(1 / (1 + np.exp(-(v[0] * logit(c) + v[1]))), 1e-9, 1 - 1e-9)
            return -(ok * np.log(q) + (1 - ok) * np.log(1 - q)).mean()

        a, b = minimize(loss, [1.0, 0.0]).x

        def apply(x):
            p = softmax(x / g)
            top = p.max(1, keepdims=True)
            new = 1 / (1 + np.exp(-(a * logit(top) + b)))
            # The top class gets the new confidence, the others share the rest in proportion.
            rest = np.where(p == top, 0, p) / np.maximum(1 - top, 1e-12) * (1 - new)
            return np.where(p == top, new, rest)
        return apply

    print("3. after a map fitted by NLL: ECE % hold-out / test, test accuracy %, test NLL")
    print("   identity (T = 1)".ljust(56), f"{ece(softmax(zh), yh):5.2f} / {ece(softmax(zt), yt):5.2f}")
    for name, fit in (("one temperature", lambda z, y: (lambda x, t=fit_t(z, y): softmax(x / t))),
                      ("temperature + class biases", tb), ("vector scaling", vector),
                      ("temperature per predicted class", per_class),
                      ("top-label Platt", platt)):
        for where, (zf, yf) in (("hold-out", (zh, yh)), ("ORACLE test", (zt, yt))):
            m = fit(zf, yf)
            ph, pt = m(zh), m(zt)
            print(f"   {name}, fitted on {where}".ljust(56),
                  f"{ece(ph, yh):5.2f} / {ece(pt, yt):5.2f}   acc {100 * (pt.argmax(1) == yt).mean():.2f}"
                  f"   NLL {nll(pt, yt):.4f}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
