//! The teachers' logits kept per (training image, augmentation view) for a stage with
//! `teacher_cache = true`, so that its steps read them instead of running the teachers.
//!
//! Why it is exact: with `augment.views = K` an image's augmentation in epoch `e` is its draw
//! of epoch `e mod K` (the draws depend only on `(seed, draw epoch, sample)`), so the input a
//! teacher would see for sample `i` in epoch `e` is the input of view `e mod K`, made by the
//! same device code. The teachers are frozen and in eval mode, so their output for that input
//! does not change either: computing it once per view gives the logits every later step
//! would compute (up to the order of floating-point reductions in a batch of other images).
//! Before the stage, every sample of the training part is run through every teacher once per
//! view (`K · N` teacher forwards, in batches of the loader's size, under the run's
//! precision); the logits stay on the device as `[K, N, T, C]` float32 (FER-2013 with K = 20
//! views and 6 teachers: 96 MB). A step then gathers the rows of its batch.
//!
//! Only logits are kept: terms that compare embeddings (RKD) need the teachers in the step,
//! and configs that combine them with the cache are refused by validation, as are mixup and
//! CutMix (a mixed image is new every epoch) and the balanced sampler (it repeats an image
//! under another draw in the same epoch).

use std::time::Instant;

use fer_models_spec::Preprocess;
use tch::{Kind, Tensor};

use super::Observer;
use super::resident::ResidentTrain;
use super::teacher::Teacher;
use crate::amp::autocast;
use crate::config::Precision;
use crate::error::{Error, Result};

/// The cached logits of one stage's teachers.
pub(crate) struct TeacherCache {
    /// `[K, N, T, C]`: view, dataset index, teacher (in the stage's order), class.
    logits: Tensor,
    views: u64,
}

impl TeacherCache {
    /// Runs `teachers` over every training sample in each of `views` augmentation views
    /// (the draws of epochs `0..views`) and keeps their logits.
    pub(crate) fn fill(
        resident: &ResidentTrain,
        teachers: &[&Teacher],
        preprocess: &Preprocess,
        precision: Precision,
        views: u32,
        obs: &dyn Observer,
    ) -> Result<Self> {
        let start = Instant::now();
        let (k, n) = (i64::from(views), resident.dataset_len() as i64);
        let mut logits: Option<Tensor> = None;
        let mut images = 0;
        for v in 0..views {
            let epoch = resident.epoch(u64::from(v));
            for batch in resident.all_samples(&epoch) {
                let (idx, x) = batch?;
                let outs = autocast(precision, || {
                    teachers
                        .iter()
                        .map(|t| t.forward(&x, preprocess).map(|(l, _)| l.to_kind(Kind::Float)))
                        .collect::<Result<Vec<_>>>()
                })??;
                let rows = Tensor::stack(&outs, 1);
                let all = logits.get_or_insert_with(|| {
                    let [_, t, c] = rows.size()[..] else { unreachable!("stacked [B, T, C]") };
                    Tensor::zeros([k, n, t, c], (Kind::Float, x.device()))
                });
                let _ = all.get(i64::from(v)).index_copy_(0, &idx, &rows);
                images += idx.size()[0] as usize;
            }
        }
        let logits = logits.ok_or_else(|| Error::Input("the training split is empty".into()))?;
        obs.message(&format!(
            "teacher outputs cached: {} teacher(s) × {views} view(s) of {} images in {:.1} s \
             ({:.1} MB on the device)",
            teachers.len(),
            images / views.max(1) as usize,
            start.elapsed().as_secs_f64(),
            logits.numel() as f64 * 4.0 / 1e6
        ));
        Ok(TeacherCache { logits, views: u64::from(views) })
    }

    /// `[B, T, C]`: the cached logits of the samples `indices` (dataset indices) as run epoch
    /// `run_epoch` augments them.
    pub(crate) fn batch(&self, run_epoch: u64, indices: &Tensor) -> Tensor {
        self.logits.get((run_epoch % self.views) as i64).index_select(0, indices)
    }
}
