//! Decoupled knowledge distillation (Zhao, Cui, Song, Qiu, Liang, "Decoupled Knowledge
//! Distillation", CVPR 2022), with the target distribution of one teacher or of the mean of
//! several.
//!
//! Hinton KD splits, per sample, into a term on the binary split "true class or not" (TCKD)
//! and a term on the distribution among the other classes (NCKD), the latter weighted by the
//! teacher's probability of the other classes, `1 − p_t[y]`: the more confident the teacher,
//! the less of its "dark knowledge" reaches the student. DKD weights the two freely.

use tch::{Kind, Tensor};

use super::kd::{Names, check_student_and_teachers, mean_teacher_log_probs};
use super::{compute_kind, full_precision, torch, upcast};
use crate::{Error, Result};

/// Decoupled KD's [`Names`].
const DKD: Names = Names {
    term: "dkd",
    student: "dkd student logits",
    teacher: "dkd teacher logits",
    teacher_softmax: "dkd teacher log_softmax",
};

/// The weights and temperature of [`dkd_loss`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DkdParams {
    /// Softmax temperature `T`, finite and `> 0`.
    pub temperature: f64,
    /// Weight `α` of the target-class term (TCKD), finite and `≥ 0`.
    pub alpha: f64,
    /// Weight `β` of the non-target-class term (NCKD), finite and `≥ 0`.
    pub beta: f64,
}

/// Decoupled KD: `T² · (α · KL(b_t ‖ b_s) + β · KL(p̂_t ‖ p̂_s))`, batch mean.
///
/// With `p = softmax(logits / T)` (for several teachers `p_t` is the mean of their
/// distributions, as in [`super::kd_ensemble_loss`]) and `y` the sample's label:
/// `b = [p[y], 1 − p[y]]` (TCKD's binary distribution) and `p̂[j] = p[j] / (1 − p[y])` for
/// `j ≠ y` (NCKD's distribution over the other classes; for one teacher, the softmax of its
/// logits without class `y`). With `α = 1` and `β = 1 − p_t[y]` per sample this is Hinton KD
/// (the paper's Eq. 4). The paper uses `α = 1`, `β = 8`, `T = 4` on CIFAR-100.
///
/// `student` and every teacher are logits `[N, K]`, `K ≥ 2`; `labels` are class indices `[N]`
/// in `0..K` (not range-checked, as cross-entropy's: the loader guarantees them). Teachers are
/// detached. Computes in `f32` (`f64` for `f64` student logits) with no host synchronisation,
/// so it can run inside a captured CUDA graph.
pub fn dkd_loss(
    student: &Tensor,
    teachers: &[&Tensor],
    labels: &Tensor,
    params: DkdParams,
) -> Result<Tensor> {
    dkd_loss_weighted(student, teachers, None, labels, params)
}

/// [`dkd_loss`] with the teachers averaged per sample by `weights` `[N, M]`, as
/// [`super::kd_ensemble_loss_weighted`] averages them (a weight of 0 leaves a teacher out of
/// that sample's target).
pub fn dkd_loss_weighted(
    student: &Tensor,
    teachers: &[&Tensor],
    weights: Option<&Tensor>,
    labels: &Tensor,
    params: DkdParams,
) -> Result<Tensor> {
    let s_size = check_student_and_teachers(student, teachers, &DKD)?;
    let (n, k) = (s_size[0], s_size[1]);
    if n == 0 || k < 2 {
        return Err(Error::Input(format!(
            "dkd logits: shape {s_size:?} needs at least one sample and two classes"
        )));
    }
    if labels.size() != [n] || labels.is_floating_point() || labels.kind() == Kind::Bool {
        return Err(Error::Input(format!(
            "dkd: labels must be integer [{n}], got {:?} of shape {:?}",
            labels.kind(),
            labels.size()
        )));
    }
    let DkdParams { temperature, alpha, beta } = params;
    if !(temperature.is_finite() && temperature > 0.0) {
        return Err(Error::Input(format!("dkd: temperature must be > 0, got {temperature}")));
    }
    for (name, w) in [("alpha", alpha), ("beta", beta)] {
        if !(w.is_finite() && w >= 0.0) {
            return Err(Error::Input(format!("dkd: {name} must be a finite number >= 0, got {w}")));
        }
    }
    let kind = compute_kind(student);
    let device = student.device();
    full_precision(|| {
        let labels = upcast(labels, Kind::Int64, device, "dkd labels")?;
        // `is_y[n, j]`: whether j is sample n's class (a comparison, not one_hot, which may
        // read the labels back to the host).
        let is_y =
            Tensor::arange(k, (Kind::Int64, device)).unsqueeze(0).eq_tensor(&labels.unsqueeze(1));
        let log_p_t = mean_teacher_log_probs(teachers, weights, temperature, kind, device, &DKD)?;
        let s = upcast(student, kind, device, "dkd student logits")?;
        let log_p_s =
            (s / temperature).f_log_softmax(-1, kind).map_err(torch("dkd student log_softmax"))?;
        let (tckd, nckd) = decoupled_kl(&log_p_t, &log_p_s, &labels, &is_y);
        let per_sample = tckd * alpha + nckd * beta;
        Ok(per_sample.sum(kind) * (temperature * temperature / n as f64))
    })
}

/// Per-sample `(KL(b_t ‖ b_s), KL(p̂_t ‖ p̂_s))` from log-probabilities `[N, K]`, the labels
/// `[N]` and their mask `is_y` `[N, K]`, everything in log space (no probability that
/// underflows becomes `log 0`).
fn decoupled_kl(
    log_p_t: &Tensor,
    log_p_s: &Tensor,
    labels: &Tensor,
    is_y: &Tensor,
) -> (Tensor, Tensor) {
    let kind = log_p_s.kind();
    let at_y = labels.unsqueeze(1);
    // (log p[y], log(1 − p[y]), log p̂) of one distribution; p̂'s entry at y is set to 0 so that
    // it adds nothing below (0 · (0 − 0)) instead of 0 · (−∞ + ∞).
    let split = |log_p: &Tensor| {
        let log_y = log_p.gather(1, &at_y, false).squeeze_dim(1);
        let others = log_p.masked_fill(is_y, f64::NEG_INFINITY);
        let log_rest = others.logsumexp([1], true);
        let log_hat = (others - &log_rest).masked_fill(is_y, 0.0);
        (log_y, log_rest.squeeze_dim(1), log_hat)
    };
    let (ty, trest, that) = split(log_p_t);
    let (sy, srest, shat) = split(log_p_s);
    let tckd = ty.exp() * (&ty - sy) + trest.exp() * (&trest - srest);
    let p_hat_t = that.exp().masked_fill(is_y, 0.0);
    let nckd = (p_hat_t * (that - shat)).sum_dim_intlist([1i64].as_slice(), false, kind);
    (tckd, nckd)
}
