//! `fer-infer predict`: photos and videos in, one record per face out (per frame for videos,
//! see `predict_video.rs`).

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueEnum};
use fer_infer::Model;
use fer_infer::photo::{FaceMode, Photos, Prepared};
use fer_infer::predict::{IMAGE_EXTENSIONS, collect_images_and_others, load_image};
use image::RgbImage;

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
    /// Images (or video frames) per step: their faces are classified in one forward pass.
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// Videos: classify every Nth frame (frames 0, N, 2N, …).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub every: usize,
    /// Report unreadable images on stderr and go on (counted at the end) instead of stopping.
    #[arg(long)]
    pub skip_bad: bool,
    /// Image files, or folders searched recursively for png/jpg/jpeg/bmp/webp/tif/tiff/pgm/ppm/pnm
    /// files, or video files (H.264 in .mp4/.m4v/.mov, MJPEG in .avi, raw .mjpeg/.mjpg), named directly:
    /// their records add `frame` and `time_s` (CSV: two last columns).
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
}

/// What a run saw, for the closing line on stderr.
#[derive(Default)]
pub struct Counts {
    images: usize,
    faces: usize,
    without_face: usize,
    /// Unreadable inputs skipped (`--skip-bad`).
    pub skipped: usize,
}

/// One image (or video frame) ready for the classifier.
pub struct Item {
    /// The input's name in the records.
    pub shown: String,
    /// The name its annotated copy is derived from.
    pub name: PathBuf,
    /// A video frame's index and presentation time.
    pub frame: Option<(usize, Option<f64>)>,
    /// Its faces.
    pub prep: Prepared,
    /// The picture, kept for `--annotate`.
    pub canvas: Option<RgbImage>,
}

/// What every step needs: the model, the output and the counts.
pub struct Run<'a> {
    /// The arguments.
    pub a: &'a PredictArgs,
    /// Finds and crops faces.
    pub photos: Photos,
    model: Model,
    labels: Vec<String>,
    top_k: usize,
    annotator: Option<Annotator>,
    /// CSV rows end with `frame,time_s` (there are videos).
    frames: bool,
    /// What was seen.
    pub n: Counts,
}

impl Run<'_> {
    /// Whether `--annotate` keeps the pictures.
    pub fn annotating(&self) -> bool {
        self.annotator.is_some()
    }

    /// Classifies the faces of `step` in one pass and prints their records.
    pub fn step(&mut self, step: Vec<Item>) -> anyhow::Result<()> {
        let inputs: Vec<_> = step.iter().flat_map(|i| i.prep.inputs.iter().cloned()).collect();
        let names: Vec<PathBuf> = step
            .iter()
            .flat_map(|i| std::iter::repeat_n(PathBuf::from(&i.shown), i.prep.inputs.len()))
            .collect();
        let preds =
            self.model.predict(&inputs, &names, self.top_k).context("classifying the faces")?;
        let mut rest = preds.as_slice();
        // Lines are gathered per step and printed with `out::print_bytes` (errors name stdout).
        let mut out = Vec::new();
        for item in step {
            let (mine, tail) = rest.split_at(item.prep.inputs.len());
            rest = tail;
            let mut recs = records(&item.shown, &item.prep, mine);
            for r in &mut recs {
                r.frame = item.frame;
                match self.a.format {
                    OutFormat::Jsonl => write_json(&mut out, r, &self.labels)?,
                    OutFormat::Csv => write_csv(&mut out, r, &self.labels, self.frames)?,
                }
            }
            if let (Some(ann), Some(canvas)) = (self.annotator.as_mut(), item.canvas) {
                ann.write(&item.name, canvas, &recs, &self.labels)?;
            }
            self.n.images += 1;
            self.n.faces += mine.len();
            self.n.without_face += usize::from(mine.is_empty());
        }
        crate::out::print_bytes(&out)?;
        Ok(())
    }
}

