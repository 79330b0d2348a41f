//! Evaluating an exported model on a labelled dataset: the numbers `fer-infer eval` reports.
//!
//! Steps: open the dataset with the data crate's readers ([`DataSpec`]), match its classes
//! with the model's labels ([`ClassMap`]: cross-dataset evaluation runs over the shared
//! classes), run the model over the samples of the shared classes in batches with the one
//! preprocessing shared with training ([`collect`]: raw logits, computed once), then score
//! `softmax(logits / T)` at the model's stored temperature, and at `T = 1` too when `T ≠ 1`
//! ([`EvalReport`]). [`output`] writes `metrics.json`, `report.md`, `predictions.csv` and the
//! PNGs.

pub mod classes;
pub mod faces;
pub mod output;
pub mod scores;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use fer_data::dataset::{Exclusion, SkippedItem};
use fer_data::formats::{Format, OpenOptions};
use fer_data::loader::{Loader, LoaderConfig};
use fer_data::{Dataset, SplitName};
use ndarray::ArrayView4;
use serde::{Deserialize, Serialize};

pub use classes::ClassMap;
pub use scores::{ECE_BINS, ECE_FLOOR_DRAWS, MetricSet};

use crate::error::{Error, Result};
use crate::meta::InferMeta;
use crate::model::Model;
use crate::onnx_file::OnnxFile;

/// The version of the `metrics.json` layout.
pub const EVAL_SCHEMA_VERSION: u32 = 1;

/// Which data to evaluate on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataSpec {
    /// The dataset root folder or file.
    pub path: PathBuf,
    /// Its format.
    pub format: Format,
    /// The official split; `None` reads every sample (the only choice for CK+).
    pub split: Option<SplitName>,
    /// A training run's `split.json`: only the part of it that [`DataSpec::holdout_part`]
    /// names is read (samples the run kept out of training).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holdout: Option<PathBuf>,
    /// Which held-out part of [`DataSpec::holdout`] to read.
    #[serde(default, skip_serializing_if = "HoldoutPart::is_calibration")]
    pub holdout_part: HoldoutPart,
}

/// The part of a training run's `split.json` that [`DataSpec::holdout`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum HoldoutPart {
    /// The calibration hold-out (`data.calib_fraction`): never trained on, never used to
    /// choose the epoch.
    #[default]
    Calibration,
    /// The validation share of a run that drew it from its training data
    /// (`data.val_fraction` or folds): never trained on, but it chose the epoch unless the
    /// last one is used. For runs trained without a calibration hold-out, so that every other
    /// sample of train is trained on.
    Validation,
}

impl HoldoutPart {
    fn is_calibration(&self) -> bool {
        *self == HoldoutPart::Calibration
    }

    /// How tables name it: `calibration hold-out` or `validation share`.
    pub fn name(self) -> &'static str {
        match self {
            HoldoutPart::Calibration => "calibration hold-out",
            HoldoutPart::Validation => "validation share",
        }
    }
}

impl DataSpec {
    /// A short name for tables: the path's last component without extension
    /// (`…/fer2013.csv` → `fer2013`, `…/CK+48/` → `CK+48`).
    pub fn name(&self) -> String {
        let p = self.path.components().next_back();
        let last = p.map(|c| c.as_os_str().to_string_lossy().into_owned()).unwrap_or_default();
        match Path::new(&last).file_stem() {
            Some(s) if self.path.is_file() => s.to_string_lossy().into_owned(),
            _ => last,
        }
    }

    /// The split as text: its name, or `all`; `train, calibration hold-out` with a hold-out.
    pub fn split_name(&self) -> String {
        let split = self.split.map_or("all", SplitName::name);
        match self.holdout {
            Some(_) => format!("{split}, {}", self.holdout_part.name()),
            None => split.to_string(),
        }
    }

