//! Do the runtimes agree? Runs the same preprocessed inputs through ONNX Runtime (CPU, the
//! reference), tract and, when it can be used, ONNX Runtime on CUDA.

use std::path::Path;

use fer_data::Emotion;
use fer_data::formats::{self, Format, OpenOptions};
use ndarray::{Array2, Array4, ArrayView2, Axis, concatenate, s};
use serde::Serialize;

use crate::backend::{self, BackendOptions, ExecutionProvider};
use crate::error::{Error, Result};
use crate::meta::InferMeta;
use crate::onnx_file::OnnxFile;
use crate::predict;

/// Preprocessed images with their labels (indices into the model's labels).
#[derive(Debug, Clone)]
pub struct LabelledBatch {
    /// `[N, C, H, W]`.
    pub input: Array4<f32>,
    /// Per image: the model's class index, or `None` when the image's class is not one of the
    /// model's labels.
    pub labels: Vec<Option<usize>>,
    /// Where each image came from.
    pub sources: Vec<String>,
}

/// Reads up to `max` images of an image-folder dataset (class-named subfolders, read by
/// `fer_data`'s reader) and preprocesses them for the model.
pub fn load_image_folder(dir: &Path, max: usize, meta: &InferMeta) -> Result<LabelledBatch> {
    let data_err = |source| Error::Data { path: dir.into(), source };
    let ds =
        formats::open(Format::ImageFolder, dir, None, &OpenOptions::default()).map_err(data_err)?;
    let model_classes: Vec<Option<Emotion>> =
        meta.labels.iter().map(|l| Emotion::parse(l)).collect();
    let n = ds.len().min(max);
    let (mut images, mut labels, mut sources) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..n {
        let sample = ds.load(i).map_err(data_err)?;
        let emotion = ds.classes().get(sample.target.hard()).copied();
        labels.push(emotion.and_then(|e| model_classes.iter().position(|m| *m == Some(e))));
        images.push(sample.image);
        sources.push(sample.source);
    }
    let names: Vec<_> = sources.iter().map(std::path::PathBuf::from).collect();
    let input = predict::preprocess_batch(&images, &names, &meta.preprocess)?;
    Ok(LabelledBatch { input, labels, sources })
}

/// How one runtime compares with the reference.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuntimeParity {
    /// Runtime name, for example `tract`.
    pub runtime: String,
    /// Why the runtime did not run (for example no CUDA here); the numbers are then absent.
    pub unavailable: Option<String>,
    /// `max |logit - reference logit|` over all images and classes.
    pub max_abs_diff: Option<f32>,
    /// `max_abs_diff / max(1, max |reference logit|)`.
    pub rel_diff: Option<f32>,
    /// Fraction of images whose top-1 class equals the reference's.
    pub top1_agreement: Option<f64>,
    /// Top-1 accuracy on the labelled images (None when no image has a model class).
    pub accuracy: Option<f64>,
    /// Whether `rel_diff` is within the tolerance (true for unavailable runtimes).
    pub ok: bool,
}

/// The whole comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParityReport {
    /// The model file.
    pub model: String,
    /// Images compared.
    pub images: usize,
    /// Images whose class is one of the model's labels (the accuracy denominator).
    pub labelled: usize,
    /// The reference runtime (`ort-cpu`).
    pub reference: String,
    /// Relative tolerance on logits.
    pub tolerance: f32,
    /// One row per runtime, the reference first.
    pub runtimes: Vec<RuntimeParity>,
}

impl ParityReport {
    /// True when every runtime that ran is within tolerance and agrees on every top-1.
    pub fn all_ok(&self) -> bool {
        self.runtimes.iter().all(|r| r.ok)
    }

    /// A plain-text table.
    pub fn table(&self) -> String {
        let mut s = format!(
            "{} images ({} labelled), reference {}, tolerance {:e}\n{:<10} {:>12} {:>12} {:>9} \
             {:>9}  status\n",
            self.images,
            self.labelled,
            self.reference,
            self.tolerance,
            "runtime",
            "max|diff|",
            "rel diff",
            "top1 agr",
            "accuracy"
        );
        let num = |v: Option<f32>| v.map_or("-".into(), |v| format!("{v:.3e}"));
        let pct = |v: Option<f64>| v.map_or("-".into(), |v| format!("{:.2}%", v * 100.0));
        for r in &self.runtimes {
            let status = match (&r.unavailable, r.ok) {
                (Some(why), _) => format!("unavailable: {why}"),
                (None, true) => "ok".into(),
                (None, false) => "MISMATCH".into(),
            };
            s += &format!(
                "{:<10} {:>12} {:>12} {:>9} {:>9}  {status}\n",
                r.runtime,
                num(r.max_abs_diff),
                num(r.rel_diff),
                pct(r.top1_agreement),
                pct(r.accuracy)
            );
        }
        s
    }
}

