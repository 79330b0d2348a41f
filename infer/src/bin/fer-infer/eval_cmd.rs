//! `fer-infer eval`: metrics, calibration, plots and a report on a labelled dataset.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use fer_data::formats::Format;
use fer_data::{Dataset, SplitName};
use fer_infer::eval::faces::FaceCropped;
use fer_infer::eval::{
    ClassMap, CollectOptions, Collected, DataSpec, ECE_BINS, EvalReport, HoldoutPart, ModelInfo,
    Settings, Tta,
};
use fer_infer::photo::{FaceMode, Photos};
use fer_infer::{InferMeta, Model};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::UsageError;
use crate::args::{BackendArgs, DataFaceArgs, MetaArgs, read_model};

/// The dataset flags shared by `eval` and `calibrate`.
#[derive(Args, Debug, Clone)]
pub struct DataArgs {
    /// The dataset: its root folder, or the CSV file for `fer2013-csv` / `ferplus`.
    #[arg(long)]
    pub data: PathBuf,
    /// The dataset's format: fer2013-csv, fer2013-folder, ferplus, rafdb, affectnet-csv,
    /// affectnet-folder, ckplus, jaffe or image-folder.
    #[arg(long)]
    pub format: Format,
    /// Official split (`train`, `val`, `test`). Default: every sample, the only choice for
    /// sets without splits such as CK+ or a flat image folder.
    #[arg(long)]
    pub split: Option<SplitName>,
    /// A training run's `split.json`: read only the samples that run held out of training, its
    /// calibration hold-out (`data.calib_fraction`) unless --holdout-part says otherwise. Give
    /// the dataset and --split it trained on.
    #[arg(long, value_name = "SPLIT_JSON")]
    pub holdout: Option<PathBuf>,
    /// Which held-out samples of --holdout to read: `calibration` (the calibration hold-out)
    /// or `validation` (the validation share drawn from train, for a run trained without a
    /// calibration hold-out).
    #[arg(long, value_enum, default_value = "calibration", requires = "holdout")]
    pub holdout_part: HoldoutPart,
    /// Images per forward pass: larger batches are faster and use more memory.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Leave out unreadable images (listed in the report) instead of stopping at the first.
    #[arg(long)]
    pub skip_bad: bool,
    /// Image decoding threads (0: one per core).
    #[arg(long, default_value_t = 0)]
    pub workers: usize,
    /// Test-time augmentation: `none`; `flip` (the logits of each image and of its mirror
    /// are averaged; twice the forward passes); or `ten-crop` (the four corner and the centre
    /// crops of 11/12 of each side, each also mirrored: ten forward passes).
    #[arg(long, default_value = "none")]
    pub tta: Tta,
    #[command(flatten)]
    pub photos: DataFaceArgs,
}

/// Arguments of `eval`.
#[derive(Args, Debug)]
pub struct EvalArgs {
    /// The exported model (`.onnx`).
    /// Default: the built-in FER-2013 student (docs/models.md).
    #[arg(long)]
    model: Option<PathBuf>,
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    backend: BackendArgs,
    #[command(flatten)]
    meta: MetaArgs,
    /// Output folder for metrics.json, report.md, predictions.csv and the PNGs.
    /// Default: `<model without .onnx>.eval/` beside the model.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Bootstrap resamples for the 95% intervals of accuracy, macro-F1 and ECE (0: none).
    /// More resamples give steadier interval ends and take longer.
    #[arg(long, default_value_t = 1000)]
    bootstrap: usize,
    /// Seed of the bootstrap resampling and of the ECE floor's simulated outcomes.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// Everything `eval` and `calibrate` share: the model, the data, the class map and the
/// logits collected once.
pub struct Run {
    pub info: ModelInfo,
    pub spec: DataSpec,
    pub data: Arc<dyn Dataset>,
    pub classes: ClassMap,
    pub collected: Collected,
}

/// Reads the model, opens the data, matches the classes (printing what was dropped) and runs
/// the model over the shared classes with a progress bar.
pub fn collect(
    model_path: &Path,
    meta: &MetaArgs,
    backend: &BackendArgs,
    d: &DataArgs,
) -> anyhow::Result<Run> {
    if d.batch == 0 {
        return Err(UsageError("--batch must be at least 1".into()).into());
    }
    let (file, m): (_, InferMeta) = read_model(model_path, meta)?;
    let spec = DataSpec {
        path: d.data.clone(),
        format: d.format,
        split: d.split,
        holdout: d.holdout.clone(),
        holdout_part: d.holdout_part,
    };
    let mut data = spec.open(d.skip_bad).context("opening the dataset")?;
    if let Some(mode) = d.photos.faces {
        data = face_pass(data, &m, mode, backend, d)?;
    }
    for it in data.skipped() {
        tracing::warn!("skipped {}: {}", it.source, it.reason);
    }
    let classes = ClassMap::new(model_path, &m.labels, &d.data, data.classes())?;
    for note in classes.notes() {
        eprintln!("note: {note}");
    }
    let mut model = Model::from_parts(file.clone(), m.clone(), &backend.options())
        .with_context(|| format!("loading {}", model_path.display()))?;
    let info = ModelInfo::new(&file, &m, model.backend_name());
    let bar = progress_bar(data.len() as u64);
    let opts =
        CollectOptions { batch: d.batch, skip_bad: d.skip_bad, workers: d.workers, tta: d.tta };
    let collected = fer_infer::eval::collect(
        &mut model,
        data.clone(),
        &d.data,
        &classes,
        &opts,
        &mut |done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        },
    )
    .with_context(|| format!("running {} over {}", model_path.display(), d.data.display()))?;
    bar.finish_and_clear();
    for it in collected.skipped.iter().skip(data.skipped().len()) {
        tracing::warn!("skipped {}: {}", it.source, it.reason);
    }
    Ok(Run { info, spec, data, classes, collected })
}

