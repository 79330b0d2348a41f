//! `fer-infer bench --photo FILE`: the still-image pipeline timed end to end on one decoded
//! photo (face detection, alignment, preprocessing, classification), stage by stage.

use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use fer_infer::face::{FaceFinder, FinderOptions, RangeChoice};
use fer_infer::photo::{FaceMode, Photos};
use fer_infer::{BackendKind, BackendOptions, InferMeta, Model, OnnxFile};
use image::DynamicImage;

use crate::args::DeviceArgs;

/// Milliseconds per stage over the timed runs.
struct Stages {
    detect: Vec<f64>,
    crop: Vec<f64>,
    classify: Vec<f64>,
    total: Vec<f64>,
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s[s.len() / 2]
}

fn p90(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s[(s.len() * 9 / 10).min(s.len() - 1)]
}

/// Times `iters` runs (after `warmup`) of the photo pipeline on `photo`; returns a markdown
/// table.
#[allow(clippy::too_many_arguments)]
pub fn run(
    photo: &Path,
    file: &OnnxFile,
    meta: &InferMeta,
    kind: BackendKind,
    device: &DeviceArgs,
    detector: RangeChoice,
    iters: usize,
    warmup: usize,
) -> anyhow::Result<String> {
    let img = fer_infer::predict::load_image(photo)?;
    let opts = BackendOptions { kind, ep: device.ep, threads: device.threads };
    let mut model = Model::from_parts(file.clone(), meta.clone(), &opts)?;
    let fo = FinderOptions {
        choice: detector,
        short_file: None,
        full_file: None,
        backend: opts.clone(),
        min_score: 0.5,
    };
    let finder = FaceFinder::open(&fo).context("loading the face detector")?;
    let mut photos = Photos::new(Some(finder), meta, FaceMode::Detect)?;
    let mut s = Stages { detect: vec![], crop: vec![], classify: vec![], total: vec![] };
    let mut faces = 0;
    for i in 0..warmup + iters {
        let start = Instant::now();
        let rgb = img.to_rgb8();
        let found = photos.find(&rgb)?;
        let detect = ms(start);
        let t = Instant::now();
        let crops: Vec<DynamicImage> = found
            .iter()
            .map(|f| DynamicImage::ImageRgb8(photos.cut(&rgb, &photos.crop_box(f))))
            .collect();
        let crop = ms(t);
        let t = Instant::now();
        let preds = model.predict(&crops, &[], 1)?;
        let classify = ms(t);
        if i >= warmup {
            s.detect.push(detect);
            s.crop.push(crop);
            s.classify.push(classify);
            s.total.push(ms(start));
        }
        faces = preds.len();
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    Ok(format!(
        "| photo | runtime | detector | faces | detect ms | align ms | classify ms | total mean ms | median | p90 |\n\
         |---|---|---|---:|---:|---:|---:|---:|---:|---:|\n\
         | {} ({}×{}) | {} | {:?} | {faces} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |\n",
        photo.display(),
        img.width(),
        img.height(),
        model.backend_name(),
        detector,
        mean(&s.detect),
        mean(&s.crop),
        mean(&s.classify),
        mean(&s.total),
        median(&s.total),
        p90(&s.total),
    ))
}