/// Max absolute difference, the same relative to `max(1, max|reference|)`, and top-1 agreement.
pub fn compare(reference: ArrayView2<'_, f32>, other: ArrayView2<'_, f32>) -> (f32, f32, f64) {
    let max_abs = reference
        .iter()
        .zip(other.iter())
        .map(|(a, b)| if a.is_nan() || b.is_nan() { f32::INFINITY } else { (a - b).abs() })
        .fold(0.0f32, f32::max);
    let scale = reference.iter().fold(1.0f32, |m, v| m.max(v.abs()));
    let agree =
        argmax_rows(reference).into_iter().zip(argmax_rows(other)).filter(|(a, b)| a == b).count();
    (max_abs, max_abs / scale, agree as f64 / reference.nrows().max(1) as f64)
}

/// Index of the first largest value of each row.
pub fn argmax_rows(a: ArrayView2<'_, f32>) -> Vec<usize> {
    a.axis_iter(Axis(0))
        .map(|r| predict::top_k(r.as_slice().unwrap_or(&r.to_vec()), 1)[0].0)
        .collect()
}

fn accuracy(logits: ArrayView2<'_, f32>, labels: &[Option<usize>]) -> Option<f64> {
    let pred = argmax_rows(logits);
    let labelled: Vec<(usize, usize)> =
        pred.iter().zip(labels).filter_map(|(p, l)| l.map(|l| (*p, l))).collect();
    if labelled.is_empty() {
        return None;
    }
    Some(labelled.iter().filter(|(p, l)| p == l).count() as f64 / labelled.len() as f64)
}

/// Runs `data` through every runtime in `batch`-sized chunks and compares with ONNX Runtime on
/// the CPU. `threads` sets each runtime's intra-op threads.
pub fn run(
    file: &OnnxFile,
    data: &LabelledBatch,
    batch: usize,
    tolerance: f32,
    threads: Option<usize>,
) -> Result<ParityReport> {
    let mut opts = vec![BackendOptions::ort_cpu(), BackendOptions::tract()];
    opts.push(BackendOptions { ep: ExecutionProvider::Cuda, ..BackendOptions::ort_cpu() });
    let mut rows = Vec::new();
    let mut reference: Option<Array2<f32>> = None;
    for mut o in opts {
        o.threads = threads;
        let name = match (o.kind, o.ep) {
            (backend::BackendKind::Tract, _) => "tract".to_string(),
            (_, ep) => format!("ort-{}", ep.name()),
        };
        let mut b = match backend::open(file, &o) {
            Ok(b) => b,
            Err(e @ Error::ExecutionProvider { .. }) => {
                tracing::info!("{name} skipped: {e}");
                rows.push(RuntimeParity {
                    runtime: name,
                    unavailable: Some(e.to_string()),
                    max_abs_diff: None,
                    rel_diff: None,
                    top1_agreement: None,
                    accuracy: None,
                    ok: true,
                });
                continue;
            }
            Err(e) => return Err(e),
        };
        let logits = run_chunks(b.as_mut(), data, batch)?;
        let (abs, rel, agree) = match &reference {
            None => (0.0, 0.0, 1.0),
            Some(r) => compare(r.view(), logits.view()),
        };
        rows.push(RuntimeParity {
            runtime: b.name().to_string(),
            unavailable: None,
            max_abs_diff: Some(abs),
            rel_diff: Some(rel),
            top1_agreement: Some(agree),
            accuracy: accuracy(logits.view(), &data.labels),
            ok: rel <= tolerance && agree == 1.0,
        });
        reference.get_or_insert(logits);
    }
    Ok(ParityReport {
        model: file.path.display().to_string(),
        images: data.input.shape()[0],
        labelled: data.labels.iter().filter(|l| l.is_some()).count(),
        reference: "ort-cpu".into(),
        tolerance,
        runtimes: rows,
    })
}

fn run_chunks(
    b: &mut dyn backend::Backend,
    data: &LabelledBatch,
    batch: usize,
) -> Result<Array2<f32>> {
    let n = data.input.shape()[0];
    if n == 0 {
        return Err(Error::invalid("--data", "no images to compare"));
    }
    let mut parts = Vec::new();
    for start in (0..n).step_by(batch.max(1)) {
        let end = (start + batch.max(1)).min(n);
        parts.push(b.run(data.input.slice(s![start..end, .., .., ..]))?.logits);
    }
    let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
    concatenate(Axis(0), &views).map_err(|e| Error::invalid("logits", e.to_string()))
}