/// `--faces`: the dataset seen through the face pipeline (a pass of the detector over every
/// image first); what it found goes to stderr, the images left out to the report.
fn face_pass(
    data: Arc<dyn Dataset>,
    m: &InferMeta,
    mode: FaceMode,
    backend: &BackendArgs,
    d: &DataArgs,
) -> anyhow::Result<Arc<dyn Dataset>> {
    let finder = d.photos.face.finder(mode, m.crop, backend)?;
    let mut photos = Photos::new(finder, m, mode)?;
    let bar = progress_bar(data.len() as u64);
    let side = fer_infer::face::align::crop_side(m);
    let fc =
        FaceCropped::build(data, &mut photos, side, d.photos.multi, d.skip_bad, &mut |i, _| {
            bar.set_position(i as u64)
        })
        .with_context(|| format!("looking for faces in {}", d.data.display()))?;
    bar.finish_and_clear();
    eprintln!("faces: {}", fc.summary.line());
    if fc.is_empty() {
        return Err(anyhow::anyhow!("no image of {} has a usable face", d.data.display()));
    }
    Ok(Arc::new(fc))
}

/// A bar over samples on stderr, hidden when stderr is not a terminal.
pub fn progress_bar(total: u64) -> ProgressBar {
    let bar = if std::io::stderr().is_terminal() {
        ProgressBar::new(total)
    } else {
        ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden())
    };
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {pos}/{len} images  {per_sec}  eta {eta}")
    {
        bar.set_style(style);
    }
    bar
}

/// `<dir>/<stem>.eval` for `<dir>/<stem>.onnx`.
pub fn default_out(model: &Path) -> PathBuf {
    let stem = model.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    model.with_file_name(format!("{stem}.eval"))
}

pub fn run(a: EvalArgs) -> anyhow::Result<()> {
    let model_path = crate::builtin::model_path(a.model.as_deref())?;
    fer_metrics::plot::ensure_font().context("the plots need a font")?;
    let r = collect(&model_path, &a.meta, &a.backend, &a.data)?;
    let settings = Settings {
        ece_bins: ECE_BINS,
        bootstrap: a.bootstrap,
        seed: a.seed,
        batch: a.data.batch,
        tta: a.data.tta,
    };
    let report =
        EvalReport::build(r.info, &r.spec, r.data.as_ref(), r.classes, &r.collected, settings)?;
    // Beside the model, or in the working directory for the built-in one.
    let out = a.out.clone().unwrap_or_else(|| match &a.model {
        Some(m) => default_out(m),
        None => default_out(Path::new(crate::builtin::NAME)),
    });
    let written = fer_infer::eval::output::write_all(&report, &r.collected, &out)
        .with_context(|| format!("writing the evaluation into {}", out.display()))?;
    out!("{}", fer_infer::eval::output::summary(&report));
    outln!("\nwrote {} files into {}", written.len(), out.display());
    Ok(())
}