    /// Opens the dataset; `skip_bad` leaves out bad items (listed, never silently).
    pub fn open(&self, skip_bad: bool) -> Result<Arc<dyn Dataset>> {
        let opts = OpenOptions { skip_bad, ..OpenOptions::default() };
        let ds: Arc<dyn Dataset> =
            fer_data::formats::open(self.format, &self.path, self.split, &opts)
                .map(Arc::from)
                .map_err(|source| Error::Data { path: self.path.clone(), source })?;
        let Some(plan_path) = &self.holdout else { return Ok(ds) };
        let data_err = |source| Error::Data { path: plan_path.clone(), source };
        let plan = fer_data::split::SplitPlan::load(plan_path).map_err(data_err)?;
        // A plan of official splits validated on another dataset (for FER-2013, the test split).
        let official = matches!(plan.strategy, fer_data::split::Strategy::Official);
        let part = self.holdout_part.name();
        let held = match self.holdout_part {
            HoldoutPart::Calibration if plan.calibration.is_none() => {
                let hint = if official {
                    "train with data.calib_fraction to make one"
                } else {
                    "--holdout-part validation reads the validation share it drew from train"
                };
                return Err(Error::invalid(
                    "--holdout",
                    format!(
                        "{}: the run kept no calibration hold-out; {hint}",
                        plan_path.display()
                    ),
                ));
            }
            HoldoutPart::Calibration => plan.calibration_subset(ds),
            HoldoutPart::Validation if official => Err(fer_data::Error::invalid(
                "split plan",
                "the run validated on an official split, not on a share of its training data \
                 (--holdout-part validation reads a share drawn with data.val_fraction or folds)",
            )),
            HoldoutPart::Validation => plan.subset(SplitName::Val, ds),
        };
        let held = held.map_err(|e| {
            let why = match e {
                fer_data::Error::Invalid { .. } => e.to_string(),
                fer_data::Error::Index { index, len } => format!(
                    "the {part} was made from a different listing of the dataset (it names \
                     sample {index}, this one has {len})"
                ),
                other => return data_err(other),
            };
            Error::invalid(
                "--holdout",
                format!(
                    "{}: {why}; give the dataset, --format and --split the run trained on (its \
                     config.resolved.toml says which)",
                    plan_path.display()
                ),
            )
        })?;
        Ok(Arc::new(held))
    }
}

/// Test-time augmentation: which views of each image the model sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tta {
    /// The image only.
    #[default]
    None,
    /// The image and its horizontal mirror (the decoded image flipped, then preprocessed as
    /// usual); their logits are averaged, so the probabilities are the renormalised geometric
    /// mean of the two views' (at any temperature).
    Flip,
    /// Ten views, as FER-2013 papers evaluate (44-pixel crops of the 48-pixel images): the four
    /// corner crops and the centre crop of [`TEN_CROP_FRACTION`] of each side, each as it is
    /// and mirrored, then preprocessed as usual; the ten views' logits are averaged.
    TenCrop,
}

/// The side of a ten-crop view as a fraction of the image's side: 44 of 48 pixels.
pub const TEN_CROP_FRACTION: f64 = 11.0 / 12.0;

impl Tta {
    /// Every test-time augmentation, in the order `--tta` lists them.
    pub const ALL: [Tta; 3] = [Tta::None, Tta::Flip, Tta::TenCrop];

    /// The views whose logits are averaged, the first one batched as the reference.
    pub fn views(self) -> Vec<View> {
        match self {
            Tta::None => vec![View { crop: None, flip: false }],
            Tta::Flip => vec![View { crop: None, flip: false }, View { crop: None, flip: true }],
            Tta::TenCrop => Corner::ALL
                .iter()
                .flat_map(|&c| [false, true].map(|flip| View { crop: Some(c), flip }))
                .collect(),
        }
    }

    /// The flag's value.
    pub fn name(self) -> &'static str {
        match self {
            Tta::None => "none",
            Tta::Flip => "flip",
            Tta::TenCrop => "ten-crop",
        }
    }
}

/// Where a [`Tta::TenCrop`] view is cut from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Corner {
    /// Top left.
    TopLeft,
    /// Top right.
    TopRight,
    /// Bottom left.
    BottomLeft,
    /// Bottom right.
    BottomRight,
    /// The centre.
    Centre,
}

impl Corner {
    /// The five crops of ten-crop.
    pub const ALL: [Corner; 5] = [
        Corner::TopLeft,
        Corner::TopRight,
        Corner::BottomLeft,
        Corner::BottomRight,
        Corner::Centre,
    ];

    /// `(x, y, w, h)` of the crop of [`TEN_CROP_FRACTION`] of a `width × height` image.
    pub fn rect(self, width: u32, height: u32) -> (u32, u32, u32, u32) {
        let side = |v: u32| ((v as f64 * TEN_CROP_FRACTION).round() as u32).clamp(1, v);
        let (w, h) = (side(width), side(height));
        let (x, y) = match self {
            Corner::TopLeft => (0, 0),
            Corner::TopRight => (width - w, 0),
            Corner::BottomLeft => (0, height - h),
            Corner::BottomRight => (width - w, height - h),
            Corner::Centre => ((width - w) / 2, (height - h) / 2),
        };
        (x, y, w, h)
    }
}

