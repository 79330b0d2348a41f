//! Batched classification: images → shared preprocessing → one `[N, C, H, W]` buffer →
//! backend → `softmax(logits / T)` → top-k.

use std::path::{Path, PathBuf};

use fer_models_spec::Preprocess;
use image::DynamicImage;
use ndarray::{Array2, Array4, ArrayView2, Axis};
use serde::Serialize;

use crate::error::{Error, Result};

/// One class and its probability.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scored {
    /// Class index into the model's labels.
    pub index: usize,
    /// The class name.
    pub label: String,
    /// Probability after temperature scaling.
    pub prob: f32,
}

/// The prediction for one image.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prediction {
    /// The best `k` classes, most probable first (ties: lower index first).
    pub top: Vec<Scored>,
    /// Probabilities of every class, in label order (sum 1).
    pub probs: Vec<f32>,
}

/// Decodes an image file (format guessed from the content, not the extension) with
/// [`fer_data::decode_image`], which also refuses a truncated JPEG.
pub fn load_image(path: &Path) -> Result<DynamicImage> {
    fer_data::decode_image(path).map_err(|source| match source {
        fer_data::Error::Io { source, .. } => Error::Io { path: path.into(), source },
        fer_data::Error::Image { source, .. } => Error::Decode { path: path.into(), source },
        source => Error::BadImage { source },
    })
}

/// Preprocesses `images` with `fer_data::preprocess` into one contiguous `[N, C, H, W]` batch.
/// `names` (same length, or empty) label errors with the image's origin.
pub fn preprocess_batch(
    images: &[DynamicImage],
    names: &[PathBuf],
    p: &Preprocess,
) -> Result<Array4<f32>> {
    let (c, s) = (p.channels(), p.input_size);
    let per = fer_data::preprocess::output_len(p);
    let mut buf = vec![0.0f32; per * images.len()];
    for (i, (img, slot)) in images.iter().zip(buf.chunks_exact_mut(per)).enumerate() {
        fer_data::preprocess::preprocess_into(img, p, slot).map_err(|source| Error::Image {
            path: names.get(i).cloned().unwrap_or_else(|| PathBuf::from(format!("image #{i}"))),
            source,
        })?;
    }
    Array4::from_shape_vec((images.len(), c, s, s), buf)
        .map_err(|e| Error::invalid("batch", e.to_string()))
}

/// Row-wise `softmax(logits / temperature)`, computed stably in f64.
pub fn softmax(logits: ArrayView2<'_, f32>, temperature: f64) -> Array2<f32> {
    let mut out = Array2::zeros(logits.raw_dim());
    for (row, mut dst) in logits.axis_iter(Axis(0)).zip(out.axis_iter_mut(Axis(0))) {
        let max = row.iter().fold(f64::NEG_INFINITY, |m, v| m.max(*v as f64 / temperature));
        let exps: Vec<f64> = row.iter().map(|v| (*v as f64 / temperature - max).exp()).collect();
        let sum: f64 = exps.iter().sum();
        for (d, e) in dst.iter_mut().zip(exps) {
            *d = (e / sum) as f32;
        }
    }
    out
}

/// The `k` largest entries of `probs`, largest first; equal values keep index order.
pub fn top_k(probs: &[f32], k: usize) -> Vec<(usize, f32)> {
    let mut idx: Vec<usize> = (0..probs.len()).collect();
    idx.sort_by(|a, b| probs[*b].total_cmp(&probs[*a]).then(a.cmp(b)));
    idx.into_iter().take(k).map(|i| (i, probs[i])).collect()
}

/// Probabilities and top-k per row of `logits`.
pub fn predictions(
    logits: ArrayView2<'_, f32>,
    temperature: f64,
    labels: &[String],
    k: usize,
) -> Vec<Prediction> {
    let probs = softmax(logits, temperature);
    probs
        .axis_iter(Axis(0))
        .map(|row| {
            let probs: Vec<f32> = row.to_vec();
            let top = top_k(&probs, k)
                .into_iter()
                .map(|(index, prob)| Scored {
                    index,
                    label: labels.get(index).cloned().unwrap_or_else(|| format!("class_{index}")),
                    prob,
                })
                .collect();
            Prediction { top, probs }
        })
        .collect()
}

