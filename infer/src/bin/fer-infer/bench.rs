//! `fer-infer bench`.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueEnum};
use fer_infer::bench::{self, BenchConfig, BenchResult};
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
    #[arg(long)]
    model: PathBuf,
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
    #[command(flatten)]
    meta: MetaArgs,
}

pub fn run(a: BenchArgs) -> anyhow::Result<()> {
    if a.batch.contains(&0) || a.iters == 0 {
        return Err(UsageError("--batch values and --iters must be at least 1".into()).into());
    }
    let (file, meta) = read_model(&a.model, &a.meta)?;
    let chw = [meta.preprocess.channels(), meta.preprocess.input_size, meta.preprocess.input_size];
    let kinds = match a.backend {
        Which::Ort => vec![BackendKind::Ort],
        Which::Tract => vec![BackendKind::Tract],
        Which::All => vec![BackendKind::Ort, BackendKind::Tract],
    };
    let mut results: Vec<BenchResult> = Vec::new();
    for kind in kinds {
        let opts = BackendOptions { kind, ep: a.device.ep, threads: a.device.threads };
        let mut model = Model::from_parts(file.clone(), meta.clone(), &opts)
            .with_context(|| format!("loading {} with {kind:?}", a.model.display()))?;
        for &batch in &a.batch {
            let cfg = BenchConfig { batch, iters: a.iters, warmup: a.warmup };
            let r = bench::bench(model.backend_mut(), chw, cfg)
                .with_context(|| format!("timing {} at batch {batch}", model.backend_name()))?;
            tracing::info!(
                backend = %r.backend, batch, mean_ms = format!("{:.2}", r.mean_ms), "measured"
            );
            results.push(r);
        }
    }
    match a.format {
        Format::Markdown => print!("{}", bench::markdown(&results)),
        Format::Json => println!("{}", serde_json::to_string_pretty(&results)?),
    }
    if let Some(j) = &a.json {
        let text = serde_json::to_string_pretty(&results)?;
        match out_path(j) {
            None => println!("{text}"),
            Some(p) => std::fs::write(&p, text + "\n")
                .with_context(|| format!("writing {}", p.display()))?,
        }
    }
    Ok(())
}
