//! Cross-entropy with hard or soft targets, label smoothing and class weights
//! (the semantics of `torch.nn.functional.cross_entropy`), and its focal form (Lin et al.
//! 2017, for calibration Mukhoti et al. 2020), which libtorch has no op for.

use tch::{Kind, Reduction, Tensor};

use super::{check_float, compute_kind, full_precision, torch, upcast};
use crate::{Error, Result};

/// PyTorch's default `ignore_index`: hard labels equal to it contribute nothing.
const IGNORE_INDEX: i64 = -100;

/// What the logits are compared with.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// Class indices, integer `[N]` in `0..K` (`-100` is ignored, as in PyTorch).
    Hard(&'a Tensor),
    /// Class probabilities, floating `[N, K]` (each row should sum to 1, e.g. mixup/cutmix
    /// targets); no gradient flows into them.
    Soft(&'a Tensor),
}

/// Mean cross-entropy of `logits` `[N, K]` against `target`, exactly as
/// `F.cross_entropy(logits, target, weight=class_weights, label_smoothing=label_smoothing)`.
///
/// * `label_smoothing` in `[0, 1]`: the target becomes `(1 - ε)·target + ε/K` (PyTorch's
///   definition, including how it combines with class weights).
/// * `class_weights` `[K]`: per-class weights; with hard targets the mean is PyTorch's weighted
///   mean (the sum divided by the summed weights of the samples' classes), with soft targets
///   the weighted per-sample losses are averaged over `N`.
///
/// Computes in `f32` (`f64` for `f64` logits); differentiable with respect to `logits`.
pub fn cross_entropy(
    logits: &Tensor,
    target: Target<'_>,
    label_smoothing: f64,
    class_weights: Option<&Tensor>,
) -> Result<Tensor> {
    let size = check_float(logits, "cross_entropy logits", 2)?;
    let (n, k) = (size[0], size[1]);
    if n == 0 || k == 0 {
        return Err(Error::Input(format!("cross_entropy logits: empty shape {size:?}")));
    }
    if !(0.0..=1.0).contains(&label_smoothing) {
        return Err(Error::Input(format!(
            "cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}"
        )));
    }
    let kind = compute_kind(logits);
    let device = logits.device();
    let target = checked_target(target, &size, kind, device, CE_NAMES)?;
    let weights = match class_weights {
        Some(w) => {
            let s = check_float(w, "cross_entropy class weights", 1)?;
            if s != [k] {
                return Err(Error::Input(format!(
                    "cross_entropy: class weights have shape {s:?}, expected [{k}]"
                )));
            }
            Some(upcast(&w.detach(), kind, device, "cross_entropy class weights")?)
        }
        None => None,
    };
    full_precision(|| {
        let logits = upcast(logits, kind, device, "cross_entropy logits")?;
        logits
            .f_cross_entropy_loss(
                &target,
                weights.as_ref(),
                Reduction::Mean,
                IGNORE_INDEX,
                label_smoothing,
            )
            .map_err(torch("cross_entropy"))
    })
}

/// Focal loss (Lin et al. 2017; Mukhoti et al., "Calibrating Deep Neural Networks using Focal
/// Loss", NeurIPS 2020): per sample `Σ_k q_k · (1 − p_k)^γ · (−log p_k)`, averaged over the
/// batch, with `p = softmax(logits)` and `q` the target (one-hot for hard labels, the given
/// distribution for soft ones) after label smoothing `(1 − ε)·q + ε/K`. The factor
/// `(1 − p_k)^γ` down-weights what the model already predicts confidently, so training stops
/// pushing confident predictions towards certainty; `γ = 0` is [`cross_entropy`] without class
/// weights. `gamma` must be 0 or at least 1 (below 1 the factor's derivative is unbounded as
/// `p_k → 1`). Hard labels must all lie in `0..K` (no ignored label); no class weights.
/// Computes in `f32` (`f64` for `f64` logits), differentiable through both factors, with no
/// host synchronisation.
pub fn focal_loss(
    logits: &Tensor,
    target: Target<'_>,
    gamma: f64,
    label_smoothing: f64,
) -> Result<Tensor> {
    let size = check_float(logits, "focal logits", 2)?;
    let (n, k) = (size[0], size[1]);
    if n == 0 || k == 0 {
        return Err(Error::Input(format!("focal logits: empty shape {size:?}")));
    }
    if !(gamma == 0.0 || (gamma.is_finite() && gamma >= 1.0)) {
        return Err(Error::Input(format!(
            "focal: gamma must be 0 or a finite number >= 1, got {gamma}"
        )));
    }
    if !(0.0..=1.0).contains(&label_smoothing) {
        return Err(Error::Input(format!(
            "focal: label_smoothing must be in [0, 1], got {label_smoothing}"
        )));
    }
    let kind = compute_kind(logits);
    let device = logits.device();
    let q = checked_target(target, &size, kind, device, FOCAL_NAMES)?;
    let q = match target {
        // One-hot by comparison (one_hot may read the labels back to the host).
        Target::Hard(_) => Tensor::arange(k, (Kind::Int64, device))
            .unsqueeze(0)
            .eq_tensor(&q.unsqueeze(1))
            .to_kind(kind),
        Target::Soft(_) => q,
    };
    full_precision(|| {
        let logits = upcast(logits, kind, device, "focal logits")?;
        let q = q * (1.0 - label_smoothing) + label_smoothing / k as f64;
        let log_p = logits.f_log_softmax(-1, kind).map_err(torch("focal log_softmax"))?;
        let factor = (log_p.exp() * -1.0 + 1.0).clamp_min(0.0).pow_tensor_scalar(gamma);
        let per_sample = (q * factor * &log_p).sum_dim_intlist([1i64].as_slice(), false, kind);
        Ok(per_sample.mean(kind) * -1.0)
    })
}

/// How [`checked_target`] names a loss and its two kinds of target in errors (static: nothing
/// is formatted in the training step unless something fails).
type TargetNames = [&'static str; 3];
const CE_NAMES: TargetNames =
    ["cross_entropy", "cross_entropy hard target", "cross_entropy soft target"];
const FOCAL_NAMES: TargetNames = ["focal", "focal hard target", "focal soft target"];

/// `target` checked against logits of shape `size` (`[N, K]`) and moved to `device`: hard
/// labels as `Int64` `[N]`, soft targets as `kind` `[N, K]` (detached).
fn checked_target(
    target: Target<'_>,
    size: &[i64],
    kind: Kind,
    device: tch::Device,
    [what, hard, soft]: TargetNames,
) -> Result<Tensor> {
    match target {
        Target::Hard(labels) => {
            let n = size[0];
            if labels.size() != [n] || labels.is_floating_point() || labels.kind() == Kind::Bool {
                return Err(Error::Input(format!(
                    "{what}: hard target must be integer [{n}], got {:?} of shape {:?}",
                    labels.kind(),
                    labels.size()
                )));
            }
            upcast(labels, Kind::Int64, device, hard)
        }
        Target::Soft(probs) => {
            let s = check_float(probs, soft, 2)?;
            if s != size {
                return Err(Error::Input(format!(
                    "{what}: soft target shape {s:?} differs from logits {size:?}"
                )));
            }
            upcast(&probs.detach(), kind, device, soft)
        }
    }
}
