//! The `[data]` section: which dataset, which splits, how it is loaded and balanced.

use std::path::PathBuf;

use fer_data::SplitName;
use fer_data::formats::{
    AffectNetClasses, ClassMap, FerPlusMode, Format, OpenOptions, RafDbImages,
};
use serde::{Deserialize, Serialize};

/// How class imbalance is countered during training.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClassBalance {
    /// Nothing: samples are drawn uniformly, every class weighs the same in the loss.
    #[default]
    None,
    /// Cross-entropy class weights `N / (K · n_c)` from the training split's class counts.
    InverseFrequencyWeights,
    /// A sampler that draws every class equally often (with replacement; an epoch still has
    /// as many samples as the training split).
    BalancedSampler,
}

impl ClassBalance {
    /// The names accepted in configs.
    pub const NAMES: [&'static str; 3] = ["none", "inverse_frequency_weights", "balanced_sampler"];
}

/// Where the validation set (used for the early-stopping metric and the choice of
/// `best.safetensors`) comes from; see [`DataConfig::validation`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Validation {
    /// An official split of the dataset (`data.val_split`).
    Split(SplitName),
    /// A stratified random fraction of the training pool (`data.val_fraction`), drawn with
    /// `seed`; the rest is trained on.
    Fraction {
        /// Fraction of each class held out, in `(0, 1)`.
        fraction: f64,
        /// Seed of the draw.
        seed: u64,
    },
    /// Fold `fold` of `folds` folds grouped by subject (`data.fold` / `data.folds`), drawn
    /// with `seed`; the other folds are trained on. Grouping keeps every image of a subject
    /// in one fold (CK+).
    Fold {
        /// The held-out fold, `0 ≤ fold < folds`.
        fold: usize,
        /// Number of folds, at least 2.
        folds: usize,
        /// Seed of the assignment of subjects to folds.
        seed: u64,
    },
}

/// Where training batches are decoded, augmented and resized (`data.device_data`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceData {
    /// On the training device when it is a CUDA device, every image has the same size, and
    /// the decoded training and validation images fit in `data.device_data_share` of its
    /// memory; otherwise the CPU loader, with a log line saying why.
    #[default]
    Auto,
    /// On the training device (CPU or CUDA) whenever the images can be stacked; fails
    /// otherwise.
    On,
    /// Always the CPU loader.
    Off,
}

