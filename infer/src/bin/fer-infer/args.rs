//! Flags shared by the subcommands.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use fer_infer::eval::faces::Multi;
use fer_infer::face::{FaceFinder, FinderOptions, Range, RangeChoice};
use fer_infer::photo::{FaceMode, Photos};
use fer_infer::{
    BackendKind, BackendOptions, ExecutionProvider, InferMeta, MetaOverrides, OnnxFile,
};
use fer_models_spec::{ColorMode, FaceCrop, ResizeMethod};

/// Which runtime and device.
#[derive(Args, Debug, Clone)]
pub struct BackendArgs {
    /// Runtime: `ort` (ONNX Runtime: fastest, needs libonnxruntime, CPU or CUDA), `tract`
    /// (pure Rust, CPU only, nothing to install) or `auto`: ONNX Runtime when its library is
    /// found, else tract, saying so in one line.
    #[arg(long, value_enum, default_value = "auto")]
    pub backend: RuntimeChoice,
    /// The ONNX Runtime library to load (wins over `ORT_DYLIB_PATH` and the search described
    /// by `fer-infer env`).
    #[arg(long, value_name = "PATH")]
    pub ort_library: Option<PathBuf>,
    #[command(flatten)]
    pub device: DeviceArgs,
}

/// `--backend`: a runtime, or `auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RuntimeChoice {
    /// ONNX Runtime when its library is found (or a GPU provider is asked for), else tract.
    Auto,
    /// ONNX Runtime; an error when its library is missing.
    Ort,
    /// tract.
    Tract,
}

/// Execution provider and threads.
#[derive(Args, Debug, Clone)]
pub struct DeviceArgs {
    /// ONNX Runtime execution provider. `cuda` fails if CUDA cannot be used (never a silent
    /// CPU fallback); `auto` tries CUDA first and logs which provider runs.
    #[arg(long, value_enum, default_value = "cpu")]
    pub ep: ExecutionProvider,
    /// Threads per operator (ONNX Runtime intra-op pool; tract's matrix products). Default:
    /// ONNX Runtime one per physical core, tract single-threaded. Fewer threads leave cores
    /// for other work; more rarely help small models.
    #[arg(long)]
    pub threads: Option<usize>,
}

impl BackendArgs {
    /// The runtime to use: `auto` resolved (ONNX Runtime when its library is found, or when a
    /// GPU provider is asked for or the library is named by `--ort-library`/`ORT_DYLIB_PATH`,
    /// so that its absence is then an error rather than a silent switch).
    pub fn kind(&self) -> BackendKind {
        if let Some(p) = &self.ort_library {
            fer_infer::backend::ort::use_library(p.clone());
        }
        match self.backend {
            RuntimeChoice::Ort => BackendKind::Ort,
            RuntimeChoice::Tract => BackendKind::Tract,
            // A build with one runtime: `auto` is that one.
            RuntimeChoice::Auto if !BackendKind::Tract.built() => BackendKind::Ort,
            RuntimeChoice::Auto if !BackendKind::Ort.built() => BackendKind::Tract,
            RuntimeChoice::Auto
                if self.device.ep != ExecutionProvider::Cpu
                    || fer_infer::backend::ort::library_named() =>
            {
                BackendKind::Ort
            }
            RuntimeChoice::Auto => match fer_infer::backend::ort::find_library() {
                Ok(_) => BackendKind::Ort,
                Err(e) => {
                    static ONCE: std::sync::Once = std::sync::Once::new();
                    ONCE.call_once(|| {
                        tracing::info!(
                            "no ONNX Runtime library found (`fer-infer env` shows where it \
                             looked): running on tract (pure Rust, slower)"
                        );
                        tracing::debug!("{e}");
                    });
                    BackendKind::Tract
                }
            },
        }
    }

    /// The library's options.
    pub fn options(&self) -> BackendOptions {
        BackendOptions { kind: self.kind(), ep: self.device.ep, threads: self.device.threads }
    }
}

