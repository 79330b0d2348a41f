//! `fer-export`: writes a self-describing ONNX file from one of our checkpoints or from a
//! torchvision state dict (`.pth` or `.safetensors`).
//!
//! Exit status: 0 on success, 2 for usage or configuration errors, 1 for everything else.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{CommandFactory, FromArgMatches, Parser};
use fer_checkpoint::cli::{Shell, Verbosity};
use fer_checkpoint::{CheckOptions, Checkpoint, Mismatch, TensorMap, check_against, load_weights};
use fer_export::{
    ExportOptions, MAX_OPSET, MIN_OPSET, export_onnx, ir_version_for_opset, write_onnx,
};
use fer_models_spec::{Arch, ArchConfig, FaceCrop, ModelMeta, Preprocess, spec};

#[path = "fer-export_parts/crop.rs"]
mod crop;

/// The FER-2013 classes, in FER-2013's label order.
const FER2013_LABELS: [&str; 7] =
    ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"];

/// Export a trained FER model to ONNX, with labels and preprocessing in its metadata.
#[derive(Debug, Parser)]
#[command(
    name = "fer-export",
    version,
    after_help = "Examples:\n  fer-export --onnx --checkpoint runs/NAME/best.safetensors --out model.onnx\n  fer-export --onnx --weights resnet18.pth --arch resnet18 --num-classes 7 --input-size 112 --out r18.onnx\n  fer-export --completions bash > ~/.local/share/bash-completion/completions/fer-export"
)]
struct Args {
    /// `-q`: only the result line and errors; `-v`: also the labels and preprocessing written
    /// into the metadata.
    #[command(flatten)]
    verbosity: Verbosity,
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) and exit.
    #[arg(long, value_name = "SHELL", exclusive = true)]
    completions: Option<Shell>,
    /// Write ONNX (the only output format; accepted for explicitness).
    #[arg(long)]
    #[allow(dead_code)] // ONNX is the only format; the flag is accepted, not needed.
    onnx: bool,
    /// One of our checkpoints (`RUN/best.safetensors`): architecture, labels and
    /// preprocessing come from it.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["weights", "arch", "num_classes", "in_channels", "input_size", "labels", "mean", "std"])]
    checkpoint: Option<PathBuf>,
    /// A torchvision state dict (`.pth` or `.safetensors`); needs --arch and --num-classes.
    #[arg(long, value_name = "FILE")]
    weights: Option<PathBuf>,
    /// Architecture of --weights: mobilenet_v3_small, mobilenet_v3_large, efficientnet_b0,
    /// resnet18, resnet50 or inception_v3.
    #[arg(long)]
    arch: Option<String>,
    /// Classifier outputs of --weights.
    #[arg(long)]
    num_classes: Option<usize>,
    /// Input channels of --weights (3, or 1 for gray models).
    #[arg(long, default_value_t = 3)]
    in_channels: usize,
    /// Square input side in pixels (default: 224, or 299 for inception_v3).
    #[arg(long)]
    input_size: Option<usize>,
    /// Class names in logit order, comma-separated (default for 7 classes: the FER-2013 labels
    /// angry,disgust,fear,happy,sad,surprise,neutral).
    #[arg(long, value_delimiter = ',')]
    labels: Option<Vec<String>>,
    /// Per-channel normalisation mean on the [0, 1] scale, comma-separated (default: ImageNet).
    #[arg(long, value_delimiter = ',', allow_negative_numbers = true)]
    mean: Option<Vec<f32>>,
    /// Per-channel normalisation standard deviation, comma-separated (default: ImageNet).
    #[arg(long, value_delimiter = ',')]
    std: Option<Vec<f32>>,
    /// Keep BatchNormalization nodes instead of folding them into the convolutions (slower
    /// inference, but the file keeps the original running statistics).
    #[arg(long)]
    no_fold_bn: bool,
    /// Add a second output `embedding`: the pooled features before the classifier.
    #[arg(long)]
    embedding: bool,
    /// ONNX opset (17 to 22); 17 is the most widely supported.
    #[arg(long, default_value_t = 17)]
    opset: i64,
    /// Where to write the ONNX file (written atomically).
    #[arg(long, value_name = "FILE", required_unless_present = "completions")]
    out: Option<PathBuf>,
    /// The face crop the model was trained on, written as `fer.crop`: `whole`, `dataset`,
    /// `aligned` or `aligned:MARGIN` (docs/onnx-metadata.md). Default for --checkpoint: read
    /// from the run's configuration (`aligned:…` for a dataset made by `fer-infer data faces`,
    /// else `dataset`); for --weights the key is left out.
    #[arg(long)]
    crop: Option<FaceCrop>,
}

