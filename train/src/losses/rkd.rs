//! Relational knowledge distillation (Park, Kim, Lu, Cho, "Relational Knowledge Distillation",
//! CVPR 2019): the distance-wise and angle-wise potentials, compared with smooth-L1.
//!
//! Following the authors' implementation, a pairwise distance is
//! `sqrt(max(‖e_i − e_j‖², 1e-12))` off the diagonal and exactly 0 on it, and both losses average
//! the smooth-L1 (Huber, β = 1) over every entry of the relation tensor: `N²` pairs for the
//! distance loss (the diagonal contributes 0) and `N³` triplets `(anchor, j, k)` for the angle
//! loss (degenerate triplets have a cosine of 0 or 1 on both sides).

use tch::{Device, Kind, Reduction, Tensor};

use super::{check_float, compute_kind, full_precision, torch, upcast};
use crate::{Error, Result};

/// Floor of a pairwise distance, `sqrt(1e-12)`: the authors' guard against zero distances
/// (coincident embeddings then pass no gradient through their distance).
const MIN_DISTANCE: f64 = 1e-6;

/// Below this length a difference vector has no direction (as in `F.normalize`'s `eps`).
const MIN_NORM: f64 = 1e-12;

/// RKD distance loss between student embeddings `[N, Ds]` and teacher embeddings `[N, Dt]`.
///
/// Each side's `N×N` Euclidean distance matrix is divided by its mean over the `N(N−1)`
/// off-diagonal pairs (which makes the loss invariant to the scale of either embedding), and the
/// loss is the mean smooth-L1 (β = 1) between the two normalised matrices. `Ds` and `Dt` may
/// differ; `N ≥ 2`. Distances are computed directly (no Gram-matrix cancellation), with memory
/// `O(N²)`; coincident embeddings get the distance floor `1e-6` and a zero (finite) gradient.
pub fn rkd_distance(student: &Tensor, teacher: &Tensor) -> Result<Tensor> {
    let (kind, device) = check_pair(student, teacher, "rkd_distance", 2)?;
    full_precision(|| {
        let t_d = tch::no_grad(|| {
            let t = upcast(&teacher.detach(), kind, device, "rkd_distance teacher")?;
            normalised_distances(&t)
        })?;
        let s = upcast(student, kind, device, "rkd_distance student")?;
        let s_d = normalised_distances(&s)?;
        s_d.f_smooth_l1_loss(&t_d, Reduction::Mean, 1.0).map_err(torch("rkd_distance"))
    })
}

/// RKD angle loss between student embeddings `[N, Ds]` and teacher embeddings `[N, Dt]`.
///
/// For every triplet `(a, j, k)` the cosine of the angle at anchor `a` is
/// `⟨u_aj, u_ak⟩` with `u_aj = (e_j − e_a) / ‖e_j − e_a‖`; the loss is the mean smooth-L1 (β = 1)
/// between the student's and the teacher's `N×N×N` cosine tensors. A difference shorter than
/// `1e-12` (the anchor itself, or a duplicate embedding) has no direction: its cosines are 0 and
/// it passes no gradient. `N ≥ 3`. Memory is `O(N²·D + N³)` (the difference vectors are
/// materialised, as in the authors' code).
pub fn rkd_angle(student: &Tensor, teacher: &Tensor) -> Result<Tensor> {
    let (kind, device) = check_pair(student, teacher, "rkd_angle", 3)?;
    full_precision(|| {
        let t_a = tch::no_grad(|| {
            let t = upcast(&teacher.detach(), kind, device, "rkd_angle teacher")?;
            angle_cosines(&t)
        })?;
        let s = upcast(student, kind, device, "rkd_angle student")?;
        let s_a = angle_cosines(&s)?;
        s_a.f_smooth_l1_loss(&t_a, Reduction::Mean, 1.0).map_err(torch("rkd_angle"))
    })
}

/// Checks two `[N, D]` embeddings with the same `N ≥ min_n`; returns the compute kind and the
/// student's device.
fn check_pair(s: &Tensor, t: &Tensor, what: &str, min_n: i64) -> Result<(Kind, Device)> {
    let s_size = check_float(s, &format!("{what} student embedding"), 2)?;
    let t_size = check_float(t, &format!("{what} teacher embedding"), 2)?;
    if s_size[0] != t_size[0] {
        return Err(Error::Input(format!(
            "{what}: student embedding {s_size:?} and teacher embedding {t_size:?} have \
             different batch sizes"
        )));
    }
    if s_size[0] < min_n || s_size[1] == 0 || t_size[1] == 0 {
        return Err(Error::Input(format!(
            "{what} needs a batch of at least {min_n} non-empty embeddings, got student \
             {s_size:?} and teacher {t_size:?} (drop incomplete last batches)"
        )));
    }
    Ok((compute_kind(s), s.device()))
}

/// Pairwise distances `[N, N]` of `e` `[N, D]` (floored off the diagonal, 0 on it), divided by
/// their mean over the off-diagonal pairs.
fn normalised_distances(e: &Tensor) -> Result<Tensor> {
    let n = e.size()[0];
    // compute_mode 2: never through the Gram matrix, so near-equal rows keep their exact
    // (small or zero) distance and cdist's backward gives zero gradient at distance 0.
    let d = Tensor::f_cdist(e, e, 2.0, 2).map_err(torch("rkd pairwise distances"))?;
    let off_diagonal = Tensor::eye(n, (e.kind(), e.device())).neg() + 1.0;
    let d = d.clamp_min(MIN_DISTANCE) * off_diagonal;
    let mean = d.sum(e.kind()) / (n * (n - 1)) as f64;
    Ok(d / mean)
}

/// Cosines `[N, N, N]` of the angles at each anchor: `out[a, j, k] = ⟨u_aj, u_ak⟩`.
fn angle_cosines(e: &Tensor) -> Result<Tensor> {
    // diff[a, j] = e_j − e_a
    let diff = e.unsqueeze(0) - e.unsqueeze(1);
    let norm = diff.f_norm_scalaropt_dim(2.0, [-1], true).map_err(torch("rkd_angle norms"))?;
    let has_direction = norm.gt(MIN_NORM).to_kind(e.kind());
    let unit = diff / norm.clamp_min(MIN_NORM) * has_direction;
    unit.f_bmm(&unit.transpose(1, 2)).map_err(torch("rkd_angle cosines"))
}
