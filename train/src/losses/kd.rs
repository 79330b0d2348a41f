//! Hinton knowledge distillation (Hinton, Vinyals, Dean, "Distilling the Knowledge in a Neural
//! Network", 2015).

use tch::{Device, Kind, Tensor};

use super::{check_float, compute_kind, full_precision, torch, upcast};
use crate::{Error, Result};

/// Hinton KD loss: `T² · KL(softmax(teacher/T) ‖ softmax(student/T))`, summed over classes and
/// averaged over the batch.
///
/// Equal to PyTorch's `F.kl_div(log_softmax(s/T), log_softmax(t/T), reduction="batchmean",
/// log_target=True) * T*T`. The `T²` factor keeps the gradient's magnitude roughly independent
/// of `T` (Hinton et al. §2.1): for large `T` and zero-mean logits the gradient with respect to
/// `student[n, i]` tends to `(student[n, i] - teacher[n, i]) / (N·K)`.
///
/// `student` and `teacher` are logits `[N, K]`; the teacher is detached (no gradient reaches
/// it) and moved to the student's device. `temperature` must be finite and `> 0`. Computes in
/// `f32` (`f64` for `f64` student logits).
pub fn kd_loss(student: &Tensor, teacher: &Tensor, temperature: f64) -> Result<Tensor> {
    kd_ensemble_loss(student, &[teacher], temperature)
}

/// Hinton KD against the mean of several teachers' softened distributions:
/// `T² · KL(p̄ ‖ softmax(student/T))`, `p̄ = (1/M) Σ_m softmax(teacher_m/T)`, summed over classes
/// and averaged over the batch. With one teacher it equals [`kd_loss`].
///
/// Every teacher's logits must have the student's shape `[N, K]`; they are detached. Computes
/// in `f32` (`f64` for `f64` student logits).
pub fn kd_ensemble_loss(
    student: &Tensor,
    teachers: &[&Tensor],
    temperature: f64,
) -> Result<Tensor> {
    kd_ensemble_loss_weighted(student, teachers, None, temperature)
}

/// [`kd_ensemble_loss`] with the teachers averaged per sample by `weights` `[N, M]`
/// (non-negative, each row with a positive sum): `p̄[n] = Σ_m w[n, m] · softmax(teacher_m[n]/T)
/// / Σ_m w[n, m]`. A weight of 0 leaves that teacher out of that sample's mean (a teacher
/// read out-of-fold only, `[[teachers]] out_of_fold`); `None` weighs every teacher equally.
pub fn kd_ensemble_loss_weighted(
    student: &Tensor,
    teachers: &[&Tensor],
    weights: Option<&Tensor>,
    temperature: f64,
) -> Result<Tensor> {
    let s_size = check_student_and_teachers(student, teachers, &KD)?;
    if s_size[0] == 0 || s_size[1] == 0 {
        return Err(Error::Input(format!("kd logits: empty shape {s_size:?}")));
    }
    if !(temperature.is_finite() && temperature > 0.0) {
        return Err(Error::Input(format!("kd: temperature must be > 0, got {temperature}")));
    }
    let kind = compute_kind(student);
    let device = student.device();
    let n = s_size[0] as f64;
    full_precision(|| {
        let log_p_t = mean_teacher_log_probs(teachers, weights, temperature, kind, device, &KD)?;
        let s = upcast(student, kind, device, "kd student logits")?;
        let log_p_s =
            (s / temperature).f_log_softmax(-1, kind).map_err(torch("kd student log_softmax"))?;
        let kl = (log_p_t.exp() * (&log_p_t - log_p_s)).sum(kind);
        Ok(kl * (temperature * temperature / n))
    })
}

/// How a response loss names itself and its inputs in errors (static: nothing is formatted
/// in the training step unless something fails).
pub(super) struct Names {
    /// The loss, starting its own errors: `kd`.
    pub term: &'static str,
    /// `kd student logits`.
    pub student: &'static str,
    /// `kd teacher logits`.
    pub teacher: &'static str,
    /// `kd teacher log_softmax`.
    pub teacher_softmax: &'static str,
}

/// Hinton KD's [`Names`].
const KD: Names = Names {
    term: "kd",
    student: "kd student logits",
    teacher: "kd teacher logits",
    teacher_softmax: "kd teacher log_softmax",
};

