//! Frozen teachers: loaded from their checkpoints, run in eval mode, each fed the student's batch
//! converted to its own preprocessing (input size, channels, normalisation).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use fer_checkpoint::{CheckOptions, Checkpoint};
use fer_models_spec::{ColorMode, Preprocess};
use tch::{Device, Tensor};

use crate::error::Result;
use crate::lower::TchModel;

/// Batches passed through any teacher by this process (see [`forward_batches`]).
static FORWARD_BATCHES: AtomicU64 = AtomicU64::new(0);

/// How many batches this process has passed through a teacher ([`Teacher::forward`]; a
/// replayed CUDA graph counts once, when captured): what shows that a stage with
/// `teacher_cache` runs its teachers only to fill the cache.
pub fn forward_batches() -> u64 {
    FORWARD_BATCHES.load(Ordering::Relaxed)
}

/// One frozen teacher.
pub struct Teacher {
    /// Name used by the loss terms.
    pub name: String,
    /// The network, eval mode only.
    pub model: TchModel,
    /// The preprocessing it was trained with (possibly with an input-size override).
    pub preprocess: Preprocess,
    /// SHA-256 (hex) of its weights ([`fer_checkpoint::sha256_of_tensors`]): what a kept
    /// teacher cache is checked against.
    pub weights_sha256: String,
}

impl Teacher {
    /// Loads a teacher checkpoint written by `fer-train` (its metadata says the architecture,
    /// labels and preprocessing).
    pub fn load(
        name: &str,
        path: &Path,
        input_size: Option<usize>,
        device: Device,
    ) -> Result<Self> {
        let ck = Checkpoint::load(path)?;
        let mut arch = ck.meta.arch.clone();
        let mut preprocess = ck.meta.preprocess.clone();
        if let Some(s) = input_size {
            arch.input_size = Some(s);
            preprocess.input_size = s;
        }
        let graph = fer_models_spec::spec(&arch)?;
        let mut model = TchModel::new(graph, Some(arch.arch), device, 0)?;
        model.load_tensor_map(&ck.tensors, &CheckOptions::default())?;
        for (_, _, t) in model.named_tensors() {
            let _ = t.shallow_clone().set_requires_grad(false);
        }
        let weights_sha256 = fer_checkpoint::sha256_of_tensors(&ck.tensors);
        Ok(Teacher { name: name.to_string(), model, preprocess, weights_sha256 })
    }

    /// Logits and embedding of the teacher on the student's batch `x` (preprocessed with
    /// `from`), without gradients.
    pub fn forward(&self, x: &Tensor, from: &Preprocess) -> Result<(Tensor, Tensor)> {
        FORWARD_BATCHES.fetch_add(1, Ordering::Relaxed);
        tch::no_grad(|| {
            let xt = adapt(x, from, &self.preprocess);
            let out = self.model.forward_taps(&xt, false, &[fer_models_spec::EMBEDDING_TAP])?;
            let emb = out.taps.into_iter().next().expect("one tap requested");
            Ok((out.logits, emb))
        })
    }
}

/// `v` as a `[1, C, 1, 1]` tensor of `x`'s kind and device, made by fills on the device (no
/// host-to-device copy, so that a CUDA graph can capture it).
pub(super) fn channel_vec(v: &[f32], x: &Tensor) -> Tensor {
    let parts: Vec<Tensor> =
        v.iter().map(|&c| Tensor::full([1], f64::from(c), (x.kind(), x.device()))).collect();
    Tensor::cat(&parts, 0).view([1, -1, 1, 1])
}

/// Converts a batch normalised with `from` into what a model expecting `to` sees: undo the
/// normalisation, convert channels (gray replicated, or ITU-R 601 luma), resize (bilinear,
/// antialiased when shrinking), normalise again.
pub fn adapt(x: &Tensor, from: &Preprocess, to: &Preprocess) -> Tensor {
    if from == to {
        return x.shallow_clone();
    }
    let mut y = x * channel_vec(&from.std, x) + channel_vec(&from.mean, x);
    match (from.color, to.color) {
        (ColorMode::Gray, ColorMode::Rgb | ColorMode::GrayRgb) => y = y.repeat([1, 3, 1, 1]),
        (ColorMode::Rgb | ColorMode::GrayRgb, ColorMode::Gray) => {
            let w = channel_vec(&[0.299, 0.587, 0.114], &y);
            let kind = y.kind();
            y = (y * w).sum_dim_intlist([1i64].as_slice(), true, kind);
        }
        _ => {}
    }
    if from.input_size != to.input_size {
        let s = to.input_size as i64;
        y = if to.input_size < from.input_size {
            y.internal_upsample_bilinear2d_aa([s, s], false, None, None)
        } else {
            y.upsample_bilinear2d([s, s], false, None, None)
        };
    }
    (y - channel_vec(&to.mean, x)) / channel_vec(&to.std, x)
}
