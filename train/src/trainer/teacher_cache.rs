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
//! With out-of-fold teachers (`[[teachers]] out_of_fold`), the cache also keeps each
//! teacher's weight per training image (`[N, T]`, 0 where the teacher trained on the image),
//! and a batch's rows carry it as one more column after the classes (`[B, T, C + 1]`), so the
//! step, CUDA graphs included, moves one tensor as before.
//!
//! The logits are also written into the run directory (`teacher_cache-<stage>.safetensors`,
//! with a key: SHA-256 of the resolved config, the stage, the number of views and images, and
//! every teacher's weight hash), so that `resume` reads them back instead of running the
//! teachers again; a file whose key differs is not read (and is replaced).
//!
//! Only logits are kept: terms that compare embeddings (RKD) need the teachers in the step,
//! and configs that combine them with the cache are refused by validation, as are mixup and
//! CutMix (a mixed image is new every epoch) and the balanced sampler (it repeats an image
//! under another draw in the same epoch).

use std::path::{Path, PathBuf};
use std::time::Instant;

use fer_models_spec::Preprocess;
use sha2::{Digest, Sha256};
use tch::{Kind, Tensor};

use super::resident::ResidentTrain;
use super::teacher::Teacher;
use super::{Observer, Session};
use crate::amp::autocast;
use crate::config::{Precision, StageConfig};
use crate::error::{Error, Result};

/// The cached logits of one stage's teachers.
pub(crate) struct TeacherCache {
    /// `[K, N, T, C]`: view, dataset index, teacher (in the stage's order), class.
    logits: Tensor,
    /// `[N, T]`: each teacher's weight per dataset index (out-of-fold teachers), if any.
    weights: Option<Tensor>,
    views: u64,
}

impl TeacherCache {
    /// Runs `teachers` over every training sample in each of `views` augmentation views
    /// (the draws of epochs `0..views`) and keeps their logits. With `keep` (the file and the
    /// key of [`TeacherCache::keep`]), logits kept there under the same key are read instead,
    /// and computed ones are written there.
    pub(crate) fn fill(
        resident: &ResidentTrain,
        teachers: &[&Teacher],
        preprocess: &Preprocess,
        precision: Precision,
        views: u32,
        keep: Option<(PathBuf, String)>,
        obs: &dyn Observer,
    ) -> Result<Self> {
        let start = Instant::now();
        let (k, n) = (i64::from(views), resident.dataset_len() as i64);
        if let Some((path, key)) = &keep
            && let Some(logits) = read_kept(path, key, [k, n, teachers.len() as i64], obs)
        {
            obs.message(&format!(
                "teacher outputs read from {} in {:.1} s",
                path.display(),
                start.elapsed().as_secs_f64()
            ));
            let logits = logits.to_device(resident.device());
            return Ok(TeacherCache { logits, weights: None, views: u64::from(views) });
        }
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
        if let Some((path, key)) = &keep {
            write_kept(path, key, &logits, obs);
        }
        Ok(TeacherCache { logits, weights: None, views: u64::from(views) })
    }

    /// The cache with `weights` (`[N, T]` on the training device: each teacher's weight per
    /// dataset index, for out-of-fold teachers).
    pub(crate) fn with_weights(self, weights: Option<Tensor>) -> Self {
        TeacherCache { weights, ..self }
    }

    /// Where stage `stage`'s cache is kept in run directory `dir`, and its key: SHA-256 of
    /// `config` (the resolved config as text), the stage, `views`, the number of training
    /// images `n` and the teachers' names and weight hashes, in order.
    pub(crate) fn keep(
        dir: &Path,
        config: &str,
        stage: &str,
        views: u32,
        n: usize,
        teachers: &[&Teacher],
    ) -> (PathBuf, String) {
        let mut h = Sha256::new();
        h.update(config.as_bytes());
        h.update(format!("\nstage={stage}\nviews={views}\nimages={n}\n").as_bytes());
        for t in teachers {
            h.update(format!("teacher={} {}\n", t.name, t.weights_sha256).as_bytes());
        }
        let key = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        (dir.join(format!("teacher_cache-{stage}.safetensors")), key)
    }

    /// Whether batches carry the teachers' weights as a last column ([`TeacherCache::batch`]).
    pub(crate) fn weighted(&self) -> bool {
        self.weights.is_some()
    }

    /// `[B, T, C]`: the cached logits of the samples `indices` (dataset indices) as run epoch
    /// `run_epoch` augments them; `[B, T, C + 1]` with each teacher's weight on the sample as
    /// the last column when the cache is [`weighted`](TeacherCache::weighted).
    pub(crate) fn batch(&self, run_epoch: u64, indices: &Tensor) -> Tensor {
        let rows = self.logits.get((run_epoch % self.views) as i64).index_select(0, indices);
        match &self.weights {
            Some(w) => Tensor::cat(&[rows, w.index_select(0, indices).unsqueeze(-1)], -1),
            None => rows,
        }
    }
}