/// `--crop`, or what the checkpoint's run says (named on stderr unless `-q`).
fn crop_for(a: &Args) -> Result<Option<FaceCrop>> {
    if a.crop.is_some() {
        return Ok(a.crop);
    }
    let Some(ck) = &a.checkpoint else { return Ok(None) };
    Ok(crop::of_checkpoint(ck)
        .context("finding the face crop of the training data (--crop sets it)")?
        .map(|(c, from)| {
            if !a.verbosity.quiet {
                eprintln!("fer.crop = {c} (from {from})");
            }
            c
        }))
}

/// An error in the command line or the configuration it describes (exit status 2).
#[derive(Debug)]
struct UsageError(String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

fn usage(msg: impl Into<String>) -> anyhow::Error {
    UsageError(msg.into()).into()
}

/// Model metadata for a torchvision state dict, from the command line.
fn torchvision_meta(a: &Args) -> Result<ModelMeta> {
    let arch_name = a.arch.as_deref().ok_or_else(|| usage("--weights needs --arch"))?;
    let n = a.num_classes.ok_or_else(|| usage("--weights needs --num-classes"))?;
    let arch: Arch = arch_name.parse().map_err(|_| {
        usage(format!("unknown --arch `{arch_name}` (one of {})", Arch::ALL_IDS.join(", ")))
    })?;
    let mut cfg = ArchConfig::new(arch, n).with_in_channels(a.in_channels);
    if let Some(s) = a.input_size {
        cfg = cfg.with_input_size(s);
    }
    cfg.validate().map_err(|e| usage(e.to_string()))?;
    let labels: Vec<String> = match &a.labels {
        Some(l) => l.iter().map(|s| s.trim().to_string()).collect(),
        None if n == 7 => FER2013_LABELS.iter().map(|s| s.to_string()).collect(),
        None => {
            return Err(usage(format!(
                "--num-classes is {n}: pass the class names with --labels a,b,... (the default \
                 labels are FER-2013's 7)"
            )));
        }
    };
    if labels.len() != n || labels.iter().any(String::is_empty) {
        return Err(usage(format!(
            "--labels has {} non-empty names, --num-classes is {n}",
            labels.len()
        )));
    }
    let mut preprocess = Preprocess::imagenet(cfg.input_size(), cfg.in_channels);
    for (flag, given, slot) in
        [("--mean", &a.mean, &mut preprocess.mean), ("--std", &a.std, &mut preprocess.std)]
    {
        if let Some(v) = given {
            if v.len() != cfg.in_channels {
                return Err(usage(format!(
                    "{flag} has {} values for {} input channels",
                    v.len(),
                    cfg.in_channels
                )));
            }
            *slot = v.clone();
        }
    }
    if !preprocess.std.iter().all(|s| s.is_finite() && *s > 0.0) {
        return Err(usage("--std values must be positive"));
    }
    Ok(ModelMeta { arch: cfg, labels, preprocess, temperature: 1.0 })
}

/// Reads the weights and their metadata.
fn load(a: &Args) -> Result<(TensorMap, ModelMeta, PathBuf)> {
    match (&a.checkpoint, &a.weights) {
        (Some(p), None) => {
            check_file(p)?;
            // The reader's errors name the file.
            let ck = Checkpoint::load(p).context("reading the checkpoint")?;
            Ok((ck.tensors, ck.meta, p.clone()))
        }
        (None, Some(p)) => {
            let meta = torchvision_meta(a)?;
            check_file(p)?;
            let w = load_weights(p).context("reading the weights")?;
            Ok((w, meta, p.clone()))
        }
        _ => Err(usage("pass exactly one of --checkpoint or --weights")),
    }
}

/// A clear message for a path that is not a readable file.
fn check_file(p: &Path) -> Result<()> {
    match std::fs::metadata(p) {
        Ok(m) if m.is_file() => Ok(()),
        Ok(_) => Err(anyhow::anyhow!("{} is not a file", p.display())),
        Err(e) => Err(anyhow::anyhow!("cannot read {}: {e}", p.display())),
    }
}

/// Every difference by name (the library's `Display` shortens long lists).
fn full_listing(m: &Mismatch) -> String {
    let mut s = format!(
        "{} missing, {} unexpected, {} with the wrong shape",
        m.missing.len(),
        m.unexpected.len(),
        m.wrong_shape.len()
    );
    for (name, shape) in &m.missing {
        s += &format!("\n  missing: {name} (expected shape {shape:?})");
    }
    for (name, shape) in &m.unexpected {
        s += &format!("\n  unexpected: {name} (shape {shape:?})");
    }
    for w in &m.wrong_shape {
        s += &format!("\n  wrong shape: {}: expected {:?}, got {:?}", w.name, w.expected, w.got);
    }
    if m.only_classifier_differs {
        s += "\n  only the classifier differs: were these weights trained for another number of \
              classes?";
    }
    s
}

fn run(a: &Args) -> Result<()> {
    if let Some(shell) = a.completions {
        let mut out = std::io::stdout();
        return Ok(fer_checkpoint::cli::write_completions(&mut Args::command(), shell, &mut out)
            .map_err(StdoutError)?);
    }
    let Some(out) = &a.out else { return Err(usage("--out FILE is required".to_string())) };
    if ir_version_for_opset(a.opset).is_none() {
        return Err(usage(format!(
            "--opset {} is not supported ({MIN_OPSET} to {MAX_OPSET})",
            a.opset
        )));
    }
    let (weights, meta, source) = load(a)?;
    if let Some((name, count)) = fer_checkpoint::first_non_finite(&weights) {
        let e = fer_export::Error::NonFinite { name: name.to_string(), count };
        return Err(
            anyhow::Error::from(e).context(format!("{} cannot be exported", source.display()))
        );
    }
    let graph = spec(&meta.arch).map_err(|e| usage(e.to_string()))?;
    let checked = match check_against(&graph, &weights, &CheckOptions::default()) {
        Err(fer_checkpoint::Error::Mismatch(m)) => Err(anyhow::Error::msg(full_listing(&m))),
        other => other.map_err(anyhow::Error::from),
    };
    checked.with_context(|| {
        format!("{} does not hold {} weights", source.display(), meta.arch.arch)
    })?;
    let opts = ExportOptions {
        opset: a.opset,
        fold_bn: !a.no_fold_bn,
        embedding_output: a.embedding,
        crop: crop_for(a)?,
    };
    let bytes = export_onnx(&graph, &weights, &meta, &opts)
        .with_context(|| format!("exporting {} to ONNX", meta.arch.arch))?;
    if a.verbosity.verbose > 0 {
        eprintln!(
            "labels: {}; preprocessing: {:?}; temperature {}",
            meta.labels.join(","),
            meta.preprocess,
            meta.temperature
        );
    }
    write_onnx(out, &bytes)?;
    let outputs = if a.embedding { "logits, embedding" } else { "logits" };
    print_line(format!(
        "wrote {} ({:.1} MB, {} {}x{}x{}, opset {}, outputs: {outputs}, BatchNorm {})",
        out.display(),
        bytes.len() as f64 / 1e6,
        meta.arch.arch,
        meta.arch.in_channels,
        meta.arch.input_size(),
        meta.arch.input_size(),
        a.opset,
        if opts.fold_bn { "folded" } else { "kept" },
    ))?;
    Ok(())
}

/// Writing to stdout failed (`println!` would panic instead).
#[derive(Debug, thiserror::Error)]
#[error("writing to stdout: {0}")]
struct StdoutError(#[from] std::io::Error);

/// Prints `line` and a newline, flushed, returning a failure instead of panicking; a closed
/// pipe is recognised by `main` and ends the program quietly.
fn print_line(line: String) -> Result<(), StdoutError> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()?;
    Ok(())
}

fn main() -> ExitCode {
    let version = fer_checkpoint::cli::long_version(env!("CARGO_PKG_VERSION"), &[]);
    let parsed = Args::command()
        .long_version(version)
        .try_get_matches()
        .and_then(|m| Args::from_arg_matches(&m));
    let args = match parsed {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if closed_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fer-export: error: {}", fer_checkpoint::error_line(e.as_ref()));
            let is_usage = e.chain().any(|c| c.is::<UsageError>());
            ExitCode::from(if is_usage { 2 } else { 1 })
        }
    }
}

/// Whether `e` comes from a closed stdout pipe (the reader went away): not an error to report.
fn closed_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<StdoutError>()
            .is_some_and(|s| s.0.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