/// Checks that `student` is `[N, K]` logits and that there is at least one teacher, each of
/// the student's shape; returns the student's shape.
pub(super) fn check_student_and_teachers(
    student: &Tensor,
    teachers: &[&Tensor],
    names: &Names,
) -> Result<Vec<i64>> {
    let what = names.term;
    let s_size = check_float(student, names.student, 2)?;
    if teachers.is_empty() {
        return Err(Error::Input(format!("{what}: no teacher logits")));
    }
    for (m, t) in teachers.iter().enumerate() {
        let t_size = check_float(t, names.teacher, 2)?;
        if s_size != t_size {
            let which = if teachers.len() == 1 { String::new() } else { format!(" {m}") };
            return Err(Error::Input(format!(
                "{what}: student logits {s_size:?} and teacher{which} logits {t_size:?} differ in shape"
            )));
        }
    }
    Ok(s_size)
}

/// `log p̄`, `p̄ = (1/M) Σ_m softmax(teacher_m/T)` (with `weights` `[N, M]`, the per-sample
/// weighted mean `Σ_m w[n, m] · softmax(teacher_m[n]/T) / Σ_m w[n, m]`), in `kind` on
/// `device`, without gradient: a log-sum-exp of the teachers' log-probabilities (no
/// probability that underflows to 0 turns into log 0, a weight of 0 adds `log 0 = −∞`, which
/// the log-sum-exp ignores); one unweighted teacher's is its log-softmax itself.
pub(super) fn mean_teacher_log_probs(
    teachers: &[&Tensor],
    weights: Option<&Tensor>,
    temperature: f64,
    kind: Kind,
    device: Device,
    names: &Names,
) -> Result<Tensor> {
    tch::no_grad(|| {
        let mut logs = teachers
            .iter()
            .map(|t| {
                let t = upcast(&t.detach(), kind, device, names.teacher)?;
                (t / temperature).f_log_softmax(-1, kind).map_err(torch(names.teacher_softmax))
            })
            .collect::<Result<Vec<Tensor>>>()?;
        let Some(w) = weights else {
            if logs.len() == 1 {
                return Ok(logs.pop().expect("one teacher"));
            }
            return Ok(Tensor::stack(&logs, 0).logsumexp([0], false) - (logs.len() as f64).ln());
        };
        let n = logs[0].size()[0];
        let m = logs.len() as i64;
        if w.size() != [n, m] || !w.is_floating_point() {
            return Err(Error::Input(format!(
                "{}: teacher weights must be floating-point [{n}, {m}], got {:?} of shape {:?}",
                names.term,
                w.kind(),
                w.size()
            )));
        }
        let w = upcast(&w.detach(), kind, device, "teacher weights")?;
        // [M, N, 1] log-weights against the stacked [M, N, K] log-probabilities.
        let log_w = w.log().transpose(0, 1).unsqueeze(-1);
        let total = w.sum_dim_intlist([1i64].as_slice(), true, kind).log();
        Ok((Tensor::stack(&logs, 0) + log_w).logsumexp([0], false) - total)
    })
}

/// Logit standardisation (Sun, Ren, Li, Wang, Cao, "Logit Standardization in Knowledge
/// Distillation", CVPR 2024): each row's logits minus their mean, over their standard deviation,
/// `(z − mean(z)) / sqrt(var(z) + 1e-12)` with the population variance over the classes (the
/// paper divides by `std + 1e-7`; this form keeps the gradient finite for constant rows).
///
/// Applied to the student's and every teacher's logits before a KD term's temperature (a term's
/// `standardize = true`), it makes the term compare the shapes of the distributions only: the
/// student need not match the teacher's logit range, which a smaller student, or the mean of
/// several teachers, may not reach. `logits` are `[N, K]`; the result is in `f32` (`f64` for
/// `f64` input) and differentiable.
pub fn standardize_logits(logits: &Tensor) -> Result<Tensor> {
    check_float(logits, "standardized logits", 2)?;
    let kind = compute_kind(logits);
    full_precision(|| {
        let z = upcast(logits, kind, logits.device(), "standardized logits")?;
        let centred = &z - z.mean_dim(-1, true, kind);
        let var = centred.square().mean_dim(-1, true, kind);
        Ok(centred / (var + 1e-12).sqrt())
    })
}
