//! `fer-infer predict`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueEnum};
use fer_infer::Model;
use fer_infer::predict::{Prediction, collect_images, load_image};
use serde::Serialize;

use crate::UsageError;
use crate::args::{BackendArgs, MetaArgs, read_model};

/// Output format.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OutFormat {
    /// One JSON object per line: `{"path", "top": [{"index", "label", "prob"}, ...]}`.
    Jsonl,
    /// A header, then one row per image: `path,label1,prob1,label2,prob2,...`.
    Csv,
}

/// Arguments of `predict`.
#[derive(Args, Debug)]
pub struct PredictArgs {
    /// The exported model (`.onnx`).
    /// Default: the built-in FER-2013 student (docs/models.md).
    #[arg(long)]
    model: Option<PathBuf>,
    #[command(flatten)]
    backend: BackendArgs,
    #[command(flatten)]
    meta: MetaArgs,
    /// Classes to report per image, most probable first.
    #[arg(long, default_value_t = 3)]
    top_k: usize,
    /// Output format.
    #[arg(long, value_enum, default_value = "jsonl")]
    format: OutFormat,
    /// Images per forward pass: larger batches raise throughput and memory use.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Report unreadable images on stderr and go on (counted at the end) instead of stopping.
    #[arg(long)]
    skip_bad: bool,
    /// Image files, or folders searched recursively for png/jpg/jpeg/bmp/webp/pgm files.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
}

#[derive(Serialize)]
struct Line<'a> {
    path: String,
    top: &'a [fer_infer::predict::Scored],
}

pub fn run(a: PredictArgs) -> anyhow::Result<()> {
    let model_path = crate::builtin::model_path(a.model.as_deref())?;
    if a.top_k == 0 || a.batch == 0 {
        return Err(UsageError("--top-k and --batch must be at least 1".into()).into());
    }
    let (file, meta) = read_model(&model_path, &a.meta)?;
    let top_k = a.top_k.min(meta.labels.len());
    let mut model = Model::from_parts(file, meta, &a.backend.options())
        .with_context(|| format!("loading {}", model_path.display()))?;
    let paths = collect_images(&a.inputs).context("listing the inputs")?;
    if paths.is_empty() {
        let shown: Vec<String> = a.inputs.iter().take(3).map(|p| p.display().to_string()).collect();
        let more = a.inputs.len().saturating_sub(3);
        let more = if more > 0 { format!(" and {more} more") } else { String::new() };
        let msg = format!("no image files in {}{more}", shown.join(", "));
        return Err(UsageError(msg).into());
    }
    // Lines are gathered per batch and printed with `out::print_bytes` (errors name stdout).
    let mut out = Vec::new();
    if matches!(a.format, OutFormat::Csv) {
        let mut header = vec!["path".to_string()];
        for i in 1..=top_k {
            header.push(format!("label{i}"));
            header.push(format!("prob{i}"));
        }
        writeln!(out, "{}", header.join(","))?;
    }
    let (mut done, mut skipped) = (0usize, 0usize);
    for chunk in paths.chunks(a.batch) {
        let mut images = Vec::with_capacity(chunk.len());
        let mut names = Vec::with_capacity(chunk.len());
        for p in chunk {
            match load_image(p) {
                Ok(img) => {
                    images.push(img);
                    names.push(p.clone());
                }
                Err(e) if a.skip_bad => {
                    tracing::warn!("skipping {e}");
                    skipped += 1;
                }
                Err(e) => return Err(e).context("reading an input image (--skip-bad goes on)"),
            }
        }
        let preds = model.predict(&images, &names, top_k).context("classifying a batch")?;
        for (p, pred) in names.iter().zip(&preds) {
            write_one(&mut out, a.format, p, pred)?;
        }
        crate::out::print_bytes(&out)?;
        out.clear();
        done += preds.len();
    }
    crate::out::print_bytes(&out)?;
    tracing::info!(images = done, skipped, backend = model.backend_name(), "done");
    if skipped > 0 {
        eprintln!("{skipped} unreadable image(s) skipped");
    }
    Ok(())
}

fn write_one(
    out: &mut impl Write,
    format: OutFormat,
    path: &std::path::Path,
    pred: &Prediction,
) -> anyhow::Result<()> {
    let path = path.display().to_string();
    match format {
        OutFormat::Jsonl => {
            serde_json::to_writer(&mut *out, &Line { path, top: &pred.top })?;
            writeln!(out)?;
        }
        OutFormat::Csv => {
            let mut row = vec![csv_field(&path)];
            for s in &pred.top {
                row.push(csv_field(&s.label));
                row.push(format!("{}", s.prob));
            }
            writeln!(out, "{}", row.join(","))?;
        }
    }
    Ok(())
}

/// Quotes a CSV field when it holds a comma, quote or line break (RFC 4180).
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
