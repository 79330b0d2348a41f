//! The `[[teachers]]` and `[[stages]]` sections.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::OptimConfig;
use crate::losses::LossTerm;

/// One frozen teacher (`[[teachers]]`), referenced by name from loss terms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeacherConfig {
    /// The name loss terms use in `teacher = "…"` (required; unique, letters, digits, `_`,
    /// `-`, `.`).
    pub name: String,
    /// The teacher run's checkpoint, usually `<output_dir>/<teacher run name>/best.safetensors`
    /// (required). It carries the architecture and preprocessing. Relative to the config
    /// file's folder; `{fold}` is replaced by `data.fold`. A missing file is reported by
    /// `fer-train check` and before `run` creates its directory
    /// ([`ExperimentConfig::check_files`](super::ExperimentConfig::check_files)), not by
    /// validation (an earlier step may produce it).
    pub checkpoint: PathBuf,
    /// Input side in pixels the teacher is fed at (each batch is resized for it). Default: the
    /// input size stored in its checkpoint.
    #[serde(default)]
    pub input_size: Option<usize>,
    /// Read this teacher only on the training images it never trained on (cross-fitting):
    /// the teacher run's `split.json`, beside `checkpoint`, says which images it trained on
    /// (for a teacher trained with `data.cross_fit_folds`, all but its left-out fold). A
    /// `kd_ensemble` or `dkd` term then averages, per image, only the teachers that did not
    /// train on it, so that the distilled distribution is what the teachers predict for
    /// unseen faces rather than for faces they memorised. The teacher must have been trained
    /// on the same listing of the dataset (checked by the split's fingerprint); every
    /// training image needs at least one usable teacher in each term; only `kd_ensemble` and
    /// `dkd` terms may read such a teacher, and its stage needs `teacher_cache = true`.
    /// Default false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub out_of_fold: bool,
}

/// One stage of training (`[[stages]]`): a number of epochs with its own loss and schedule.
/// Stages run in order; the student's weights carry over, the schedule restarts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageConfig {
    /// The stage's name in logs and `metrics.jsonl` (required; unique).
    pub name: String,
    /// Number of epochs, `≥ 1` (required).
    pub epochs: usize,
    /// Peak learning rate of this stage, `> 0`. Default: `optim.lr`.
    #[serde(default)]
    pub lr: Option<f64>,
    /// Warm-up epochs of this stage, less than `epochs`. Default: `optim.warmup_epochs`.
    #[serde(default)]
    pub warmup_epochs: Option<usize>,
    /// The stage's loss, `Σ weight · term` (`[[stages.loss]]`, at least one term):
    /// `kind = "cross_entropy" | "kd" | "kd_ensemble" | "dkd" | "rkd_distance" | "rkd_angle"`;
    /// see [`LossTerm`].
    pub loss: Vec<LossTerm>,
    /// Run the teachers once per (training image, augmentation view) before the stage, keep
    /// their logits on the device, and read them back in every step instead of running the
    /// teachers again: exact, because with `augment.views = K` an image is only ever seen in
    /// the same `K` versions. A KD step then costs what a step without teachers costs. Needs
    /// `augment.views ≥ 1`, response terms only (`kd`, `kd_ensemble`, `dkd`: no embeddings are
    /// kept), no mixup or CutMix (their images differ every epoch), no balanced sampler (it
    /// repeats images under other draws), the device data path, one process. Default false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub teacher_cache: bool,
}

impl StageConfig {
    /// The stage's peak learning rate: its own `lr`, else `optim.lr`.
    pub fn peak_lr(&self, optim: &OptimConfig) -> f64 {
        self.lr.unwrap_or(optim.lr)
    }

    /// The stage's warm-up epochs: its own `warmup_epochs`, else `optim.warmup_epochs`.
    pub fn warmup(&self, optim: &OptimConfig) -> usize {
        self.warmup_epochs.unwrap_or(optim.warmup_epochs)
    }

    /// The teachers this stage's loss terms read, in first-use order, without repeats. A term
    /// without `teacher` reads the config's only teacher (`teachers` are the config's names).
    pub fn teachers_used<'a>(&'a self, teachers: &'a [TeacherConfig]) -> Vec<&'a str> {
        let mut used: Vec<&str> = Vec::new();
        for term in self.loss.iter().filter(|t| t.needs_teacher()) {
            let mut names = term.teacher_names();
            if names.is_empty() {
                match teachers {
                    [only] => names.push(only.name.as_str()),
                    _ => continue,
                }
            }
            for name in names {
                if !used.contains(&name) {
                    used.push(name);
                }
            }
        }
        used
    }
}