/// What the folders held instead of images, for the "no image files" error: the most common
/// extensions with their counts, and the extensions that are read.
fn found_instead(others: &std::collections::BTreeMap<String, usize>) -> String {
    if others.is_empty() {
        return " (the folders hold no files)".into();
    }
    let mut by_count: Vec<(&String, &usize)> = others.iter().collect();
    by_count.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let found: Vec<String> = by_count
        .iter()
        .take(4)
        .map(|(ext, n)| {
            let what = if ext.is_empty() { "without extension".into() } else { format!(".{ext}") };
            format!("{n} {what}")
        })
        .collect();
    let rest = by_count.len().saturating_sub(4);
    let rest = if rest > 0 { format!(" and {rest} other kinds") } else { String::new() };
    let heic = others.keys().any(|e| e == "heic" || e == "heif");
    let hint = if heic { "; HEIC photos are not read: convert them to JPEG first" } else { "" };
    format!(
        " (found {}{rest} files; images are read from .{}{hint})",
        found.join(", "),
        IMAGE_EXTENSIONS.join(", .")
    )
}

pub fn run(a: PredictArgs) -> anyhow::Result<()> {
    let model_path = crate::builtin::model_path(a.model.as_deref())?;
    if a.top_k == 0 || a.batch == 0 || a.every == 0 {
        return Err(UsageError("--top-k, --batch and --every must be at least 1".into()).into());
    }
    // The inputs first: a folder without images is said before any model is loaded.
    let videos = crate::predict_video::videos(&a.inputs);
    let images: Vec<PathBuf> = a.inputs.iter().filter(|p| !videos.contains(p)).cloned().collect();
    let (paths, others) = collect_images_and_others(&images).context("listing the inputs")?;
    if paths.is_empty() && videos.is_empty() {
        let shown: Vec<String> = a.inputs.iter().take(3).map(|p| p.display().to_string()).collect();
        let more = a.inputs.len().saturating_sub(3);
        let more = if more > 0 { format!(" and {more} more") } else { String::new() };
        let msg = format!("no image files in {}{more}{}", shown.join(", "), found_instead(&others));
        return Err(UsageError(msg).into());
    }
    let (file, meta) = read_model(&model_path, &a.meta)?;
    let top_k = a.top_k.min(meta.labels.len());
    let finder = a.face.finder(a.faces, meta.crop, &a.backend)?;
    let photos = Photos::new(finder, &meta, a.faces)?;
    let model = Model::from_parts(file, meta, &a.backend.options())
        .with_context(|| format!("loading {}", model_path.display()))?;
    let labels = model.meta().labels.clone();
    let annotator = a.annotate.as_deref().map(Annotator::create).transpose()?;
    if matches!(a.format, OutFormat::Csv) {
        let mut head = csv_header(&labels);
        if !videos.is_empty() {
            head.push_str(",frame,time_s");
        }
        crate::out::print_bytes(format!("{head}\n").as_bytes())?;
    }
    let frames = !videos.is_empty();
    let n = Counts::default();
    let mut run = Run { a: &a, photos, model, labels, top_k, annotator, frames, n };
    for p in &videos {
        crate::predict_video::predict(&mut run, p)?;
    }
    for chunk in paths.chunks(a.batch) {
        let mut step = Vec::new();
        for p in chunk {
            let img = match load_image(p) {
                Ok(img) => img,
                Err(e) if a.skip_bad => {
                    tracing::warn!("skipping {e}");
                    run.n.skipped += 1;
                    continue;
                }
                Err(e) => return Err(e).context("reading an input image (--skip-bad goes on)"),
            };
            let canvas = run.annotating().then(|| img.to_rgb8());
            let prep = run
                .photos
                .prepare(img)
                .with_context(|| format!("looking for faces in {}", p.display()))?;
            let shown = p.display().to_string();
            step.push(Item { shown, name: p.clone(), frame: None, prep, canvas });
        }
        run.step(step)?;
    }
    let n = run.n;
    tracing::info!(images = n.images, faces = n.faces, backend = run.model.backend_name(), "done");
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
