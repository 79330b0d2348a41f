"""Second implementation of the trainer's losses, written from the papers' definitions.

Usage: reference.py DIR. Reads DIR/manifest.json (cases written by train/tests/losses.rs, tensors
as raw little-endian f64/i64 files), computes each loss and its gradient with respect to the
student input `x` in float64, and prints {case: [value, flat_gradient]} as JSON.

No library KD/RKD function is used: the formulas are written out below. Cross-entropy is
checked against torch.nn.functional.cross_entropy itself (the semantics it must match).
"""

import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

EPS_SQ_DIST = 1e-12  # RKD (authors' pdist): squared distances are floored at 1e-12
EPS_NORM = 1e-12  # a difference vector shorter than this has no direction


def load(directory, spec):
    dtype = np.float64 if spec["dtype"] == "f64" else np.int64
    data = np.fromfile(directory / spec["file"], dtype="<" + np.dtype(dtype).str[1:])
    return torch.from_numpy(data.reshape(spec["shape"]).astype(dtype))


def huber(x):
    """Smooth-L1 with beta = 1: 0.5 x^2 where |x| < 1, |x| - 0.5 elsewhere."""
    a = x.abs()
    return torch.where(a < 1.0, 0.5 * x * x, a - 0.5)


def kd(s, t, temperature):
    """Hinton et al. 2015: T^2 * KL(p_t || p_s) with p = softmax(logits / T), batch mean."""
    t = t.detach()
    zs, zt = s / temperature, t / temperature
    log_ps = zs - torch.logsumexp(zs, dim=1, keepdim=True)
    log_pt = zt - torch.logsumexp(zt, dim=1, keepdim=True)
    kl_per_sample = (log_pt.exp() * (log_pt - log_ps)).sum(dim=1)
    return temperature**2 * kl_per_sample.mean()


def kd_ensemble(s, teachers, temperature):
    """KD towards the mean of the teachers' softened distributions: T^2 * KL(mean_m p_m || p_s)."""
    zs = s / temperature
    log_ps = zs - torch.logsumexp(zs, dim=1, keepdim=True)
    p_mean = torch.stack([F.softmax(t.detach() / temperature, dim=1) for t in teachers]).mean(0)
    kl_per_sample = (p_mean * (p_mean.log() - log_ps)).sum(dim=1)
    return temperature**2 * kl_per_sample.mean()


def dkd(s, teachers, labels, temperature, alpha, beta):
    """Zhao et al. 2022, Eq. 7: T^2 * (alpha * TCKD + beta * NCKD), batch mean, in probability
    space as the paper's code does (the student's non-target softmax by shifting its true-class
    logit down by 1000). Several teachers: their softened distributions are averaged first and
    the mean is decoupled (b = [p[y], 1 - p[y]], p_hat = p[others] / (1 - p[y]))."""
    k = s.shape[1]
    gt = F.one_hot(labels, k).to(s.dtype)
    other = 1.0 - gt
    p_s = F.softmax(s / temperature, dim=1)
    p_t = torch.stack([F.softmax(t.detach() / temperature, dim=1) for t in teachers]).mean(0)
    b_s = torch.stack([(p_s * gt).sum(1), (p_s * other).sum(1)], dim=1)
    b_t = torch.stack([(p_t * gt).sum(1), (p_t * other).sum(1)], dim=1)
    tckd = (b_t * (b_t.log() - b_s.log())).sum(1)
    log_p_hat_s = F.log_softmax(s / temperature - 1000.0 * gt, dim=1)
    p_hat_t = p_t * other / (p_t * other).sum(1, keepdim=True)
    safe_log_t = torch.where(other > 0, p_hat_t, torch.ones_like(p_hat_t)).log()
    nckd = (other * p_hat_t * (safe_log_t - log_p_hat_s)).sum(1)
    return temperature**2 * (alpha * tckd + beta * nckd).mean()


def normalised_distances(e):
    """Park et al. 2019, psi_D: pairwise distances over their mean on the pairs i != j."""
    n = e.shape[0]
    rows = []
    for i in range(n):
        diff = e - e[i]
        sq = (diff * diff).sum(dim=1)
        d = sq.clamp_min(EPS_SQ_DIST).sqrt()
        rows.append(torch.where(torch.arange(n) == i, torch.zeros_like(d), d))
    d = torch.stack(rows)
    off_diagonal = ~torch.eye(n, dtype=torch.bool)
    mu = d[off_diagonal].sum() / (n * (n - 1))
    return d / mu


def rkd_distance(s, t):
    with torch.no_grad():
        target = normalised_distances(t.detach())
    return huber(normalised_distances(s) - target).mean()


def angle_cosines(e):
    """Park et al. 2019, psi_A: cos of the angle at anchor a between e_j and e_k, all triplets."""
    n = e.shape[0]
    per_anchor = []
    for a in range(n):
        v = e - e[a]  # v[j] = e_j - e_a
        length = torch.linalg.vector_norm(v, dim=1)
        has_direction = (length > EPS_NORM).to(e.dtype)
        u = v / length.clamp_min(EPS_NORM)[:, None] * has_direction[:, None]
        per_anchor.append(u @ u.T)
    return torch.stack(per_anchor)


def rkd_angle(s, t):
    with torch.no_grad():
        target = angle_cosines(t.detach())
    return huber(angle_cosines(s) - target).mean()


def z_score(z):
    """Sun et al. 2024, logit standardisation: (z - mean) / std over the classes (population
    standard deviation; no epsilon, which the rows of these cases do not need)."""
    mean = z.mean(dim=1, keepdim=True)
    std = ((z - mean) ** 2).mean(dim=1, keepdim=True).sqrt()
    return (z - mean) / std


def evaluate(case, tensors):
    leaf = tensors["x"].clone().requires_grad_(True)
    x = leaf
    params = case["params"]
    if params.get("standardize"):
        x = z_score(leaf)
        tensors = {k: z_score(v) if k.startswith("teacher") else v for k, v in tensors.items()}
    loss_name = case["loss"]
    if loss_name == "ce":
        loss = F.cross_entropy(
            x,
            tensors["target"],
            weight=tensors.get("weight"),
            label_smoothing=params["label_smoothing"],
        )
    elif loss_name == "kd":
        loss = kd(x, tensors["teacher"], params["temperature"])
    elif loss_name == "kd_ensemble":
        teachers = [tensors[k] for k in sorted(tensors) if k.startswith("teacher")]
        loss = kd_ensemble(x, teachers, params["temperature"])
    elif loss_name == "dkd":
        teachers = [tensors[k] for k in sorted(tensors) if k.startswith("teacher")]
        loss = dkd(
            x,
            teachers,
            tensors["target"],
            params["temperature"],
            params["alpha"],
            params["beta"],
        )
    elif loss_name == "rkd_distance":
        loss = rkd_distance(x, tensors["teacher"])
    elif loss_name == "rkd_angle":
        loss = rkd_angle(x, tensors["teacher"])
    else:
        raise ValueError(f"unknown loss {loss_name}")
    loss.backward()
    return [loss.item(), leaf.grad.reshape(-1).tolist()]


def main():
    directory = Path(sys.argv[1])
    manifest = json.loads((directory / "manifest.json").read_text())
    results = {}
    for case in manifest:
        tensors = {name: load(directory, spec) for name, spec in case["tensors"].items()}
        results[case["name"]] = evaluate(case, tensors)
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