/// The logits kept at `path` if its key is `key` and they are `[K, N, T, C]` with the given
/// first three sides; `None` (with a message unless the file is absent) otherwise.
fn read_kept(path: &Path, key: &str, sides: [i64; 3], obs: &dyn Observer) -> Option<Tensor> {
    if !path.exists() {
        return None;
    }
    let stale = |why: &str| {
        obs.message(&format!("{}: {why}; running the teachers again", path.display()));
        None
    };
    let tensors = match Tensor::read_safetensors(path) {
        Ok(t) => t,
        Err(e) => return stale(&format!("unreadable ({e})")),
    };
    let get = |name: &str| tensors.iter().find(|(n, _)| n == name).map(|(_, t)| t);
    let (Some(k), Some(logits)) = (get("key"), get("logits")) else {
        return stale("not a teacher cache");
    };
    let stored: Vec<u8> = Vec::try_from(k).unwrap_or_default();
    if stored != key.as_bytes() {
        return stale("kept for another config or other teachers");
    }
    let size = logits.size();
    if size.len() != 4 || size[..3] != sides || logits.kind() != Kind::Float {
        return stale(&format!(
            "shape {size:?} is not [{}, {}, {}, C]",
            sides[0], sides[1], sides[2]
        ));
    }
    Some(logits.shallow_clone())
}

/// Writes `logits` and `key` to `path` (temporary file, then rename); a failure only costs
/// the next resume the teachers' passes, so it is reported, not raised.
fn write_kept(path: &Path, key: &str, logits: &Tensor, obs: &dyn Observer) {
    let tmp = path.with_extension("safetensors.tmp");
    let k = Tensor::from_slice(key.as_bytes());
    let written = Tensor::write_safetensors(
        &[("key", &k), ("logits", &logits.to_device(tch::Device::Cpu))],
        &tmp,
    )
    .map_err(|e| e.to_string())
    .and_then(|()| std::fs::rename(&tmp, path).map_err(|e| e.to_string()));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        obs.message(&format!("could not keep the teacher outputs in {}: {e}", path.display()));
    }
}

/// What a session needs to build a stage's cache.
impl Session<'_> {
    /// Fills stage `stage`'s teacher cache (`teacher_cache = true`), or says in one sentence
    /// why this run cannot have one.
    pub(super) fn teacher_cache(
        &self,
        stage: &StageConfig,
        teachers: &[&Teacher],
    ) -> Result<TeacherCache> {
        let field = format!("stage {:?}: teacher_cache", stage.name);
        if self.parallel.is_some() {
            return Err(Error::Input(format!(
                "{field} is not supported by data-parallel training yet"
            )));
        }
        let Some((train, _)) = &self.resident else {
            return Err(Error::Input(format!(
                "{field} needs the training images on the device (data.device_data); this run \
                 makes its batches with the CPU loader"
            )));
        };
        let views = self.cfg.augment.views;
        let weights = self.out_of_fold_weights(stage, teachers)?;
        let config = toml::to_string(&self.cfg).map_err(|e| Error::Input(e.to_string()))?;
        let n = train.dataset_len();
        let keep = TeacherCache::keep(&self.dir.path, &config, &stage.name, views, n, teachers);
        let cache = TeacherCache::fill(
            train,
            teachers,
            &self.preprocess,
            self.precision,
            views,
            Some(keep),
            self.obs,
        )?;
        Ok(cache.with_weights(weights))
    }

    /// `[N, T]` on the device: each stage teacher's weight per training sample, 0 where an
    /// `out_of_fold` teacher trained on it; `None` when no stage teacher is out-of-fold. Fails
    /// when a term's teachers leave a training sample without any.
    fn out_of_fold_weights(
        &self,
        stage: &StageConfig,
        teachers: &[&Teacher],
    ) -> Result<Option<Tensor>> {
        let masks = &self.data.out_of_fold;
        if !teachers.iter().any(|t| masks.contains_key(&t.name)) {
            return Ok(None);
        }
        let n = self.data.plan.part(fer_data::SplitName::Train).map_or(0, |p| p.indices.len());
        let usable = |name: &str, i: usize| masks.get(name).is_none_or(|m| m[i]);
        for (j, term) in stage.loss.iter().enumerate() {
            let mut named = term.teacher_names();
            if named.is_empty() && term.needs_teacher() {
                named = teachers.iter().map(|t| t.name.as_str()).collect();
            }
            if !named.iter().any(|t| masks.contains_key(*t)) {
                continue;
            }
            let bare = (0..n).filter(|&i| !named.iter().any(|t| usable(t, i))).count();
            if bare > 0 {
                return Err(Error::Input(format!(
                    "stage {:?} loss[{j}] ({}): {bare} of {n} training images have no teacher \
                     that did not train on them (out_of_fold teachers: give every image one \
                     whose left-out fold holds it)",
                    stage.name,
                    term.kind_name()
                )));
            }
        }
        let mut w = Vec::with_capacity(n * teachers.len());
        for i in 0..n {
            w.extend(teachers.iter().map(|t| if usable(&t.name, i) { 1f32 } else { 0f32 }));
        }
        let per_image = w.iter().sum::<f32>() / n.max(1) as f32;
        self.obs.message(&format!(
            "out-of-fold teachers: {per_image:.2} of {} teachers read per training image on \
             average",
            teachers.len()
        ));
        let w =
            Tensor::from_slice(&w).view([n as i64, teachers.len() as i64]).to_device(self.device);
        Ok(Some(w))
    }
}