/// Values for models without FER metadata, or to override it.
#[derive(Args, Debug, Clone, Default)]
pub struct MetaArgs {
    /// Class names in logit order, comma-separated (`fer.labels`).
    #[arg(long, value_delimiter = ',')]
    pub labels: Option<Vec<String>>,
    /// Square input side in pixels (`fer.input_size`); default from the model's input shape.
    #[arg(long)]
    pub input_size: Option<usize>,
    /// Per-channel mean on the [0, 1] scale, comma-separated (`fer.mean`).
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true)]
    pub mean: Option<Vec<f32>>,
    /// Per-channel standard deviation, comma-separated (`fer.std`).
    #[arg(long, value_delimiter = ',')]
    pub std: Option<Vec<f32>>,
    /// Colour handling (`fer.color`); default from the model's input channels.
    #[arg(long, value_enum)]
    pub color: Option<ColorMode>,
    /// Resize interpolation (`fer.resize`); default bilinear.
    #[arg(long, value_enum)]
    pub resize: Option<ResizeMethod>,
    /// Softmax temperature (`fer.temperature`); default 1 or the calibrated value.
    #[arg(long)]
    pub temperature: Option<f64>,
    /// The face crop the model was trained on (`fer.crop`): `whole` (no faces detected),
    /// `dataset` (the dataset's own crops, e.g. FER-2013's; the default for files without the
    /// key), `aligned` or `aligned:MARGIN` (the toolkit's crop; docs/onnx-metadata.md).
    #[arg(long)]
    pub crop: Option<FaceCrop>,
}

impl MetaArgs {
    /// The library's overrides.
    pub fn overrides(&self) -> MetaOverrides {
        MetaOverrides {
            labels: self.labels.clone(),
            input_size: self.input_size,
            mean: self.mean.clone(),
            std: self.std.clone(),
            color: self.color,
            resize: self.resize,
            temperature: self.temperature,
            crop: self.crop,
        }
    }
}

/// Reads the model file and resolves its metadata, with context for the error chain.
pub fn read_model(path: &Path, meta: &MetaArgs) -> anyhow::Result<(OnnxFile, InferMeta)> {
    let file = OnnxFile::open(path).with_context(|| format!("reading model {}", path.display()))?;
    let m = InferMeta::resolve(&file, &meta.overrides())
        .with_context(|| format!("reading the metadata of {}", path.display()))?;
    tracing::info!(
        model = %path.display(),
        classes = m.labels.len(),
        input_size = m.preprocess.input_size,
        color = ?m.preprocess.color,
        temperature = m.temperature,
        crop = %m.crop,
        "model"
    );
    Ok((file, m))
}

/// Parses an output path where `-` means stdout.
pub fn out_path(s: &str) -> Option<PathBuf> {
    if s == "-" { None } else { Some(PathBuf::from(s)) }
}

/// How photos become faces: `predict`, `eval --faces`, `data faces`.
#[derive(Args, Debug, Clone)]
pub struct FaceArgs {
    /// Which BlazeFace model(s) look for faces: `auto` runs the short-range model and, when it
    /// finds nothing or only small faces, the full-range one too; `short` or `full` only.
    #[arg(long, value_enum, default_value = "auto")]
    pub detector: RangeChoice,
    /// Folder holding the two BlazeFace files (default: `.deps/blazeface/` from
    /// scripts/setup.sh, or `$FER_BLAZEFACE_DIR`).
    #[arg(long)]
    pub detector_dir: Option<PathBuf>,
    /// Minimum detector confidence.
    #[arg(long, default_value_t = 0.5)]
    pub min_score: f32,
}

impl FaceArgs {
    /// The detector(s), loaded only when `mode` and the model's `crop` need them.
    pub fn finder(
        &self,
        mode: FaceMode,
        crop: FaceCrop,
        backend: &BackendArgs,
    ) -> anyhow::Result<Option<FaceFinder>> {
        if !Photos::needs_finder(mode, crop) {
            return Ok(None);
        }
        if !(0.0..=1.0).contains(&self.min_score) {
            return Err(crate::UsageError(format!(
                "--min-score {} is not a confidence between 0 and 1",
                self.min_score
            ))
            .into());
        }
        let file = |r: Range| self.detector_dir.as_ref().map(|d| d.join(r.file_name()));
        let o = FinderOptions {
            choice: self.detector,
            short_file: file(Range::Short),
            full_file: file(Range::Full),
            backend: backend.options(),
            min_score: self.min_score,
        };
        Ok(Some(FaceFinder::open(&o).context("loading the face detector")?))
    }
}

/// `--faces` for datasets (`eval`, `calibrate`): the face pipeline over whole photos.
#[derive(Args, Debug, Clone)]
pub struct DataFaceArgs {
    /// Search each image for faces and use the aligned crop of its face (`--faces` alone:
    /// `detect`; `auto` keeps images that look like face crops whole). Images without a face
    /// are left out and listed. Default: every image whole, as datasets of crops need.
    #[arg(long, value_enum, num_args = 0..=1, default_missing_value = "detect")]
    pub faces: Option<FaceMode>,
    /// With `--faces`: an image with several faces gives its `largest`, or is left out (`skip`).
    #[arg(long, value_enum, default_value = "largest")]
    pub multi: Multi,
    #[command(flatten)]
    pub face: FaceArgs,
}