/// One test-time view of each image: an optional crop, then an optional mirror, before the
/// model's usual preprocessing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct View {
    /// The crop, if any.
    pub crop: Option<Corner>,
    /// Mirrored left to right (after the crop).
    pub flip: bool,
}

impl View {
    /// The view of `img`.
    pub fn apply(self, img: &image::DynamicImage) -> image::DynamicImage {
        let img = match self.crop {
            Some(c) => {
                let (x, y, w, h) = c.rect(img.width(), img.height());
                img.crop_imm(x, y, w, h)
            }
            None => img.clone(),
        };
        if self.flip { img.fliph() } else { img }
    }
}

impl std::str::FromStr for Tta {
    type Err = Error;

    /// The flag's value, as [`Tta::name`] spells it.
    fn from_str(s: &str) -> Result<Self> {
        Tta::ALL.into_iter().find(|t| t.name() == s).ok_or_else(|| {
            let names = Tta::ALL.map(Tta::name);
            let (last, rest) = names.split_last().unwrap_or((&"", &[]));
            Error::invalid("--tta", format!("`{s}` (expected {} or {last})", rest.join(", ")))
        })
    }
}

/// How to run the model over the data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectOptions {
    /// Images per forward pass.
    pub batch: usize,
    /// Leave out images that fail to decode (listed in [`Collected::skipped`]).
    pub skip_bad: bool,
    /// Decoding threads; 0: one per core.
    pub workers: usize,
    /// Test-time augmentation.
    pub tta: Tta,
}

impl Default for CollectOptions {
    fn default() -> Self {
        CollectOptions { batch: 64, skip_bad: false, workers: 0, tta: Tta::None }
    }
}

/// The model's raw outputs over the samples of the shared classes.
#[derive(Debug, Clone, PartialEq)]
pub struct Collected {
    /// `[N, K_model]` raw logits, row-major.
    pub logits: Vec<f32>,
    /// Labels as indices into [`ClassMap::shared`].
    pub labels: Vec<usize>,
    /// Where each sample came from.
    pub sources: Vec<String>,
    /// Items left out as bad (at open or at decoding, with `skip_bad`).
    pub skipped: Vec<SkippedItem>,
    /// Samples of classes the model cannot predict, left out.
    pub left_out: usize,
    /// Seconds spent in the runtime (forward passes only).
    pub forward_seconds: f64,
}

