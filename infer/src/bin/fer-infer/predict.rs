//! `fer-infer predict`: photos in, one record per face out.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, ValueEnum};
use fer_infer::Model;
use fer_infer::photo::{FaceMode, Photos, Prepared};
use fer_infer::predict::{collect_images, load_image};

use crate::UsageError;
use crate::args::{BackendArgs, FaceArgs, MetaArgs, read_model};
use crate::predict_out::{Annotator, csv_header, records, write_csv, write_json};

/// Output format.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OutFormat {
    /// One JSON object per face (or per image without a face): path, face, faces, crop,
    /// detector, score, box, landmarks, label, confidence, probs (label → probability), top.
    Jsonl,
    /// A header, then one row per face: the same fields, one probability column per class.
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
    /// `auto`: images that look like face crops (nearly square, no larger than the model's
    /// input or 128 px) are classified whole, other images are searched for faces; `detect`:
    /// search every image; `whole`: classify every image whole. A model whose `fer.crop` is
    /// `whole` makes `auto` classify every image whole.
    #[arg(long, value_enum, default_value = "auto")]
    faces: FaceMode,
    #[command(flatten)]
    face: FaceArgs,
    /// Classes listed in each JSON line's `top`, most probable first.
    #[arg(long, default_value_t = 3)]
    top_k: usize,
    /// Output format.
    #[arg(long, value_enum, default_value = "jsonl")]
    format: OutFormat,
    /// Also write each input with its faces' boxes and probabilities drawn (as `live` draws
    /// them) into this folder, as `NAME.png`.
    #[arg(long, value_name = "DIR")]
    annotate: Option<PathBuf>,
    /// Images per step: their faces are classified in one forward pass.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Report unreadable images on stderr and go on (counted at the end) instead of stopping.
    #[arg(long)]
    skip_bad: bool,
    /// Image files, or folders searched recursively for png/jpg/jpeg/bmp/webp/pgm files.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
}

/// What a run saw, for the closing line on stderr.
#[derive(Default)]
struct Counts {
    images: usize,
    faces: usize,
    without_face: usize,
    skipped: usize,
}

pub fn run(a: PredictArgs) -> anyhow::Result<()> {
    let model_path = crate::builtin::model_path(a.model.as_deref())?;
    if a.top_k == 0 || a.batch == 0 {
        return Err(UsageError("--top-k and --batch must be at least 1".into()).into());
    }
    let (file, meta) = read_model(&model_path, &a.meta)?;
    let top_k = a.top_k.min(meta.labels.len());
    let finder = a.face.finder(a.faces, meta.crop, &a.backend)?;
    let mut photos = Photos::new(finder, &meta, a.faces)?;
    let mut model = Model::from_parts(file, meta, &a.backend.options())
        .with_context(|| format!("loading {}", model_path.display()))?;
    let labels = model.meta().labels.clone();
    let paths = collect_images(&a.inputs).context("listing the inputs")?;
    if paths.is_empty() {
        let shown: Vec<String> = a.inputs.iter().take(3).map(|p| p.display().to_string()).collect();
        let more = a.inputs.len().saturating_sub(3);
        let more = if more > 0 { format!(" and {more} more") } else { String::new() };
        let msg = format!("no image files in {}{more}", shown.join(", "));
        return Err(UsageError(msg).into());
    }
    let mut annotator = a.annotate.as_deref().map(Annotator::create).transpose()?;
    // Lines are gathered per step and printed with `out::print_bytes` (errors name stdout).
    let mut out = Vec::new();
    if matches!(a.format, OutFormat::Csv) {
        writeln!(out, "{}", csv_header(&labels))?;
    }
    let mut n = Counts::default();
    for chunk in paths.chunks(a.batch) {
        let mut step: Vec<(&Path, Prepared, Option<image::RgbImage>)> = Vec::new();
        for p in chunk {
            let img = match load_image(p) {
                Ok(img) => img,
                Err(e) if a.skip_bad => {
                    tracing::warn!("skipping {e}");
                    n.skipped += 1;
                    continue;
                }
                Err(e) => return Err(e).context("reading an input image (--skip-bad goes on)"),
            };
            let canvas = annotator.is_some().then(|| img.to_rgb8());
            let prep = photos
                .prepare(img)
                .with_context(|| format!("looking for faces in {}", p.display()))?;
            step.push((p, prep, canvas));
        }
        let inputs: Vec<_> = step.iter().flat_map(|(_, p, _)| p.inputs.iter().cloned()).collect();
        let names: Vec<PathBuf> = step
            .iter()
            .flat_map(|(path, p, _)| std::iter::repeat_n(path.to_path_buf(), p.inputs.len()))
            .collect();
        let preds = model.predict(&inputs, &names, top_k).context("classifying the faces")?;
        let mut rest = preds.as_slice();
        for (path, prep, canvas) in step {
            let (mine, tail) = rest.split_at(prep.inputs.len());
            rest = tail;
            let shown = path.display().to_string();
            let recs = records(&shown, &prep, mine);
            for r in &recs {
                match a.format {
                    OutFormat::Jsonl => write_json(&mut out, r, &labels)?,
                    OutFormat::Csv => write_csv(&mut out, r, &labels)?,
                }
            }
            if let (Some(ann), Some(canvas)) = (annotator.as_mut(), canvas) {
                ann.write(path, canvas, &recs, &labels)?;
            }
            n.images += 1;
            n.faces += mine.len();
            n.without_face += usize::from(mine.is_empty());
        }
        crate::out::print_bytes(&out)?;
        out.clear();
    }
    tracing::info!(images = n.images, faces = n.faces, backend = model.backend_name(), "done");
    if n.without_face > 0 {
        eprintln!(
            "{} of {} image(s) without a face (one record each, face null)",
            n.without_face, n.images
        );
    }
    if n.skipped > 0 {
        eprintln!("{} unreadable image(s) skipped", n.skipped);
    }
    Ok(())
}