impl DeviceData {
    /// The names accepted in configs.
    pub const NAMES: [&'static str; 3] = ["auto", "on", "off"];
}

fn default_device_share() -> f64 {
    0.25
}

fn default_true() -> bool {
    true
}
fn default_workers() -> usize {
    2
}

/// The `[data]` section.
///
/// Exactly one of `val_split`, `val_fraction` and `folds` says where the validation set comes
/// from ([`Validation`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// The reader (required): `fer2013-csv`, `fer2013-folder`, `ferplus`, `rafdb`,
    /// `affectnet-csv`, `affectnet-folder`, `ckplus`, `jaffe` or `image-folder`.
    pub format: Format,
    /// The dataset's root folder, or the CSV file for `fer2013-csv` / `fer-plus` (required).
    /// Relative paths are resolved against the config file's folder.
    pub root: PathBuf,
    /// Official split to train on (`train`, `val` or `test`). Default: none, meaning every
    /// sample of the dataset (for sets without official splits, such as CK+ with `folds`).
    #[serde(default)]
    pub train_split: Option<SplitName>,
    /// Official split used for validation. Default: none.
    #[serde(default)]
    pub val_split: Option<SplitName>,
    /// Fraction of the training pool held out, stratified by class, for validation (in
    /// `(0, 1)`). Default: none.
    #[serde(default)]
    pub val_fraction: Option<f64>,
    /// Fraction of each class of the training data held out for calibrating the softmax
    /// temperature (in `(0, 1)`): never trained on, never used for model selection, recorded
    /// in the run's `split.json` (`fer-infer calibrate --holdout RUN/split.json`). Drawn with
    /// `split_seed`, so runs that share it hold out the same samples. Default: none.
    #[serde(default)]
    pub calib_fraction: Option<f64>,
    /// Cross-fitting (for teachers whose outputs a student reads out-of-fold, see
    /// `[[teachers]] out_of_fold`): the training part, after the validation and calibration
    /// samples are taken out, is dealt into this many folds per class (drawn with
    /// `split_seed`) and fold `cross_fit_fold` is not trained on; `split.json` records it as
    /// `left_out`. Runs with `cross_fit_fold = 0..cross_fit_folds` and the same split leave
    /// out disjoint folds that cover the training part. At least 2. Default: none.
    #[serde(default)]
    pub cross_fit_folds: Option<usize>,
    /// The fold left out of training, `0 ≤ cross_fit_fold < cross_fit_folds` (required with
    /// `cross_fit_folds`).
    #[serde(default)]
    pub cross_fit_fold: Option<usize>,
    /// Official split evaluated once at the end of the run with the best checkpoint (never
    /// used for model selection). Default: none.
    #[serde(default)]
    pub test_split: Option<SplitName>,
    /// Number of subject-grouped folds for cross-validation (at least 2; CK+ uses 10).
    /// Default: none. With `folds`, `name` must contain `{fold}`.
    #[serde(default)]
    pub folds: Option<usize>,
    /// The fold held out for validation, `0 ≤ fold < folds` (required with `folds`).
    #[serde(default)]
    pub fold: Option<usize>,
    /// Seed of the `val_fraction` draw and of the fold assignment. Default: the top-level
    /// `seed` (the resolved config writes it out).
    #[serde(default)]
    pub split_seed: Option<u64>,
    /// Leave unreadable or malformed items out (they are listed in the run's log) instead of
    /// failing. Default false.
    #[serde(default)]
    pub skip_bad: bool,
    /// Read every image file's header when the dataset is opened, so bad files are found
    /// before training starts rather than mid-epoch. Default true.
    #[serde(default = "default_true")]
    pub check_images: bool,
    /// Keep the decoded, resized images in memory after the first epoch (about
    /// `channels · input_size²` bytes per image). Default false.
    #[serde(default)]
    pub cache: bool,
    /// Loader threads decoding and augmenting images; 0 loads on the training thread.
    /// Default 2.
    #[serde(default = "default_workers")]
    pub workers: usize,
    /// Training batches leave the loader as 8-bit pixels (after crop, resize, flip, rotation
    /// and jitter, rounded to bytes once at the end) and are normalised, expanded
    /// to the model's channels and erased on the training device: 1 byte per pixel crosses
    /// instead of 4 per channel, and loader workers skip the normalisation. False: the loader
    /// normalises in float32. Validation batches are always normalised by the loader, as
    /// `fer-infer` preprocesses. Default true.
    #[serde(default = "default_true")]
    pub pixel_batches: bool,
    /// Where training batches are augmented: `auto` (default), `on` or `off`
    /// ([`DeviceData`]). On the device, the decoded 8-bit training images are uploaded once per
    /// run and each batch is cropped, resized, flipped, rotated, jittered, rounded to bytes,
    /// normalised and erased there, with the parameters the CPU loader would draw for the same
    /// (seed, epoch, sample) ([`fer_data::augment::Augmenter::draw`]); the validation images
    /// are preprocessed once by the loader and stay on the device.
    #[serde(default)]
    pub device_data: DeviceData,
    /// The share of the training device's memory that the resident images (training at their
    /// decoded size, validation as model input) may take under `device_data = "auto"`, in
    /// `(0, 1]`. Default 0.25.
    #[serde(default = "default_device_share")]
    pub device_data_share: f64,
    /// Class balancing: `none`, `inverse_frequency_weights` or `balanced_sampler`.
    /// Default `none`.
    #[serde(default)]
    pub balance: ClassBalance,
    /// FER+ only: `majority` (hard labels) or `soft` (vote distributions). Default
    /// `majority`.
    #[serde(default)]
    pub ferplus_mode: FerPlusMode,
    /// FER+ only: the FER-2013 CSV or image folder the votes refer to. Default: `fer2013.csv`
    /// beside the votes file. Relative to the config file's folder.
    #[serde(default)]
    pub ferplus_images: Option<PathBuf>,
    /// RAF-DB only: `aligned` (100×100 faces) or `original`. Default `aligned`.
    #[serde(default)]
    pub rafdb_images: RafDbImages,
    /// AffectNet only: `seven` (contempt excluded) or `eight` classes. Default `eight`.
    #[serde(default)]
    pub affectnet_classes: AffectNetClasses,
    /// AffectNet CSV only: the folder image paths are relative to. Default: found beside the
    /// CSV. Relative to the config file's folder.
    #[serde(default)]
    pub image_root: Option<PathBuf>,
    /// `image-folder` only: class folders not named after an expression, by exact folder
    /// name, mapped to an expression or `skip` (`[data.class_map]` with `smiling =
    /// "happiness"`, `misc = "skip"`). Default empty: such folders are an error naming them.
    #[serde(default, skip_serializing_if = "ClassMap::is_empty")]
    pub class_map: ClassMap,
}

impl DataConfig {
    /// Where the validation set comes from, or `None` when the config names no (or more than
    /// one) source, which [`super::ExperimentConfig::validate`] reports. `seed` is the
    /// top-level seed, used when `split_seed` is not set.
    pub fn validation(&self, seed: u64) -> Option<Validation> {
        let seed = self.split_seed.unwrap_or(seed);
        match (self.val_split, self.val_fraction, self.folds) {
            (Some(split), None, None) => Some(Validation::Split(split)),
            (None, Some(fraction), None) => Some(Validation::Fraction { fraction, seed }),
            (None, None, Some(folds)) => {
                self.fold.map(|fold| Validation::Fold { fold, folds, seed })
            }
            _ => None,
        }
    }

    /// The reader options this section selects. Paths are taken as they are: call it on
    /// [`super::ExperimentConfig::resolved`]'s data section to get absolute ones.
    pub fn open_options(&self) -> OpenOptions {
        OpenOptions {
            skip_bad: self.skip_bad,
            check_images: self.check_images,
            ferplus_mode: self.ferplus_mode,
            ferplus_images: self.ferplus_images.clone(),
            rafdb_images: self.rafdb_images,
            affectnet_classes: self.affectnet_classes,
            image_root: self.image_root.clone(),
            class_map: self.class_map.clone(),
        }
    }
}
