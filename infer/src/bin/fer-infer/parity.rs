//! `fer-infer parity`.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use fer_infer::parity;

use crate::args::{MetaArgs, out_path, read_model};

/// Arguments of `parity`.
#[derive(Args, Debug)]
pub struct ParityArgs {
    /// The exported model (`.onnx`).
    /// Default: the built-in FER-2013 student (docs/models.md).
    #[arg(long)]
    model: Option<PathBuf>,
    /// An image folder with one subfolder per class (class names as in the model's labels,
    /// any spelling `fer_data` knows).
    #[arg(long)]
    data: PathBuf,
    /// Compare at most this many images (the first ones in the reader's order).
    #[arg(long, default_value_t = 256)]
    max_images: usize,
    /// Largest accepted `max|logit diff| / max(1, max|logit|)` against ONNX Runtime on the CPU.
    #[arg(long, default_value_t = 1e-4)]
    tolerance: f32,
    /// Images per forward pass.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Threads per operator for every runtime (see `predict --help`).
    #[arg(long)]
    threads: Option<usize>,
    /// Also write the report as JSON to this file (`-`: stdout, after the table).
    #[arg(long)]
    json: Option<String>,
    #[command(flatten)]
    meta: MetaArgs,
}

pub fn run(a: ParityArgs) -> anyhow::Result<()> {
    let model_path = crate::builtin::model_path(a.model.as_deref())?;
    let (file, meta) = read_model(&model_path, &a.meta)?;
    let data = parity::load_image_folder(&a.data, a.max_images, &meta)
        .with_context(|| format!("reading images from {}", a.data.display()))?;
    let report = parity::run(&file, &data, a.batch, a.tolerance, a.threads)
        .with_context(|| format!("comparing runtimes on {}", model_path.display()))?;
    out!("{}", report.table());
    if let Some(j) = &a.json {
        let text = serde_json::to_string_pretty(&report)?;
        match out_path(j) {
            None => outln!("{text}"),
            Some(p) => fer_checkpoint::write_atomic(&p, (text + "\n").as_bytes())
                .with_context(|| format!("writing {}", p.display()))?,
        }
    }
    if !report.all_ok() {
        let bad: Vec<&str> =
            report.runtimes.iter().filter(|r| !r.ok).map(|r| r.runtime.as_str()).collect();
        anyhow::bail!(
            "{} disagree(s) with {} beyond tolerance {:e} or on some top-1 class",
            bad.join(", "),
            report.reference,
            report.tolerance
        );
    }
    Ok(())
}