/// Runs `model` over the samples of `data` whose class is shared (per `map`), in order.
/// `progress(done, total)` is called after each batch.
pub fn collect(
    model: &mut Model,
    data: Arc<dyn Dataset>,
    data_path: &Path,
    map: &ClassMap,
    opts: &CollectOptions,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Collected> {
    if opts.batch == 0 {
        return Err(Error::invalid("--batch", "must be at least 1"));
    }
    let indices: Vec<usize> =
        (0..data.len()).filter(|&i| map.shared_index(data.label(i)).is_some()).collect();
    let left_out = data.len() - indices.len();
    if indices.is_empty() {
        return Err(Error::Classes {
            msg: format!(
                "dataset {}: no samples of the shared classes [{}] ({} samples in all, {} of \
                 classes the model cannot predict); nothing to evaluate",
                data_path.display(),
                map.shared.join(", "),
                data.len(),
                left_out
            ),
        });
    }
    let cfg = LoaderConfig {
        batch_size: opts.batch,
        workers: opts.workers,
        shuffle: false,
        skip_bad: opts.skip_bad,
        ..LoaderConfig::default()
    };
    let data_err = |source| Error::Data { path: data_path.to_path_buf(), source };
    // One loader per view: the same samples in the same order, each image transformed by its
    // view before the usual preprocessing; the first view's batches lead.
    let loaders = opts
        .tta
        .views()
        .into_iter()
        .map(|view| {
            Loader::new(
                Arc::new(Viewed { inner: data.clone(), view }),
                indices.clone(),
                model.meta().preprocess.clone(),
                fer_data::augment::AugmentConfig::off(),
                cfg.clone(),
            )
            .map_err(data_err)
        })
        .collect::<Result<Vec<_>>>()?;
    let (loader, others) = loaders.split_first().expect("every TTA has a view");
    let mut other_epochs: Vec<_> = others.iter().map(|l| l.epoch(0)).collect();
    let flag = format!("--tta {}", opts.tta.name());
    let total = indices.len();
    let km = model.meta().labels.len();
    let mut out = Collected {
        logits: Vec::with_capacity(total * km),
        labels: Vec::with_capacity(total),
        sources: Vec::with_capacity(total),
        skipped: data.skipped().to_vec(),
        left_out,
        forward_seconds: 0.0,
    };
    let mut done = 0;
    for batch in loader.epoch(0) {
        let batch = batch.map_err(data_err)?;
        done += batch.len() + batch.skipped.len();
        out.skipped.extend(batch.skipped.iter().cloned());
        if !batch.is_empty() {
            let input = batch.images.to_input(loader.preprocess()).map_err(data_err)?;
            let view = ArrayView4::from_shape(batch.shape, &input)
                .map_err(|e| Error::invalid("batch", e.to_string()))?;
            let start = Instant::now();
            let mut logits = model.run(view)?.logits;
            for epoch in other_epochs.iter_mut() {
                let twin = match epoch.next() {
                    Some(b) => b.map_err(data_err)?,
                    None => return Err(Error::invalid(&flag, "a view's pass ended early")),
                };
                if twin.indices != batch.indices {
                    return Err(Error::invalid(
                        &flag,
                        "a view's pass read other samples (an image failed in one pass only)",
                    ));
                }
                let input = twin.images.to_input(loader.preprocess()).map_err(data_err)?;
                let view = ArrayView4::from_shape(twin.shape, &input)
                    .map_err(|e| Error::invalid("batch", e.to_string()))?;
                let other = model.run(view)?.logits;
                if other.dim() != logits.dim() {
                    return Err(Error::Output {
                        name: "logits".into(),
                        msg: format!(
                            "{:?} for a view's batch, {:?} for the batch",
                            other.dim(),
                            logits.dim()
                        ),
                    });
                }
                logits = logits + other;
            }
            if !other_epochs.is_empty() {
                logits /= (other_epochs.len() + 1) as f32;
            }
            out.forward_seconds += start.elapsed().as_secs_f64();
            if logits.ncols() != km {
                return Err(Error::Output {
                    name: "logits".into(),
                    msg: format!("{} classes but the model has {km} labels", logits.ncols()),
                });
            }
            out.logits.extend(logits.iter().copied());
            for (&i, &l) in batch.indices.iter().zip(&batch.labels) {
                // Only shared classes were loaded, so the lookup succeeds.
                out.labels.push(map.shared_index(l as usize).unwrap_or(0));
                out.sources.push(data.source(i));
            }
        }
        progress(done, total);
    }
    if out.labels.is_empty() {
        return Err(Error::Classes {
            msg: format!(
                "dataset {}: every one of the {total} samples failed to load; nothing to evaluate",
                data_path.display()
            ),
        });
    }
    Ok(out)
}

/// A dataset whose images are seen through a [`View`] (labels and sources unchanged).
struct Viewed {
    inner: Arc<dyn Dataset>,
    view: View,
}

impl Dataset for Viewed {
    fn classes(&self) -> &[fer_data::Emotion] {
        self.inner.classes()
    }
    fn len(&self) -> usize {
        self.inner.len()
    }
    fn label(&self, i: usize) -> usize {
        self.inner.label(i)
    }
    fn group(&self, i: usize) -> Option<&str> {
        self.inner.group(i)
    }
    fn source(&self, i: usize) -> String {
        self.inner.source(i)
    }
    fn load(&self, i: usize) -> fer_data::Result<fer_data::Sample> {
        let mut s = self.inner.load(i)?;
        if self.view != (View { crop: None, flip: false }) {
            s.image = self.view.apply(&s.image);
        }
        Ok(s)
    }
    fn skipped(&self) -> &[SkippedItem] {
        self.inner.skipped()
    }
    fn excluded(&self) -> &[Exclusion] {
        self.inner.excluded()
    }
}

/// What was evaluated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// The ONNX file.
    pub path: PathBuf,
    /// The architecture id (`fer.arch_config`), when known.
    pub arch: Option<String>,
    /// Parameters: elements of the graph's initializers (after export-time folding).
    pub parameters: u64,
    /// The labels in logit order.
    pub labels: Vec<String>,
    /// The stored (or overridden) temperature.
    pub temperature: f64,
    /// The runtime, for example `ort-cpu` or `tract`.
    pub backend: String,
}

