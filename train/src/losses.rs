//! Loss terms of the trainer: cross-entropy, Hinton KD, decoupled KD, RKD distance and angle, and the
//! config-facing [`LossTerm`] that declares a stage's loss as a weighted sum of them.
//!
//! Every function here works on `tch::Tensor`s on any device, is differentiable with respect to
//! the student's inputs, and never lets gradient reach a teacher (teacher tensors are detached
//! and processed under `no_grad`). Inputs of a half kind (`bf16`, `f16`, e.g. produced under
//! autocast) are upcast and the loss is computed in `f32` with CUDA autocast switched off, so
//! matrix products inside a loss never run in reduced precision; `f64` inputs stay `f64`.
//! Results are 0-d tensors; nothing in this module reads a value back to the host.
//!
//! Shapes are checked before anything runs, so a mismatch is an [`Error::Input`] rather than a
//! libtorch panic. Label values of hard targets are not range-checked (that would cost a device
//! sync per step): the data loader guarantees them.

use tch::{Kind, Tensor};

use crate::{Error, Result};

mod ce;
mod dkd;
mod kd;
mod rkd;
mod term;

pub use ce::{Target, cross_entropy, focal_loss};
pub use dkd::{DkdParams, dkd_loss, dkd_loss_weighted};
pub use kd::{kd_ensemble_loss, kd_ensemble_loss_weighted, kd_loss, standardize_logits};
pub use rkd::{rkd_angle, rkd_distance};
pub use term::{LossInputs, LossTerm, TeacherOutputs, total_loss};

/// The kind a loss computes in: `f64` stays `f64`, every other floating kind becomes `f32`.
fn compute_kind(t: &Tensor) -> Kind {
    if t.kind() == Kind::Double { Kind::Double } else { Kind::Float }
}

/// Wraps a libtorch error with what we were doing.
fn torch(context: &str) -> impl FnOnce(tch::TchError) -> Error + '_ {
    move |source| Error::Torch { context: context.to_owned(), source }
}

/// Checks that `t` is a floating tensor of rank `rank` and returns its shape.
fn check_float(t: &Tensor, what: &str, rank: usize) -> Result<Vec<i64>> {
    let size = t.size();
    if size.len() != rank {
        return Err(Error::Input(format!(
            "{what}: expected a tensor of rank {rank}, got shape {size:?}"
        )));
    }
    if !t.is_floating_point() {
        return Err(Error::Input(format!(
            "{what}: expected a floating-point tensor, got {:?}",
            t.kind()
        )));
    }
    Ok(size)
}

/// Upcasts `t` to `kind` on `device` (no copy when it already is).
fn upcast(t: &Tensor, kind: Kind, device: tch::Device, what: &str) -> Result<Tensor> {
    t.f_to_device(device).and_then(|t| t.f_to_kind(kind)).map_err(torch(what))
}

/// Runs `f` with CUDA autocast disabled (so products stay in the compute kind).
fn full_precision<T>(f: impl FnOnce() -> T) -> T {
    crate::amp::without_autocast(f)
}