/// File extensions taken from folders (files named directly are always taken).
pub const IMAGE_EXTENSIONS: [&str; 10] =
    ["png", "jpg", "jpeg", "bmp", "webp", "tif", "tiff", "pgm", "ppm", "pnm"];

/// Expands files and folders (recursed, sorted, images by extension) into image paths.
///
/// Each real file is listed once: a folder reached again through a symbolic link (a link to
/// itself, to an ancestor, or a second link to the same folder) is not walked again, and a file
/// reached again (a link to a file already listed, or the same file named twice) is not listed
/// again. Paths keep the spelling under which they were first reached.
pub fn collect_images(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    Ok(collect_images_and_others(inputs)?.0)
}

/// [`collect_images`], and how many files of each other extension the folders held (lower
/// case, `""` for none): what to tell a user whose folder yields no image.
pub fn collect_images_and_others(
    inputs: &[PathBuf],
) -> Result<(Vec<PathBuf>, std::collections::BTreeMap<String, usize>)> {
    let mut seen = Seen::default();
    let mut out = Vec::new();
    let mut others = std::collections::BTreeMap::new();
    for p in inputs {
        let meta = std::fs::metadata(p).map_err(|source| Error::Io { path: p.clone(), source })?;
        if meta.is_dir() {
            walk(p, &mut seen, &mut out, &mut others)?;
        } else if seen.first_file(p) {
            out.push(p.clone());
        }
    }
    Ok((out, others))
}

/// Canonical paths of the folders walked and the files listed so far.
#[derive(Default)]
struct Seen {
    dirs: std::collections::HashSet<PathBuf>,
    files: std::collections::HashSet<PathBuf>,
}

impl Seen {
    /// Whether the folder `p` is walked for the first time (and marks it walked).
    fn first_dir(&mut self, p: &Path) -> bool {
        self.dirs.insert(std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf()))
    }
    /// Whether the file `p` is listed for the first time (and marks it listed). A path that
    /// cannot be resolved (a dangling link) is listed, so that reading it reports the problem.
    fn first_file(&mut self, p: &Path) -> bool {
        std::fs::canonicalize(p).map_or(true, |c| self.files.insert(c))
    }
}

fn walk(
    dir: &Path,
    seen: &mut Seen,
    out: &mut Vec<PathBuf>,
    others: &mut std::collections::BTreeMap<String, usize>,
) -> Result<()> {
    if !seen.first_dir(dir) {
        tracing::debug!(dir = %dir.display(), "folder already walked (symbolic link); skipped");
        return Ok(());
    }
    let io = |source| Error::Io { path: dir.into(), source };
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()
        .map_err(io)?;
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, seen, out, others)?;
            continue;
        }
        let ext = p.extension().map(|e| e.to_string_lossy().to_ascii_lowercase());
        if !ext.as_deref().is_some_and(|e| IMAGE_EXTENSIONS.contains(&e)) {
            *others.entry(ext.unwrap_or_default()).or_insert(0) += 1;
        } else if seen.first_file(&p) {
            out.push(p);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn softmax_rows_sum_to_one_and_temperature_flattens() {
        let l = array![[1.0f32, 2.0, 3.0], [1000.0, 0.0, -1000.0]];
        let p1 = softmax(l.view(), 1.0);
        let p4 = softmax(l.view(), 4.0);
        for row in p1.axis_iter(Axis(0)).chain(p4.axis_iter(Axis(0))) {
            assert!((row.sum() - 1.0).abs() < 1e-6);
        }
        // exp(3)/(e+e^2+e^3) = 0.66524
        assert!((p1[[0, 2]] - 0.665_240_9).abs() < 1e-6);
        assert!(p4[[0, 2]] < p1[[0, 2]]);
        assert_eq!(p1[[1, 0]], 1.0);
    }

    #[test]
    fn top_k_is_sorted_and_breaks_ties_by_index() {
        let t = top_k(&[0.1, 0.4, 0.1, 0.4], 3);
        assert_eq!(t, vec![(1, 0.4), (3, 0.4), (0, 0.1)]);
        assert_eq!(top_k(&[0.5, 0.5], 5).len(), 2);
    }
}
