//! `fer-infer bench`.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueEnum};
use fer_infer::backend::Classifier;
use fer_infer::bench::{self, BenchConfig, BenchResult};
use fer_infer::face::RangeChoice;
use fer_infer::{BackendKind, BackendOptions, Model};

use crate::UsageError;
use crate::args::{DeviceArgs, MetaArgs, out_path, read_model};

/// Which runtimes to time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Which {
    /// ONNX Runtime (on `--ep`).
    Ort,
    /// tract.
    Tract,
    /// Both.
    All,
}

/// Report format.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    /// A markdown table.
    Markdown,
    /// A JSON array of results.
    Json,
}

/// Arguments of `bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// The exported model (`.onnx`).
    /// Default: the built-in FER-2013 student (docs/models.md).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Runtimes to time.
    #[arg(long, value_enum, default_value = "all")]
    backend: Which,
    #[command(flatten)]
    device: DeviceArgs,
    /// Batch sizes, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,32")]
    batch: Vec<usize>,
    /// Timed forward passes per runtime and batch size.
    #[arg(long, default_value_t = 50)]
    iters: usize,
    /// Untimed passes first (tract builds its plan for the batch size here).
    #[arg(long, default_value_t = 5)]
    warmup: usize,
    /// Report format on stdout.
    #[arg(long, value_enum, default_value = "markdown")]
    format: Format,
    /// Also write the results as JSON to this file (`-`: stdout).
    #[arg(long)]
    json: Option<String>,
    /// Also time every tract operator (summed per kind, over `--iters` runs) and print the
    /// most expensive ones: where tract spends its time.
    #[arg(long)]
    profile: bool,
    /// Run tract batches through plans optimised for the batch size instead of image by image
    /// (slower with tract 0.23; for comparison).
    #[arg(long)]
    tract_batch_plans: bool,
    /// Time the photo pipeline instead (face detection, alignment, classification; decoding
    /// not included) on this photo, at batch 1, with each runtime.
    #[arg(long, value_name = "FILE")]
    photo: Option<PathBuf>,
    /// With `--photo`: which BlazeFace model(s) run (see `predict --detector`).
    #[arg(long, value_enum, default_value = "auto")]
    detector: RangeChoice,
    #[command(flatten)]
    meta: MetaArgs,
}

pub fn run(a: BenchArgs) -> anyhow::Result<()> {
    let model_path = crate::builtin::model_path(a.model.as_deref())?;
    if a.batch.contains(&0) || a.iters == 0 {
        return Err(UsageError("--batch values and --iters must be at least 1".into()).into());
    }
    let (file, meta) = read_model(&model_path, &a.meta)?;
    let chw = [meta.preprocess.channels(), meta.preprocess.input_size, meta.preprocess.input_size];
    let kinds = match a.backend {
        Which::Ort => vec![BackendKind::Ort],
        Which::Tract => vec![BackendKind::Tract],
        Which::All => vec![BackendKind::Ort, BackendKind::Tract],
    };
    if let Some(photo) = &a.photo {
        for kind in kinds {
            let table = crate::bench_photo::run(
                photo, &file, &meta, kind, &a.device, a.detector, a.iters, a.warmup,
            )
            .with_context(|| format!("timing the photo pipeline on {}", photo.display()))?;
            out!("{table}");
        }
        return Ok(());
    }
    let mut results: Vec<BenchResult> = Vec::new();
    let mut profiles = String::new();
    for kind in kinds {
        let opts = BackendOptions { kind, ep: a.device.ep, threads: a.device.threads };
        let mut model = Model::from_parts(file.clone(), meta.clone(), &opts)
            .with_context(|| format!("loading {} with {kind:?}", model_path.display()))?;
        if kind == BackendKind::Tract && a.tract_batch_plans {
            let t = Classifier::open(&file, &opts)?.with_batch_plans(true);
            model = Model::with_backend(file.clone(), meta.clone(), Box::new(t));
        }
        for &batch in &a.batch {
            let cfg = BenchConfig { batch, iters: a.iters, warmup: a.warmup };
            let r = bench::bench(model.backend_mut(), chw, cfg)
                .with_context(|| format!("timing {} at batch {batch}", model.backend_name()))?;
            tracing::info!(
                backend = %r.backend, batch, mean_ms = format!("{:.2}", r.mean_ms), "measured"
            );
            results.push(r);
        }
        if a.profile && kind == BackendKind::Tract {
            profiles += &profile_tract(&file, chw, &a)?;
        }
    }
    match a.format {
        Format::Markdown => out!("{}{profiles}", bench::markdown(&results)),
        Format::Json => outln!("{}", serde_json::to_string_pretty(&results)?),
    }
    if let Some(j) = &a.json {
        let text = serde_json::to_string_pretty(&results)?;
        match out_path(j) {
            None => outln!("{text}"),
            Some(p) => fer_checkpoint::write_atomic(&p, (text + "\n").as_bytes())
                .with_context(|| format!("writing {}", p.display()))?,
        }
    }
    Ok(())
}

/// tract's time per operator at each `--batch` (`--profile`).
#[cfg(feature = "tract")]
fn profile_tract(
    file: &fer_infer::OnnxFile,
    chw: [usize; 3],
    a: &BenchArgs,
) -> anyhow::Result<String> {
    use fer_infer::backend::tract::TractRunner;
    let mut profiles = String::new();
    let mut t = TractRunner::new(file, Classifier::signature(file), a.device.threads)?;
    for &batch in &a.batch {
        let x = bench::synthetic_input([batch, chw[0], chw[1], chw[2]], 42);
        let ops = t.profile(&[x.view().into_dyn()], a.iters).context("profiling tract")?;
        let total: f64 = ops.iter().map(|o| o.ms_per_run).sum();
        profiles += &format!(
            "\ntract, batch {batch}: {total:.2} ms in operators\n\n| op | nodes | ms | share |\n|---|---:|---:|---:|\n"
        );
        for o in ops.iter().take(12) {
            profiles += &format!(
                "| {} | {} | {:.2} | {:.1}% |\n",
                o.op,
                o.nodes,
                o.ms_per_run,
                100.0 * o.ms_per_run / total
            );
        }
    }
    Ok(profiles)
}

/// A build without tract has nothing to profile (`--backend tract` fails before this).
#[cfg(not(feature = "tract"))]
fn profile_tract(_: &fer_infer::OnnxFile, _: [usize; 3], _: &BenchArgs) -> anyhow::Result<String> {
    Ok(String::new())
}