impl ModelInfo {
    /// Describes `file` with its resolved metadata, run by `backend`.
    pub fn new(file: &OnnxFile, meta: &InferMeta, backend: &str) -> Self {
        let parameters = file.proto.graph.as_ref().map_or(0, |g| {
            g.initializer.iter().map(|t| t.dims.iter().product::<i64>().max(0) as u64).sum()
        });
        ModelInfo {
            path: file.path.clone(),
            arch: meta.arch.as_ref().map(|a| a.arch.id().to_string()),
            parameters,
            labels: meta.labels.clone(),
            temperature: meta.temperature,
            backend: backend.to_string(),
        }
    }
}

/// The data side of the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataInfo {
    /// Where and what.
    #[serde(flatten)]
    pub spec: DataSpec,
    /// Short name (see [`DataSpec::name`]).
    pub name: String,
    /// Samples in the split.
    pub total: usize,
    /// Samples scored.
    pub evaluated: usize,
    /// Samples of classes the model cannot predict, left out.
    pub left_out: usize,
    /// Bad items left out (with `--skip-bad`).
    pub skipped: Vec<SkippedItem>,
    /// Items the dataset's protocol excludes.
    pub excluded: Vec<Exclusion>,
}

/// Settings of the run, recorded for reproducibility.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// Equal-width (and equal-mass) bins of ECE, adaptive ECE and MCE.
    pub ece_bins: usize,
    /// Bootstrap resamples (0: none).
    pub bootstrap: usize,
    /// Bootstrap seed.
    pub seed: u64,
    /// Batch size.
    pub batch: usize,
    /// Test-time augmentation (absent in files written before it existed: none).
    #[serde(default)]
    pub tta: Tta,
}

/// Time spent in the runtime.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timing {
    /// Seconds in forward passes (no decoding or preprocessing).
    pub forward_seconds: f64,
    /// Milliseconds per image at the batch size used.
    pub ms_per_image: f64,
}

/// Everything `metrics.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// [`EVAL_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The model.
    pub model: ModelInfo,
    /// The data.
    pub dataset: DataInfo,
    /// How classes were matched (cross-dataset evaluation).
    pub classes: ClassMap,
    /// Metrics at the model's temperature.
    pub metrics: MetricSet,
    /// Metrics at `T = 1`, when the model's temperature is not 1.
    pub metrics_t1: Option<MetricSet>,
    /// Samples whose most probable class over all the model's outputs is a class dropped
    /// from the model (they count as errors only through the renormalised shared classes).
    pub predicted_dropped_class: u64,
    /// Runtime.
    pub timing: Timing,
    /// Settings.
    pub settings: Settings,
}

impl EvalReport {
    /// Scores `c` (collected over `data`) and assembles the report.
    pub fn build(
        model: ModelInfo,
        spec: &DataSpec,
        data: &dyn Dataset,
        classes: ClassMap,
        c: &Collected,
        settings: Settings,
    ) -> Result<Self> {
        let t = model.temperature;
        let score = |t: f64| {
            let probs = classes.probabilities(&c.logits, t);
            let s = settings.seed;
            MetricSet::compute(&probs, &c.labels, &classes.shared, t, settings.bootstrap, s)
        };
        let metrics = score(t)?;
        let metrics_t1 = if t != 1.0 { Some(score(1.0)?) } else { None };
        let km = classes.model_labels.len();
        let predicted_dropped_class = c
            .logits
            .chunks_exact(km)
            .filter(|row| !classes.model_indices.contains(&fer_metrics::argmax(row)))
            .count() as u64;
        let n = c.labels.len();
        Ok(EvalReport {
            schema_version: EVAL_SCHEMA_VERSION,
            model,
            dataset: DataInfo {
                spec: spec.clone(),
                name: spec.name(),
                total: data.len(),
                evaluated: n,
                left_out: c.left_out,
                skipped: c.skipped.clone(),
                excluded: data.excluded().to_vec(),
            },
            classes,
            metrics,
            metrics_t1,
            predicted_dropped_class,
            timing: Timing {
                forward_seconds: c.forward_seconds,
                ms_per_image: c.forward_seconds * 1000.0 / n as f64,
            },
            settings,
        })
    }
}
