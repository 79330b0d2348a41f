//! Flags shared by the subcommands.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use fer_infer::{
    BackendKind, BackendOptions, ExecutionProvider, InferMeta, MetaOverrides, OnnxFile,
};
use fer_models_spec::{ColorMode, ResizeMethod};

/// Which runtime and device.
#[derive(Args, Debug, Clone)]
pub struct BackendArgs {
    /// Runtime: `ort` (ONNX Runtime: fastest, needs libonnxruntime, CPU or CUDA) or `tract`
    /// (pure Rust, CPU only, nothing to install).
    #[arg(long, value_enum, default_value = "ort")]
    pub backend: BackendKind,
    #[command(flatten)]
    pub device: DeviceArgs,
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
    /// The library's options.
    pub fn options(&self) -> BackendOptions {
        BackendOptions { kind: self.backend, ep: self.device.ep, threads: self.device.threads }
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
    /// `gray` or `rgb` (`fer.color`); default from the model's input channels.
    #[arg(long, value_parser = parse_color)]
    pub color: Option<ColorMode>,
    /// `bilinear` or `nearest` (`fer.resize`); default bilinear.
    #[arg(long, value_parser = parse_resize)]
    pub resize: Option<ResizeMethod>,
    /// Softmax temperature (`fer.temperature`); default 1 or the calibrated value.
    #[arg(long)]
    pub temperature: Option<f64>,
}

fn parse_color(s: &str) -> Result<ColorMode, String> {
    match s {
        "gray" => Ok(ColorMode::Gray),
        "rgb" => Ok(ColorMode::Rgb),
        _ => Err(format!("`{s}`: expected gray or rgb")),
    }
}

fn parse_resize(s: &str) -> Result<ResizeMethod, String> {
    match s {
        "bilinear" => Ok(ResizeMethod::Bilinear),
        "nearest" => Ok(ResizeMethod::Nearest),
        _ => Err(format!("`{s}`: expected bilinear or nearest")),
    }
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
        "model"
    );
    Ok((file, m))
}

/// Parses an output path where `-` means stdout.
pub fn out_path(s: &str) -> Option<PathBuf> {
    if s == "-" { None } else { Some(PathBuf::from(s)) }
}
