//! Mixup and CutMix (`augment.mixup_alpha`, `augment.cutmix_alpha`): whole-batch mixing after
//! the per-image augmentation, on the batch's device, for both data paths.
//!
//! Semantics of timm's `Mixup` in batch mode: with probability `mix_prob` a batch is mixed with
//! a permutation of itself; with both methods on, CutMix is chosen with probability
//! `mix_switch_prob`. Mixup blends the images by `λ ~ Beta(α, α)`; CutMix pastes a rectangle
//! of area about `1 − λ` (side `√(1 − λ)` of each dimension, centre uniform, clipped at the
//! border) and takes `λ` from the area actually pasted. The targets (one-hot labels, or the
//! batch's own soft labels) are mixed by the same `λ`. A batch that is not mixed still gets
//! one-hot soft targets, so every step has the same shape (and the CUDA graph stays valid).
//!
//! Every draw depends only on `(seed, epoch, batch)`: a resumed run mixes the same way.

use fer_data::augment::splitmix;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Beta, Distribution};
use tch::{Kind, Tensor};

use crate::config::AugmentConfig;
use crate::error::{Error, Result};

/// How one batch is mixed (drawn by [`Mixer::draw`]).
#[derive(Debug, Clone, PartialEq)]
pub enum MixDraw {
    /// The batch is left as it is (targets become one-hot).
    None,
    /// `λ·x + (1 − λ)·x[perm]`.
    Mixup {
        /// The weight of the batch itself.
        lambda: f64,
        /// The partner of each image.
        perm: Vec<i64>,
    },
    /// A rectangle taken from `x[perm]`.
    CutMix {
        /// The share of each image that stays its own (its targets' weight).
        lambda: f64,
        /// The partner of each image.
        perm: Vec<i64>,
        /// Rows `start..end` of the pasted rectangle.
        rows: (i64, i64),
        /// Columns `start..end` of the pasted rectangle.
        cols: (i64, i64),
    },
}

/// The batch mixer of a run.
#[derive(Debug, Clone)]
pub struct Mixer {
    mixup: Option<Beta<f64>>,
    cutmix: Option<Beta<f64>>,
    prob: f64,
    switch_prob: f64,
    seed: u64,
    classes: i64,
}

impl Mixer {
    /// The mixer `aug` asks for, or `None` when neither mixup nor CutMix is on (or
    /// augmentation is off).
    pub fn new(aug: &AugmentConfig, seed: u64, classes: usize) -> Result<Option<Self>> {
        let beta = |name: &str, a: f32| -> Result<Option<Beta<f64>>> {
            if a <= 0.0 {
                return Ok(None);
            }
            Beta::new(a as f64, a as f64)
                .map(Some)
                .map_err(|e| Error::Input(format!("augment.{name}: {e} (got {a})")))
        };
        let (mixup, cutmix) =
            (beta("mixup_alpha", aug.mixup_alpha)?, beta("cutmix_alpha", aug.cutmix_alpha)?);
        if !aug.enabled || (mixup.is_none() && cutmix.is_none()) {
            return Ok(None);
        }
        Ok(Some(Mixer {
            mixup,
            cutmix,
            prob: aug.mix_prob as f64,
            switch_prob: aug.mix_switch_prob as f64,
            seed,
            classes: classes as i64,
        }))
    }

    /// The draw of batch `batch` (of `n` images of `h × w`) in epoch `epoch`.
    pub fn draw(&self, epoch: usize, batch: usize, n: usize, h: i64, w: i64) -> MixDraw {
        let mut key = self.seed ^ 0x6d69_7875_7063_7574; // "mixupcut"
        for v in [epoch as u64, batch as u64] {
            key = splitmix(key ^ v);
        }
        let mut rng = ChaCha8Rng::seed_from_u64(key);
        if !rng.gen_bool(self.prob.clamp(0.0, 1.0)) {
            return MixDraw::None;
        }
        let use_cutmix = match (&self.mixup, &self.cutmix) {
            (Some(_), Some(_)) => rng.gen_bool(self.switch_prob.clamp(0.0, 1.0)),
            (None, Some(_)) => true,
            _ => false,
        };
        let mut perm: Vec<i64> = (0..n as i64).collect();
        for i in (1..perm.len()).rev() {
            perm.swap(i, rng.gen_range(0..=i));
        }
        if use_cutmix {
            let lambda: f64 = self.cutmix.as_ref().expect("cutmix on").sample(&mut rng);
            let cut = (1.0 - lambda).sqrt();
            let (ch, cw) = ((h as f64 * cut) as i64, (w as f64 * cut) as i64);
            let (cy, cx) = (rng.gen_range(0..h.max(1)), rng.gen_range(0..w.max(1)));
            let rows = ((cy - ch / 2).clamp(0, h), (cy + ch / 2).clamp(0, h));
            let cols = ((cx - cw / 2).clamp(0, w), (cx + cw / 2).clamp(0, w));
            let pasted = ((rows.1 - rows.0) * (cols.1 - cols.0)) as f64;
            let lambda = 1.0 - pasted / (h * w).max(1) as f64;
            MixDraw::CutMix { lambda, perm, rows, cols }
        } else {
            let lambda = self.mixup.as_ref().expect("mixup on").sample(&mut rng);
            MixDraw::Mixup { lambda, perm }
        }
    }

    /// Mixes batch `batch` of epoch `epoch`: returns the input and the soft targets `[N, K]`
    /// (float32) to train on. `x` is `[N, C, H, W]`, `labels` `[N]` (int64), `soft` the
    /// batch's own soft labels if it has them.
    pub fn mix(
        &self,
        epoch: usize,
        batch: usize,
        x: &Tensor,
        labels: &Tensor,
        soft: Option<&Tensor>,
    ) -> Result<(Tensor, Tensor)> {
        let size = x.size();
        let [n, _, h, w] = size[..] else {
            return Err(Error::Input(format!(
                "mixing: expected an [N, C, H, W] batch, got {size:?}"
            )));
        };
        let target = match soft {
            Some(s) => s.to_kind(Kind::Float),
            None => labels.one_hot(self.classes).to_kind(Kind::Float),
        };
        let draw = self.draw(epoch, batch, n as usize, h, w);
        let device = x.device();
        let index = |perm: &[i64]| Tensor::from_slice(perm).to_device(device);
        let blend = |t: &Tensor, p: &Tensor, lambda: f64| {
            t * lambda + t.index_select(0, p) * (1.0 - lambda)
        };
        Ok(tch::no_grad(|| match draw {
            MixDraw::None => (x.shallow_clone(), target),
            MixDraw::Mixup { lambda, perm } => {
                let p = index(&perm);
                (blend(x, &p, lambda), blend(&target, &p, lambda))
            }
            MixDraw::CutMix { lambda, perm, rows, cols } => {
                let p = index(&perm);
                let out = x.copy();
                let (hh, ww) = (rows.1 - rows.0, cols.1 - cols.0);
                if hh > 0 && ww > 0 {
                    let src = x.index_select(0, &p).narrow(2, rows.0, hh).narrow(3, cols.0, ww);
                    out.narrow(2, rows.0, hh).narrow(3, cols.0, ww).copy_(&src);
                }
                (out, blend(&target, &p, lambda))
            }
        }))
    }
}
