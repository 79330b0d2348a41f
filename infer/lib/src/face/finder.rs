//! Faces in still photos: BlazeFace's short-range model, the full-range one, or both
//! ([`RangeChoice::Auto`]).
//!
//! The short-range model (128 px input) is fast and sure of faces that fill a good part of the
//! picture, but misses or misplaces faces 30–100 px wide in a 640×480 frame, which the
//! full-range model (256 px, about three times the cost) finds; the full-range model in turn
//! weakens on faces filling most of the picture, and its false detections on photos without a
//! face score up to 0.74. `Auto` therefore runs the short-range model and keeps its faces when
//! every one is *sure* (score at least [`SURE_SCORE`], width at least [`SMALL_FACE`] of the
//! longer image side); otherwise it also runs the full-range model and answers with the sure
//! short-range faces plus the full-range faces scoring at least [`FULL_SCORE`] (or the minimum
//! score, if higher) that overlap none of them (IoU below [`MERGE_IOU`]). `Both` always runs
//! the two (group photos: small faces beside a large one). The measurements behind the rule
//! (scikit-image's photos, faces from 30 to 200 px) are in `docs/benchmarks.md`, section
//! "Face detection on photos"; the thresholds were chosen on those images.

use std::path::PathBuf;

use image::RgbImage;
use serde::Serialize;

use super::{BlazeFace, Face, Range};
use crate::backend::BackendOptions;
use crate::error::Result;

/// Which detector(s) look at a photo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum RangeChoice {
    /// Short range first; full range too when it finds nothing or only small faces.
    Auto,
    /// The short-range model only (128 px; faces filling much of the picture).
    Short,
    /// The full-range model only (256 px; small and distant faces).
    Full,
    /// Both models on every image, combined as in `Auto` (slower; for group photos).
    Both,
}

/// A short-range face narrower than this fraction of the longer image side is not sure.
pub const SMALL_FACE: f32 = 0.2;

/// Score a short-range face needs (with [`SMALL_FACE`]) to be sure.
pub const SURE_SCORE: f32 = 0.75;

/// Score a full-range face needs in `Auto` and `Both`.
pub const FULL_SCORE: f32 = 0.7;

/// A full-range face overlapping a kept short-range one by at least this IoU is the same face.
pub const MERGE_IOU: f32 = 0.3;

/// A face and the model that found it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Found {
    /// The detection, in image pixels.
    #[serde(flatten)]
    pub face: Face,
    /// The model that found it.
    pub range: Range,
}

/// Where the detector files are and how to run them.
#[derive(Debug, Clone)]
pub struct FinderOptions {
    /// Which models run.
    pub choice: RangeChoice,
    /// The short-range file (default [`Range::default_path`]).
    pub short_file: Option<PathBuf>,
    /// The full-range file (default [`Range::default_path`]).
    pub full_file: Option<PathBuf>,
    /// Runtime, execution provider and threads of the detectors.
    pub backend: BackendOptions,
    /// Minimum detection confidence.
    pub min_score: f32,
}

/// One or both BlazeFace models and the rule that combines them.
pub struct FaceFinder {
    short: Option<BlazeFace>,
    full: Option<BlazeFace>,
    always_both: bool,
}

impl FaceFinder {
    /// Loads the models `o.choice` needs.
    pub fn open(o: &FinderOptions) -> Result<Self> {
        let load = |range: Range, file: &Option<PathBuf>| -> Result<BlazeFace> {
            let path = match file {
                Some(f) => f.clone(),
                None => range.default_path()?,
            };
            let mut d = BlazeFace::open(&path, range, &o.backend)?;
            d.score_threshold = o.min_score;
            Ok(d)
        };
        let short = (o.choice != RangeChoice::Full)
            .then(|| load(Range::Short, &o.short_file))
            .transpose()?;
        let mut full = (o.choice != RangeChoice::Short)
            .then(|| load(Range::Full, &o.full_file))
            .transpose()?;
        if let (Some(_), Some(f)) = (&short, &mut full) {
            f.score_threshold = o.min_score.max(FULL_SCORE);
        }
        Ok(FaceFinder { short, full, always_both: o.choice == RangeChoice::Both })
    }

    /// The faces of `img`: best first for one model; in `Auto`, the sure short-range faces
    /// (best first) and then the full-range faces they do not cover (best first).
    pub fn find(&mut self, img: &RgbImage) -> Result<Vec<Found>> {
        let tag =
            |faces: Vec<Face>, range| faces.into_iter().map(move |face| Found { face, range });
        let short: Vec<Found> = match &mut self.short {
            Some(d) => tag(d.detect(img)?, Range::Short).collect(),
            None => Vec::new(),
        };
        let Some(full) = &mut self.full else { return Ok(short) };
        let side = img.width().max(img.height());
        let all_sure = !short.is_empty() && short.iter().all(|f| sure(f, side));
        if self.short.is_some() && all_sure && !self.always_both {
            return Ok(short);
        }
        let mut out: Vec<Found> = short.into_iter().filter(|f| sure(f, side)).collect();
        for f in tag(full.detect(img)?, Range::Full) {
            if out.iter().all(|g| iou(&g.face.bbox, &f.face.bbox) < MERGE_IOU) {
                out.push(f);
            }
        }
        Ok(out)
    }
}

/// Whether a short-range face is sure in an image whose longer side is `side`.
pub fn sure(f: &Found, side: u32) -> bool {
    f.face.score >= SURE_SCORE && f.face.bbox[2] - f.face.bbox[0] >= SMALL_FACE * side as f32
}

/// Intersection over union of two `[x0, y0, x1, y1]` boxes.
pub fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    let area = |r: &[f32; 4]| (r[2] - r[0]).max(0.0) * (r[3] - r[1]).max(0.0);
    let union = area(a) + area(b) - inter;
    if union > 0.0 { inter / union } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(x0: f32, w: f32, score: f32) -> Found {
        Found {
            face: Face { score, bbox: [x0, 0.0, x0 + w, w], keypoints: [[0.0; 2]; 6] },
            range: Range::Short,
        }
    }

    #[test]
    fn a_short_range_face_is_sure_when_large_and_confident() {
        assert!(sure(&found(0.0, 200.0, 0.9), 640));
        assert!(!sure(&found(0.0, 120.0, 0.9), 640), "under a fifth of the side: small");
        assert!(!sure(&found(0.0, 200.0, 0.6), 640), "not confident");
        assert!(sure(&found(0.0, 128.0, 0.75), 640));
    }

    #[test]
    fn iou_of_boxes() {
        assert_eq!(iou(&[0.0, 0.0, 2.0, 2.0], &[1.0, 0.0, 3.0, 2.0]), 2.0 / 6.0);
        assert_eq!(iou(&[0.0, 0.0, 1.0, 1.0], &[2.0, 2.0, 3.0, 3.0]), 0.0);
    }
}
